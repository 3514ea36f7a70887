"""IST days and wall-clock times of store timestamps, for the pages' pickers and caches.

Store timestamps are canonical UTC text; the market, its sessions and every picker
speak IST. No Streamlit in here.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

from datacentre.core.ticks import IST, format_ts, now_utc, parse_ts, trading_day


def today() -> date:
    """The trading day (IST date) it is now."""
    return trading_day(now_utc())


def ist_clock(ts) -> time:
    """The IST wall-clock time of ``ts``, without a zone (for time widgets)."""
    return parse_ts(ts).astimezone(IST).time().replace(tzinfo=None)


def ist_ts(day: date, clock: time) -> str:
    """Store text for ``clock`` IST on ``day``."""
    return format_ts(datetime.combine(day, clock, IST))


def minute_of(clock: time, *, up: bool = False) -> time:
    """``clock`` to the whole minute, down (or ``up``, within the day)."""
    floor = clock.replace(second=0, microsecond=0)
    if up and floor != clock and floor.hour * 60 + floor.minute < 24 * 60 - 1:
        return (datetime.combine(date.min, floor) + timedelta(minutes=1)).time()
    return floor
