"""Live means live: rows written with older timestamps (backfill, import, sync) are stored, counted
and never broadcast. Real stores, a real broadcaster, real clients, the real CLI."""
from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import make_tick
from support import isolate_config, wait_until

from datacentre import RealtimeDataClient
from datacentre.clients.connection import FeedConnection
from datacentre.core.instruments import session_bounds
from datacentre.core.ticks import format_ts, now_utc
from datacentre.feed.broadcaster import BroadcasterThread
from datacentre.feed.resume import split_live
from datacentre.ops.backfill import recent_sessions
from datacentre.ops.collector import Collector, CollectorThread
from datacentre.ops.services import format_status
from datacentre.sources import MarketSimulator

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 1, 2, 4, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return format_ts(T0 + timedelta(seconds=seconds))


class Inbox:
    """A plain client (it never asks to resume) that keeps every tick it receives."""

    def __init__(self, url: str) -> None:
        self.ticks: list[dict] = []
        self.conn = FeedConnection(url, on_tick=self.ticks.append, resume=False).start()
        assert self.conn.wait_connected(10)

    def close(self) -> None:
        self.conn.stop()


@pytest.fixture
def db_url(any_db_url):
    return any_db_url


@pytest.mark.parametrize("rows, newest, live, past", [
    ([], None, [], 0),
    ([{"ts": at(5)}, {"ts": at(10)}], None, [at(5), at(10)], 0),
    ([{"ts": at(5)}, {"ts": at(5)}, {"ts": at(0)}, {"ts": at(10)}], at(5), [at(5), at(5), at(10)], 1),
    ([{"ts": at(0)}, {"ts": at(1)}], at(5), [], 2),
])
def test_split_live(rows, newest, live, past):
    got, now_newest, skipped = split_live(rows, newest)
    assert [r["ts"] for r in got] == live and skipped == past
    assert now_newest == max([newest or "", *live]) or (now_newest is None and not live)


def test_late_rows_of_the_current_snapshot_go_out_older_rows_never(store):
    server = BroadcasterThread(store, port=0, poll_interval=0.02).start()
    inbox = Inbox(server.url)
    try:
        store.write_snapshot(at(5), [make_tick("NIFTY 50", 1.0), make_tick("NIFTY BANK", 2.0)])
        server.notify()
        # a late row of the current snapshot: live
        store.insert_ticks([{**make_tick("NIFTY27JAN26FUT", 3.0), "ts": at(5)}])
        # an import of earlier times and a sync of yesterday: stored, not live
        store.insert_ticks([{**make_tick("NIFTY 50", 0.5), "ts": at(0)},
                            {**make_tick("NIFTY 50", 0.4), "ts": at(-86_400)}])
        store.write_snapshot(at(10), [make_tick("NIFTY 50", 1.1)])
        server.notify()
        assert wait_until(lambda: len(inbox.ticks) == 4)
        assert wait_until(lambda: server.stats()["cursor"] == store.max_id())
        assert [(t["symbol"], t["ts"]) for t in inbox.ticks] == [
            ("NIFTY 50", at(5)), ("NIFTY BANK", at(5)), ("NIFTY27JAN26FUT", at(5)), ("NIFTY 50", at(10))]
        stats = server.stats()
        assert (stats["ticks_sent"], stats["past_rows"], stats["newest_ts"]) == (4, 2, at(10))
        assert store.count() == 6  # everything is stored
    finally:
        inbox.close()
        server.stop()


def test_the_newest_snapshot_is_remembered_across_a_restart(store):
    store.write_snapshot(at(10), [make_tick("NIFTY 50", 1.0)])
    server = BroadcasterThread(store, port=0, poll_interval=0.02).start()
    inbox = Inbox(server.url)
    try:
        assert server.stats()["newest_ts"] == at(10)
        store.insert_ticks([{**make_tick("NIFTY 50", 0.9), "ts": at(5)}])  # older than anything sent
        store.write_snapshot(at(15), [make_tick("NIFTY 50", 1.2)])
        server.notify()
        assert wait_until(lambda: len(inbox.ticks) == 1)
        assert wait_until(lambda: server.stats()["past_rows"] == 1)
        assert inbox.ticks[0]["ts"] == at(15)
    finally:
        inbox.close()
        server.stop()


def test_a_backfill_into_a_running_store_sends_no_tick(tmp_path, monkeypatch):
    """``python -m datacentre backfill`` into a store a collector and a broadcaster are using."""
    isolate_config(monkeypatch, tmp_path)
    url = f"sqlite:///{tmp_path / 'running.db'}"
    from datacentre.store.tickstore import TickStore

    store = TickStore(url)
    server = BroadcasterThread(store, port=0, poll_interval=0.02).start()
    collector = CollectorThread(Collector(store, MarketSimulator(seed=3), interval=0.5,
                                          on_commit=lambda ts, rows: server.notify())).start()
    inbox = Inbox(server.url)
    received: list[dict] = []
    client = RealtimeDataClient(server.url, on_data_callback=received.append)
    day = recent_sessions(1, now_utc())[0]
    opens, closes = (format_ts(t) for t in session_bounds(day))
    try:
        assert client.connect(5)
        assert wait_until(lambda: len(inbox.ticks) > 0 and len(received) > 0, 20)
        done = subprocess.run([sys.executable, "-m", "datacentre", "backfill", "--date", day.isoformat(),
                               "--interval", "120", "--db", url, "--no-progress"],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        backfilled = store.count(start_ts=opens, end_ts=closes)
        assert backfilled > 5_000
        top = store.max_id()
        assert wait_until(lambda: server.stats()["cursor"] >= top, 30)
        before = len(inbox.ticks)
        assert wait_until(lambda: len(inbox.ticks) > before, 20)  # the live market goes on
        for ticks in (inbox.ticks, list(received)):
            assert not [t for t in ticks if opens <= t["ts"] <= closes]
            assert [t["ts"] for t in ticks] == sorted(t["ts"] for t in ticks)
        stats = server.stats()
        print(f"\nbackfill of {day}: {backfilled:,} rows stored; live ticks received meanwhile: "
              f"{len(inbox.ticks):,} and {len(received):,}, none of that day")
        assert stats["past_rows"] == backfilled and stats["dropped_clients"] == 0
        assert f"past rows {backfilled:,} (stored, not broadcast)" in format_status(
            [{"name": "broadcaster", "state": "running", "pid": 1, "log": "-", "url": server.url,
              "subscribers": stats["subscribers"], "ticks_sent": stats["ticks_sent"],
              "past_rows": stats["past_rows"], "uptime_s": stats["uptime_s"]}])
    finally:
        client.close()
        inbox.close()
        collector.stop()
        server.stop()
        store.close()
