"""Shared Streamlit pieces: the app's resources, the sidebar and small widgets.

Every page starts with::

    from datacentre.app import ui

    ctx = ui.context()          # settings, store, feed, launcher, underlying, expiry

``app.py`` calls :func:`app_shell` before running the page: it starts the embedded
data centre when needed (showing the backfill's progress), creates the store and
the live feed (both ``st.cache_resource`` singletons) and draws the sidebar whose
underlying and expiry every page follows. Live parts of a page go in a fragment
that reruns every :func:`refresh_seconds` and read :func:`live_ticks`; history
comes from ``ctx.store``.

Streamlit is imported only under ``datacentre/app/`` and ``pages/``; the feed thread never calls it.
"""
from __future__ import annotations

import runpy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from datacentre.app import livefeed
from datacentre.app.formatting import (
    MISSING,
    UNCHANGED,
    fmt_day,
    fmt_delta,
    fmt_expiry,
    fmt_from_spot,
    fmt_moment,
    fmt_ratio,
    fmt_strike,
)
from datacentre.app.launcher import CHECKING, FAILED, DataCentreLauncher, ensure_data_centre
from datacentre.app.livefeed import LiveFeed
from datacentre.core.config import Settings, stale_after
from datacentre.core.errors import DataCentreError, StoreError, SymbolError
from datacentre.core.instruments import (
    UNDERLYINGS,
    in_session,
    last_complete_session,
    next_session_open,
    parse_symbol,
    underlying,
)
from datacentre.core.ticks import IST, now_utc, parse_ts
from datacentre.store.tickstore import TickStore

UNDERLYING_KEY = "underlying"
DEFAULT_UNDERLYING = "NIFTY"
EXPIRY_KEY = "expiry"
REFRESH_MIN_S = 1.0
REFRESH_MAX_S = 5.0
STORE_SNAPSHOT_TTL_S = 2.0

STATE_BADGES = {
    livefeed.CONNECTED: ("Connected", "green", ":material/wifi:"),
    livefeed.EMBEDDED: ("Embedded", "green", ":material/hub:"),
    livefeed.CONNECTING: ("Connecting", "orange", ":material/sync:"),
    livefeed.RECONNECTING: ("Reconnecting", "orange", ":material/sync_problem:"),
    livefeed.STOPPED: ("Stopped", "red", ":material/wifi_off:"),
}


@dataclass(frozen=True)
class Context:
    """What a page needs; from :func:`context`."""

    settings: Settings
    launcher: DataCentreLauncher
    store: TickStore | None
    store_error: str | None
    feed: LiveFeed
    underlying: str  # NIFTY or BANKNIFTY
    expiry: date | None

    @property
    def index_symbol(self) -> str:
        return underlying(self.underlying).index_symbol


# ---------------------------------------------------------------------- resources


def settings() -> Settings:
    """Settings from the environment; a bad value stops the page with a clear message."""
    try:
        return Settings.from_env()
    except DataCentreError as exc:
        st.error(f"Configuration error: {exc}", icon=":material/settings_alert:")
        st.stop()


def _close_store(store: TickStore) -> None:
    store.close()


@st.cache_resource(show_spinner=False, on_release=_close_store)
def get_store(db_url: str) -> TickStore:
    """The app's :class:`TickStore` for ``db_url`` (one per server process)."""
    return TickStore(db_url)


@st.cache_resource(show_spinner=False, on_release=livefeed.stop_feed, validate=lambda feed: feed.alive)
def get_feed(ws_url: str, token: str | None, db_url: str) -> LiveFeed:
    """The process's one :class:`LiveFeed` on ``ws_url``, primed from the store.

    Starting a feed stops any earlier one on the same URL (a source edit or a
    cache clear makes a new entry here), and ``on_release`` stops it when the cache
    drops it, so reruns never add threads.
    """
    feed = livefeed.start_feed(ws_url, token=token)
    try:
        feed.prime_from_store(get_store(db_url))
    except DataCentreError:
        pass  # the feed alone still shows the live market
    return feed


