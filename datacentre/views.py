"""Streamlit helpers shared by the analysis pages (IV smile, OI build-up, replay, export).

These pages look at the market *as of* a moment: the live feed's newest snapshot, or
any stored snapshot. The store is read through small caches keyed on the database
URL and the IST day, so stepping through a day fetches only the one snapshot asked
for:

* :func:`stored_days` — the IST days holding snapshots (one index seek per day);
* :func:`day_times` — a day's snapshot times (the replay slider's positions);
* :func:`day_series` — a day's spot, OI, PCR and ATM IV series for the day charts;
* :func:`oi_totals` — a day's call and put OI over every strike seen that day;
* :func:`ticks_at` — one snapshot's ticks by its exact time (immutable, so cached).

Days before today (IST) never change and are cached until evicted; today's entries
expire after :data:`OPEN_DAY_TTL_S`, so live collection shows up.

:func:`replay_frame` is the work of one replay step without Streamlit (the bench
times it as the page runs it); :func:`export_file` and :func:`export_command` make
the export page's download and its command-line equivalent from one
:class:`ExportSelection`.
"""
from __future__ import annotations

import math
import os
import shlex
import tempfile
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import sqlalchemy as sa
import streamlit as st

from . import analytics, charts, ui
from .csvio import csv_lines, select_symbols
from .errors import StoreError
from .formatting import MISSING, column_formatters
from .instruments import underlying
from .store import TickStore, ltp_ticks
from .ticks import IST, format_ts, now_utc, parse_ts

OPEN_DAY_TTL_S = 15.0
DAYS_TTL_S = 30.0
MAX_DAYS = 400  # the stored-day scan stops here
GAP = pd.Timedelta(minutes=5)  # a longer pause in a day series breaks its lines
GAP_MARGIN = pd.Timedelta(minutes=1)
SERIES_POINTS = 500
CALL_MARKER_SIZE = 12
SPOT_HEIGHT = 280
PANEL_HEIGHT = 470
EXPORT_CHUNK_LINES = 2_000

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
    return break_gaps(analytics.series_frame(rows)) if rows else pd.DataFrame()


_closed_series = st.cache_data(max_entries=16, show_spinner=False)(_series)
_open_series = st.cache_data(ttl=OPEN_DAY_TTL_S, show_spinner=False)(_series)


def day_series(ctx: ui.Context, day: date, expiry: date | None) -> pd.DataFrame:
    """``day``'s :func:`analytics.series_frame` (about 500 points), lines broken at pauses."""
    read = _closed_series if day < today() else _open_series
    try:
        return read(ctx.settings.db_url, ctx.underlying, day, expiry.isoformat() if expiry else None)
    except StoreError:
        return pd.DataFrame()


def break_gaps(frame: pd.DataFrame) -> pd.DataFrame:
    """Add an empty row inside each pause longer than :data:`GAP` (the market closed,
    the collector stopped), so charts break the line there instead of bridging it.

    ``attrs["gaps"]`` lists the pauses as ``(last time before, first time after)``
    for :func:`hide_gaps`.
    """
    if len(frame) < 2:
        return frame
    gaps = frame["time"].diff() > GAP
    if not gaps.any():
        return frame
    after = frame.loc[gaps, "time"]
    before = frame["time"].shift(1)[gaps]
    breaks = pd.DataFrame({"time": after - pd.Timedelta(milliseconds=1)})
    out = pd.concat([frame, breaks]).sort_values("time", kind="stable").reset_index(drop=True)
    out.attrs = {**frame.attrs, "gaps": list(zip(before, after))}
    return out


def hide_gaps(fig: go.Figure, series: pd.DataFrame | None) -> go.Figure:
    """Squeeze the series' pauses out of a day chart's time axis (plotly rangebreaks):
    a day with an evening of live ticks after the session keeps the session readable.
    A minute either side of each pause stays visible."""
    gaps = series.attrs.get("gaps") if isinstance(series, pd.DataFrame) else None
    if not gaps:
        return fig
    breaks = []
    for before, after in gaps:
        start = pd.Timestamp(before).tz_convert(IST).tz_localize(None) + GAP_MARGIN
        hidden = (pd.Timestamp(after) - pd.Timestamp(before) - 2 * GAP_MARGIN).total_seconds() * 1000
        if hidden > 0:
            breaks.append({"values": [start.isoformat()], "dvalue": hidden})
    fig.layout.xaxis.rangebreaks = breaks
    return fig


def _oi_totals(db_url: str, base: str, day: date, expiry: str) -> pd.DataFrame:
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
    # A contract outside the collected window has no tick then: hold its nearest known OI.
    oi = oi.ffill().bfill()
    calls = [c for c in oi.columns if legs[c] == "CE"]
    puts = [c for c in oi.columns if legs[c] == "PE"]
    frame = pd.DataFrame({"ts": oi.index, "ce_oi": oi[calls].sum(axis=1).to_numpy(),
                          "pe_oi": oi[puts].sum(axis=1).to_numpy(), "expiry": expiry})
    return break_gaps(analytics.series_frame(frame.to_dict("records")))


_closed_oi_totals = st.cache_data(max_entries=16, show_spinner=False)(_oi_totals)
_open_oi_totals = st.cache_data(ttl=OPEN_DAY_TTL_S, show_spinner=False)(_oi_totals)


