"""Backfill: write whole past sessions (09:15-15:30 IST) from the simulator, fast.

Generation is vectorised in the simulator; rows go to the store in large batches,
one transaction per session, so a session is either fully stored or not at all.
Sessions that already hold ticks are skipped (never two simulated markets mixed in
one session), so re-running is harmless.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from datacentre.core.config import (
    DEFAULT_ATM_WINDOW,
    DEFAULT_INTERVAL,
    DEFAULT_RISK_FREE_RATE,
    check_interval,
)
from datacentre.core.errors import ConfigError
from datacentre.core.instruments import is_session_day, last_complete_session, session_bounds
from datacentre.core.ticks import now_utc
from datacentre.core.watchlist import WatchList
from datacentre.sources import MarketSimulator
from datacentre.store.tickstore import TickStore

Progress = Callable[[int, int], None]


@dataclass
class BackfillResult:
    sessions: list[date]
    snapshots: int
    rows: int
    seconds: float
    skipped: list[date] = field(default_factory=list)  # sessions that already had ticks

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def recent_sessions(days: int, moment: datetime | None = None) -> list[date]:
    """The ``days`` most recent complete weekday sessions before ``moment``, oldest first."""
    if days < 1:
        raise ConfigError(f"--days must be at least 1, got {days}")
    day = last_complete_session(moment or now_utc())
    out = []
    while len(out) < days:
        if is_session_day(day):
            out.append(day)
        day -= timedelta(days=1)
    return sorted(out)


def check_session(day: date, moment: datetime | None = None) -> date:
    if not is_session_day(day):
        raise ConfigError(f"{day} is a {day:%A}: there is no session to backfill")
    if session_bounds(day)[1] > (moment or now_utc()):
        raise ConfigError(f"the session of {day} has not closed yet")
    return day


def snapshots_per_session(interval: float) -> int:
    start, end = session_bounds(date(2026, 1, 5))
    return int((end - start).total_seconds() // interval) + 1


def backfill(store: TickStore, sessions: list[date], *, interval: float = DEFAULT_INTERVAL,
             seed: int | None = None, atm_window: int = DEFAULT_ATM_WINDOW,
             risk_free_rate: float = DEFAULT_RISK_FREE_RATE, progress: Progress | None = None,
             batch_snapshots: int = 250, watchlist: WatchList | None = None) -> BackfillResult:
    """Simulate and store each session in ``sessions``; ``progress(done, total)`` per batch.

    ``watchlist`` chooses what the simulator collects (default: ours, with ``atm_window``)."""
    check_interval(interval)
    skipped = [day for day in sessions if store.count(None, *session_bounds(day))]
    todo = [day for day in sessions if day not in skipped]
    total = snapshots_per_session(interval) * len(todo)
    done = rows = 0
    started = time.perf_counter()
    for number, day in enumerate(sessions):
        if day in skipped:
            continue
        # Numbered within ``sessions``, not the sessions still to do: a day's market is the
        # same whether or not the days before it were stored by an earlier run.
        sim = MarketSimulator(seed=None if seed is None else seed + number, atm_window=atm_window,
                              risk_free_rate=risk_free_rate, watchlist=watchlist)
        with store.bulk_writer() as write:
            batch = []
            for moment, ticks in sim.session(day, interval):
                batch.append((moment, ticks))
                if len(batch) >= batch_snapshots:
                    rows += write(batch)
                    done += len(batch)
                    batch = []
                    if progress:
                        progress(done, total)
            if batch:
                rows += write(batch)
                done += len(batch)
        if progress:
            progress(done, total)
    if todo:
        store.checkpoint()
    return BackfillResult(todo, done, rows, time.perf_counter() - started, skipped)
