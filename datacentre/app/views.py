"""Streamlit helpers shared by the pages: cached store reads, the as-of picker, the
styled tables, the replay player's steps and the export.

These pages look at the market *as of* a moment: the live feed's newest snapshot, or
any stored snapshot. The store is read through small caches keyed on the database
URL and the IST day, so stepping through a day fetches only the one snapshot asked
for:

* :func:`stored_days` — the IST days holding snapshots (one index seek per day);
* :func:`day_times` — a day's snapshot times (the replay slider's positions);
* :func:`day_series` — a day's spot, OI, PCR and ATM IV series for the day charts;
* :func:`day_oi` — a day's OI per option, for :func:`oi_totals` (call and put OI over
  every strike seen that day);
* :func:`ticks_at` — one snapshot's ticks by its exact time (immutable, so cached).

Days before today (IST) never change and are cached until evicted; today's entries
expire after :data:`OPEN_DAY_TTL_S`, so live collection shows up.

The styled tables (:func:`chain_view`, :func:`buildup_view`, :func:`futures_view`,
:func:`skew_view`) give every calls | strike | puts table one look. :func:`play_step`
and its neighbours are the replay player's pure parts; :func:`replay_frame` is the
work of one replay step without Streamlit (the bench times it as the page runs it).
:func:`export_file` and :func:`export_command` make the export page's download and
its command-line equivalent from one :class:`ExportSelection`.
"""
from __future__ import annotations

import io
import math
import os
import shlex
import statistics
import tempfile
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from itertools import islice
from typing import BinaryIO

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import sqlalchemy as sa
import streamlit as st

from datacentre import analytics
from datacentre.app import charts, ui
from datacentre.app.formatting import MISSING, column_formatters, fmt_change, fmt_pct, fmt_strike
from datacentre.core.errors import StoreError
from datacentre.core.instruments import underlying
from datacentre.core.ticks import IST, TICK_FIELDS, format_ts, now_utc, parse_ts
from datacentre.store.csvio import export_csv, select_symbols
from datacentre.store.tickstore import TickStore, ltp_ticks

OPEN_DAY_TTL_S = 15.0
DAYS_TTL_S = 30.0
MAX_DAYS = 400  # the stored-day scan stops here
SERIES_POINTS = 500
MIN_PLAY_PERIOD_S = 0.5
SPOT_HEIGHT = 280
PANEL_HEIGHT = 470
EXPORT_TTL_S = 10.0
PREVIEW_ROWS = 12
PREVIEW_SPANS = (timedelta(minutes=2), timedelta(hours=1), None)
KIND_ORDER = {"INDEX": 0, "FUT": 1, "CE": 2, "PE": 2}

LIVE, STORED = "Live", "Stored"
AS_OF_MODES = (LIVE, STORED)


# ---------------------------------------------------------------------- time helpers


def ist_day(ts) -> date:
    """The IST calendar day of a store timestamp (or datetime)."""
    return parse_ts(ts).astimezone(IST).date()


def today() -> date:
    return now_utc().astimezone(IST).date()


def ist_clock(ts) -> time:
    """The IST wall-clock time of ``ts``, without a zone (for time widgets)."""
    return parse_ts(ts).astimezone(IST).time().replace(tzinfo=None)


def ist_ts(day: date, clock: time) -> str:
    """Store text for ``clock`` IST on ``day``."""
    return format_ts(datetime.combine(day, clock, IST))


def fmt_clock(ts, *, seconds: bool = True) -> str:
    """``'13:45:05'`` (IST) for a store timestamp; a dash for None."""
    if not ts:
        return MISSING
    return parse_ts(ts).astimezone(IST).strftime("%H:%M:%S" if seconds else "%H:%M")


def fmt_moment(ts) -> str:
    """A snapshot time for people, to the second: ``'13:45:05 IST'`` today,
    ``'Fri 27 Nov 13:45:05 IST'`` on another day; a dash for None."""
    if not ts:
        return MISSING
    moment = parse_ts(ts).astimezone(IST)
    return moment.strftime("%H:%M:%S IST" if moment.date() == today() else "%a %d %b %H:%M:%S IST")