def oi_totals(ctx: ui.Context, day: date, expiry: date | None) -> pd.DataFrame:
    """Total call and put OI and the PCR through ``day`` over every strike of ``expiry``
    collected that day, in :func:`analytics.series_frame`'s shape (about 500 points).

    The collector stores a window of strikes around ATM that moves with the spot, so
    summing each snapshot as stored jumps by a strike's whole OI whenever the window
    moves. Here a strike outside the window counts with its nearest known OI (the
    last seen, or the first for strikes that enter later): the totals move only with
    open interest.
    """
    if expiry is None:
        return pd.DataFrame()
    read = _closed_oi_totals if day < today() else _open_oi_totals
    try:
        return read(ctx.settings.db_url, ctx.underlying, day, expiry.isoformat())
    except StoreError:
        return pd.DataFrame()


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


# ---------------------------------------------------------------------- chain table

CHAIN_FIELDS_CALL = ("oi", "oi_change", "volume", "iv", "ltp", "ltp_change")
CHAIN_FIELDS_PUT = tuple(reversed(CHAIN_FIELDS_CALL))
CHAIN_COLUMNS = [*(f"ce_{f}" for f in CHAIN_FIELDS_CALL), "strike", *(f"pe_{f}" for f in CHAIN_FIELDS_PUT)]
ITM_CSS = "background-color: #fbf3d5"
ATM_CSS = "background-color: #cfe0fb; font-weight: 700"
STRIKE_CSS = "background-color: #eef1f6; font-weight: 700"
UP_CSS = "color: #15803d"
DOWN_CSS = "color: #b91c1c"
ROW_HEIGHT = 32
FIELD_LABELS = {"oi": ("OI", "open interest"), "oi_change": ("Chg OI", "change in OI"),
                "volume": ("Volume", "contracts traded today"), "iv": ("IV", "implied volatility"),
                "ltp": ("LTP", "last traded price"), "ltp_change": ("Chg", "change in LTP"),
                "delta": ("Delta", "delta")}


def _sign_css(value) -> str:
    if value is None or not isinstance(value, (int, float)) or not math.isfinite(value) or value == 0:
        return ""
    return UP_CSS if value > 0 else DOWN_CSS


def chain_view(chain: pd.DataFrame, columns: Sequence[str] = CHAIN_COLUMNS):
    """A compact chain (calls | strike | puts) styled as on the option-chain page:
    in-the-money side shaded, ATM row in blue, changes green/red, numbers formatted."""
    spot = chain.attrs.get("spot") or chain.attrs.get("future")
    atm = chain.attrs.get("atm")
    view = chain[list(columns)].copy()
    view.attrs = {}
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
        return css

    changes = [c for c in columns if c.endswith("_change")]
    return (view.style.apply(shade, axis=None).map(_sign_css, subset=changes)
            .format(column_formatters(columns)))


def chain_column_config(change_ref: str | None = None) -> dict:
    since = f" since {change_ref}" if change_ref else ""
    config = {"strike": st.column_config.Column("Strike", help="ATM row in blue", alignment="center")}
    for prefix, side in (("ce_", "Call"), ("pe_", "Put")):
        for name, (label, meaning) in FIELD_LABELS.items():
            suffix = since if name.endswith("_change") else ""
            config[prefix + name] = st.column_config.Column(label, help=f"{side} {meaning}{suffix}",
                                                            alignment="right")
    return config


def table_height(rows: int) -> int:
    return (rows + 1) * ROW_HEIGHT + 3


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


def smile_figure(smile: pd.DataFrame, **options) -> go.Figure:
    """:func:`charts.smile_chart`, with the call markers drawn a size larger: where call
    and put IV coincide (the simulator quotes one IV per strike) the call ring then
    shows around the put diamond instead of hiding under it."""
    fig = charts.smile_chart(smile, **options)
    fig.update_traces(marker_size=CALL_MARKER_SIZE, selector={"name": "Call IV"})
    return fig


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
    spot = hide_gaps(charts.spot_chart(series, ts, height=SPOT_HEIGHT), series)
    if chain.empty:
        return ReplayFrame(ts, chain, chain, {"spot": spot})
    pain = analytics.max_pain(chain)
    smile = analytics.smile(chain)
    atm = chain.attrs.get("atm")
    if atm is not None:
        step = chain.attrs.get("strike_step") or 1
        window = chain[(chain["strike"] - atm).abs() <= atm_window * step + 1e-9].reset_index(drop=True)
    else:
        window = chain
    window.attrs = dict(chain.attrs)
    figures = {
        "spot": spot,
        "smile": smile_figure(smile, height=PANEL_HEIGHT),
        "oi": charts.oi_bars(chain, show_change=has_changes(chain), max_pain=pain, height=PANEL_HEIGHT),
    }
    return ReplayFrame(ts, chain, window, figures, analytics.pcr(chain), pain, analytics.atm_iv(chain),
                       analytics.skew_metrics(chain))


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


def write_export(store: TickStore, selection: ExportSelection, out) -> int:
    """Write the selection's CSV, byte for byte as ``python -m datacentre export``, to a
    binary file; returns the data rows. Streams: constant memory whatever the range."""
    rows = -1
    chunk: list[str] = []
    ticks = store.iter_ticks(selection.resolved_symbols(store), selection.start_ts, selection.end_ts)
    for line in csv_lines(ticks):
        chunk.append(line)
        rows += 1
        if len(chunk) >= EXPORT_CHUNK_LINES:
            out.write("".join(chunk).encode("utf-8"))
            chunk.clear()
    out.write("".join(chunk).encode("utf-8"))
    return rows


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
