"""Resume with nothing lost: cursors, catch-up from the store, gaps, restarts, several broadcasters.

Real stores (a SQLite file, then a PostgreSQL schema), real broadcasters on loopback ports,
real clients."""
from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
import websocket
from conftest import make_tick, synthetic_snapshot
from support import on_port_again, wait_until

from datacentre.app.livefeed import LiveFeed
from datacentre.clients.connection import FeedConnection, resume_url
from datacentre.clients.reader import WebSocketDataReader
from datacentre.core.ticks import TICK_FIELDS, format_ts
from datacentre.feed.broadcaster import BroadcasterThread
from datacentre.feed.resume import plan_resume, split_live
from datacentre.store.tickstore import TickStore

T0 = datetime(2026, 1, 2, 4, 0, tzinfo=UTC)
SYMBOLS = ["NIFTY 50", "NIFTY BANK", "NIFTY27JAN26FUT"]


def at(n: float) -> str:
    return format_ts(T0 + timedelta(seconds=5 * n))


def write(store: TickStore, n: float, symbols=SYMBOLS) -> list[tuple[str, str]]:
    store.write_snapshot(at(n), [make_tick(s, 100.0 + n + i, volume=int(n)) for i, s in enumerate(symbols)])
    return [(s, at(n)) for s in symbols]


def live_after(store: TickStore, cursor: int) -> list[tuple[str, str]]:
    """The live rows after ``cursor``, by the rule, from the store alone."""
    rows, _, _ = split_live(store.after(cursor, 1_000_000), store.newest_ts_through(cursor))
    return [(r["symbol"], r["ts"]) for r in rows]


def open_ws(url: str, resume: str | int | None = None) -> tuple[websocket.WebSocket, dict]:
    if resume is not None:
        url = f"{url}/?resume={resume}"
    ws = websocket.create_connection(url, timeout=10)
    welcome = json.loads(ws.recv())
    assert welcome["type"] == "welcome"
    return ws, welcome


def read_until(ws: websocket.WebSocket, done) -> list[dict]:
    got: list[dict] = []
    while not done(got):
        got.append(json.loads(ws.recv()))
    return got


def ticks_of(messages: list[dict]) -> list[tuple[str, str]]:
    return [(m["symbol"], m["ts"]) for m in messages if "type" not in m]


def settled(server: BroadcasterThread, store: TickStore) -> bool:
    """Wait until the broadcaster has read every row of the store (it then owes nothing live)."""
    top = store.max_id()
    return wait_until(lambda: server.stats()["cursor"] == top)


@pytest.fixture
def db_url(any_db_url):
    return any_db_url


@pytest.fixture
def feed(live_broadcaster):
    return live_broadcaster


# ---------------------------------------------------------------- planning, from the store alone


def test_a_cursor_within_reach_resumes_where_it_is(store):
    for n in range(10):
        write(store, n)
    head, newest = store.feed_head()
    plan = plan_resume(store, 12, head=head, newest=newest)
    assert (plan.start, plan.newest, plan.gap) == (12, at(3), None)


def test_a_cursor_beyond_the_window_gets_the_gap_it_missed(store):
    for n in range(10):
        write(store, n)  # ids 1-30, 5 s apart
    head, newest = store.feed_head()
    plan = plan_resume(store, 6, head=head, newest=newest, window_s=12)
    # within 12 s of the newest snapshot (45 s): the snapshots at 35, 40 and 45 s, from id 22 on
    assert plan.start == 21 and plan.newest == at(6)
    assert plan.gap["cursor"] == 6 and plan.gap["resume_cursor"] == 21
    assert (plan.gap["start_ts"], plan.gap["end_ts"]) == (at(2), at(6))
    assert "get_history" in plan.gap["message"]
    rows_cap = plan_resume(store, 6, head=head, newest=newest, max_rows=10)
    assert rows_cap.start == 20 and rows_cap.gap["start_ts"] == at(2)


def test_past_rows_out_of_reach_are_no_gap(store):
    write(store, 0)  # ids 1-3
    store.insert_ticks([{**make_tick(s, 1.0), "ts": format_ts(T0 - timedelta(days=1, seconds=k))}
                        for k in range(20) for s in SYMBOLS])  # a backfill: ids 4-63, all past
    write(store, 1)
    head, newest = store.feed_head()
    plan = plan_resume(store, 3, head=head, newest=newest, max_rows=5)
    assert plan.gap is None and plan.start == head - 5


def test_a_cursor_from_another_store_resumes_from_now(store):
    write(store, 0)
    head, newest = store.feed_head()
    plan = plan_resume(store, 10_000, head=head, newest=newest)
    assert plan.start == head and "ahead of this store" in plan.gap["message"]


# ---------------------------------------------------------------- over the wire


