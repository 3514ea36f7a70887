"""Store to store: ``python -m datacentre sync --from URL --to URL [--since DATE]``.

A sync has two steps, both idempotent through the ``(symbol, ts)`` unique key:

1. **Copy by id.** The source's ids are its commit order, so a cursor on them sees
   every row committed since the last run, whatever its ``ts`` (a backfill of last
   year arrives as surely as the latest snapshot). Each batch of rows commits in
   the target together with the cursor (``sync_cursors``, one per source), so a
   sync killed at any moment resumes after its last whole batch.
2. **Compare days.** Rows per IST day on both sides; a day the target holds fewer
   rows of is copied again whole (rows already there are skipped), then counted
   again. A day the target holds more rows of (its own collector, or rows pruned
   from the source) is reported, never "fixed". ``check_only`` reports and copies
   nothing.

Timestamps leave the source in canonical form (:mod:`datacentre.store.transfer`),
so SQLite and PostgreSQL stores sync in any direction. Rows of past days are
history to the target's broadcasters, not live ticks. ``follow`` keeps copying as
the source grows (a desk copy of a VPS store): woken by the source's commit
notifications on PostgreSQL, polling every ``interval`` seconds otherwise.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from datacentre.core.errors import ConfigError
from datacentre.store.notify import CommitListener
from datacentre.store.tickstore import TickStore
from datacentre.store.transfer import SYNC_BATCH

log = logging.getLogger(__name__)

#: ``progress(done, total)`` after each batch; ``total`` may grow while following.
Progress = Callable[[int, int], None]
DEFAULT_FOLLOW_INTERVAL = 1.0


@dataclass(frozen=True)
class DayCount:
    day: date
    source: int
    target: int

    @property
    def missing(self) -> int:
        return max(self.source - self.target, 0)


@dataclass
class SyncReport:
    copied: int = 0  # new rows from the id cursor
    filled: int = 0  # new rows from re-copied days
    days: list[DayCount] = field(default_factory=list)  # every day compared
    check_only: bool = False

    @property
    def gaps(self) -> list[DayCount]:
        """Days the target still holds fewer rows of than the source."""
        return [d for d in self.days if d.target < d.source]

    @property
    def extra(self) -> list[DayCount]:
        return [d for d in self.days if d.target > d.source]

    def lines(self) -> list[str]:
        out = []
        if not self.check_only:
            out.append(f"copied {self.copied:,} new rows; filled {self.filled:,} rows into days with gaps")
        for d in self.gaps:
            out.append(f"{d.day}: source {d.source:,}, target {d.target:,} ({d.missing:,} missing)")
        for d in self.extra:
            out.append(f"{d.day}: source {d.source:,}, target {d.target:,} "
                       f"({d.target - d.source:,} more in the target)")
        rows = sum(d.source for d in self.days)
        if self.gaps:
            out.append(f"{len(self.gaps)} of {len(self.days)} days differ")
        else:
            out.append(f"{len(self.days)} days, {rows:,} source rows: every day complete in the target")
        return out


def check_distinct(source: TickStore, target: TickStore) -> None:
    if source.store_key == target.store_key:
        raise ConfigError(f"--from and --to name the same store ({source.store_key})")


def copy_new(source: TickStore, target: TickStore, *, since: date | None = None,
             batch: int = SYNC_BATCH, progress: Progress | None = None,
             stop: threading.Event | None = None) -> int:
    """Copy the rows committed to ``source`` since the last sync; return how many were new."""
    key = source.store_key
    cursor = target.sync_cursor(key)
    newest = source.max_id()
    if cursor > newest:
        log.warning("the target's cursor for %s (id %d) is past the source's newest id %d: the "
                    "source was rebuilt; copying it from the start (stored rows are skipped)",
                    key, cursor, newest)
        cursor = 0
    total = source.count_since(cursor, since) if progress else 0
    done = written = 0
    while stop is None or not stop.is_set():
        last_id, rows = source.rows_since(cursor, since=since, limit=batch)
        if last_id == cursor:
            break
        written += target.insert_rows(rows, cursor=(key, last_id))
        done += len(rows)
        cursor = last_id
        if progress:
            progress(done, max(total, done))
    return written


def compare_days(source: TickStore, target: TickStore, since: date | None = None) -> list[DayCount]:
    """Rows per IST day on both sides, for every day either side has (from ``since`` on)."""
    theirs, ours = source.day_counts(since), target.day_counts(since)
    days = sorted(theirs.keys() | ours.keys())
    return [DayCount(day, theirs.get(day, 0), ours.get(day, 0)) for day in days]


def fill_days(source: TickStore, target: TickStore, days: list[date],
              progress: Progress | None = None) -> int:
    """Copy whole IST days again (rows already stored are skipped); return the new rows."""
    written = done = 0
    for day in days:
        for rows in source.iter_day_rows(day):
            written += target.insert_rows(rows)
            done += len(rows)
            if progress:
                progress(done, done)
    return written


def sync(source: TickStore, target: TickStore, *, since: date | None = None, check_only: bool = False,
         batch: int = SYNC_BATCH, progress: Progress | None = None) -> SyncReport:
    """One sync: copy by id, compare days, fill gaps (``check_only``: compare only)."""
    check_distinct(source, target)
    report = SyncReport(check_only=check_only)
    if not check_only:
        report.copied = copy_new(source, target, since=since, batch=batch, progress=progress)
    report.days = compare_days(source, target, since)
    if check_only or not report.gaps:
        return report
    gaps = [d.day for d in report.gaps]
    log.info("re-copying %d day(s) with gaps: %s", len(gaps), ", ".join(map(str, gaps)))
    report.filled = fill_days(source, target, gaps)
    again = {d.day: d for d in compare_days(source, target, since)}
    report.days = [again.get(d.day, d) for d in report.days]
    return report


def follow(source: TickStore, target: TickStore, stop: threading.Event, *, since: date | None = None,
           interval: float = DEFAULT_FOLLOW_INTERVAL, batch: int = SYNC_BATCH,
           on_copy: Callable[[int], None] | None = None) -> int:
    """Copy new source rows until ``stop`` is set; return how many were new in all.

    On PostgreSQL the source's commit notifications wake it at once, with
    ``interval`` as the fallback poll; on SQLite it polls every ``interval`` seconds.
    """
    check_distinct(source, target)
    wake = threading.Event()
    listener = None
    if source.dialect == "postgresql":
        listener = CommitListener(source.url, wake.set).start()
    total = 0
    try:
        while not stop.is_set():
            wake.clear()
            copied = copy_new(source, target, since=since, batch=batch, stop=stop)
            total += copied
            if copied and on_copy:
                on_copy(copied)
            if not copied:
                _wait_either(stop, wake, interval)
    finally:
        if listener is not None:
            listener.stop()
    return total


def _wait_either(stop: threading.Event, wake: threading.Event, timeout: float) -> None:
    """Until ``stop`` or ``wake`` is set, or ``timeout`` passes."""
    step = min(timeout, 0.05)
    waited = 0.0
    while waited < timeout and not stop.is_set():
        if wake.wait(step):
            return
        waited += step