def fmt_day(day: date) -> str:
    return day.strftime("%a %d %b %Y")


def require_store(ctx: ui.Context) -> TickStore:
    """The store, or an error on the page and a stop."""
    if ctx.store is None:
        st.error(f"The tick store is not available: {ctx.store_error}", icon=":material/database:")
        st.stop()
    return ctx.store


# ---------------------------------------------------------------------- cached reads


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
        day = ist_day(first[0]["ts"])
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
    stride = -(-len(times) // SERIES_POINTS)
    picked = times[::stride] if times[::stride][-1] == times[-1] else [*times[::stride], times[-1]]
    t = ltp_ticks.c
    stmt = sa.select(t.ts, t.symbol, t.oi).where(t.symbol.in_(list(legs)), t.ts.in_(picked))
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(stmt).all()
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"read failed: {getattr(exc, 'orig', None) or exc}") from exc
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
    day = ist_day(target)
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


def day_open(ctx: ui.Context, day: date) -> tuple[str | None, list[dict]]:
    """``(ts, ticks)`` of ``day``'s first snapshot."""
    times = day_times(ctx, day)
    return (times[0], ticks_at(ctx, times[0])) if times else (None, [])


def previous_close(ctx: ui.Context, day: date) -> tuple[str | None, list[dict]]:
    """``(ts, ticks)`` of the last snapshot before ``day`` (the previous close), if stored."""
    earlier = [d for d in stored_days(ctx) if d < day]
    if not earlier:
        return None, []
    times = day_times(ctx, earlier[0])
    return (times[-1], ticks_at(ctx, times[-1])) if times else (None, [])


# ---------------------------------------------------------------------- as of: live or stored


@dataclass(frozen=True)
class AsOf:
    """The moment a page shows: the live market, or a stored snapshot."""

    live: bool
    day: date | None = None  # IST day of a stored moment
    target: str | None = None  # the requested time (store text) of a stored moment


def as_of_ui(ctx: ui.Context, key: str, columns: Sequence | None = None) -> AsOf:
    """Live or a stored day and time (IST); draws into ``columns`` (three) when given."""
    cols = columns if columns is not None else st.columns([2, 2, 5], vertical_alignment="bottom")
    mode = cols[0].segmented_control("As of", AS_OF_MODES, default=LIVE, required=True, key=f"{key}_mode",
                                     persist_state="session",
                                     help="The live market, or the market as it was at a stored moment")
    if mode == LIVE:
        return AsOf(live=True)
    days = stored_days(ctx)
    if not days:
        cols[1].caption("Nothing stored yet")
        return AsOf(live=True)
    day = cols[1].selectbox("Day", days, format_func=fmt_day, key=f"{key}_day", persist_state="session")
    times = day_times(ctx, day)
    first, last = ist_clock(times[0]), ist_clock(times[-1])
    if first == last:
        cols[2].caption(f"One snapshot at {first:%H:%M:%S} IST")
        return AsOf(live=False, day=day, target=times[-1])
    clock = kept_slider(cols[2], "Time (IST)", key=f"{key}_time_{day.isoformat()}",
                        default=minute_of(last, up=True), min_value=minute_of(first),
                        max_value=minute_of(last, up=True), step=timedelta(minutes=1), format="HH:mm",
                        help="The snapshot in force at the end of this minute")
    return AsOf(live=False, day=day, target=ist_ts(day, clock.replace(second=59)))


def kept_slider(container, label: str, *, key: str, default, min_value, max_value, **options):
    """A slider whose position survives changes of its bounds and visits to other pages.

    Streamlit resets a slider whose ``min_value``/``max_value`` change (today's last
    snapshot moves every few seconds); the position the user chose is kept under
    ``{key}__kept`` and handed back before the widget is drawn. Until the user moves
    it, the slider follows ``default``.
    """
    kept = f"{key}__kept"
    value = st.session_state.get(kept, default)
    st.session_state[key] = min(max(value, min_value), max_value)

    def moved() -> None:
        st.session_state[kept] = st.session_state[key]

    return container.slider(label, min_value=min_value, max_value=max_value, key=key, on_change=moved,
                            **options)