def test_resume_sends_every_missed_live_row_once_in_order_then_the_live_stream(feed, store):
    write(store, 0)
    assert settled(feed, store)
    ws, welcome = open_ws(feed.url, "now")
    assert welcome["cursor"] == store.max_id() == 3
    write(store, 1)
    feed.notify()
    got = read_until(ws, lambda m: m and m[-1].get("type") == "cursor")
    assert ticks_of(got) == [(s, at(1)) for s in SYMBOLS] and got[-1] == {"type": "cursor", "cursor": 6}
    ws.close()
    missed = write(store, 2) + write(store, 3)
    store.insert_ticks([{**make_tick("NIFTY 50", 1.0), "ts": at(-10)}])  # a past row: not owed
    missed += write(store, 4)
    assert settled(feed, store)
    ws, welcome = open_ws(feed.url, 6)
    assert welcome["cursor"] == 6
    got = read_until(ws, lambda m: m and m[-1].get("type") == "resumed")
    assert ticks_of(got) == missed
    assert got[-1] == {"type": "resumed", "cursor": store.max_id(), "rows": len(missed)}
    assert all(list(m) == list(TICK_FIELDS) for m in got if "type" not in m)
    fresh = write(store, 5)
    feed.notify()
    got = read_until(ws, lambda m: m and m[-1].get("type") == "cursor")
    assert ticks_of(got) == fresh
    ws.close()
    stats = feed.stats()
    assert stats["resumes"] == 1 and stats["resent_rows"] == len(missed) and stats["resume_gaps"] == 0


def test_clients_that_never_ask_see_no_cursor_message(feed, store):
    ws, welcome = open_ws(feed.url)
    assert list(welcome)[:4] == ["type", "message", "timestamp", "subscribers"]
    write(store, 0)
    feed.notify()
    assert [json.loads(ws.recv()) for _ in SYMBOLS] == [
        {f: r[f] for f in TICK_FIELDS} for r in store.after(0)]
    write(store, 1)
    feed.notify()
    assert "type" not in json.loads(ws.recv())  # the next tick, no cursor in between
    ws.close()


def test_a_resume_beyond_the_window_says_what_it_missed(store):
    for n in range(10):
        write(store, n)
    server = BroadcasterThread(store, port=0, poll_interval=0.02, resume_window=12).start()
    try:
        ws, _ = open_ws(server.url, 6)
        got = read_until(ws, lambda m: m and m[-1].get("type") == "resumed")
        gap = got[0]
        assert gap["type"] == "resume_gap" and (gap["cursor"], gap["resume_cursor"]) == (6, 21)
        assert (gap["start_ts"], gap["end_ts"]) == (at(2), at(6))
        assert ticks_of(got) == [(s, at(n)) for n in (7, 8, 9) for s in SYMBOLS]
        ws.close()
        assert server.stats()["resume_gaps"] == 1
    finally:
        server.stop()


def test_a_bad_cursor_is_refused_with_a_clear_answer(feed):
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(f"{feed.url}/?resume=yesterday", timeout=5)
    assert info.value.status_code == 400
    assert b"resume must be a cursor" in info.value.resp_body


def test_a_long_catch_up_is_paced_not_cut_off(store):
    """20,000 missed rows (6 MB) through a 64 KiB buffer and a 3 s stall limit: the catch-up
    waits for the client, which keeps reading, so it is never taken for a stalled one."""
    symbols = [f"NIFTY06JAN26{26000 + 50 * i}CE" for i in range(100)]
    write(store, 0, symbols)
    server = BroadcasterThread(store, port=0, poll_interval=0.02, max_buffer_bytes=64 * 1024,
                               stall_timeout=3.0).start()
    try:
        for n in range(1, 201):
            write(store, n, symbols)
        assert settled(server, store)
        ws, _ = open_ws(server.url, 100)
        got = read_until(ws, lambda m: m and m[-1].get("type") == "resumed")
        assert len(ticks_of(got)) == 200 * 100 and got[-1]["rows"] == 20_000
        assert server.stats()["dropped_clients"] == 0
        ws.close()
    finally:
        server.stop()


# ---------------------------------------------------------------- the Python clients use it


def test_resent_ticks_after_the_last_cursor_are_dropped_once():
    ticks: list[dict] = []
    conn = FeedConnection("ws://127.0.0.1:9", on_tick=ticks.append)

    def say(message: dict) -> None:
        conn.handle_message(json.dumps(message))

    say({"type": "welcome", "message": "Connected to Real-Time Data Centre", "cursor": 3})
    assert conn.cursor == 3 and resume_url(conn.url, conn.cursor) == "ws://127.0.0.1:9/?resume=3"
    say({"symbol": "NIFTY 50", "ts": at(1)})
    say({"type": "cursor", "cursor": 6})
    say({"symbol": "NIFTY 50", "ts": at(2)})
    say({"symbol": "NIFTY BANK", "ts": at(2)})  # the connection drops here, before the cursor
    say({"type": "welcome", "message": "Connected to Real-Time Data Centre", "cursor": 6})
    say({"symbol": "NIFTY 50", "ts": at(2)})  # the catch-up sends both again ...
    say({"symbol": "NIFTY BANK", "ts": at(2)})
    say({"symbol": "NIFTY 50", "ts": at(3)})  # ... then what was missed
    say({"type": "cursor", "cursor": 10})
    say({"symbol": "NIFTY 50", "ts": at(2)})  # after a cursor nothing is taken for a resend
    assert [(t["symbol"], t["ts"]) for t in ticks] == [
        ("NIFTY 50", at(1)), ("NIFTY 50", at(2)), ("NIFTY BANK", at(2)), ("NIFTY 50", at(3)),
        ("NIFTY 50", at(2))]
    assert conn.cursor == 10 and conn.resent_dropped == 2


