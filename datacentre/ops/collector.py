"""The collector: ask a source for a snapshot every interval and store it.

Snapshots are stamped on a fixed grid (multiples of the interval since the epoch),
so restarts line up with earlier data. Each snapshot takes a slot after the previous
one, so no two share a timestamp and time never runs backwards: a snapshot that
overruns the interval skips the slots it missed, and when the wall clock steps back
the collector waits for it to pass the last slot. A failing source is logged and
retried at the next slot; a stop request is honoured between snapshots, so a
shutdown never leaves half a snapshot behind (each snapshot is one transaction anyway).

Market hours: a source with ``market_hours = True`` (SmartAPI, any real broker) is asked
for snapshots only while NSE is open (:func:`datacentre.core.calendar.market_state`:
09:15-15:30 IST on trading days). Outside them the collector idles, logs why and until
when, records it in its state file for ``status``, and wakes at the next open. The
simulator has no such attribute and collects at any hour.

``ohlc_1min`` and ``oi_snapshots`` (the original data centre's tables) are written here,
after each snapshot, for the minutes that snapshot completed
(:meth:`~datacentre.store.compat.CompatTables.update_minutes`). The collector is the one
that knows a minute is complete (its snapshots come in time order, so the first one of a
new minute closes the previous), it is the store's only writer (so no two processes race
for a minute) and it needs no extra service; the cost is one small query a minute. When
it idles at the close it writes the last minute too. Backfill, import and sync write past
days, which ``python -m datacentre candles --rebuild --date D`` builds afterwards.
"""
from __future__ import annotations

import json
import logging
import math
import os
import threading
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

from datacentre.core.calendar import MarketState, market_state
from datacentre.core.config import DEFAULT_INTERVAL, check_interval
from datacentre.core.errors import DataCentreError, StoreError
from datacentre.core.ticks import UTC, format_ts, now_utc, parse_ts, trading_day, wall_seconds
from datacentre.sources import Source
from datacentre.store.tickstore import TickStore

log = logging.getLogger(__name__)

CommitHook = Callable[[str, int], None]

#: Longest single wait while idle: the wall clock is looked at again at least this often.
IDLE_CHECK_S = 30.0
#: Minutes of ``ohlc_1min`` written after one snapshot at most (a late start catches up in steps).
MINUTES_PER_SNAPSHOT = 15


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
    ``state_file``, if given, receives :attr:`state` as JSON whenever it changes
    (``collecting`` or ``idle``, with the reason and the next open), for ``status``.
    """

    def __init__(self, store: TickStore, source: Source, *, interval: float = DEFAULT_INTERVAL,
                 on_commit: CommitHook | None = None, state_file: Path | str | None = None,
                 idle_check_s: float = IDLE_CHECK_S) -> None:
        self.store = store
        self.source = source
        self.interval = check_interval(interval)
        self.on_commit = on_commit
        self.snapshots = 0
        self.failures = 0
        self.last_ts: str | None = None
        self._last_slot: int | None = None  # grid index of the last snapshot taken
        self._unstored = 0  # snapshots in a row the store refused
        self._partitions_day: date | None = None  # the IST day partitions were last prepared
        self.keeps_market_hours = bool(getattr(source, "market_hours", False))
        self.state_file = None if state_file is None else Path(state_file)
        self.idle_check_s = float(idle_check_s)
        self.state: dict = {}

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
        self._update_minutes(ts)
        return written

    def collect_if_open(self) -> int | None:
        """A snapshot now, unless the source keeps market hours and NSE is closed (then None)."""
        if self.keeps_market_hours and not market_state(now_utc()).open:
            return None
        return self.collect_once()

    def _update_minutes(self, through: str, max_minutes: int | None = MINUTES_PER_SNAPSHOT) -> None:
        try:
            self.store.update_minutes(through, max_minutes)
        except DataCentreError as exc:
            log.warning("ohlc_1min not updated through %s (retried at the next minute): %s", through, exc)

    def _set_state(self, state: str, **details) -> None:
        new = {"state": state, "source": self.source.name, **details}
        if {k: v for k, v in self.state.items() if k != "since"} == new:
            return
        self.state = {**new, "since": format_ts(now_utc()), "pid": os.getpid()}
        if self.state_file is None:
            return
        try:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_file.with_name(self.state_file.name + ".tmp")
            tmp.write_text(json.dumps(self.state), encoding="utf-8")
            tmp.replace(self.state_file)
        except OSError as exc:
            log.warning("cannot write the collector's state to %s: %s", self.state_file, exc)

    def _idle(self, market: MarketState, stop: threading.Event) -> None:
        """Wait (interruptibly) towards the next open; the caller looks at the clock again."""
        if self.state.get("state") != "idle":
            log.info("market %s: %s idles", market.describe(), self.source.name)
            if self.last_ts is not None:
                # nothing more comes before the open: the last minute is complete
                self._update_minutes(format_ts(parse_ts(self.last_ts) + timedelta(minutes=1)), None)
        self._set_state("idle", reason=market.reason, next_open=format_ts(market.next_open),
                        detail=market.describe())
        wait = (market.next_open - now_utc()).total_seconds()
        stop.wait(min(max(wait, 0.0), self.idle_check_s))

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
            if self.keeps_market_hours:
                market = market_state(grid_moment(slot, self.interval))
                if not market.open:
                    self._idle(market, stop)
                    continue
                if self.state.get("state") != "collecting":
                    log.info("market %s: %s collects", market.describe(), self.source.name)
            self._set_state("collecting")
            delay = slot - wall_seconds()
            if delay > self.interval:
                log.warning("the clock went back: waiting %.0f s for it to pass the last snapshot, %s",
                            delay, self.last_ts)
            if stop.wait(max(delay, 0.0)):
                break
            try:
                rows = self.collect_once(grid_moment(slot, self.interval))
                log.debug("snapshot %s: %d rows", self.last_ts, rows)
                if self._unstored:
                    log.warning("storing snapshots again, after %d the store refused", self._unstored)
                    self._unstored = 0
            except StoreError as exc:
                self.failures += 1
                self._unstored += 1
                if self._unstored == 1:  # once per outage: the reason and what to do
                    log.error("cannot store snapshots: %s. %s", exc, store_trouble(str(exc)))
                else:
                    log.debug("snapshot %d in a row not stored: %s", self._unstored, exc)
            except DataCentreError as exc:
                self.failures += 1
                log.warning("snapshot at %s failed: %s", format_ts(grid_moment(slot, self.interval)), exc)
            except Exception:
                self.failures += 1
                log.exception("snapshot failed unexpectedly; retrying at the next interval")
        log.info("collector stopped after %d snapshots (%d failed)", self.snapshots, self.failures)


def store_trouble(error: str) -> str:
    """What to do about a store that refuses a snapshot (each one is all or nothing)."""
    text = error.lower()
    if "full" in text or "no space" in text:
        cause = "the disk holding the store is full: free some space"
    elif "read-only" in text or "readonly" in text:
        cause = ("the store is read-only: make it writable (file permissions, a read-only mount, "
                 "the database's read-only setting)")
    else:
        cause = "check that the store is reachable and writable"
    return f"{cause}; nothing half-written is kept, and collecting goes on by itself once it works"


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
