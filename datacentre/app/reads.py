"""Cached store reads for the pages: stored days, a day's snapshot times, series and
OI, one snapshot's ticks, and the snapshot in force at a moment.

The store is read through small caches keyed on the database URL and the IST day,
so stepping through a day fetches only the one snapshot asked for:

* :func:`stored_days` — the IST days holding snapshots (one index seek per day);
* :func:`day_times` — a day's snapshot times (the replay slider's positions);
* :func:`day_series` — a day's spot, OI, PCR and ATM IV series for the day charts;
* :func:`day_oi` — a day's OI per option, for :func:`oi_totals` (call and put OI over
  every strike seen that day);
* :func:`ticks_at` — one snapshot's ticks by its exact time (immutable, so cached).

Days before today (IST) never change and are cached until evicted; today's entries
expire after :data:`OPEN_DAY_TTL_S`, so live collection shows up.
"""
from __future__ import annotations

from bisect import bisect_right
from datetime import date, time, timedelta

import pandas as pd
import streamlit as st

from datacentre import analytics
from datacentre.app import ui
from datacentre.app.days import ist_ts, today
from datacentre.core.errors import StoreError
from datacentre.core.instruments import underlying
from datacentre.core.ticks import format_ts, parse_ts, trading_day

OPEN_DAY_TTL_S = 15.0
DAYS_TTL_S = 30.0
MAX_DAYS = 400  # the stored-day scan stops here
SERIES_POINTS = 500


@st.cache_data(ttl=DAYS_TTL_S, show_spinner=False)
def _stored_days(db_url: str, base: str) -> list[date]:
    store = ui.get_store(db_url)
    symbol = underlying(base).index_symbol
    days: list[date] = []
    cursor = None
    # One index seek per day on (symbol, ts): cheap however many ticks a day holds.
    while len(days) < MAX_DAYS:
        first = store.history(symbol, start_ts=cursor, limit=1)
        if not first:
            break
        day = trading_day(first[0]["ts"])
        days.append(day)
        cursor = ist_ts(day + timedelta(days=1), time(0))
    return days


def stored_days(ctx: ui.Context) -> list[date]:
    """IST days with snapshots of the selected underlying, newest first."""
    try:
        return list(reversed(_stored_days(ctx.settings.db_url, ctx.underlying)))
    except StoreError:
        return []


def _day_times(db_url: str, base: str, day: date) -> list[str]:
    return ui.get_store(db_url).snapshot_times(base, *analytics.day_bounds(day))


_closed_day_times = st.cache_data(max_entries=32, show_spinner=False)(_day_times)
_open_day_times = st.cache_data(ttl=OPEN_DAY_TTL_S, show_spinner=False)(_day_times)


def day_times(ctx: ui.Context, day: date) -> list[str]:
    """The snapshot times of ``day`` (IST) for the selected underlying, oldest first."""
    read = _closed_day_times if day < today() else _open_day_times
    try:
        return read(ctx.settings.db_url, ctx.underlying, day)
    except StoreError:
        return []


def _series(db_url: str, base: str, day: date, expiry: str | None) -> pd.DataFrame:
    store = ui.get_store(db_url)
    rows = store.underlying_series(base, *analytics.day_bounds(day), expiry=expiry, max_points=SERIES_POINTS)
    return analytics.series_frame(rows) if rows else pd.DataFrame()


_closed_series = st.cache_data(max_entries=16, show_spinner=False)(_series)
_open_series = st.cache_data(ttl=OPEN_DAY_TTL_S, show_spinner=False)(_series)


def day_series(ctx: ui.Context, day: date, expiry: date | None) -> pd.DataFrame:
    """``day``'s :func:`analytics.series_frame` (about 500 points)."""
    read = _closed_series if day < today() else _open_series
    try:
        return read(ctx.settings.db_url, ctx.underlying, day, expiry.isoformat() if expiry else None)
    except StoreError:
        return pd.DataFrame()


def _day_oi(db_url: str, base: str, day: date, expiry: str) -> pd.DataFrame:
    store = ui.get_store(db_url)
    times = store.snapshot_times(base, *analytics.day_bounds(day))
    legs = {r["symbol"]: r["kind"] for r in store.instruments(base)
            if r["expiry"] == expiry and r["kind"] in ("CE", "PE")}
    if not times or not legs:
        return pd.DataFrame()
    rows = store.oi_at(list(legs), analytics.thin(times, SERIES_POINTS))
    if not rows:
        return pd.DataFrame()
    oi = (pd.DataFrame(rows, columns=["ts", "symbol", "oi"]).astype({"oi": float})
          .pivot(index="ts", columns="symbol", values="oi").sort_index())
    oi.columns = pd.MultiIndex.from_tuples([(legs[s], s) for s in oi.columns], names=["kind", "symbol"])
    oi.index.name = None
    return oi


_closed_day_oi = st.cache_data(max_entries=16, show_spinner=False)(_day_oi)
_open_day_oi = st.cache_data(ttl=OPEN_DAY_TTL_S, show_spinner=False)(_day_oi)


