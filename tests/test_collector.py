"""The collector loop: grid timestamps, commit hook, surviving source errors, clean shutdown."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime

import pytest
from support import wait_until

from datacentre.core.errors import SourceError
from datacentre.core.ticks import UTC, set_clock
from datacentre.ops.collector import Collector, CollectorThread, grid_moment, next_slot


class CountingSource:
    """A tiny real source: two symbols whose price is the call number; fails on request."""

    name = "test"

    def __init__(self, fail_on: set[int] = frozenset()) -> None:
        self.calls = 0
        self.fail_on = fail_on

    def snapshot(self, moment: datetime) -> list[dict]:
        self.calls += 1
        if self.calls in self.fail_on:
            raise SourceError("broker timed out")
        return [{"symbol": "NIFTY 50", "ltp": float(self.calls), "source": "sim"},
                {"symbol": "NIFTY BANK", "ltp": float(self.calls), "source": "sim"}]


def whole_snapshots(counts: Counter) -> bool:
    """Rows per snapshot (by ts) as whole snapshots leave them: the simulator's window only
    grows within a session or the hours outside it, so a snapshot never holds fewer rows
    than the one before it in the same stretch; a torn write would."""
    from datacentre.core.ticks import parse_ts
    from datacentre.sources.window import stretch

    last: dict = {}
    for ts in sorted(counts):
        part = stretch(parse_ts(ts))
        if counts[ts] < last.get(part, 0):
            return False
        last[part] = counts[ts]
    return True

def test_grid():
    assert next_slot(100.0, 5) == 105.0
    assert next_slot(101.2, 5) == 105.0
    assert next_slot(10.05, 0.1) == pytest.approx(10.1)
    assert grid_moment(105.0, 5) == datetime.fromtimestamp(105, UTC)
    assert grid_moment(10.1000000001, 0.1).microsecond == 100_000


def test_collect_once_writes_and_notifies(store):
    seen = []
    c = Collector(store, CountingSource(), interval=5, on_commit=lambda ts, n: seen.append((ts, n)))
    moment = datetime(2026, 1, 2, 8, 13, 5, tzinfo=UTC)
    assert c.collect_once(moment) == 2
    assert seen == [("2026-01-02T08:13:05+00:00", 2)]
    assert store.latest("NIFTY BANK")["ts"] == "2026-01-02T08:13:05+00:00"


def test_run_survives_source_errors_and_stops(store):
    source = CountingSource(fail_on={2})
    collector = Collector(store, source, interval=0.1)
    thread = CollectorThread(collector).start()
    wait_until(lambda: collector.snapshots >= 4, 10)
    thread.stop()
    assert not thread.alive
    assert collector.failures == 1
    assert collector.snapshots >= 4
    stamps = store.timestamps()
    assert len(stamps) == collector.snapshots == len(set(stamps))
    counts = Counter(r["ts"] for r in store.iter_ticks())
    assert set(counts.values()) == {2}


def test_interval_below_minimum_is_refused(store):
    from datacentre.core.errors import ConfigError
    with pytest.raises(ConfigError, match="at least 0.1"):
        Collector(store, CountingSource(), interval=0.01)


@pytest.mark.slow
def test_sigterm_leaves_no_partial_snapshot(tmp_path):
    db = tmp_path / "c.db"
    env = {**os.environ, "DATACENTRE_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "datacentre", "collect", "--db", f"sqlite:///{db}",
                             "--interval", "0.2", "--seed", "7"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        from datacentre.store.tickstore import TickStore
        assert wait_until(db.exists, 60)
        store = TickStore(f"sqlite:///{db}")
        assert wait_until(lambda: len(store.timestamps()) >= 5, 60), "the collector took no 5 snapshots"
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    counts = Counter(r["ts"] for r in store.iter_ticks())
    assert len(counts) >= 5
    assert whole_snapshots(counts), "every snapshot holds all its rows"


@pytest.mark.slow
def test_killed_processes_leave_whole_snapshots_only(tmp_path):
    """SIGKILL (no chance to clean up) in the middle of a backfill and of collection."""
    import sqlite3

    from datacentre.store.tickstore import TickStore
    db = tmp_path / "k.db"
    url = f"sqlite:///{db}"
    collect = subprocess.Popen([sys.executable, "-m", "datacentre", "collect", "--interval", "0.1",
                                "--db", url], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    backfill = None
    opened: list[TickStore] = []
    try:
        def live_snapshots() -> int:
            if not opened and db.exists():
                opened.append(TickStore(url))
            return len(opened[0].timestamps(start_ts="2026-11-28")) if opened else 0

        # The backfill's session is one transaction, which holds the collector's commits
        # back: the live snapshots first, then the backfill.
        assert wait_until(lambda: live_snapshots() >= 10, 60), "the collector took no 10 snapshots"
        backfill = subprocess.Popen([sys.executable, "-m", "datacentre", "backfill", "--date", "2026-11-27",
                                     "--interval", "1", "--db", url],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        drawn: list[str] = []
        threading.Thread(target=lambda: drawn.extend(iter(lambda: backfill.stderr.read(64), "")),
                         daemon=True).start()
        # its progress bar counts snapshots written inside that transaction
        assert wait_until(lambda: re.search(r"\b[1-9]\d*/22501\b", "".join(drawn)), 90), "".join(drawn)
        backfill.send_signal(signal.SIGKILL)
        collect.send_signal(signal.SIGKILL)
        backfill.wait(10)
        collect.wait(10)
    finally:
        if backfill is not None:
            backfill.kill()
        collect.kill()
        for opened_store in opened:
            opened_store.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store = TickStore(url)
    session = Counter(r["ts"] for r in store.iter_ticks(start_ts="2026-11-27T03:45:00Z",
                                                       end_ts="2026-11-27T10:00:00Z"))
    assert len(session) in (0, 22_501), "a session is stored whole or not at all"
    assert whole_snapshots(session)
    counts = Counter(r["ts"] for r in store.iter_ticks(start_ts="2026-11-28"))
    assert len(counts) >= 10
    assert whole_snapshots(counts), "every live snapshot holds all its rows"


class FakeClock:
    """Wall clock the test moves by hand; ``wait`` lets the time pass (a stop Event's part)."""

    def __init__(self, now: float, rounds: int) -> None:
        self.now, self.rounds, self.waits = now, rounds, []

    def utc(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)

    def is_set(self) -> bool:
        return self.rounds <= 0

    def wait(self, timeout: float) -> bool:
        self.waits.append(timeout)
        self.now += timeout
        self.rounds -= 1
        return False


@pytest.fixture
def use_clock():
    """``use_clock(clock)`` installs a :class:`FakeClock` as the wall clock for the test."""
    previous = []
    yield lambda clock: previous.append(set_clock(clock.utc))
    if previous:
        set_clock(previous[0])


def test_clock_stepping_back_never_repeats_or_reverses_a_ts(store, use_clock):
    clock = FakeClock(1_767_341_585.0, rounds=2)  # 2026-01-02T08:13:05Z
    use_clock(clock)
    c = Collector(store, CountingSource(), interval=5)
    c.collect_once()
    clock.now -= 12  # NTP steps the clock back
    c.run(clock)
    stamps = [r["ts"] for r in store.iter_ticks(["NIFTY 50"])]
    assert stamps == ["2026-01-02T08:13:05+00:00", "2026-01-02T08:13:10+00:00",
                      "2026-01-02T08:13:15+00:00"]
    assert [r["ts"] for r in store.after(0)][::2] == stamps  # ids in ts order too


def test_overrunning_snapshot_skips_missed_slots(store, use_clock):
    clock = FakeClock(1_767_341_585.0, rounds=3)

    class SlowSource(CountingSource):
        def snapshot(self, moment):
            clock.now += 7  # longer than the interval
            return super().snapshot(moment)

    use_clock(clock)
    Collector(store, SlowSource(), interval=5).run(clock)
    stamps = store.timestamps()
    assert stamps == sorted(set(stamps)) and len(stamps) == 3
    assert stamps[1:] == ["2026-01-02T08:13:20+00:00", "2026-01-02T08:13:30+00:00"]


def test_embedded_data_centre_stops_in_order_and_releases_its_store(db_url):
    from support import on_free_port

    from datacentre.core.config import Settings
    from datacentre.ops.embedded import DataCentre

    def start(port: int) -> DataCentre:
        dc = DataCentre(Settings(db_url=db_url, ws_port=port, interval=1), source=CountingSource())
        try:
            return dc.start(backfill_if_empty=False)
        except Exception:
            dc.stop()
            raise

    dc = on_free_port(start)
    try:
        assert dc.running and dc.store.count() == 2  # the first snapshot, taken at once
        deadline = time.monotonic() + 10
        while dc.broadcaster.stats()["cursor"] != dc.store.max_id() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert dc.broadcaster.stats()["cursor"] == dc.store.max_id()
    finally:
        dc.stop()
    assert not dc.running and not dc.broadcaster.is_running()
    assert dc.store.engine.pool.checkedin() == 0  # the store it opened is closed again
