"""The app's live feed against a real broadcaster on a free port, and the autostart logic."""
from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from conftest import make_tick, synthetic_snapshot
from support import PortInUse, in_use, on_free_port, on_port_again, refused_port, wait_until

from datacentre.app import livefeed
from datacentre.app.launcher import ensure_data_centre, stop_data_centres
from datacentre.app.livefeed import LiveFeed, Point, running_feeds, start_feed
from datacentre.clients.health import broadcaster_health
from datacentre.core.config import Settings
from datacentre.core.ticks import format_ts, now_utc
from datacentre.feed.broadcaster import BroadcasterThread
from datacentre.store.tickstore import TickStore


def feed_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(livefeed.THREAD_NAME) and t.is_alive()]


@pytest.fixture(autouse=True)
def no_leftover_feeds():
    yield
    for feed in running_feeds():
        feed.stop()
    stop_data_centres()


@pytest.fixture
def broadcaster(store):
    b = BroadcasterThread(store, port=0).start()
    yield b
    for feed in running_feeds():  # first, or the server waits for them to say goodbye
        feed.stop()
    b.stop()


def publish(store: TickStore, b: BroadcasterThread, moment, step: int = 0) -> str:
    store.write_snapshot(moment, synthetic_snapshot(moment, nifty=26000 + step, step=step))
    b.notify()
    return format_ts(moment)


def test_feed_keeps_latest_snapshot_and_history(store, broadcaster):
    feed = start_feed(broadcaster.url)
    assert feed.wait_connected(10)
    assert feed.state == "connected"
    t0 = now_utc().replace(microsecond=0)
    stamps = [publish(store, broadcaster, t0 + timedelta(seconds=i), i) for i in range(3)]
    assert wait_until(lambda: feed.last_ts() == stamps[-1])

    snap = feed.snapshot()
    assert snap["ts"] == stamps[-1]
    symbols = {t["symbol"] for t in snap["ticks"]}
    assert {"NIFTY 50", "NIFTY BANK"} <= symbols
    assert len(snap["ticks"]) == len(synthetic_snapshot(t0))
    assert feed.latest(["NIFTY 50"])["NIFTY 50"]["ltp"] == 26002
    assert [p.ts for p in feed.history("NIFTY")] == stamps
    assert [p.spot for p in feed.history("NIFTY")] == [26000, 26001, 26002]
    assert all(p.future is not None for p in feed.history("BANKNIFTY"))
    assert feed.last_tick_age() < 60
    assert feed.stats()["ticks_received"] >= 3 * len(symbols)

    # copies: changing what a reader got does not change the feed
    snap["ticks"][0]["ltp"] = -1
    feed.latest()["NIFTY 50"]["ltp"] = -1
    assert feed.latest()["NIFTY 50"]["ltp"] == 26002
    assert all(t["ltp"] != -1 for t in feed.snapshot()["ticks"])


def test_feed_gets_the_latest_ticks_on_connect(store, broadcaster):
    moment = now_utc().replace(microsecond=0)
    stamp = publish(store, broadcaster, moment)
    feed = start_feed(broadcaster.url)
    assert wait_until(lambda: feed.last_ts() == stamp)
    assert "NIFTY 50" in feed.latest()


def test_start_feed_never_leaves_two_threads_on_one_url(broadcaster):
    feeds = [start_feed(broadcaster.url) for _ in range(3)]
    assert wait_until(lambda: len(feed_threads()) == 1, 5)
    assert running_feeds(broadcaster.url) == [feeds[-1]]
    assert [f.state for f in feeds[:2]] == ["stopped", "stopped"]
    assert feeds[-1].wait_connected(10)


def test_start_feed_stops_a_feed_the_registry_forgot(broadcaster):
    # a reload of the module (a source edit) empties the registry; the thread is still found
    orphan = LiveFeed(broadcaster.url).start()
    assert orphan.wait_connected(10)
    fresh = start_feed(broadcaster.url)
    assert orphan.state == "stopped"
    assert wait_until(lambda: len(feed_threads()) == 1, 5)
    assert fresh.wait_connected(10)


def test_feed_reconnects_when_the_broadcaster_comes_back(store):
    first = BroadcasterThread(store, port=0).start()
    feed = start_feed(first.url, backoff_initial=0.05, backoff_max=0.2)
    try:
        assert feed.wait_connected(10)
        first.stop()
        assert wait_until(lambda: feed.state == "reconnecting", 10)
        second = on_port_again(first.port, lambda port: BroadcasterThread(store, port=port).start())
        try:
            assert wait_until(lambda: feed.connected and feed.connects == 2, 10)
            stamp = publish(store, second, now_utc().replace(microsecond=0))
            assert wait_until(lambda: feed.last_ts() == stamp)
        finally:
            second.stop()
    finally:
        feed.stop()


