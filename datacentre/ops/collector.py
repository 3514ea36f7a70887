"""The collector: ask a source for a snapshot every interval and store it.

Snapshots are stamped on a fixed grid (multiples of the interval since the epoch),
so restarts line up with earlier data. Each snapshot takes a slot after the previous
one, so no two share a timestamp and time never runs backwards: a snapshot that
overruns the interval skips the slots it missed, and when the wall clock steps back
the collector waits for it to pass the last slot. A failing source is logged and
retried at the next slot; a stop request is honoured between snapshots, so a
shutdown never leaves half a snapshot behind (each snapshot is one transaction anyway).
"""
from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from datetime import date, datetime

from datacentre.core.config import DEFAULT_INTERVAL, check_interval
from datacentre.core.errors import DataCentreError
from datacentre.core.ticks import UTC, format_ts, trading_day, wall_seconds
from datacentre.sources import Source
from datacentre.store.tickstore import TickStore

log = logging.getLogger(__name__)

CommitHook = Callable[[str, int], None]


def grid_moment(epoch_seconds: float, interval: float) -> datetime:
    """The moment for a grid slot: whole seconds for intervals of 1 s or more, else ms."""
    digits = 0 if interval >= 1 else 3
    return datetime.fromtimestamp(round(epoch_seconds, digits), UTC)


def next_slot(now: float, interval: float) -> float:
    """The first grid slot strictly after ``now`` (epoch seconds)."""
    return (math.floor(now / interval) + 1) * interval


class Collector:
    """Source -> store, one snapshot per interval.

    ``on_commit(ts, rows)`` runs after each committed snapshot (the embedded
    broadcaster uses it to push the rows out at once instead of at its next poll).
    """

    def __init__(self, store: TickStore, source: Source, *, interval: float = DEFAULT_INTERVAL,
                 on_commit: CommitHook | None = None) -> None:
        self.store = store
        self.source = source
        self.interval = check_interval(interval)
        self.on_commit = on_commit
        self.snapshots = 0
        self.failures = 0
        self.last_ts: str | None = None
        self._last_slot: int | None = None  # grid index of the last snapshot taken
        self._partitions_day: date | None = None  # the IST day partitions were last prepared

    def __repr__(self) -> str:
        return f"Collector({self.source.name!r} -> {self.store!r}, every {self.interval:g} s)"

    def collect_once(self, moment: datetime | None = None) -> int:
        """Take one snapshot at ``moment`` (default: the current grid slot) and store it."""
        if moment is None:
            moment = grid_moment(math.floor(wall_seconds() / self.interval) * self.interval, self.interval)
        self._last_slot = round(moment.timestamp() / self.interval)
        ts = format_ts(moment)
        self._prepare_partitions(moment)
        ticks = self.source.snapshot(moment)
        written = self.store.write_snapshot(ts, ticks)
        self.snapshots += 1
        self.last_ts = ts
        if self.on_commit is not None:
            self.on_commit(ts, written)
        return written

    def _prepare_partitions(self, moment: datetime) -> None:
        """Once per IST day: this month's and next month's partitions (PostgreSQL), so the first
        snapshot of a month never waits for DDL. A failure only costs that: writes make any
        partition they lack."""
        day = trading_day(moment)
        if day == self._partitions_day:
            return
        try:
            created = self.store.prepare_partitions(moment)
        except DataCentreError as exc:
            log.warning("could not prepare the partitions ahead: %s", exc)
            return
        self._partitions_day = day
        if created:
            log.info("partitions ready ahead: %s", ", ".join(created))

    def run(self, stop: threading.Event) -> None:
        """Collect until ``stop`` is set. Errors are logged; the loop goes on."""
        log.info("collector started: %r", self)
        while not stop.is_set():
            slot = next_slot(wall_seconds(), self.interval)
            if self._last_slot is not None and slot <= self._last_slot * self.interval:
                slot = (self._last_slot + 1) * self.interval
            delay = slot - wall_seconds()
            if delay > self.interval:
                log.warning("the clock went back: waiting %.0f s for it to pass the last snapshot, %s",
                            delay, self.last_ts)
            if stop.wait(max(delay, 0.0)):
                break
            try:
                rows = self.collect_once(grid_moment(slot, self.interval))
                log.debug("snapshot %s: %d rows", self.last_ts, rows)
            except DataCentreError as exc:
                self.failures += 1
                log.warning("snapshot at %s failed: %s", format_ts(grid_moment(slot, self.interval)), exc)
            except Exception:
                self.failures += 1
                log.exception("snapshot failed unexpectedly; retrying at the next interval")
        log.info("collector stopped after %d snapshots (%d failed)", self.snapshots, self.failures)


class CollectorThread:
    """A :class:`Collector` on a daemon thread."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="datacentre-collector", daemon=True)

    def _run(self) -> None:
        try:
            self.collector.run(self._stop)
        except Exception:
            log.exception("collector thread died")

    def start(self) -> CollectorThread:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()
