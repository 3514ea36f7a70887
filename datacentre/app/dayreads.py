"""The store reads behind the traders' day charts, cached, and the moment a chart shows.

Every chart page works the same way: :func:`moment_of` gives the moment picked with
:func:`datacentre.app.asof.as_of_ui` (the live snapshot, or the stored one in force at
a chosen time) with its day and expiry; the day's rows come from one store method per
chart, cached here; :meth:`Moment.rows` cuts them at the moment and appends that
moment's own snapshot as rows of the same shape. So a chart never shows anything
stored after its moment, and its last point is that moment's snapshot to the tick.

A closed day's rows never change and stay cached until evicted; today's are read
again every :data:`OPEN_DAY_REFRESH_S` (each read is keyed by that slot of the clock,
so one cache per read serves both).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import streamlit as st

from datacentre import analytics
from datacentre.analytics import OPTION_KINDS, intraday
from datacentre.app import asof, reads, ui
from datacentre.app.days import today
from datacentre.core.errors import StoreError
from datacentre.core.instruments import is_session_day, session_bounds, session_of
from datacentre.core.ticks import format_ts, parse_ts, trading_day, wall_seconds

OPEN_DAY_REFRESH_S = 5.0
CHAIN_POINTS = 400  # PCR and max pain through a day: a point every minute of a session
MAX_ENTRIES = 32


def _slot(day: date) -> int | None:
    """None for a closed day (its rows never change); today, the current slot of the clock."""
    return None if day < today() else int(wall_seconds() // OPEN_DAY_REFRESH_S)


def _read(fn: Callable, default, *args):
    try:
        return fn(*args)
    except StoreError:
        return default


@st.cache_data(max_entries=MAX_ENTRIES, show_spinner=False)
def _straddle(db_url: str, base: str, day: date, expiry: str, slot: int | None) -> list[dict]:
    return ui.get_store(db_url).straddle_series(base, expiry, *analytics.day_bounds(day))


@st.cache_data(max_entries=MAX_ENTRIES, show_spinner=False)
def _contracts(db_url: str, day: date, symbols: tuple[str, ...], fields: tuple[str, ...],
               slot: int | None) -> list[dict]:
    return ui.get_store(db_url).contract_series(symbols, *analytics.day_bounds(day), fields=fields)


@st.cache_data(max_entries=MAX_ENTRIES, show_spinner=False)
def _chain_oi(db_url: str, base: str, day: date, expiry: str, slot: int | None) -> list[tuple]:
    store = ui.get_store(db_url)
    times = analytics.thin(store.snapshot_times(base, *analytics.day_bounds(day)), CHAIN_POINTS)
    return store.chain_oi_series(base, expiry, times)


@st.cache_data(max_entries=MAX_ENTRIES, show_spinner=False)
def _candles(db_url: str, symbol: str, interval: int, day: date, end: str | None,
             slot: int | None) -> list[dict]:
    start, _ = analytics.day_bounds(day)
    return ui.get_store(db_url).candles(symbol, interval, start, end)


@st.cache_data(max_entries=MAX_ENTRIES, show_spinner=False)
def _session_iv(db_url: str, base: str, days: tuple[date, ...]) -> list[dict]:
    windows = [(d, *(format_ts(b) for b in session_bounds(d))) for d in days]
    return ui.get_store(db_url).session_atm_iv(base, windows)


def straddle(ctx: ui.Context, day: date, expiry: date) -> list[dict]:
    """:meth:`TickStore.straddle_series` of ``day`` (IST) and ``expiry``."""
    return _read(_straddle, [], ctx.settings.db_url, ctx.underlying, day, expiry.isoformat(), _slot(day))


def contracts(ctx: ui.Context, day: date, symbols: Sequence[str], *fields: str) -> list[dict]:
    """:meth:`TickStore.contract_series` of ``symbols`` on ``day`` (IST), the ``fields``
    named (default ``ltp``): each column read costs, over a day's rows."""
    return _read(_contracts, [], ctx.settings.db_url, day, tuple(sorted(set(symbols))), fields or ("ltp",),
                 _slot(day))


def chain_oi(ctx: ui.Context, day: date, expiry: date) -> list[tuple]:
    """:meth:`TickStore.chain_oi_series` of ``expiry`` at about :data:`CHAIN_POINTS`
    of ``day``'s snapshots, evenly picked (:func:`analytics.thin`)."""
    return _read(_chain_oi, [], ctx.settings.db_url, ctx.underlying, day, expiry.isoformat(), _slot(day))


def candles(ctx: ui.Context, symbol: str, interval: int, m: Moment) -> list[dict]:
    """:meth:`TickStore.candles` of ``symbol`` from the start of the moment's day to the
    moment itself (its own tick included; a live moment reads to the newest tick)."""
    if m.day is None:
        return []
    end = None if m.live else format_ts(parse_ts(m.ts) + timedelta(milliseconds=1))
    return _read(_candles, [], ctx.settings.db_url, symbol, interval, m.day, end, _slot(m.day))