def test_feed_keeps_trying_while_nothing_answers():
    feed = LiveFeed(f"ws://127.0.0.1:{refused_port()}", backoff_initial=0.05, backoff_max=0.1).start()
    try:
        assert wait_until(lambda: "cannot reach" in (feed.last_error or ""), 10)
        assert feed.state == "connecting"
        assert feed.alive
        assert "cannot reach" in feed.last_error
    finally:
        feed.stop()


def test_stop_is_prompt_and_final(broadcaster):
    feed = start_feed(broadcaster.url)
    assert feed.wait_connected(10)
    started = time.monotonic()
    feed.stop()
    assert time.monotonic() - started < 2
    assert feed.state == "stopped"
    assert not feed.alive
    assert feed_threads() == []
    feed.stop()  # twice is harmless


def test_history_is_bounded():
    feed = LiveFeed("ws://127.0.0.1:9", history_len=5)
    t0 = now_utc().replace(hour=5, minute=0, second=0, microsecond=0)
    for i in range(20):
        moment = t0 + timedelta(seconds=i)
        feed.apply(synthetic_snapshot(moment, nifty=26000 + i))
    points = feed.history("NIFTY")
    assert len(points) == 5
    assert [p.spot for p in points] == [26015, 26016, 26017, 26018, 26019]


def test_a_late_push_takes_its_place_in_the_history():
    # the catch-up reply on connect already carried the newest snapshot; older pushes follow
    feed = LiveFeed("ws://127.0.0.1:9", history_len=3)
    t0 = now_utc().replace(hour=5, minute=0, second=0, microsecond=0)
    moments = [t0 + timedelta(seconds=i) for i in range(4)]
    feed.apply(synthetic_snapshot(moments[2], nifty=26002), live=False)
    for i in (0, 1, 2):
        feed.apply(synthetic_snapshot(moments[i], nifty=26000 + i))
    assert [p.spot for p in feed.history("NIFTY")] == [26000, 26001, 26002]
    feed.apply(synthetic_snapshot(moments[3], nifty=26003))
    feed.apply(synthetic_snapshot(moments[0], nifty=25999))  # older than all the full history keeps
    assert [p.spot for p in feed.history("NIFTY")] == [26001, 26002, 26003]
    assert feed.snapshot()["ts"] == format_ts(moments[3])


def test_history_starts_again_each_day():
    feed = LiveFeed("ws://127.0.0.1:9")
    day1 = now_utc().replace(hour=5, minute=0, second=0, microsecond=0) - timedelta(days=1)
    for i in range(3):
        feed.apply(synthetic_snapshot(day1 + timedelta(minutes=i)))
    feed.apply(synthetic_snapshot(day1 + timedelta(days=1)))
    assert len(feed.history("NIFTY")) == 1
    feed.apply(synthetic_snapshot(day1))  # a late point of the day before is ignored
    assert len(feed.history("NIFTY")) == 1


def test_messages_the_feed_understands():
    feed = LiveFeed("ws://127.0.0.1:9")
    moment = now_utc().replace(microsecond=0)
    ticks = synthetic_snapshot(moment)
    feed.handle_message("not json")
    feed.handle_message('{"type": "welcome", "subscribers": 1}')
    feed.handle_message('{"type": "error", "code": "bad_request", "message": "x"}')
    feed.handle_message("[1, 2]")
    assert feed.snapshot() is None
    import json

    feed.handle_message(json.dumps(ticks[0]))  # the client guide's one-tick-per-message format
    assert feed.latest()["NIFTY 50"]["ltp"] == ticks[0]["ltp"]
    feed.handle_message(json.dumps({"type": "snapshot", "ts": format_ts(moment), "ticks": ticks}))
    assert len(feed.snapshot()["ticks"]) == len(ticks)


def test_an_older_tick_never_replaces_a_newer_one():
    feed = LiveFeed("ws://127.0.0.1:9")
    now = now_utc().replace(microsecond=0)
    feed.apply(synthetic_snapshot(now, nifty=26100))
    feed.apply(synthetic_snapshot(now - timedelta(seconds=5), nifty=25900))
    assert feed.latest()["NIFTY 50"]["ltp"] == 26100
    assert feed.snapshot()["ts"] == format_ts(now)