def minute_of(clock: time, *, up: bool = False) -> time:
    """``clock`` to the whole minute, down (or ``up``, within the day)."""
    floor = clock.replace(second=0, microsecond=0)
    if up and floor != clock and floor.hour * 60 + floor.minute < 24 * 60 - 1:
        return (datetime.combine(date.min, floor) + timedelta(minutes=1)).time()
    return floor


def market_at(ctx: ui.Context, when: AsOf) -> tuple[str | None, list[dict]]:
    """``(ts, ticks)`` the page shows: the live snapshot, or the stored one in force."""
    if when.live:
        return ui.live_ticks(ctx)
    return snapshot_as_of(ctx, when.target)


def run_live_or_once(ctx: ui.Context, when: AsOf, body: Callable[[], None]) -> None:
    """Run ``body`` in a fragment refreshed with the feed when live, else once."""
    if when.live:
        st.fragment(run_every=ui.refresh_seconds(ctx.settings))(body)()
    else:
        body()


def pick_expiry(ctx: ui.Context, ticks: list[dict]) -> tuple[date | None, str | None]:
    """The sidebar's expiry when ``ticks`` carry it, else their nearest live one;
    returns ``(expiry, note)`` with a note for the page when it had to fall back."""
    available = analytics.expiries(ticks, ctx.underlying)
    if not available:
        return None, None
    if ctx.expiry in available:
        return ctx.expiry, None
    ts = max((t["ts"] for t in ticks if t.get("ts")), default=None)
    day = parse_ts(ts).date() if ts else None
    live = [e for e in available if day is None or e >= day]
    chosen = (live or available)[0]
    note = (f"The sidebar's expiry {ctx.expiry:%d %b} was not trading then: showing {chosen:%d %b %Y}."
            if ctx.expiry else None)
    return chosen, note


# ---------------------------------------------------------------------- styled tables
# One look for every table laid out calls | strike | puts: the strike column grey, the
# ATM row blue, the in-the-money side shaded, rises green and falls red, numbers as
# :func:`column_formatters` writes them. Builders return a pandas ``Styler`` for
# ``st.dataframe``, the ``*_column_config`` functions its headers.


def mirrored(fields: Sequence[str]) -> list[str]:
    """Columns ``ce_<field>``, the strike, then ``pe_<field>`` in reverse order: the
    calls read outwards from the strike and the puts mirror them."""
    return [*(f"ce_{f}" for f in fields), "strike", *(f"pe_{f}" for f in reversed(fields))]


CHAIN_COLUMNS = mirrored(("oi", "oi_change", "volume", "iv", "ltp", "ltp_change"))
# The exchange's chain: as mirrored, but bid comes before ask on both sides.
EXCHANGE_CALLS = ("oi", "oi_change", "volume", "iv", "delta", "ltp", "ltp_change", "bid", "ask")
EXCHANGE_PUTS = ("bid", "ask", "ltp_change", "ltp", "delta", "iv", "volume", "oi_change", "oi")
OUTER_GREEKS = ("gamma", "theta", "vega")
BUILDUP_FIELDS = ("buildup", "oi", "oi_change", "oi_change_pct", "ltp_change", "ltp")
BUILDUP_COLUMNS = mirrored(BUILDUP_FIELDS)
FUTURE_COLUMNS = ("symbol", "ltp", "ltp_change", "ltp_change_pct", "oi", "oi_change", "oi_change_pct",
                  "volume", "buildup")

ITM_CSS = "background-color: #fbf3d5"
ATM_CSS = "background-color: #cfe0fb; font-weight: 700"
STRIKE_CSS = "background-color: #eef1f6; font-weight: 700"
UP_CSS = "color: #15803d"
DOWN_CSS = "color: #b91c1c"
RESISTANCE_CSS = "color: #b91c1c; font-weight: 700"
SUPPORT_CSS = "color: #15803d; font-weight: 700"
NEUTRAL_CSS = "color: #777777"
ROW_HEIGHT = 32
FIELD_LABELS = {"oi": ("OI", "open interest"), "oi_change": ("Chg OI", "change in OI"),
                "volume": ("Volume", "contracts traded today"), "iv": ("IV", "implied volatility"),
                "delta": ("Delta", "delta"), "gamma": ("Gamma", "gamma"),
                "theta": ("Theta", "theta per calendar day"), "vega": ("Vega", "vega per vol point"),
                "ltp": ("LTP", "last traded price"), "ltp_change": ("Chg", "change in LTP"),
                "bid": ("Bid", "best bid"), "ask": ("Ask", "best ask")}


