"""Commit-to-client latency of the broadcaster at scale, against a websockets.broadcast() baseline.

    python bench/bench_broadcast.py [--clients 300] [--snapshots 15] [--rows 90] [--interval 1.0]
                                    [--procs 2] [--skip-baseline] [--skip-snapshot-format]

Prints ONE JSON object. For each server, every snapshot (``--rows`` ticks, written to a
SQLite store in one transaction, as the collector does, then ``notify()``) is timed from
the wall clock just after ``write_snapshot`` returned to the moment each client's
``recv()`` returned the snapshot's last tick (``last_tick_ms``; ``first_tick_ms`` for its
first), and to the moment the client's websockets connection parsed that frame off the
socket (``*_parsed_ms``: the same without the client application's own queueing).
``server_fanout_done_ms`` is the server's share alone: from the commit to the moment the
server had written the snapshot's last frame for its last client.

* ``datacentre``: :class:`datacentre.broadcaster.Broadcaster` in its own thread (frames
  encoded once per snapshot, one ``transport.write()`` per client).
* ``datacentre_snapshot_format``: the same, with clients that sent ``set_format snapshot``
  (one message per snapshot instead of one per tick).
* ``baseline_broadcast_per_tick``: a bare websockets server (also ``compression=None``) that reads the same
  rows from the store the same way and calls ``websockets.broadcast()`` once per tick.

Clients are ``websockets`` asyncio clients spread over ``--procs`` separate processes so
that they do not compete with the server's event loop; they report receive times, the
parent computes latencies. Loopback only, bounded in time (about a minute at the defaults).
Client-side numbers include the clients' own work (``client_cpu_s_per_snapshot``): on a
machine with few cores the client processes share the CPUs with the server, and 300
Python clients parsing 90 frames each is most of the end-to-end time.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CONNECT_CONCURRENCY = 50


# ------------------------------------------------------------------ clients (child processes)


def _client_process(url: str, count: int, rows: int, snapshots: int, ready, results, deadline: float,
                    fmt: str) -> None:
    import collections

    import websockets
    from websockets.asyncio.client import ClientConnection
    from websockets.frames import Opcode

    class TimedConnection(ClientConnection):
        """Notes when each text frame is parsed off the socket, before the application's recv()."""

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.parsed: collections.deque[float] = collections.deque()

        def process_event(self, event) -> None:
            if getattr(event, "opcode", None) is Opcode.TEXT:
                self.parsed.append(time.time())
            super().process_event(event)

    async def one(sem: asyncio.Semaphore, out: list) -> None:
        async with sem:
            try:
                ws = await websockets.connect(url, compression=None, max_size=None, ping_interval=None,
                                              open_timeout=60, create_connection=TimedConnection)
            except Exception:
                ready.put(0)
                return
        try:
            await ws.recv()  # welcome
            ws.parsed.popleft()
            if fmt == "snapshot":
                await ws.send('{"type":"set_format","format":"snapshot"}')
                while not (await ws.recv()).startswith('{"type":"format"'):
                    pass
                ws.parsed.clear()
            ready.put(1)
            seen: dict[str, list] = {}  # ts -> [first parsed, first received, count]
            complete = 0
            loop = asyncio.get_running_loop()
            # One timeout for the whole run: a wait_for() per message costs more than the message.
            async with asyncio.timeout_at(loop.time() + deadline - time.time()):
                while complete < snapshots:
                    message = await ws.recv()
                    now = time.time()
                    parsed = ws.parsed.popleft()
                    at = message.find('"ts":"')
                    if at < 0:
                        continue
                    ticks = rows if message.startswith('{"type":"snapshot"') else 1
                    if ticks == 1 and message.startswith('{"type"'):
                        continue
                    ts = message[at + 6:message.index('"', at + 6)]
                    entry = seen.get(ts)
                    if entry is None:
                        entry = seen[ts] = [parsed, now, 0]
                    entry[2] += ticks
                    if entry[2] == rows:
                        out.append((ts, entry[0], parsed, entry[1], now))
                        complete += 1
        except (TimeoutError, websockets.ConnectionClosed):
            pass
        finally:
            await ws.close()

    async def main() -> list:
        sem = asyncio.Semaphore(CONNECT_CONCURRENCY)
        out: list = []
        await asyncio.gather(*(one(sem, out) for _ in range(count)), return_exceptions=True)
        return out

    received = asyncio.run(main())
    results.put((received, time.process_time()))


# ------------------------------------------------------------------ the baseline server


class BaselineServer:
    """A bare websockets server: read new rows by id, ``broadcast()`` each tick as it comes."""

    def __init__(self, store) -> None:
        self.store = store
        self.port = 0
        self.fanout_done: dict[str, float] = {}  # ts -> wall time its last frame was written
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> BaselineServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def notify(self) -> None:
        self._loop.call_soon_threadsafe(self._wake.set)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    async def _main(self) -> None:
        import websockets
        from websockets.asyncio.server import serve

        self._loop = asyncio.get_running_loop()
        self._wake, self._stop = asyncio.Event(), asyncio.Event()
        clients: set = set()

        async def handler(ws) -> None:
            await ws.send(json.dumps({"type": "welcome"}))
            clients.add(ws)
            try:
                await ws.wait_closed()
            finally:
                clients.discard(ws)

        cursor = self.store.max_id()
        async with serve(handler, "127.0.0.1", 0, compression=None) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            while not self._stop.is_set():
                self._wake.clear()
                rows = await asyncio.to_thread(self.store.after, cursor)
                for row in rows:
                    cursor = row["id"]
                    tick = {k: v for k, v in row.items() if k != "id"}
                    websockets.broadcast(clients, json.dumps(tick, separators=(",", ":")))
                if rows:
                    self.fanout_done[rows[-1]["ts"]] = time.time()
                try:
                    async with asyncio.timeout(0.05):
                        await self._wake.wait()
                except TimeoutError:
                    pass


