"""Status: are the broadcaster, the collector and the store healthy?"""
import time

import pandas as pd
import streamlit as st

from datacentre.app import launcher, ui
from datacentre.app.formatting import MISSING, fmt_bytes, fmt_moment, fmt_number, fmt_price
from datacentre.clients.health import broadcaster_health, health_url
from datacentre.core.config import stale_after
from datacentre.core.errors import StoreError
from datacentre.core.instruments import UNDERLYINGS

STATS_TTL_S = 10.0
RATE_KEY = "status_rate_sample"
MIN_AVERAGE_S = 30.0  # a younger broadcaster's average rate says little

ctx = ui.context()
store_name = ctx.store.engine.url.render_as_string(hide_password=True) if ctx.store else ctx.settings.db_url
ui.page_header("Status", ctx, caption=f"Broadcaster {ctx.settings.ws_url} · store {store_name}")


@st.cache_data(ttl=STATS_TTL_S, show_spinner=False)
def store_stats(db_url: str) -> dict:
    """``store.stats()``: it counts the whole table, so it is cached for a few seconds."""
    return ui.get_store(db_url).stats()


def store_overview(store) -> tuple[dict, list[dict]]:
    """Store figures, with the newest timestamps read now (indexed, cheap) rather than cached."""
    stats = {**store_stats(ctx.settings.db_url), "last_ts": store.last_ts()}
    return stats, [store.latest(u.index_symbol) or {"symbol": u.index_symbol} for u in UNDERLYINGS.values()]


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def ticks_per_second(health: dict | None) -> float | None:
    """The broadcaster's rate between two refreshes of this page (its average at first)."""
    if not health:
        return None
    sent, now = health.get("ticks_sent") or 0, time.monotonic()
    previous = st.session_state.get(RATE_KEY)
    st.session_state[RATE_KEY] = (now, sent)
    if previous and now - previous[0] >= 0.5 and sent >= previous[1]:
        return (sent - previous[1]) / (now - previous[0])
    uptime = health.get("uptime_s") or 0
    return sent / uptime if uptime >= MIN_AVERAGE_S else None


@st.fragment(run_every=max(ui.refresh_seconds(ctx.settings), 2.0))
def services() -> None:
    health = broadcaster_health(ctx.settings.ws_url, token=ctx.settings.ws_token)
    stale = stale_after(ctx.settings.interval)
    stats, last_ticks, store_error = None, [], ctx.store_error
    if ctx.store is not None:
        try:
            stats, last_ticks = store_overview(ctx.store)
        except StoreError as exc:
            store_error = str(exc)
    collector_age = ui.seconds_since(stats["last_ts"]) if stats else None

    st.markdown("##### Services")
    c = st.columns(5)
    if health:
        c[0].metric("Broadcaster", "Up" if health.get("status") == "ok" else health.get("status", "?"),
                    f"up {ui.fmt_age(health.get('uptime_s'))}", delta_color="green", delta_arrow="off",
                    border=True,
                    help=f"GET {health_url(ctx.settings.ws_url)}")
    else:
        c[0].metric("Broadcaster", "Down", "no answer on /health", delta_color="red", delta_arrow="off",
                    border=True)
    c[1].metric("Subscribers", health.get("subscribers", MISSING) if health else MISSING,
                plural(health.get("connections_total", 0), "connection") + " so far" if health else None,
                delta_color="gray", delta_arrow="off", border=True,
                help="WebSocket clients connected to the broadcaster, this app's feed included")
    rate, note = ticks_per_second(health), f"{fmt_number(health.get('ticks_sent'))} sent" if health else None
    if rate is None and ctx.feed.ticks_per_second():
        rate, note = ctx.feed.ticks_per_second(), "received by this app"  # until a second sample
    c[2].metric("Ticks / s", MISSING if rate is None else f"{rate:,.1f}", note,
                delta_color="gray", delta_arrow="off", border=True,
                help="Ticks the broadcaster sends per second (to all subscribers), between two refreshes")
    collector_ok = collector_age is not None and collector_age <= stale
    c[3].metric("Collector", ui.fmt_age(collector_age),
                "writing" if collector_ok else "no recent snapshot",
                delta_color="green" if collector_ok else "red", delta_arrow="off", border=True,
                help="Age of the newest snapshot in the store")
    label, color, _ = ui.STATE_BADGES.get(ctx.feed.state, ("Unknown", "gray", None))
    c[4].metric("App feed", label, f"{ctx.feed.ticks_per_second():,.0f} ticks/s received",
                delta_color=color, delta_arrow="off", border=True,
                help=f"This app's live feed from {ctx.feed.ws_url}")
    if ctx.launcher.status in (launcher.EMBEDDED, launcher.OFF, launcher.FAILED):
        st.caption(f"Data centre: {ctx.launcher.reason}.")

    st.markdown("##### Tick store")
    if stats is None:
        st.error(f"The store is not available: {store_error}", icon=":material/database:")
        return
    s = st.columns(4)
    s[0].metric("Rows", fmt_number(stats["rows"]), border=True)
    s[1].metric("Size", fmt_bytes(stats["bytes"]), border=True)
    s[2].metric("First tick", fmt_moment(stats["first_ts"]), border=True)
    s[3].metric("Last tick", fmt_moment(stats["last_ts"]), border=True)

    st.markdown("##### Last tick per underlying")
    rows = []
    for base, tick in zip(UNDERLYINGS, last_ticks):
        age = ui.seconds_since(tick.get("ts"))
        fresh = "live" if age is not None and age <= stale else "stale"
        rows.append({"Underlying": base, "Index": tick["symbol"],
                     "Last tick (IST)": fmt_moment(tick.get("ts")), "Age": ui.fmt_age(age),
                     "Spot": fmt_price(tick.get("ltp")),
                     "State": " · ".join(filter(None, (fresh, ui.session_label(tick.get("ts")))))})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="content",
                 column_config={"Spot": st.column_config.Column(alignment="right"),
                                "State": st.column_config.Column(
                                    help=f"live: newer than {stale:.0f} s; after hours: outside the "
                                         "exchange's session (09:15-15:30 IST)")})

    with st.expander("Details"):
        left, right = st.columns(2)
        left.caption("Broadcaster /health")
        left.json(health or {"status": "no answer"})
        right.caption("App feed")
        right.json(ctx.feed.stats())
        if ctx.launcher.data_centre is not None:
            right.caption("Embedded data centre")
            right.json(ctx.launcher.data_centre.status())


services()
