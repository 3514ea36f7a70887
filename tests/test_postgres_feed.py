"""Scale-out on PostgreSQL: several writers and broadcasters on one database, commits pushed by NOTIFY."""
from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
import websocket
from conftest import synthetic_snapshot
from support import wait_until

from datacentre.core.errors import StoreError
from datacentre.core.ticks import parse_ts
from datacentre.feed.broadcaster import BroadcasterThread
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


def _reader(url: str, received: list, ready: threading.Event, stop: threading.Event) -> None:
    ws = websocket.create_connection(url, timeout=0.2)
    try:
        assert json.loads(ws.recv())["type"] == "welcome"
        ready.set()
        while not stop.is_set():
            try:
                received.append((time.perf_counter(), json.loads(ws.recv())))
            except websocket.WebSocketTimeoutException:
                continue
    finally:
        ws.close()


def _listening_sessions(store: TickStore) -> list[int]:
    rows = store.query("SELECT pid FROM pg_stat_activity WHERE application_name = ? "
                       "AND datname = current_database()", (APPLICATION_NAME,))
    return [r["pid"] for r in rows]


def test_two_broadcasters_deliver_identical_ticks_pushed_by_notify(pg_store):
    # Each site's broadcaster has its own store connection; neither polls within the test's
    # time (safety_poll 60 s), so every tick that arrives was pushed by a commit notification.
    sites = [BroadcasterThread(TickStore(pg_store.url), port=0, safety_poll=60).start() for _ in range(2)]
    received: list[list] = [[], []]
    stop = threading.Event()
    readers = []
    try:
        assert all(site.stats()["listening"] for site in sites)
        for site, inbox in zip(sites, received):
            ready = threading.Event()
            readers.append(threading.Thread(target=_reader, args=(site.url, inbox, ready, stop)))
            readers[-1].start()
            assert ready.wait(10)
        collector = TickStore(pg_store.url)  # the collector: another process, another site
        for i in range(5):
            moment = START + timedelta(seconds=5 * i)
            collector.write_snapshot(moment, synthetic_snapshot(moment, step=i))
            count = collector.count()
            assert wait_until(lambda c=count: all(len(inbox) >= c for inbox in received), timeout=10)
        collector.close()
    finally:
        stop.set()
        for reader in readers:
            reader.join(5)
        for site in sites:
            site.stop()
            site.server.store.close()
    stored = [(r["symbol"], r["ts"]) for r in pg_store.after(0, limit=100_000)]
    for inbox in received:
        assert [(m["symbol"], m["ts"]) for _, m in inbox] == stored
    assert [m for _, m in received[0]] == [m for _, m in received[1]]


def test_a_lost_listener_reconnects(pg_store):
    server = BroadcasterThread(TickStore(pg_store.url), port=0, safety_poll=60).start()
    received: list = []
    stop = threading.Event()
    ready = threading.Event()
    reader = threading.Thread(target=_reader, args=(server.url, received, ready, stop))
    reader.start()
    try:
        assert ready.wait(10) and server.stats()["listening"]
        (pid,) = _listening_sessions(pg_store)
        with pg_store.engine.begin() as conn:
            conn.exec_driver_sql("SELECT pg_terminate_backend(%s)", (pid,))

        def back() -> bool:
            sessions = _listening_sessions(pg_store)
            return server.stats()["listening"] and len(sessions) == 1 and sessions != [pid]

        assert wait_until(back, timeout=15)
        pg_store.write_snapshot(START, synthetic_snapshot(START))
        assert wait_until(lambda: len(received) == pg_store.count(), timeout=10)  # pushed, not polled
    finally:
        stop.set()
        reader.join(5)
        server.stop()
        server.server.store.close()
    assert _listening_sessions(pg_store) == []  # stopping the broadcaster closes its listener


def test_without_listen_the_broadcaster_polls(pg_store):
    server = BroadcasterThread(pg_store, port=0, listen=False, poll_interval=0.05).start()
    received: list = []
    stop = threading.Event()
    ready = threading.Event()
    reader = threading.Thread(target=_reader, args=(server.url, received, ready, stop))
    reader.start()
    try:
        assert ready.wait(10) and not server.stats()["listening"]
        assert _listening_sessions(pg_store) == []
        with TickStore(pg_store.url) as writer:
            writer.write_snapshot(START, synthetic_snapshot(START))
        assert wait_until(lambda: len(received) == pg_store.count(), timeout=10)
    finally:
        stop.set()
        reader.join(5)
        server.stop()


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
    desk = TickStore(reader_url)
    server = BroadcasterThread(desk, port=0, safety_poll=60).start()
    received: list = []
    stop = threading.Event()
    ready = threading.Event()
    reader = threading.Thread(target=_reader, args=(server.url, received, ready, stop))
    reader.start()
    try:
        assert ready.wait(10) and server.stats()["listening"]
        pg_store.write_snapshot(START, synthetic_snapshot(START))
        assert wait_until(lambda: len(received) == pg_store.count(), timeout=10)
        with pytest.raises(StoreError):
            desk.write_snapshot(START + timedelta(seconds=5), synthetic_snapshot(START))
    finally:
        stop.set()
        reader.join(5)
        server.stop()
        desk.close()
        with pg_store.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP OWNED BY {role}")
            conn.exec_driver_sql(f"DROP ROLE {role}")