# ------------------------------------------------------------------ one run


def timed_broadcaster(store):
    """A BroadcasterThread whose server notes when each snapshot's fan-out has been written."""
    from datacentre.broadcaster import Broadcaster, ServerThread

    class TimedBroadcaster(Broadcaster):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.fanout_done: dict[str, float] = {}

        def _publish(self, rows) -> None:
            super()._publish(rows)
            if rows:
                self.fanout_done[rows[-1]["ts"]] = time.time()

    class TimedThread(ServerThread):
        fanout_done = property(lambda self: self.server.fanout_done)

        def notify(self) -> None:
            self.server.notify()

    return TimedThread(TimedBroadcaster(store, port=0)).start()


def _percentiles(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {"n": len(ordered), "p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99),
            "max": round(ordered[-1], 1), "mean": round(statistics.fmean(ordered), 1)}


def run_one(name: str, server, store, ticks: list[dict], start: datetime, args, fmt: str = "tick") -> dict:
    ctx = mp.get_context("spawn")
    ready, results = ctx.Queue(), ctx.Queue()
    deadline = time.time() + args.timeout
    shares = [args.clients // args.procs + (1 if i < args.clients % args.procs else 0)
              for i in range(args.procs)]
    procs = [ctx.Process(target=_client_process, daemon=True,
                         args=(server.url, n, len(ticks), args.snapshots, ready, results, deadline, fmt))
             for n in shares if n]
    for p in procs:
        p.start()
    connected = reported = 0
    while reported < args.clients and time.time() < deadline:
        try:
            connected += ready.get(timeout=max(0.1, deadline - time.time()))
        except Exception:
            break
        reported += 1
    time.sleep(0.5)
    commits: dict[str, float] = {}
    for n in range(args.snapshots):
        moment = start + timedelta(seconds=n)
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")
        store.write_snapshot(moment, ticks)
        commits[stamp] = time.time()
        server.notify()
        time.sleep(args.interval)
    received: list = []
    client_cpu = 0.0
    for _ in procs:
        try:
            got, cpu = results.get(timeout=max(1.0, deadline - time.time()))
        except Exception:
            continue
        received.extend(got)
        client_cpu += cpu
    for p in procs:
        p.join(5)
        if p.is_alive():
            p.kill()

    def latency(column: int) -> dict:
        return _percentiles([(entry[column] - commits[entry[0]]) * 1000
                             for entry in received if entry[0] in commits])

    fanout = [(done - commits[ts]) * 1000 for ts, done in server.fanout_done.items() if ts in commits]

    return {"server": name, "clients_connected": connected, "snapshots_complete": len(received),
            "snapshots_expected": args.clients * args.snapshots,
            "client_cpu_s_per_snapshot": round(client_cpu / max(1, args.snapshots), 3),
            "server_fanout_done_ms": _percentiles(fanout),
            "last_tick_ms": latency(4), "first_tick_ms": latency(3),
            "last_tick_parsed_ms": latency(2), "first_tick_parsed_ms": latency(1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=300)
    parser.add_argument("--snapshots", type=int, default=15)
    parser.add_argument("--rows", type=int, default=90)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between snapshots")
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument("--timeout", type=float, default=35.0, help="seconds per server run, at most")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--skip-snapshot-format", action="store_true",
                        help="do not time clients that ask for one message per snapshot")
    args = parser.parse_args()

    import logging

    from datacentre.sources import MarketSimulator
    from datacentre.store import TickStore

    logging.basicConfig(level=logging.ERROR)
    started = time.monotonic()
    moment = datetime(2026, 1, 5, 5, 0, tzinfo=UTC)
    ticks = MarketSimulator(seed=1, atm_window=12).snapshot(moment)[:args.rows]
    report: dict = {"clients": args.clients, "snapshots": args.snapshots, "rows_per_snapshot": len(ticks),
                    "interval_s": args.interval, "client_processes": args.procs, "cpus": os.cpu_count(),
                    "loadavg_1m_before": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory() as tmp:
        store = TickStore(f"sqlite:///{tmp}/bench.db")
        server = timed_broadcaster(store)
        try:
            report["datacentre"] = run_one("datacentre", server, store, ticks, moment, args)
            report["datacentre"]["server_stats"] = {k: server.stats()[k] for k in
                                                    ("ticks_sent", "messages_sent", "dropped_clients")}
        finally:
            server.stop()
        if not args.skip_snapshot_format:
            server = timed_broadcaster(store)
            try:
                report["datacentre_snapshot_format"] = run_one(
                    "datacentre, set_format snapshot", server, store, ticks, moment + timedelta(hours=2),
                    args, fmt="snapshot")
            finally:
                server.stop()
        if not args.skip_baseline:
            baseline = BaselineServer(store).start()
            try:
                report["baseline_broadcast_per_tick"] = run_one(
                    "websockets.broadcast per tick", baseline, store, ticks,
                    moment + timedelta(hours=1), args)
            finally:
                baseline.stop()
        store.close()
    report["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
    report["elapsed_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
