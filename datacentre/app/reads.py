"""Cached store reads for the pages: stored days and sessions, a session's snapshot
times and series, one snapshot's ticks, and the snapshot in force at a moment.

**Sessions are NSE sessions**: 09:15-15:30 IST on a trading day. The session's open,
the previous close, the replay's positions and the day charts come from the session's
snapshots only; ticks outside it (the simulator runs at any hour) are *after hours*:
stored and shown live, never a session of their own, never a day's open.

The store is read through small caches keyed on the database URL and the IST day,
so stepping through a day fetches only the one snapshot asked for:

* :func:`stored_sessions` / :func:`stored_days` — the sessions / IST days holding
  snapshots (an index seek or two per day);
* :func:`session_times` — a session's snapshot times (the replay slider's positions);
  :func:`day_times` all of the day's;
* :func:`day_series` — a session's spot, OI, PCR and ATM IV series for the day charts,
  ended at a moment when one is shown (nothing from after it);
* :func:`ticks_at` — one snapshot's ticks by its exact time (immutable, so cached).

Days before today (IST) never change and are cached until evicted; today's entries
expire after :data:`OPEN_DAY_TTL_S`, so live collection shows up.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import date, time, timedelta
from typing import NamedTuple

import pandas as pd
import streamlit as st

from datacentre import analytics
from datacentre.app import ui
from datacentre.app.days import ist_ts, today
from datacentre.app.formatting import fmt_day
from datacentre.core.errors import StoreError
from datacentre.core.instruments import (
    last_complete_session,
    session_bounds,
    session_of,
    underlying,
)
from datacentre.core.ticks import IST, format_ts, now_utc, parse_ts, trading_day

OPEN_DAY_TTL_S = 15.0
DAYS_TTL_S = 30.0
MAX_DAYS = 400  # the stored-day scan stops here
SERIES_POINTS = 500
NEAR = timedelta(minutes=5)  # an earlier snapshot further than this from the moment asked is not "then"
PREVIOUS_CLOSE = "prev close"
DAY_OPEN = "open"


@st.cache_data(ttl=DAYS_TTL_S, show_spinner=False)
def _stored_days(db_url: str, base: str) -> list[tuple[date, bool]]:
    store = ui.get_store(db_url)
    symbol = underlying(base).index_symbol
    days: list[tuple[date, bool]] = []
    cursor = None
    # One index seek per day on (symbol, ts), two when the day starts before its session:
    # cheap however many ticks a day holds.
    while len(days) < MAX_DAYS:
        first = store.history(symbol, start_ts=cursor, limit=1)
        if not first:
            break
        day = trading_day(first[0]["ts"])
        has_session = session_of(first[0]["ts"]) == day
        if not has_session and parse_ts(first[0]["ts"]) < session_bounds(day)[0]:
            has_session = bool(store.history(symbol, *(format_ts(m) for m in session_bounds(day)), limit=1))
        days.append((day, has_session))
        cursor = ist_ts(day + timedelta(days=1), time(0))
    return days


def stored_days(ctx: ui.Context) -> list[date]:
    """IST days with snapshots of the selected underlying (sessions or after hours), newest first."""
    try:
        return [day for day, _ in reversed(_stored_days(ctx.settings.db_url, ctx.underlying))]
    except StoreError:
        return []


def stored_sessions(ctx: ui.Context) -> list[date]:
    """Trading days whose session (09:15-15:30 IST) holds snapshots of the selected
    underlying, newest first; days with after-hours ticks only are not sessions."""
    try:
        return [day for day, has in reversed(_stored_days(ctx.settings.db_url, ctx.underlying)) if has]
    except StoreError:
        return []


def default_session(ctx: ui.Context, sessions: list[date]) -> date | None:
    """The session the history pages open on: the last complete one, else the newest."""
    if not sessions:
        return None
    complete = [d for d in sessions if d <= last_complete_session(now_utc())]
    return complete[0] if complete else sessions[0]


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


def session_times(ctx: ui.Context, day: date) -> list[str]:
    """The snapshot times of ``day``'s session (09:15-15:30 IST), oldest first: the day's
    times without its after-hours ticks."""
    times = day_times(ctx, day)
    start, end = (format_ts(m) for m in session_bounds(day))
    return times[bisect_left(times, start):bisect_right(times, end)]


def _series(db_url: str, base: str, day: date, expiry: str | None) -> list[dict]:
    start, end = (format_ts(m) for m in session_bounds(day))
    return ui.get_store(db_url).underlying_series(base, start, end, expiry=expiry, max_points=SERIES_POINTS)


_closed_series = st.cache_data(max_entries=16, show_spinner=False)(_series)
_open_series = st.cache_data(ttl=OPEN_DAY_TTL_S, show_spinner=False)(_series)


@st.cache_data(max_entries=512, show_spinner=False)
def _series_point(db_url: str, base: str, ts: str, expiry: str | None) -> list[dict]:
    return ui.get_store(db_url).underlying_series(base, ts, ts, expiry=expiry, max_points=None)


def day_series(ctx: ui.Context, day: date, expiry: date | None, *, upto: str | None = None) -> pd.DataFrame:
    """The session of ``day`` as :func:`analytics.series_frame` (about 500 points).

    ``upto`` (a snapshot's time) ends it there, that snapshot last: a page showing a
    moment draws nothing from after it, and its chart ends on the figures its cards
    show. The OI totals of each point are that snapshot's own, as in
    :func:`analytics.oi_summary`.
    """
    read = _closed_series if day < today() else _open_series
    wanted = expiry.isoformat() if expiry else None
    try:
        rows = read(ctx.settings.db_url, ctx.underlying, day, wanted)
        if upto is not None:
            rows = [r for r in rows if r["ts"] <= upto]
            if not rows or rows[-1]["ts"] != upto:
                rows = rows + _series_point(ctx.settings.db_url, ctx.underlying, upto,
                                            wanted or (rows[0]["expiry"] if rows else None))
    except StoreError:
        return pd.DataFrame()
    return analytics.series_frame(rows) if rows else pd.DataFrame()


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


def snapshot_near(ctx: ui.Context, target: str) -> tuple[str | None, list[dict]]:
    """The snapshot in force at ``target`` when it is really the market then: taken within
    :data:`NEAR` before it and in the same stretch (the session, or the same day's hours
    outside it). ``(None, [])`` otherwise: a night without ticks does not make the last
    close "1 h ago"."""
    ts = resolve(ctx, target)
    if ts is None or parse_ts(target) - parse_ts(ts) > NEAR:
        return None, []
    if (session_of(ts), trading_day(ts)) != (session_of(target), trading_day(target)):
        return None, []
    return ts, ticks_at(ctx, ts)


def snapshot_before(ctx: ui.Context, ts: str, ago: timedelta) -> tuple[str | None, list[dict]]:
    """:func:`snapshot_near` ``ago`` before ``ts``."""
    return snapshot_near(ctx, format_ts(parse_ts(ts) - ago))


def snapshot_at_clock(ctx: ui.Context, day: date, clock: time) -> tuple[str | None, list[dict]]:
    """:func:`snapshot_near` the end of minute ``clock`` IST on ``day``."""
    return snapshot_near(ctx, ist_ts(day, clock.replace(second=59)))


OPEN_SEARCH = 8  # snapshots looked at for the day's first one with options


def day_open(ctx: ui.Context, day: date) -> tuple[str | None, list[dict]]:
    """``(ts, ticks)`` of the open of ``day``'s session: its first snapshot with options of
    the underlying, else its first snapshot (an imported day can open with the index
    alone, before the first trade, and the day's changes are measured from its first
    chain). After-hours ticks before 09:15 are never the open."""
    times = session_times(ctx, day)
    for ts in times[:OPEN_SEARCH]:
        ticks = ticks_at(ctx, ts)
        if analytics.expiries(ticks, ctx.underlying):
            return ts, ticks
    return (times[0], ticks_at(ctx, times[0])) if times else (None, [])


def session_close(ctx: ui.Context, day: date) -> tuple[str | None, list[dict]]:
    """``(ts, ticks)`` of the last snapshot of ``day``'s session (at or before 15:30 IST)."""
    times = session_times(ctx, day)
    return (times[-1], ticks_at(ctx, times[-1])) if times else (None, [])


def previous_close(ctx: ui.Context, ts: str) -> tuple[str | None, list[dict]]:
    """``(ts, ticks)`` of the close of the last stored session that had ended by ``ts``:
    in a session, the one before; after hours, the one that ended last (the same day's
    after 15:30)."""
    done = [d for d in stored_sessions(ctx) if format_ts(session_bounds(d)[1]) <= ts]
    return session_close(ctx, done[0]) if done else (None, [])


def anchor_session(ctx: ui.Context, ts: str) -> date | None:
    """The session a moment belongs to, or after hours the last stored one before it:
    where its "day open", chosen times and day chart come from."""
    day = session_of(ts)
    if day is not None:
        return day
    done = [d for d in stored_sessions(ctx) if format_ts(session_bounds(d)[0]) <= ts]
    return done[0] if done else None


class SessionSeries(NamedTuple):
    """A session's day charts as a page shows them for a moment (:func:`moment_series`)."""

    day: date | None  # the session; None when none is stored
    frame: pd.DataFrame | None  # its day_series
    span: tuple | None  # its bounds, the charts' time axis

    @property
    def label(self) -> str:
        return f"the session of {fmt_day(self.day)}" if self.day else "no stored session"


def moment_series(ctx: ui.Context, ts: str | None, expiry: date | None) -> SessionSeries:
    """The session a moment shows (:func:`anchor_session`) and that session's
    :func:`day_series`: up to the moment in a session, the whole last session after hours."""
    day = anchor_session(ctx, ts) if ts else None
    if day is None:
        return SessionSeries(None, None, None)
    return SessionSeries(day, day_series(ctx, day, expiry, upto=ts if session_of(ts) else None),
                         session_bounds(day))


def reference_close(ctx: ui.Context, ts: str | None) -> tuple[str | None, list[dict]]:
    """What a moment's changes are measured against, as the exchange's chain does:
    ``(label, ticks)`` of :func:`previous_close`, else (a first stored session) the
    open of the moment's session. After hours that is the close of the session that
    ended last: an evening's simulated ticks never get a "day open" of their own.
    """
    if not ts:
        return None, []
    then, ticks = previous_close(ctx, ts)
    if ticks:
        # after hours "Tue close": short enough for a card, and never "the open" of the night
        return (PREVIOUS_CLOSE if session_of(ts) else f"{parse_ts(then).astimezone(IST):%a} close"), ticks
    day = session_of(ts)
    then, ticks = day_open(ctx, day) if day else (None, [])
    return (DAY_OPEN, ticks) if ticks else (None, [])
