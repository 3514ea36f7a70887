"""The tick record: its 14 fields and the one timestamp format used everywhere.

Timestamps are ISO 8601 in UTC with an explicit ``+00:00`` offset, whole seconds
(``2026-01-02T08:13:05+00:00``), or milliseconds when a snapshot falls inside a
second (``2026-01-02T08:13:05.500+00:00``). Both forms sort correctly as text,
which is what lets SQLite compare them as strings. Mixing zones or naive
timestamps is how rows get lost, so everything that enters the store passes
through :func:`format_ts`.

**The trading day** of a tick is the IST calendar date of its timestamp
(:func:`trading_day`); every "which day" question (pickers, caches, day charts,
the live feed's day history, the collector's and backfill's sessions) asks it.
An evening tick at 19:30 UTC belongs to the next IST day, not to the UTC date.

**The wall clock** is read only through :func:`now_utc` (and :func:`wall_seconds`
for slot timing); durations use ``time.monotonic()``. The clock is settable so
time is an input in tests::

    with frozen_clock("2026-12-29T11:00:00+00:00"):       # stands still
        ...
    with frozen_clock("2026-12-05T04:00:00Z", tick=True):  # starts there, runs on
        ...
    previous = set_clock(lambda: some_aware_utc_datetime)  # any callable; None = system
    set_clock(previous)

The clock is process-wide (threads see it too); to shift every process of a run,
subprocesses included, see ``tests/clock/``.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from datacentre.core.errors import ConfigError

TICK_FIELDS: tuple[str, ...] = (
    "symbol", "token", "ts", "ltp", "bid", "ask", "volume", "oi",
    "delta", "gamma", "theta", "vega", "iv", "source",
)
FLOAT_FIELDS = ("ltp", "bid", "ask", "delta", "gamma", "theta", "vega", "iv")
INT_FIELDS = ("volume", "oi")
GREEK_FIELDS = ("delta", "gamma", "theta", "vega", "iv")
SOURCES = ("sim", "api", "ws", "local_ws", "csv", "replay")
_TS = TICK_FIELDS.index("ts")


def tick_values(source: Mapping[str, Any], ts: str | None = None) -> tuple:
    """The 14 tick fields of ``source`` (a tick, a message, a store row) as a tuple in
    :data:`TICK_FIELDS` order: missing fields are None, others (``id``, ``type``) are
    dropped. ``ts`` given replaces the timestamp (a snapshot's rows share one).

    The store's write path runs this per row, hence a tuple and no per-field branching.
    """
    values = list(map(source.get, TICK_FIELDS))
    if ts is not None:
        values[_TS] = ts
    return tuple(values)


def tick_dict(source: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`tick_values` as a dict: exactly the 14 tick fields, in contract order."""
    return dict(zip(TICK_FIELDS, tick_values(source)))


IST = timezone(timedelta(hours=5, minutes=30), "IST")


def format_ts(moment: datetime) -> str:
    """Canonical text form of an aware datetime (naive ones are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    # Milliseconds first, then the form: an instant under a millisecond past the second is
    # the whole second, so it gets the whole-second text (never "…05.000+00:00" beside "…05+00:00").
    ms = moment.microsecond // 1000
    if ms:
        return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms:03d}+00:00"
    return moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def parse_ts(text: str | datetime | date) -> datetime:
    """Parse an ISO 8601 time (``Z``, any offset, or naive = UTC) to an aware UTC datetime.

    A bare date means midnight UTC of that date.
    """
    if isinstance(text, datetime):
        moment = text
    elif isinstance(text, date):
        moment = datetime(text.year, text.month, text.day)
    else:
        raw = str(text).strip()
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            raise ConfigError(
                f"invalid time {raw!r}: use ISO 8601, e.g. 2026-01-02T08:13:05+00:00"
            ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def normalize_ts(text: str | datetime | date) -> str:
    """Any accepted time form to the canonical text form."""
    return format_ts(parse_ts(text))


def trading_day(ts: str | datetime | date) -> date:
    """The trading day a tick (store text, datetime, or date) belongs to: its IST calendar date."""
    return parse_ts(ts).astimezone(IST).date()


def trading_day_start(day: date) -> datetime:
    """Midnight IST at the start of trading day ``day``, as an aware UTC datetime."""
    return datetime(day.year, day.month, day.day, tzinfo=IST).astimezone(UTC)


WallClock = Callable[[], datetime]


def system_clock() -> datetime:
    """The operating system's wall clock, aware UTC."""
    return datetime.now(UTC)


_clock: WallClock = system_clock


def now_utc() -> datetime:
    """The current instant, aware UTC, from the installed clock."""
    return _clock()


def wall_seconds() -> float:
    """The current instant as seconds since the epoch (for aligning to a wall-clock grid)."""
    return now_utc().timestamp()


def set_clock(clock: WallClock | None) -> WallClock:
    """Install ``clock`` (a callable returning an aware datetime; None = the system clock)
    for the whole process and return the one it replaces."""
    global _clock
    previous, _clock = _clock, clock or system_clock
    return previous


@contextmanager
def frozen_clock(moment: str | datetime, *, tick: bool = False) -> Iterator[None]:
    """Within the block the wall clock reads ``moment``; with ``tick`` it starts there and
    runs on at the real rate (threads that wait for a wall-clock slot need time to pass)."""
    start, origin = parse_ts(moment), time.monotonic()

    def clock() -> datetime:
        return start + timedelta(seconds=time.monotonic() - origin) if tick else start

    previous = set_clock(clock)
    try:
        yield
    finally:
        set_clock(previous)
