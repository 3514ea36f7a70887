"""The one wall clock and the trading day: settable in-process, shiftable for whole runs."""
from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from datacentre.core.ticks import (
    frozen_clock,
    now_utc,
    set_clock,
    system_clock,
    trading_day,
    trading_day_start,
    wall_seconds,
)

ROOT = Path(__file__).resolve().parent.parent
RUN_AT = ROOT / "tests" / "clock" / "run_at.py"


@pytest.mark.parametrize("ts, day", [
    ("2026-12-01T18:29:59.999+00:00", date(2026, 12, 1)),  # 23:59:59.999 IST Tuesday
    ("2026-12-01T18:30:00+00:00", date(2026, 12, 2)),  # IST midnight: Wednesday already
    ("2026-12-01T19:30:00+00:00", date(2026, 12, 2)),  # UTC still says Tuesday
    ("2026-12-02T01:00:00+05:30", date(2026, 12, 2)),
    (datetime(2026, 12, 1, 3, 45, tzinfo=UTC), date(2026, 12, 1)),  # the 09:15 IST open
    (date(2026, 12, 1), date(2026, 12, 1)),
])
def test_trading_day_is_the_ist_date(ts, day):
    assert trading_day(ts) == day


def test_trading_day_starts_at_ist_midnight():
    start = trading_day_start(date(2026, 12, 2))
    assert start == datetime(2026, 12, 1, 18, 30, tzinfo=UTC)
    assert trading_day(start) == date(2026, 12, 2)
    assert trading_day(start - timedelta(milliseconds=1)) == date(2026, 12, 1)


def test_frozen_clock_stands_still_and_is_restored():
    before = now_utc()
    with frozen_clock("2026-12-29T11:00:00Z"):
        assert now_utc() == datetime(2026, 12, 29, 11, 0, tzinfo=UTC)
        time.sleep(0.01)
        assert now_utc() == datetime(2026, 12, 29, 11, 0, tzinfo=UTC)
        assert wall_seconds() == datetime(2026, 12, 29, 11, 0, tzinfo=UTC).timestamp()
    assert abs((now_utc() - before).total_seconds()) < 60


def test_a_ticking_clock_starts_at_the_instant_and_runs_on():
    with frozen_clock("2026-12-05T06:30:00+00:00", tick=True):
        first = now_utc()
        time.sleep(0.05)
        second = now_utc()
    assert datetime(2026, 12, 5, 6, 30, tzinfo=UTC) <= first < second
    assert 0.04 < (second - first).total_seconds() < 5


def test_set_clock_returns_the_clock_it_replaces():
    moment = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
    previous = set_clock(lambda: moment)
    try:
        assert now_utc() == moment
    finally:
        assert set_clock(previous)() == moment
    assert set_clock(None) is previous and set_clock(previous) is system_clock


def test_run_at_shifts_every_python_process_it_starts():
    """The harness moves the wall clock of the command and of its subprocesses alike."""
    child = ("import subprocess, sys\n"
             "from datacentre.core.ticks import now_utc\n"
             "print(now_utc().isoformat())\n"
             "subprocess.run([sys.executable, '-c', 'import datetime, time; "
             "print(datetime.datetime.now(datetime.UTC).isoformat(), time.monotonic())'], check=True)\n")
    done = subprocess.run([sys.executable, str(RUN_AT), "2026-12-29T11:00:00Z", sys.executable, "-c", child],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    parent, grandchild = done.stdout.split("\n")[:2]
    started = datetime(2026, 12, 29, 11, 0, tzinfo=UTC)
    shown = [datetime.fromisoformat(parent), datetime.fromisoformat(grandchild.split()[0])]
    assert all(0 <= (moment - started).total_seconds() < 30 for moment in shown), shown
    assert shown[0] <= shown[1]  # one timeline: the subprocess does not start over at the instant
    assert abs(float(grandchild.split()[1]) - time.monotonic()) < 60  # monotonic clocks stay real


def test_run_at_names_the_instants_that_matter():
    done = subprocess.run([sys.executable, str(RUN_AT), "saturday", sys.executable, "-c",
                           "from datacentre.core.ticks import now_utc; print(now_utc().strftime('%A'))"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "Saturday"