def test_day_history_future_rolls_at_1530_ist_on_expiry_day():
    feed = LiveFeed("ws://127.0.0.1:9")
    # 27 Jan 2026, the last Tuesday: 15:29:59 and 15:30:00 IST
    for ts, jan, feb in (("2026-01-27T09:59:59+00:00", 25010.0, 25100.0),
                         ("2026-01-27T10:00:00+00:00", 25011.0, 25101.0)):
        feed.apply([{**make_tick(symbol, ltp), "ts": ts} for symbol, ltp in
                    (("NIFTY27JAN26FUT", jan), ("NIFTY24FEB26FUT", feb), ("NIFTY 50", 25000.0))])
    assert [p.future for p in feed.history("NIFTY")] == [25010.0, 25101.0]


def test_prime_from_store_fills_snapshot_and_the_day(market_db):
    store = TickStore(market_db)
    feed = LiveFeed("ws://127.0.0.1:9")
    live = now_utc().replace(microsecond=0)
    feed.prime_from_store(store)
    points = feed.history("NIFTY")
    assert len(points) == 60
    assert all(p.future for p in points)
    assert feed.snapshot()["ts"] == store.last_ts()
    # live data that arrives later wins, and a live point of a new day starts a new history
    feed.apply(synthetic_snapshot(live, nifty=27000))
    assert feed.latest()["NIFTY 50"]["ltp"] == 27000
    feed.prime([], {"NIFTY": [Point(store.last_ts(), 1.0)]})
    assert feed.latest()["NIFTY 50"]["ltp"] == 27000
    store.close()


# ---------------------------------------------------------------- ensure_data_centre


def embedded(settings: Settings, wait: float):
    """``(settings, launcher)`` of :func:`ensure_data_centre`; raises when the port was taken
    between choosing it and the broadcaster's bind."""
    launcher = ensure_data_centre(settings, wait=wait)
    if launcher.status == "failed" and in_use(launcher.error):
        stop_data_centres()
        raise PortInUse(launcher.reason)
    return settings, launcher


def test_autostart_sees_a_running_broadcaster(db_url, broadcaster):
    settings = Settings(db_url=db_url, ws_port=broadcaster.port)
    launcher = ensure_data_centre(settings, wait=10)
    assert launcher.status == "external"
    assert launcher.health["status"] == "ok"
    assert ensure_data_centre(settings) is launcher


def test_autostart_off(db_url):
    settings = Settings(db_url=db_url, ws_port=refused_port(), autostart=False)
    launcher = ensure_data_centre(settings, wait=10)
    assert launcher.status == "off"
    assert "AUTOSTART" in launcher.reason
    assert launcher.data_centre is None


def test_autostart_never_starts_for_a_remote_url(db_url):
    settings = Settings(db_url=db_url, ws_url="ws://192.0.2.1:8765")  # TEST-NET: never answers
    launcher = ensure_data_centre(settings, wait=10)
    assert launcher.status == "off"
    assert "not this machine" in launcher.reason


def test_autostart_starts_the_embedded_data_centre_once(market_db):
    settings, launcher = on_free_port(lambda port: embedded(
        Settings(db_url=market_db, ws_url=f"ws://localhost:{port}", interval=1), wait=60))
    assert launcher.status == "embedded", launcher.reason
    assert launcher.data_centre.running
    assert launcher.progress is None  # the store had data: no backfill
    assert broadcaster_health(settings.ws_url)["status"] == "ok"
    assert ensure_data_centre(settings) is launcher

    feed = start_feed(settings.ws_url, embedded=True)
    assert wait_until(lambda: feed.state == "embedded" and feed.last_ts() is not None, 20)
    first = feed.last_ts()
    assert wait_until(lambda: feed.last_ts() > first, 20)  # the collector keeps going


@pytest.mark.slow
def test_autostart_backfills_an_empty_store_with_progress(tmp_path):
    seen = []

    def backfill_and_start(port: int):
        seen.clear()  # an empty store of its own for each port tried
        settings = Settings(db_url=f"sqlite:///{tmp_path / f'ticks_{port}.db'}", ws_port=port, interval=60)
        launcher = ensure_data_centre(settings)
        while not launcher.wait(0.05):
            if launcher.progress:
                seen.append(launcher.progress)
        return embedded(settings, wait=0)

    settings, launcher = on_free_port(backfill_and_start)
    assert launcher.status == "embedded", launcher.reason
    done, total = launcher.progress
    assert 300 < done <= total  # a whole session at one snapshot a minute
    assert seen == sorted(seen)
    assert launcher.data_centre.backfilled > 0
