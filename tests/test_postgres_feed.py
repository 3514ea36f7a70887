"""Scale-out on PostgreSQL: several writers and broadcasters on one database, commits pushed by NOTIFY."""
from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta

import pytest
import sqlalchemy as sa
import websocket
from conftest import synthetic_snapshot
from support import wait_until

from datacentre.core.errors import StoreError
from datacentre.core.ticks import parse_ts
from datacentre.feed.broadcaster import BroadcasterThread
from datacentre.feed.resume import split_live
from datacentre.sources import MarketSimulator
from datacentre.store.notify import APPLICATION_NAME
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
        # The writers interleave: a snapshot that commits after a newer one is not live.
        rows = pg_store.after(0, limit=100_000)
        live, _, _ = split_live(rows, None)
        received = []
        deadline = time.monotonic() + 30
        while len(received) < len(live) and time.monotonic() < deadline:
            received.append(json.loads(ws.recv()))
        assert wait_until(lambda: server.stats()["cursor"] == rows[-1]["id"])
    finally:
        ws.close()
        server.stop()
    assert [(m["symbol"], m["ts"]) for m in received] == [(r["symbol"], r["ts"]) for r in live]
    assert server.stats()["past_rows"] == len(rows) - len(live)
    assert len({(r["symbol"], r["ts"]) for r in rows}) == len(rows) == 20 * 44


class _Client(threading.Thread):
    """A WebSocket client keeping every message a broadcaster sends it."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.ws = websocket.create_connection(url, timeout=0.2)
        assert json.loads(self.ws.recv())["type"] == "welcome"
        self.received: list[dict] = []
        self.stop = threading.Event()
        self.start()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.received.append(json.loads(self.ws.recv()))
            except websocket.WebSocketTimeoutException:
                continue
        self.ws.close()


@contextmanager
def feed_with_client(store: TickStore, **options) -> Iterator[tuple[BroadcasterThread, _Client]]:
    """A broadcaster over ``store`` on a free port and one client of it, both stopped afterwards."""
    server = BroadcasterThread(store, port=0, **options).start()
    client = None
    try:
        client = _Client(server.url)
        yield server, client
    finally:
        if client is not None:
            client.stop.set()
            client.join(5)
        server.stop()


def _listening_sessions(store: TickStore) -> list[int]:
    # this store's listeners only: other tests' stores share the database, one schema each
    rows = store.query("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                       "AND application_name = ? || ' ' || current_schema()", (APPLICATION_NAME,))
    return [r["pid"] for r in rows]


def test_two_broadcasters_deliver_identical_ticks_pushed_by_notify(pg_store):
    # Each site's broadcaster has its own store connection; neither polls within the test's
    # time (safety_poll 60 s), so every tick that arrives was pushed by a commit notification.
    with ExitStack() as stack:
        sites = [stack.enter_context(feed_with_client(stack.enter_context(TickStore(pg_store.url)),
                                                      safety_poll=60)) for _ in range(2)]
        assert all(server.stats()["listening"] for server, _ in sites)
        collector = stack.enter_context(TickStore(pg_store.url))  # another process, another site
        for i in range(5):
            moment = START + timedelta(seconds=5 * i)
            collector.write_snapshot(moment, synthetic_snapshot(moment, step=i))
            count = collector.count()
            assert wait_until(lambda c=count: all(len(client.received) >= c for _, client in sites),
                              timeout=10)
    stored = [(r["symbol"], r["ts"]) for r in pg_store.after(0, limit=100_000)]
    for _, client in sites:
        assert [(m["symbol"], m["ts"]) for m in client.received] == stored
    assert sites[0][1].received == sites[1][1].received


def test_a_lost_listener_reconnects(pg_store):
    with TickStore(pg_store.url) as site, feed_with_client(site, safety_poll=60) as (server, client):
        assert server.stats()["listening"]
        (pid,) = _listening_sessions(pg_store)
        with pg_store.engine.begin() as conn:
            conn.exec_driver_sql("SELECT pg_terminate_backend(%s)", (pid,))

        def back() -> bool:
            sessions = _listening_sessions(pg_store)
            return server.stats()["listening"] and len(sessions) == 1 and sessions != [pid]

        assert wait_until(back, timeout=15)
        pg_store.write_snapshot(START, synthetic_snapshot(START))
        assert wait_until(lambda: len(client.received) == pg_store.count(), timeout=10)  # pushed
    # stopping the broadcaster closes its listener (the server ends the backend just after)
    assert wait_until(lambda: _listening_sessions(pg_store) == [], timeout=5)


def test_without_listen_the_broadcaster_polls(pg_store):
    with feed_with_client(pg_store, listen=False, poll_interval=0.05) as (server, client):
        assert not server.stats()["listening"] and _listening_sessions(pg_store) == []
        with TickStore(pg_store.url) as writer:
            writer.write_snapshot(START, synthetic_snapshot(START))
        assert wait_until(lambda: len(client.received) == pg_store.count(), timeout=10)


def test_sqlite_broadcaster_has_no_listener(store):
    server = BroadcasterThread(store, port=0).start()
    try:
        assert server.stats()["listening"] is False
    finally:
        server.stop()


def test_a_read_only_role_broadcasts(pg_store):
    # docs/deploy.md: desks connect as a role that may only read (LISTEN needs no privilege).
    role = f"dc_reader_{uuid.uuid4().hex[:8]}"
    with pg_store.engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
        schema = conn.exec_driver_sql("SELECT current_schema()").scalar()
        conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        conn.exec_driver_sql(f"GRANT SELECT ON ltp_ticks, instruments, sync_cursors TO {role}")
    reader_url = sa.engine.make_url(pg_store.url).set(username=role).render_as_string(hide_password=False)
    try:
        with TickStore(reader_url) as desk, feed_with_client(desk, safety_poll=60) as (server, client):
            assert server.stats()["listening"]
            pg_store.write_snapshot(START, synthetic_snapshot(START))
            assert wait_until(lambda: len(client.received) == pg_store.count(), timeout=10)
            with pytest.raises(StoreError):
                desk.write_snapshot(START + timedelta(seconds=5), synthetic_snapshot(START))
    finally:
        with pg_store.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP OWNED BY {role}")
            conn.exec_driver_sql(f"DROP ROLE {role}")