def exchange_columns(*, greeks: bool = False) -> list[str]:
    """The option-chain page's columns; ``greeks`` adds gamma, theta and vega at the edges."""
    extra = OUTER_GREEKS if greeks else ()
    return [*(f"ce_{f}" for f in (*extra, *EXCHANGE_CALLS)), "strike",
            *(f"pe_{f}" for f in (*EXCHANGE_PUTS, *reversed(extra)))]


def tint(color: str, share: float = 0.28) -> str:
    """``color`` (``#rrggbb``) mixed into white: a background light enough for dark text."""
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return "#" + "".join(f"{round(255 - (255 - c) * share):02x}" for c in (r, g, b))


BUILDUP_CSS = {label: f"background-color: {tint(color)}; font-weight: 600"
               for label, color in charts.BUILDUP_COLORS.items() if label != analytics.NEUTRAL}
BUILDUP_BADGES = {analytics.LONG_BUILDUP: "green", analytics.SHORT_BUILDUP: "red",
                  analytics.SHORT_COVERING: "green", analytics.LONG_UNWINDING: "orange"}


def change_css(value) -> str:
    """Green for a rise, red for a fall, nothing for no change or no number."""
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value == 0:
        return ""
    return UP_CSS if value > 0 else DOWN_CSS


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    # Streamlit would try to serialise attrs (dates among them) with the table, and warn.
    frame.attrs = {}
    return frame


def chain_view(chain: pd.DataFrame, columns: Sequence[str] = CHAIN_COLUMNS, *,
               peaks: analytics.SupportResistance | None = None):
    """The chain's ``columns`` styled: the in-the-money side shaded (from the spot, else
    the future, in ``chain.attrs``), the ATM row blue, changes green or red.

    ``peaks`` (the whole chain's :func:`analytics.support_resistance`, as the page's
    cards show it) puts the call OI at the resistance strike in bold red and the put OI
    at the support strike in bold green.
    """
    spot = chain.attrs.get("spot") or chain.attrs.get("future")
    atm = chain.attrs.get("atm")
    view = _plain(chain[list(columns)].copy())
    calls = [c for c in columns if c.startswith("ce_")]
    puts = [c for c in columns if c.startswith("pe_")]

    def shade(frame: pd.DataFrame) -> pd.DataFrame:
        css = pd.DataFrame("", index=frame.index, columns=frame.columns)
        strikes = frame["strike"]
        if spot is not None:
            css.loc[strikes < spot, calls] = ITM_CSS
            css.loc[strikes > spot, puts] = ITM_CSS
        css["strike"] = STRIKE_CSS
        if atm is not None:
            css.loc[strikes == atm, :] = ATM_CSS
        if peaks is not None:
            for column, strike, peak_css in (("ce_oi", peaks.resistance, RESISTANCE_CSS),
                                             ("pe_oi", peaks.support, SUPPORT_CSS)):
                if column in css.columns and strike is not None:
                    at = strikes == strike
                    css.loc[at, column] = (css.loc[at, column] + "; " + peak_css).str.lstrip("; ")
        return css

    changes = [c for c in columns if c.endswith("_change")]
    return (view.style.apply(shade, axis=None).map(change_css, subset=changes)
            .format(column_formatters(columns)))