def test_resume_url_keeps_the_token():
    assert resume_url("ws://h:1/?token=a%20b", None) == "ws://h:1/?token=a+b&resume=now"
    assert resume_url("ws://h:1?resume=5", 9) == "ws://h:1/?resume=9"


def test_the_app_feed_keeps_every_snapshot_of_an_outage(store):
    first = BroadcasterThread(store, port=0, poll_interval=0.02).start()
    feed = LiveFeed(first.url, backoff_initial=0.05, backoff_max=0.2).start()
    second = None
    stamps = []
    try:
        assert feed.wait_connected(10)
        for n in range(2):
            moment = T0 + timedelta(seconds=5 * n)
            store.write_snapshot(moment, synthetic_snapshot(moment, nifty=26000 + n))
            stamps.append(format_ts(moment))
        first.notify()
        assert wait_until(lambda: len(feed.history("NIFTY")) == 2)
        first.stop()
        assert wait_until(lambda: not feed.connected, 5)
        for n in range(2, 6):  # written while no broadcaster runs
            moment = T0 + timedelta(seconds=5 * n)
            store.write_snapshot(moment, synthetic_snapshot(moment, nifty=26000 + n))
            stamps.append(format_ts(moment))
        second = on_port_again(first.port, lambda port: BroadcasterThread(
            store, port=port, poll_interval=0.02).start())
        assert wait_until(lambda: [p.ts for p in feed.history("NIFTY")] == stamps, 15)
        assert [p.spot for p in feed.history("NIFTY")] == [26000.0 + n for n in range(6)]
        assert second.stats()["resumes"] == 1
    finally:
        feed.stop()
        first.stop()
        if second is not None:
            second.stop()


def test_the_reader_resumes_by_itself(store):
    write(store, 0)
    first = BroadcasterThread(store, port=0, poll_interval=0.02).start()
    reader = WebSocketDataReader(first.url)
    second = None
    try:
        assert wait_until(reader.is_connected, 10)
        first.stop()
        assert wait_until(lambda: not reader.is_connected(), 5)
        write(store, 1)
        second = on_port_again(first.port, lambda port: BroadcasterThread(
            store, port=port, poll_interval=0.02).start())
        assert wait_until(lambda: reader._feed.cursor == store.max_id(), 15)
        assert second.stats()["resumes"] == 1 and second.stats()["resent_rows"] == len(SYMBOLS)
        assert wait_until(lambda: reader.fetch_market_data(["NIFTY 50"])["NIFTY 50"]["ts"] == at(1))
    finally:
        reader.close()
        first.stop()
        if second is not None:
            second.stop()


# ---------------------------------------------------------------- several broadcasters, one database


@pytest.mark.postgres
def test_a_cursor_from_one_broadcaster_resumes_at_another(pg_store):
    sites = [BroadcasterThread(TickStore(pg_store.url), port=0, poll_interval=0.02).start() for _ in range(2)]
    try:
        write(pg_store, 0)
        assert settled(sites[0], pg_store)
        ws, welcome = open_ws(sites[0].url, "now")
        write(pg_store, 1)
        got = read_until(ws, lambda m: m and m[-1].get("type") == "cursor")
        cursor = got[-1]["cursor"]
        assert ticks_of(got) == [(s, at(1)) for s in SYMBOLS] and cursor == pg_store.max_id()
        ws.close()
        missed = write(pg_store, 2) + write(pg_store, 3)
        assert settled(sites[1], pg_store)
        ws, _ = open_ws(sites[1].url, cursor)
        got = read_until(ws, lambda m: m and m[-1].get("type") == "resumed")
        assert ticks_of(got) == missed == live_after(pg_store, cursor)
        ws.close()
    finally:
        for site in sites:
            site.stop()
            site.server.store.close()


def test_health_counts_resumes(feed, store):
    write(store, 0)
    assert settled(feed, store)
    ws, _ = open_ws(feed.url, 0)
    read_until(ws, lambda m: m and m[-1].get("type") == "resumed")
    with urllib.request.urlopen(f"http://127.0.0.1:{feed.port}/health", timeout=5) as response:
        health = json.loads(response.read())
    assert health["resumes"] == 1 and health["resent_rows"] == len(SYMBOLS)
    assert health["resume_window_s"] == 3600 and health["cursor"] == 3
    ws.close()
