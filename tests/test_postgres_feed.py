"""Scale-out on PostgreSQL: several writers, one broadcaster, every row once and in order."""
from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import websocket

from datacentre.core.ticks import parse_ts
from datacentre.feed.broadcaster import BroadcasterThread
from datacentre.sources import MarketSimulator
from datacentre.store.tickstore import TickStore

START = parse_ts("2026-01-05T04:00:00Z")


def test_concurrent_writers_rows_arrive_once_in_id_order(pg_store):
    server = BroadcasterThread(pg_store, port=0, poll_interval=0.02).start()
    ws = websocket.create_connection(server.url, timeout=20)
    try:
        assert json.loads(ws.recv())["type"] == "welcome"

        def writer(offset_s: int, seed: int) -> None:
            store = TickStore(pg_store.url)  # its own engine, as another process would have
            sim = MarketSimulator(seed=seed, underlyings=("NIFTY",), next_expiry_window=None)
            for i in range(10):
                moment = START + timedelta(seconds=offset_s + 2 * i)
                store.write_snapshot(moment, sim.snapshot(moment))
            store.close()

        threads = [threading.Thread(target=writer, args=(k, k + 1)) for k in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        expected = pg_store.count()
        received = []
        deadline = time.monotonic() + 30
        while len(received) < expected and time.monotonic() < deadline:
            received.append(json.loads(ws.recv()))
    finally:
        ws.close()
        server.stop()
    stored = [(r["symbol"], r["ts"]) for r in pg_store.after(0, limit=100_000)]
    assert [(m["symbol"], m["ts"]) for m in received] == stored
    assert len(set(stored)) == len(stored) == expected == 20 * 44
