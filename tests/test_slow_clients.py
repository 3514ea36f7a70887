"""Slow and hostile connections: stalled clients are cut by time and bytes while a reader keeps its
latency; the connection limit refuses politely; unfinished handshakes time out. Real sockets."""
from __future__ import annotations

import asyncio
import json
import logging
import socket
import struct
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
import websocket
import websockets
from conftest import make_tick
from support import wait_until

from datacentre.core.ticks import format_ts
from datacentre.feed import slow
from datacentre.feed.broadcaster import BroadcasterThread

T0 = datetime(2026, 1, 2, 4, 0, tzinfo=UTC)
SYMBOLS = [f"NIFTY06JAN26{26000 + 50 * i}CE" for i in range(100)]
HANDSHAKE = (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def stalled(port: int) -> socket.socket:
    """A client that completes the handshake and then never reads (default socket buffers)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(HANDSHAKE)
    # Peek until the response's headers are in, then take exactly them: the welcome frame
    # stays unread, and a loaded machine cannot stretch the handshake past a stall limit.
    deadline = time.monotonic() + 5
    while b"\r\n\r\n" not in (seen := sock.recv(4096, socket.MSG_PEEK)):
        assert time.monotonic() < deadline, f"no handshake response (got {seen!r})"
        time.sleep(0.001)
    response = sock.recv(seen.index(b"\r\n\r\n") + 4)
    assert response.startswith(b"HTTP/1.1 101") and response.endswith(b"\r\n\r\n")
    return sock


def frames(data: bytes) -> list[tuple[int, bytes]]:
    """``(opcode, payload)`` of each whole server frame in ``data`` (RFC 6455, unmasked)."""
    out, i = [], 0
    while i + 2 <= len(data):
        opcode, n = data[i] & 0x0F, data[i + 1] & 0x7F
        i += 2
        if n == 126:
            n, i = struct.unpack("!H", data[i:i + 2])[0], i + 2
        elif n == 127:
            n, i = struct.unpack("!Q", data[i:i + 8])[0], i + 8
        if i + n > len(data):
            break
        out.append((opcode, data[i:i + n]))
        i += n
    return out


def write(store, n: int) -> str:
    ts = format_ts(T0 + timedelta(seconds=n))
    store.write_snapshot(ts, [make_tick(s, 100.0 + n, volume=n) for s in SYMBOLS])
    return ts


@pytest.mark.slow
def test_stalled_clients_are_cut_within_the_bound_and_a_reader_keeps_its_latency(store, caplog):
    """The reported case: three clients that never read, one that does, 50,000 rows."""
    stall_timeout = 2.0
    server = BroadcasterThread(store, port=0, poll_interval=0.02, stall_timeout=stall_timeout).start()
    committed: dict[str, float] = {}
    latencies: list[float] = []
    ready = threading.Event()
    snapshots = 500

    async def read() -> None:
        async with websockets.connect(server.url, max_size=None) as ws:
            await ws.recv()
            await ws.send(json.dumps({"type": "set_format", "format": "snapshot"}))
            await ws.recv()
            ready.set()
            while len(latencies) < snapshots:
                message = json.loads(await asyncio.wait_for(ws.recv(), 30))
                latencies.append(time.perf_counter() - committed[message["ts"]])

    reader = threading.Thread(target=asyncio.run, args=(read(),))
    reader.start()
    sockets = [stalled(server.port) for _ in range(3)]
    peak: list[int] = [0]
    watching = threading.Event()

    def watch_buffers() -> None:  # the stalled clients' unsent bytes in this process
        while not watching.is_set():
            sizes = [c.ws.transport.get_write_buffer_size() for c in list(server.server._connections)]
            peak[0] = max([peak[0], *sizes])
            time.sleep(0.01)

    watcher = threading.Thread(target=watch_buffers, daemon=True)
    watcher.start()
    caplog.set_level(logging.WARNING, logger="datacentre.feed.server")
    try:
        assert ready.wait(10) and wait_until(lambda: server.stats()["subscribers"] == 4)
        started = time.perf_counter()
        start_wall = time.time()
        for n in range(snapshots):
            ts = format_ts(T0 + timedelta(seconds=n))
            committed[ts] = time.perf_counter()  # just before: a commit's own time counts as latency
            write(store, n)
            server.notify()
            time.sleep(0.01)
        written_in = time.perf_counter() - started
        reader.join(60)
        assert not reader.is_alive() and len(latencies) == snapshots
        assert wait_until(lambda: server.stats()["dropped_clients"] == 3, 30)
    finally:
        watching.set()
        for sock in sockets:
            sock.close()
        server.stop()
    cuts = [r for r in caplog.records if "disconnecting client" in r.getMessage()]
    # cut by the clock (nothing drained), long before the byte limit: the kernel holds the backlog
    assert len(cuts) == 3 and all("close code 1008" in r.getMessage() and "undrained for" in r.getMessage()
                                  for r in cuts), [r.getMessage() for r in cuts]
    to_cut = sorted(r.created - start_wall for r in cuts)
    latencies.sort()
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
    print(f"\n50,000 rows in {written_in:.1f} s; stalled clients cut after {to_cut[0]:.1f}-"
          f"{to_cut[-1]:.1f} s "
          f"(limit {stall_timeout:g} s undrained); reader p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms; "
          f"peak unsent in the transport of one client {peak[0] / 2**20:.2f} MiB")
    # The bound: the kernel's buffers fill within a second at this rate, then the stall limit,
    # a watch period and the close grace; the margins are for a loaded 2-core machine.
    assert to_cut[-1] < stall_timeout + slow.WATCH_PERIOD + slow.CLOSE_GRACE + 10
    assert peak[0] <= server.server.max_buffer_bytes + 64 * 1024
    assert p99 < 1.0


def test_a_slow_client_is_told_why_with_a_close_code_and_reason(store, monkeypatch):
    monkeypatch.setattr(slow, "CLOSE_GRACE", 30.0)  # time to read the backlog before the abort
    server = BroadcasterThread(store, port=0, poll_interval=0.02, stall_timeout=0.5).start()
    try:
        sock = stalled(server.port)
        n = 0
        while server.stats()["dropped_clients"] == 0:
            write(store, n)
            server.notify()
            n += 1
            assert n < 2_000
            time.sleep(0.005)
        data = b""
        sock.settimeout(5)
        while not (got := frames(data)) or got[-1][0] != 0x8:
            chunk = sock.recv(1 << 16)
            assert chunk, "the connection ended without a close frame"
            data += chunk
        code, reason = struct.unpack("!H", got[-1][1][:2])[0], got[-1][1][2:].decode()
        assert code == 1008 and reason.startswith("too slow: ") and "undrained for" in reason
        assert all(opcode == 0x1 for opcode, _ in got[:-1])  # whole text frames up to the close
    finally:
        server.stop()


def test_the_connection_limit_refuses_politely(store):
    server = BroadcasterThread(store, port=0, max_connections=3).start()
    opened = []
    try:
        for _ in range(3):
            ws = websocket.create_connection(server.url, timeout=5)
            ws.recv()
            opened.append(ws)
        with pytest.raises(websocket.WebSocketBadStatusException) as info:
            websocket.create_connection(server.url, timeout=5)
        assert info.value.status_code == 503
        assert info.value.resp_headers["retry-after"] == str(5)
        assert b"3 connections at most" in info.value.resp_body
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/health", timeout=5) as response:
            health = json.loads(response.read())  # /health still answers at the limit
        assert health["subscribers"] == 3 and health["refused_connections"] == 1
        opened.pop().close()
        assert wait_until(lambda: server.stats()["subscribers"] == 2)
        ws = websocket.create_connection(server.url, timeout=5)
        assert json.loads(ws.recv())["type"] == "welcome"
        opened.append(ws)
    finally:
        for ws in opened:
            ws.close()
        server.stop()


@pytest.mark.parametrize("sent", [b"", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"])
def test_a_connection_that_never_finishes_its_handshake_is_dropped(store, sent):
    server = BroadcasterThread(store, port=0, open_timeout=0.5).start()
    try:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock.sendall(sent)
        started = time.monotonic()
        try:
            assert sock.recv(1024) == b""  # closed by the server
        except ConnectionResetError:
            pass
        assert time.monotonic() - started < 5
        sock.close()
        ws = websocket.create_connection(server.url, timeout=5)  # others are served as usual
        assert json.loads(ws.recv())["type"] == "welcome"
        ws.close()
    finally:
        server.stop()


@pytest.mark.parametrize("unsent, undrained, buffered, expected", [
    (0, 0.0, 0, None),
    (10 * 2**20, 1.0, 0, None),
    (10 * 2**20, 5.1, 0, "too slow: 10,485,760 bytes undrained for 5.1 s (limit 5 s)"),
    (0, 0.0, 4 * 2**20 + 1, "too slow: 4,194,305 bytes unsent (limit 4,194,304)"),
])
def test_verdict(unsent, undrained, buffered, expected):
    assert slow.verdict(undrained, buffered, stall_timeout=5.0, max_buffer_bytes=4 * 2**20,
                        unsent=unsent) == expected


def test_drain_watch():
    watch = slow.DrainWatch(drained_at=0.0)
    assert watch.look(1.0, written=1_000_000, unsent=900_000, pacing=False) == 1.0
    assert watch.look(2.0, written=1_000_000, unsent=10_000, pacing=False) == 0.0  # drained
    assert watch.look(4.0, written=2_000_000, unsent=900_000, pacing=False) == 2.0
    assert watch.look(5.0, written=2_000_000, unsent=800_000, pacing=True) == 0.0  # progress, paced
    assert watch.look(7.0, written=2_000_000, unsent=800_000, pacing=True) == 2.0  # no progress