def day_oi(ctx: ui.Context, day: date, expiry: date | None) -> pd.DataFrame:
    """Each option of ``expiry``'s OI at ``day``'s snapshots (about 500, evenly picked),
    indexed by snapshot time with ``(kind, symbol)`` columns, NaN where a snapshot
    lacks the contract (see :func:`analytics.held_oi`)."""
    if expiry is None:
        return pd.DataFrame()
    read = _closed_day_oi if day < today() else _open_day_oi
    try:
        return read(ctx.settings.db_url, ctx.underlying, day, expiry.isoformat())
    except StoreError:
        return pd.DataFrame()


def oi_totals(ctx: ui.Context, day: date, expiry: date | None, *,
              moment: tuple[str | None, list[dict]] | None = None, upto: bool = False) -> pd.DataFrame:
    """Total call and put OI and the PCR through ``day`` over every strike of ``expiry``
    collected that day, in :func:`analytics.series_frame`'s shape (about 500 points).

    The collector stores a window of strikes around ATM that moves with the spot, so
    summing each snapshot as stored jumps by a strike's whole OI whenever the window
    moves. Here a strike outside the window counts with its nearest known OI (the
    last seen, or the first for strikes that enter later): the totals move only with
    open interest.

    ``moment`` = ``(ts, ticks)`` puts that snapshot's row in the series (the live one,
    or a stored one between the picked points) with the same definition, so a page's
    cards (:func:`analytics.totals_at`) and its chart show the same totals; ``upto``
    ends the series there.
    """
    if expiry is None:
        return pd.DataFrame()
    oi = day_oi(ctx, day, expiry)
    ts, ticks = moment if moment is not None else (None, [])
    if ts and ticks:
        values = analytics.snapshot_oi(ticks, ctx.underlying, expiry)
        if oi.empty and not values:
            return pd.DataFrame()
        if oi.empty:
            oi = pd.DataFrame(columns=pd.MultiIndex.from_tuples([], names=["kind", "symbol"]), dtype=float)
        held = analytics.held_oi(oi, (ts, values), upto=upto)
    elif oi.empty:
        return pd.DataFrame()
    else:
        held = analytics.held_oi(oi)
    return analytics.oi_totals_series(held, expiry)


@st.cache_data(max_entries=256, show_spinner=False)
def _ticks_at(db_url: str, base: str, ts: str) -> list[dict]:
    return ui.get_store(db_url).snapshot_at(ts, base)


def ticks_at(ctx: ui.Context, ts: str | None) -> list[dict]:
    """The underlying's ticks of the snapshot stored at exactly ``ts`` (cached: stored
    snapshots never change)."""
    if not ts:
        return []
    try:
        return _ticks_at(ctx.settings.db_url, ctx.underlying, ts)
    except StoreError:
        return []


def resolve(ctx: ui.Context, target: str | None) -> str | None:
    """The time of the snapshot in force at ``target``: the newest at or before it."""
    if not target:
        return None
    day = trading_day(target)
    times = day_times(ctx, day)
    i = bisect_right(times, target)
    if i:
        return times[i - 1]
    # before the day's first snapshot: the previous stored day's last one
    earlier = [d for d in stored_days(ctx) if d < day]
    if earlier:
        times = day_times(ctx, earlier[0])
        return times[-1] if times else None
    return None


def snapshot_as_of(ctx: ui.Context, target: str | None) -> tuple[str | None, list[dict]]:
    """``(ts, ticks)`` of the stored snapshot in force at ``target``."""
    ts = resolve(ctx, target)
    return ts, ticks_at(ctx, ts)


def snapshot_before(ctx: ui.Context, ts: str, ago: timedelta) -> tuple[str | None, list[dict]]:
    """``(ts, ticks)`` of the stored snapshot in force ``ago`` before ``ts``."""
    return snapshot_as_of(ctx, format_ts(parse_ts(ts) - ago))


def snapshot_at_clock(ctx: ui.Context, day: date, clock: time) -> tuple[str | None, list[dict]]:
    """``(ts, ticks)`` of the stored snapshot in force at the end of minute ``clock`` IST on ``day``."""
    return snapshot_as_of(ctx, ist_ts(day, clock.replace(second=59)))


OPEN_SEARCH = 8  # snapshots looked at for the day's first one with options


def day_open(ctx: ui.Context, day: date) -> tuple[str | None, list[dict]]:
    """``(ts, ticks)`` of ``day``'s first snapshot with options of the underlying, else its
    first snapshot: an imported day can open with the index alone, before the first trade
    (NSE's chain at 09:15), and the day's changes are measured from its first chain."""
    times = day_times(ctx, day)
    for ts in times[:OPEN_SEARCH]:
        ticks = ticks_at(ctx, ts)
        if analytics.expiries(ticks, ctx.underlying):
            return ts, ticks
    return (times[0], ticks_at(ctx, times[0])) if times else (None, [])


def previous_close(ctx: ui.Context, day: date) -> tuple[str | None, list[dict]]:
    """``(ts, ticks)`` of the last snapshot before ``day`` (the previous close), if stored."""
    earlier = [d for d in stored_days(ctx) if d < day]
    if not earlier:
        return None, []
    times = day_times(ctx, earlier[0])
    return (times[-1], ticks_at(ctx, times[-1])) if times else (None, [])