def start_data_centre_ui(s: Settings) -> DataCentreLauncher:
    """:func:`ensure_data_centre`, with a progress bar while it backfills and starts."""
    launcher = ensure_data_centre(s)
    while launcher.status == CHECKING and not launcher.wait(0.05):
        pass  # the probe of /health: a second at most
    if not launcher.done:
        box = st.empty()
        with box.container():
            st.markdown("### Starting the data centre")
            st.caption(f"No broadcaster answered at {s.ws_url}, so this app runs the collector and the "
                       "broadcaster itself. An empty store first gets the last complete session, "
                       "so charts and replay have a day to show; later starts skip this.")
            bar = st.progress(0.0, text="Starting…")
        while not launcher.wait(0.25):
            done, total = launcher.progress or (0, 0)
            if total:
                bar.progress(min(done / total, 1.0),
                             text=f"First start: backfilling the last session for charts and replay "
                                  f"— {done:,} of {total:,} snapshots")
            else:
                bar.progress(0.0, text="Starting the collector and the broadcaster…")
        box.empty()
    if launcher.status == FAILED:
        st.error(f"{launcher.reason}. Check that port {s.ws_port} is free, or start it yourself "
                 f"with `python -m datacentre run`.", icon=":material/error:")
    return launcher


def _open_store(db_url: str) -> tuple[TickStore | None, str | None]:
    try:
        return get_store(db_url), None
    except StoreError as exc:
        return None, str(exc)


def require_store(ctx: Context) -> TickStore:
    """The store, or an error on the page and a stop."""
    if ctx.store is None:
        st.error(f"The tick store is not available: {ctx.store_error}", icon=":material/database:")
        st.stop()
    return ctx.store


_APP_RUN = threading.local()


@contextmanager
def app_run() -> Iterator[None]:
    """Marks the script thread as running a page from ``app.py`` (``with ui.app_run(): page.run()``)."""
    _APP_RUN.depth = getattr(_APP_RUN, "depth", 0) + 1
    try:
        yield
    finally:
        _APP_RUN.depth -= 1


def _require_app() -> None:
    """Run ``app.py`` instead when Streamlit runs a page file on its own.

    Because a ``pages/`` folder exists, Streamlit (1.67) opens a deep link such as
    ``/option_chain`` in a new session by running ``pages/option_chain.py`` directly,
    without the entry point: no page config, no sidebar, no data centre. Running
    ``app.py`` here instead lets its ``st.navigation`` pick the same page by URL and
    run it properly; then this run stops.
    """
    ctx = get_script_run_ctx()
    if ctx is None or getattr(_APP_RUN, "depth", 0) or ctx.fragment_ids_this_run:
        return
    runpy.run_path(str(ctx.main_script_path), run_name="__main__")
    st.stop()


def context() -> Context:
    """The resources and the sidebar's selection (cheap: everything is cached).

    Call it first thing in a page: it also makes sure ``app.py`` is running the page.
    """
    _require_app()
    s = settings()
    launcher = ensure_data_centre(s)
    store, store_error = _open_store(s.db_url)
    feed = get_feed(s.ws_url, s.ws_token, s.db_url)
    feed.embedded = launcher.embedded
    base = st.session_state.get(UNDERLYING_KEY) or DEFAULT_UNDERLYING
    return Context(s, launcher, store, store_error, feed, base, st.session_state.get(EXPIRY_KEY))


def app_shell() -> Context:
    """Start what the app needs, draw the sidebar; returns the page context."""
    s = settings()
    start_data_centre_ui(s)
    ctx = context()
    if ctx.store_error:
        st.error(f"The tick store is not available: {ctx.store_error}", icon=":material/database:")
    sidebar_ui(ctx)
    return context()


# ---------------------------------------------------------------------- live data


@st.cache_data(ttl=STORE_SNAPSHOT_TTL_S, show_spinner=False)
def _store_snapshot(db_url: str) -> tuple[str | None, list[dict]]:
    store = get_store(db_url)
    last = store.last_ts()
    return (last, store.snapshot_at(last)) if last else (None, [])