def side_column_config(labels: dict[str, tuple[str, str]], *, centred: Sequence[str] = ()) -> dict:
    """Headers for a calls | strike | puts table: ``labels`` maps a field to its header
    and meaning; the side goes in the help text."""
    config = {"strike": st.column_config.Column("Strike", help="ATM row in blue", alignment="center")}
    for prefix, side in (("ce_", "Call"), ("pe_", "Put")):
        for name, (label, meaning) in labels.items():
            config[prefix + name] = st.column_config.Column(
                label, help=f"{side} {meaning}", alignment="center" if name in centred else "right")
    return config


def chain_column_config(change_ref: str | None = None) -> dict:
    """Headers as on the exchange's chain; changes say what they are measured from."""
    since = f" since {change_ref}" if change_ref else ""
    return side_column_config({name: (label, meaning + since if name.endswith("_change") else meaning)
                               for name, (label, meaning) in FIELD_LABELS.items()})


def calls_puts_header() -> None:
    """CALLS and PUTS over the two halves of the table below."""
    head = st.columns(2)
    head[0].markdown(":red[**CALLS**]", text_alignment="center")
    head[1].markdown(":green[**PUTS**]", text_alignment="center")


def buildup_strikes(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`analytics.buildup_table`'s options as one row per strike, in
    :data:`BUILDUP_COLUMNS` (calls | strike | puts)."""
    options = table[table["kind"].isin(["CE", "PE"])]
    frame = pd.DataFrame({"strike": sorted(options["strike"].unique())})
    for kind, prefix in (("CE", "ce_"), ("PE", "pe_")):
        side = options[options["kind"] == kind].set_index("strike")
        for name in BUILDUP_FIELDS:
            frame[prefix + name] = frame["strike"].map(side[name]) if len(side) else math.nan
    return frame[BUILDUP_COLUMNS]


def buildup_view(frame: pd.DataFrame, atm: float | None):
    """:func:`buildup_strikes` styled: each build-up in its colour, changes green or red."""

    def shade(view: pd.DataFrame) -> pd.DataFrame:
        css = pd.DataFrame("", index=view.index, columns=view.columns)
        css["strike"] = STRIKE_CSS
        if atm is not None:
            css.loc[view["strike"] == atm, "strike"] = ATM_CSS
        for column in ("ce_buildup", "pe_buildup"):
            css[column] = view[column].map(lambda b: BUILDUP_CSS.get(b, NEUTRAL_CSS))
        return css

    changes = [c for c in frame.columns if "_change" in c]
    return (_plain(frame).style.apply(shade, axis=None).map(change_css, subset=changes)
            .format(column_formatters(frame.columns))
            .format(lambda b: b if isinstance(b, str) else MISSING, subset=["ce_buildup", "pe_buildup"]))


def buildup_column_config(since: str) -> dict:
    return side_column_config(
        {"buildup": ("Build-up", "classified from the change in price and OI"),
         "oi": ("OI", "open interest"), "oi_change": ("Chg OI", f"OI change since {since}"),
         "oi_change_pct": ("Chg OI %", f"OI change since {since}, percent"),
         "ltp_change": ("Chg", f"price change since {since}"), "ltp": ("LTP", "last traded price")},
        centred=("buildup",))


def futures_view(table: pd.DataFrame):
    """The futures rows of :func:`analytics.buildup_table`, styled; None without any."""
    futures = table[table["kind"] == "FUT"]
    if futures.empty:
        return None
    view = _plain(futures[list(FUTURE_COLUMNS)].reset_index(drop=True))
    return (view.style.map(change_css, subset=[c for c in FUTURE_COLUMNS if "_change" in c])
            .map(lambda b: BUILDUP_CSS.get(b, ""), subset=["buildup"])
            .format(column_formatters(view.columns)))


def futures_column_config(since: str) -> dict:
    def number(label: str, help: str | None = None):
        return st.column_config.Column(label, alignment="right", help=help)

    after = f"Since {since}"
    return {"symbol": "Future", "ltp": number("LTP"), "ltp_change": number("Chg", after),
            "ltp_change_pct": number("Chg %", after), "oi": number("OI"),
            "oi_change": number("Chg OI", after), "oi_change_pct": number("Chg OI %", after),
            "volume": number("Volume"), "buildup": st.column_config.Column("Build-up", alignment="center")}


def skew_view(table: pd.DataFrame):
    """:func:`analytics.equidistant_skew` styled: put figures green, call figures red."""
    view = _plain(table.rename(columns={"distance": "distance_strike"}))
    return (view.style.format({"distance_strike": lambda d: f"±{fmt_strike(d)}", "put_strike": fmt_strike,
                               "call_strike": fmt_strike, "put_iv": fmt_pct, "call_iv": fmt_pct,
                               "put_minus_call": lambda x: f"{fmt_change(x)} pts"})
            .map(lambda _: f"color: {charts.PUT_COLOR}", subset=["put_strike", "put_iv"])
            .map(lambda _: f"color: {charts.CALL_COLOR}", subset=["call_strike", "call_iv"]))


SKEW_COLUMN_CONFIG = {
    "distance_strike": st.column_config.Column("From ATM", help="Points either side of ATM"),
    "put_strike": st.column_config.Column("Put strike", alignment="right"),
    "put_iv": st.column_config.Column("Put IV", alignment="right"),
    "call_strike": st.column_config.Column("Call strike", alignment="right"),
    "call_iv": st.column_config.Column("Call IV", alignment="right"),
    "put_minus_call": st.column_config.Column(
        "Put − call", alignment="right",
        help="OTM put IV minus OTM call IV at the same distance: positive = put skew"),
}


def table_height(rows: int) -> int:
    """A table's height showing all ``rows`` without a scroll bar."""
    return (rows + 1) * ROW_HEIGHT + 3


# ---------------------------------------------------------------------- the replay player
# The page plays a session by moving a market clock ``speed`` times as fast as the wall
# clock and showing the snapshot in force; these are its pure parts.


def snapshot_interval(times: Sequence[str]) -> float:
    """The day's usual gap between snapshots in seconds (the collector's interval)."""
    if len(times) < 2:
        return 1.0
    sample = times[:200]
    gaps = [(parse_ts(b) - parse_ts(a)).total_seconds() for a, b in zip(sample, sample[1:])]
    return max(statistics.median(gaps), 0.001)


def play_cadence(speed: float, interval: float) -> tuple[float, float]:
    """``(seconds between steps, market seconds per step)`` at ``speed``×: a step per
    snapshot, but never more often than every :data:`MIN_PLAY_PERIOD_S` (faster speeds
    skip snapshots instead)."""
    period = max(interval / speed, MIN_PLAY_PERIOD_S)
    return period, speed * period


def position_of(times: Sequence[str], ts: str) -> int:
    """Index in ``times`` of the snapshot in force at ``ts`` (the first before it)."""
    return max(bisect_right(times, ts) - 1, 0)


def snapshot_labels(times: Sequence[str]) -> list[str]:
    """The replay slider's labels: each snapshot's IST time, ``'13:07:05'``, with
    milliseconds (``'13:07:05.500'``) where snapshots share a second, so every label
    is unique (the select slider tells its positions apart by label). Memoised: a
    page run costs a hash of the list."""
    return list(_snapshot_labels(tuple(times)))


@lru_cache(maxsize=8)
def _snapshot_labels(times: tuple[str, ...]) -> tuple[str, ...]:
    if not len(times):
        return []
    moments = pd.to_datetime(pd.Series(times), utc=True, format="ISO8601").dt.tz_convert(IST)
    hours, minutes, seconds = (moments.dt.hour.to_numpy(), moments.dt.minute.to_numpy(),
                               moments.dt.second.to_numpy())
    labels = [f"{h:02d}:{m:02d}:{s:02d}" for h, m, s in zip(hours, minutes, seconds)]
    if len(set(labels)) < len(labels):
        millis = moments.dt.microsecond.to_numpy() // 1000
        shared = pd.Series(labels).duplicated(keep=False).to_numpy()
        labels = [f"{label}.{ms:03d}" if twin else label for label, ms, twin in zip(labels, millis, shared)]
        seen: dict[str, int] = {}
        for i, label in enumerate(labels):  # a last resort: the store keeps milliseconds
            seen[label] = seen.get(label, 0) + 1
            if seen[label] > 1:
                labels[i] = f"{label} #{seen[label]}"
    return tuple(labels)


def play_step(times: Sequence[str], pos: str, market: datetime) -> tuple[str, datetime]:
    """``(snapshot, market clock)`` after a step that moved the market clock to ``market``:
    the snapshot in force then; when that is still ``pos`` and a pause longer than
    :data:`analytics.SERIES_GAP` follows it (the market closed, the collector stopped),
    the first snapshot after the pause, with the clock moved there."""
    i = position_of(times, pos)
    j = position_of(times, format_ts(market))
    if j == i and i + 1 < len(times) and parse_ts(times[i + 1]) - parse_ts(pos) > analytics.SERIES_GAP:
        j, market = i + 1, parse_ts(times[i + 1])
    return times[min(j, len(times) - 1)], market


# ---------------------------------------------------------------------- a replay step


@dataclass
class ReplayFrame:
    """What the replay page draws for one moment."""

    ts: str | None
    chain: pd.DataFrame
    window: pd.DataFrame  # the chain around ATM, for the table
    figures: dict[str, go.Figure] = field(default_factory=dict)
    pcr: float = math.nan
    max_pain: float | None = None
    atm_iv: float = math.nan
    skew: analytics.SkewMetrics | None = None


def has_changes(chain: pd.DataFrame) -> bool:
    """Whether the chain carries any non-zero OI change (none at the day's first snapshot)."""
    changes = chain.reindex(columns=["ce_oi_change", "pe_oi_change"]).to_numpy(dtype=float)
    return bool((np.nan_to_num(changes) != 0).any())


def replay_frame(ticks: list[dict], base: str, expiry: date | None, *, opening: list[dict] | None,
                 series: pd.DataFrame | None, atm_window: int = 8) -> ReplayFrame:
    """Chain, figures of merit and the three figures of one replay step (no Streamlit).

    ``opening`` is the day's first snapshot (changes are measured from it) and
    ``series`` the day's cached :func:`day_series`, on which the step's time is the cursor.
    """
    chain = analytics.chain_table(ticks, base, expiry, previous=opening or None)
    ts = chain.attrs.get("ts")
    spot = charts.spot_chart(series, ts, height=SPOT_HEIGHT)
    if chain.empty:
        return ReplayFrame(ts, chain, chain, {"spot": spot})
    pain = analytics.max_pain(chain)
    figures = {
        "spot": spot,
        "smile": charts.smile_chart(analytics.smile(chain), height=PANEL_HEIGHT),
        "oi": charts.oi_bars(chain, show_change=has_changes(chain), max_pain=pain, height=PANEL_HEIGHT),
    }
    return ReplayFrame(ts, chain, analytics.around_atm(chain, atm_window), figures, analytics.pcr(chain),
                       pain, analytics.atm_iv(chain), analytics.skew_metrics(chain))


# ---------------------------------------------------------------------- export


@dataclass(frozen=True)
class ExportSelection:
    """What the export page downloads; :func:`export_command` says the same on the CLI.

    ``symbols`` set: those symbols (``--symbol``); else all of ``underlying`` or of one
    ``expiry`` (``--underlying``/``--expiry``). Times are store text, both inclusive.
    """

    db_url: str
    start_ts: str
    end_ts: str
    underlying: str | None = None
    expiry: str | None = None  # ISO date, with underlying
    symbols: tuple[str, ...] = ()

    def resolved_symbols(self, store: TickStore) -> list[str] | None:
        """The symbol list as ``python -m datacentre export`` resolves it (None: every symbol)."""
        symbols = list(self.symbols)
        if self.underlying:
            symbols += select_symbols(store, self.underlying, self.expiry)
        return symbols or None

    def file_name(self) -> str:
        what = (self.symbols[0].replace(" ", "_") if len(self.symbols) == 1
                else f"{len(self.symbols)}_symbols" if self.symbols
                else f"{self.underlying}_{self.expiry}" if self.expiry else str(self.underlying))
        start, end = parse_ts(self.start_ts).astimezone(IST), parse_ts(self.end_ts).astimezone(IST)
        return f"ticks_{what}_{start:%Y%m%d_%H%M}-{end:%H%M}_IST.csv"


@st.cache_data(ttl=EXPORT_TTL_S, show_spinner=False)
def _instruments(db_url: str, base: str) -> list[dict]:
    return ui.get_store(db_url).instruments(base)


def export_symbols(ctx: ui.Context) -> list[str]:
    """The selected underlying's stored symbols for a picker: index, futures, then
    options by expiry and strike, call before put."""
    rows = _instruments(ctx.settings.db_url, ctx.underlying)
    return [r["symbol"] for r in sorted(rows, key=lambda r: (KIND_ORDER.get(r["kind"], len(KIND_ORDER)),
                                                             r["expiry"] or "", r["strike"] or 0, r["kind"]))]


@st.cache_data(ttl=EXPORT_TTL_S, show_spinner=False)
def export_size(selection: ExportSelection) -> tuple[int, int]:
    """``(rows, symbols)`` the selection exports (counting takes a while: cached briefly)."""
    store = ui.get_store(selection.db_url)
    symbols = selection.resolved_symbols(store)
    return store.count(symbols, selection.start_ts, selection.end_ts), len(symbols or [])


def export_preview(store: TickStore, selection: ExportSelection) -> pd.DataFrame:
    """The file's first :data:`PREVIEW_ROWS` rows.

    The store sorts the whole range by (ts, symbol) before the first row comes out, so
    the range's first minutes are read first: when they hold enough rows, those are
    the file's first rows too.
    """
    symbols = selection.resolved_symbols(store)
    start, end = parse_ts(selection.start_ts), parse_ts(selection.end_ts)
    for span in PREVIEW_SPANS:
        stop = selection.end_ts if span is None or start + span >= end else format_ts(start + span)
        ticks = store.iter_ticks(symbols, selection.start_ts, stop)
        try:
            first = list(islice(ticks, PREVIEW_ROWS))
        finally:
            ticks.close()  # releases the streaming connection
        if len(first) == PREVIEW_ROWS or stop == selection.end_ts:
            break
    return pd.DataFrame(first, columns=list(TICK_FIELDS))


def write_export(store: TickStore, selection: ExportSelection, out: BinaryIO) -> int:
    """Write the selection's CSV to a binary file with :func:`csvio.export_csv`, the
    function behind ``python -m datacentre export``, so both give the same bytes.
    Streams: constant memory whatever the range. Returns the data rows."""
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    try:
        return export_csv(store, text, symbols=selection.resolved_symbols(store),
                          start_ts=selection.start_ts, end_ts=selection.end_ts)
    finally:
        text.flush()
        text.detach()


def export_file(db_url: str, selection: ExportSelection) -> Callable[[], bytes]:
    """The download button's ``data`` callable: runs only on click, off the script thread.

    Streamlit 1.67 turns whatever the callable returns into one ``bytes`` object (its
    ``convert_data_to_bytes_and_infer_mime``; generators are not accepted) kept in
    its media store while the session lasts. So the CSV is streamed from the store
    into a temporary file at constant memory, then read back once: the file's bytes
    are the only full copy.
    """

    def generate() -> bytes:
        store = TickStore(db_url, create=False)
        handle, path = tempfile.mkstemp(prefix="datacentre_export_", suffix=".csv")
        try:
            with os.fdopen(handle, "wb") as out:
                write_export(store, selection, out)
            with open(path, "rb") as done:
                return done.read()
        finally:
            store.close()
            os.unlink(path)

    return generate


def export_command(selection: ExportSelection, *, db_url: str | None = None) -> str:
    """The ``python -m datacentre export`` command line that writes the same file."""
    parts = ["python", "-m", "datacentre", "export"]
    if db_url:
        parts += ["--db", db_url]
    for symbol in selection.symbols:
        parts += ["--symbol", symbol]
    if selection.underlying:
        parts += ["--underlying", selection.underlying]
        if selection.expiry:
            parts += ["--expiry", selection.expiry]
    parts += ["--start", selection.start_ts, "--end", selection.end_ts, "--out", selection.file_name()]
    return " ".join(shlex.quote(p) for p in parts)
