"""The tick record: its 14 fields and the one timestamp format used everywhere.

Timestamps are ISO 8601 in UTC with an explicit ``+00:00`` offset, whole seconds
(``2026-01-02T08:13:05+00:00``), or milliseconds when a snapshot falls inside a
second (``2026-01-02T08:13:05.500+00:00``). Both forms sort correctly as text,
which is what lets SQLite compare them as strings. Mixing zones or naive
timestamps is how rows get lost, so everything that enters the store passes
through :func:`format_ts`.
"""
from __future__ import annotations

from collections.abc import Mapping
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


def now_utc() -> datetime:
    return datetime.now(UTC)