def live_ticks(ctx: Context) -> tuple[str | None, list[dict]]:
    """The newest snapshot ``(ts, ticks)``: from the feed, or the store until the feed has one."""
    snap = ctx.feed.snapshot()
    if snap is not None:
        return snap["ts"], snap["ticks"]
    if ctx.store is None:
        return None, []
    try:
        return _store_snapshot(ctx.settings.db_url)
    except StoreError:
        return None, []


def option_expiries(ticks: list[dict], base: str) -> list[date]:
    """Expiries of ``base``'s options in ``ticks``, nearest first."""
    found = set()
    for tick in ticks:
        try:
            ins = parse_symbol(tick["symbol"])
        except SymbolError:
            continue
        if ins.is_option and ins.underlying == base:
            found.add(ins.expiry)
    return sorted(found)


def refresh_seconds(s: Settings) -> float:
    """How often live fragments rerun: the collector's interval, within 1-5 s."""
    return min(max(s.interval, REFRESH_MIN_S), REFRESH_MAX_S)


# ---------------------------------------------------------------------- formatting


def seconds_since(ts: str | None) -> float | None:
    """How old a tick stamped ``ts`` is, in seconds (None for no tick)."""
    return None if not ts else (now_utc() - parse_ts(ts)).total_seconds()


def fmt_age(seconds: float | None) -> str:
    """``'3 s'``, ``'4 min'``, ``'2 h 05 min'``, ``'3 days'``."""
    if seconds is None:
        return MISSING
    s = int(max(seconds, 0))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    days = s // 86400
    return f"{days} day" if days == 1 else f"{days} days"


# ---------------------------------------------------------------------- widgets


def sidebar_ui(ctx: Context) -> tuple[str, date | None]:
    """Underlying, expiry and the feed's state in the sidebar; returns the selection."""
    with st.sidebar:
        # bound to ?underlying=... so a link opens the same view
        base = st.segmented_control("Underlying", list(UNDERLYINGS), key=UNDERLYING_KEY, required=True,
                                    default=DEFAULT_UNDERLYING, width="stretch", bind="query-params")
        _, ticks = live_ticks(ctx)
        expiries = option_expiries(ticks, base)
        if st.session_state.get(EXPIRY_KEY) not in expiries:
            st.session_state[EXPIRY_KEY] = expiries[0] if expiries else None
        st.selectbox("Expiry", expiries, key=EXPIRY_KEY, format_func=_expiry_label,
                     placeholder="waiting for data", disabled=not expiries)
        st.divider()
        feed_status_ui(ctx)
    return base, st.session_state.get(EXPIRY_KEY)


def _expiry_label(expiry: date) -> str:
    return f"{fmt_expiry(expiry)} ({expiry:%a})"


def feed_status_ui(ctx: Context) -> None:
    """The connection badge and the last tick's age, refreshed on their own."""

    @st.fragment(run_every=refresh_seconds(ctx.settings))
    def _status() -> None:
        label, color, icon = STATE_BADGES.get(ctx.feed.state, ("Unknown", "gray", None))
        st.badge(label, icon=icon, color=color,
                 help=f"Live feed from {ctx.feed.ws_url}" +
                      (" (started by this app)" if ctx.launcher.embedded else ""))
        if simulated(ctx):
            st.badge("Simulated market", icon=":material/science:", color="orange",
                     help="The market simulator is the source: these are not exchange prices")
        ts, _ = live_ticks(ctx)
        age = ctx.feed.last_tick_age()
        if age is None:
            age = seconds_since(ts)
        stale = age is None or age > stale_after(ctx.settings.interval)
        text = f"Last tick {fmt_age(age)} ago" if age is not None else "No ticks yet"
        hours = "Market open" if in_session(now_utc()) else "Market closed"
        st.caption(f"{':orange[' if stale else ''}{text}{']' if stale else ''}  \n{fmt_moment(ts)}"
                   f"{f' · {AFTER_HOURS}' if session_label(ts) else ''}  \n{hours}")

    _status()


