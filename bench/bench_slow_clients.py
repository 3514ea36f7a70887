"""Stalled clients against a broadcaster with its default limits: how soon they are cut, what
each costs while it lasts, and the latency of a client that reads.

    python bench/bench_slow_clients.py [--stalled 3] [--snapshots 500] [--rows 100]

The broadcaster runs as ``python -m datacentre broadcast`` (its own process, so its memory
is its own) over a SQLite file this script writes: ``--snapshots`` snapshots of ``--rows``
rows, one every 10 ms (50,000 rows by default, the reported case). ``--stalled`` clients
complete the handshake and never read (default socket buffers); one client reads in the
snapshot format and times each snapshot from its commit. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import websockets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datacentre.clients.health import broadcaster_health  # noqa: E402
from datacentre.core.ticks import format_ts  # noqa: E402
from datacentre.store.tickstore import TickStore  # noqa: E402

T0 = datetime(2026, 1, 2, 4, 0, tzinfo=UTC)
HANDSHAKE = (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stalled(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(HANDSHAKE)
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)
    return sock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stalled", type=int, default=3)
    parser.add_argument("--snapshots", type=int, default=500)
    parser.add_argument("--rows", type=int, default=100)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-slow-"))
    url = f"sqlite:///{folder / 'ticks.db'}"
    store = TickStore(url)
    port = free_port()
    ws_url = f"ws://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATACENTRE_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen([sys.executable, "-m", "datacentre", "broadcast", "--db", url, "--port",
                             str(port)], cwd=folder, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    symbols = [f"NIFTY06JAN26{26000 + 50 * i}CE" for i in range(args.rows)]
    committed: dict[str, float] = {}
    latencies: list[float] = []
    ready = threading.Event()

    async def read() -> None:
        async with websockets.connect(ws_url, max_size=None) as ws:
            await ws.recv()
            await ws.send(json.dumps({"type": "set_format", "format": "snapshot"}))
            await ws.recv()
            ready.set()
            while len(latencies) < args.snapshots:
                message = json.loads(await asyncio.wait_for(ws.recv(), 60))
                latencies.append(time.perf_counter() - committed[message["ts"]])

    try:
        while (broadcaster_health(ws_url) or {}).get("pid") != proc.pid:
            if proc.poll() is not None:
                raise SystemExit(proc.stderr.read())
            time.sleep(0.05)
        reader = threading.Thread(target=asyncio.run, args=(read(),))
        reader.start()
        ready.wait(30)
        base_rss = rss_mib(proc.pid)
        sockets = [stalled(port) for _ in range(args.stalled)]
        peak_rss, cut_at = base_rss, []
        started = time.perf_counter()
        for n in range(args.snapshots):
            ts = format_ts(T0 + timedelta(seconds=n))
            committed[ts] = time.perf_counter()
            store.write_snapshot(ts, [{"symbol": s, "ltp": 100.0 + n, "volume": n, "source": "sim"}
                                      for s in symbols])
            if n % 10 == 0:
                peak_rss = max(peak_rss, rss_mib(proc.pid))
                dropped = (broadcaster_health(ws_url) or {}).get("dropped_clients", 0)
                cut_at.extend([time.perf_counter() - started] * (dropped - len(cut_at)))
            time.sleep(0.01)
        reader.join(120)
        while len(cut_at) < args.stalled and time.perf_counter() - started < 120:
            dropped = (broadcaster_health(ws_url) or {}).get("dropped_clients", 0)
            cut_at.extend([time.perf_counter() - started] * (dropped - len(cut_at)))
            time.sleep(0.05)
        for sock in sockets:
            sock.close()
    finally:
        proc.terminate()
        proc.wait(30)
        store.close()
    latencies.sort()
    print(json.dumps({
        "rows": args.snapshots * args.rows, "stalled": args.stalled,
        "cut_after_s": [round(t, 2) for t in cut_at],
        "rss_base_mib": round(base_rss, 1), "rss_peak_mib": round(peak_rss, 1),
        "rss_per_stalled_client_mib": round((peak_rss - base_rss) / max(args.stalled, 1), 2),
        "reader_p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
        "reader_p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1),
    }))


if __name__ == "__main__":
    main()