def session_iv(ctx: ui.Context, days: Sequence[date]) -> list[dict]:
    """:meth:`TickStore.session_atm_iv` at the close of each of ``days``' sessions
    (closed days: cached until evicted)."""
    return _read(_session_iv, [], ctx.settings.db_url, ctx.underlying, tuple(days))


@dataclass(frozen=True)
class Moment:
    """The moment a chart page shows, with what every chart of it needs."""

    live: bool
    ts: str | None  # the snapshot's time
    ticks: list[dict] = field(default_factory=list, repr=False)
    expiry: date | None = None
    note: str | None = None  # why the expiry is not the sidebar's

    @property
    def day(self) -> date | None:
        return trading_day(self.ts) if self.ts else None

    def rows(self, stored: Sequence, live: Sequence, *, key=lambda row: row["ts"]) -> list:
        """``stored`` rows up to this moment, then ``live`` (rows of this moment's own
        snapshot) when newer: no look-ahead, and the moment itself to the tick."""
        return intraday.with_live(intraday.upto(stored, self.ts, key=key), live, key=key)

    def span(self, times: Sequence[str] = ()) -> tuple[datetime, datetime] | None:
        """The session's bounds for a time axis that keeps the session's scale while the
        series grows; None (fit the data) when the day has ticks outside the session."""
        day = self.day
        if day is None or not is_session_day(day):
            return None
        if any(session_of(ts) != day for ts in (self.ts, *list(times)) if isinstance(ts, str)):
            return None
        return session_bounds(day)


def moment_of(ctx: ui.Context, when: asof.AsOf, *, first: Moment | None = None,
              options: bool = True) -> Moment:
    """The live snapshot, or the stored one in force at ``when``, and its expiry.

    Live, the expiry is the sidebar's when the snapshot carries it, else its nearest
    (:func:`asof.pick_expiry`); at a stored moment a picker in the as-of controls offers
    every expiry the snapshot holds (:func:`asof.expiry_at`; ``options=False``: a page
    without options draws none). A page reads its moment once at the top and passes it
    as ``first`` to its live sections: a stored moment does not move, so it is reused
    (and its picker drawn once); a live one is read again at each refresh.
    """
    if first is not None and not when.live:
        return first
    ts, ticks = asof.market_at(ctx, when)
    if when.live or not options:
        expiry, note = asof.pick_expiry(ctx, ticks)
    else:
        expiry, note = asof.expiry_at(ctx, when, ticks)
    return Moment(when.live, ts, ticks, expiry, note)


@st.cache_data(ttl=60.0, show_spinner=False)
def _expiry_strikes(db_url: str, base: str, expiry: str) -> list[float]:
    rows = ui.get_store(db_url).instruments(base)
    return sorted({float(r["strike"]) for r in rows if r["expiry"] == expiry and r["kind"] in OPTION_KINDS})


def expiry_strikes(ctx: ui.Context, expiry: date | None) -> list[float]:
    """Every strike of ``expiry`` ever stored (for strike pickers that stay put as the
    collected window moves with the spot)."""
    if expiry is None:
        return []
    return _read(_expiry_strikes, [], ctx.settings.db_url, ctx.underlying, expiry.isoformat())


@st.cache_data(ttl=60.0, show_spinner=False)
def _symbols_of(db_url: str, base: str, kind: str) -> list[str]:
    return [r["symbol"] for r in ui.get_store(db_url).instruments(base) if r["kind"] == kind]


def symbols_of(ctx: ui.Context, kind: str) -> list[str]:
    """Every stored symbol of the underlying of ``kind`` (``FUT``, ``CE``, ...)."""
    return _read(_symbols_of, [], ctx.settings.db_url, ctx.underlying, kind)


def nearest_index(options: Sequence[float], value: float | None) -> int | None:
    """The position in ``options`` of the one nearest ``value`` (a picker's default)."""
    if not options or value is None:
        return None
    return min(range(len(options)), key=lambda i: (abs(options[i] - value), options[i]))


def nothing_to_show(m: Moment, ready: bool = True, what: str = "options of this underlying") -> bool:
    """True, with a note on the page, when the moment has no snapshot or is not ``ready``
    (its expiry, future or contract is missing): the chart has nothing to show."""
    if m.ts and ready:
        return False
    st.info(f"No {what} yet." if m.live else f"No {what} stored at that moment.",
            icon=":material/hourglass_top:")
    return True


def stored_days_before(ctx: ui.Context, day: date | None, count: int) -> list[date]:
    """Up to ``count`` stored sessions before ``day``, oldest first (days of after-hours
    ticks only are not sessions)."""
    days = [d for d in reads.stored_sessions(ctx) if day is None or d < day]
    return sorted(days[:count])


def atm(m: Moment, base: str) -> float | None:
    """The ATM strike of the moment's chain (the strike nearest the spot)."""
    if m.expiry is None:
        return None
    return analytics.chain_table(m.ticks, base, m.expiry).attrs.get("atm")