def freshness(ctx: Context, ts: str | None) -> tuple[str, str | None]:
    """``(age text, warning or None)`` for a metric of the feed's freshness."""
    age = seconds_since(ts)
    if age is None:
        return MISSING, "no data yet"
    if age > stale_after(ctx.settings.interval):
        return fmt_age(age), "stale"
    return fmt_age(age), None


SIMULATED_BADGE = ":orange-badge[:material/science: Simulated market]"
REPLAY_PAGE = "pages/replay.py"
AFTER_HOURS = "after hours"


def simulated(ctx: Context) -> bool:
    """Whether the market shown comes from the simulator (its ticks say ``source: sim``)."""
    _, ticks = live_ticks(ctx)
    return any(t.get("source") == "sim" for t in ticks)


def session_label(ts: str | None) -> str | None:
    """:data:`AFTER_HOURS` for a tick outside the exchange's session, else None."""
    return AFTER_HOURS if ts and not in_session(ts) else None


def market_banner(ctx: Context) -> None:
    """Outside market hours: that the exchange is closed, when it opens, what the live
    prices are then, and a link to replay the last session."""
    now = now_utc()
    if in_session(now):
        return
    opens = next_session_open(now).astimezone(IST)
    last = last_complete_session(now)
    what = ("The simulator keeps running, so the live prices are **after hours** ticks, not a session."
            if simulated(ctx) else "Prices shown live are the last ones received.")
    st.info(f"**The exchange is closed** — it opens {opens:%a %d %b, %H:%M} IST. {what}",
            icon=":material/bedtime:")
    # the app's own link (a markdown one opens a new tab and a new session)
    st.page_link(REPLAY_PAGE, label=f"Replay the last session, {fmt_day(last)}", icon=":material/replay:",
                 query_params={"underlying": ctx.underlying, "session": last.isoformat()})


def page_header(title: str, ctx: Context, *, caption: str | None = None) -> None:
    """The page title with the selected underlying and expiry (or ``caption``) in grey, the
    "Simulated market" badge when the source is the simulator, and outside market hours
    the closed-exchange banner (:func:`market_banner`)."""
    expiry = f" · {_expiry_label(ctx.expiry)}" if ctx.expiry else ""
    badge = f" &nbsp;{SIMULATED_BADGE}" if simulated(ctx) else ""
    st.markdown(f"### {title} &nbsp;:gray[:small[{caption or ctx.index_symbol + expiry}]]{badge}")
    market_banner(ctx)


def oi_scope(summary, chain) -> str:
    """Exactly what a chain's OI figures (an :class:`analytics.OISummary` of ``chain``)
    cover, for their help texts: the strikes, the expiry and the snapshot."""
    expiry, ts = chain.attrs.get("expiry"), chain.attrs.get("ts")
    if not summary.strikes or expiry is None:
        return "no strikes of this expiry in the snapshot"
    return (f"the {summary.strikes} strikes {fmt_strike(summary.low)}–{fmt_strike(summary.high)} of the "
            f"{expiry:%d %b} expiry in the snapshot of {fmt_moment(ts)}")


def oi_metrics(pcr_slot, pain_slot, oi, then, spot, scope: str, since: str) -> None:
    """The PCR and max pain cards of an :class:`analytics.OISummary` (``then``: the one
    changes are measured from, or None), saying what they cover (``scope``)."""
    metric(pcr_slot, "PCR (OI)", fmt_ratio(oi.pcr), fmt_delta(oi.pcr, then and then.pcr),
           help=f"Put OI / call OI over {scope}; change {since}")
    metric(pain_slot, "Max pain", fmt_strike(oi.max_pain), fmt_from_spot(oi.max_pain, spot),
           delta_color="off", delta_arrow="off",
           help=f"Settlement price at which option buyers would be paid least, over {scope}")


def metric(container, label: str, value, delta: str | None = None, *, delta_color: str = "normal",
           **options) -> None:
    """``container.metric`` bordered, with an :data:`UNCHANGED` delta drawn grey and
    without an arrow (a coloured arrow would claim a move)."""
    if delta == UNCHANGED:
        delta_color, options["delta_arrow"] = "gray", "off"
    options.setdefault("border", True)
    container.metric(label, value, delta, delta_color=delta_color, **options)
