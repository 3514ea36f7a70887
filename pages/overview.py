"""Overview: the market at a glance, refreshed live without reloading the page."""
import math

import pandas as pd
import streamlit as st

from datacentre import analytics, charts, ui
from datacentre.formatting import MISSING, fmt_change, fmt_pct, fmt_price, fmt_ratio, fmt_strike
from datacentre.ticks import IST

GAP = pd.Timedelta(minutes=5)
MAX_POINTS = 2_000

ctx = ui.context()
ui.page_header("Market overview", ctx)


def finite(x) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def day_series(points) -> pd.DataFrame:
    """The feed's day history in the shape of :func:`analytics.series_frame`, thinned
    to at most :data:`MAX_POINTS` (always keeping the newest).

    A pause longer than :data:`GAP` (the market closed, the collector stopped) gets
    an empty row, so the line breaks there instead of bridging the gap.
    """
    if len(points) > MAX_POINTS:  # a second's resolution over a whole day is more than a chart can show
        step = -(-len(points) // MAX_POINTS)
        points = [*points[:-1:step], points[-1]]
    frame = pd.DataFrame(points, columns=["ts", "spot", "future"]).astype({"spot": float, "future": float})
    frame["time"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601").dt.tz_convert(IST)
    gaps = frame["time"].diff() > GAP
    if gaps.any():
        breaks = pd.DataFrame({"time": frame.loc[gaps, "time"] - pd.Timedelta(milliseconds=1),
                               "spot": math.nan, "future": math.nan})
        frame = pd.concat([frame, breaks]).sort_values("time", kind="stable").reset_index(drop=True)
    frame["basis"] = frame["future"] - frame["spot"]
    return frame


@st.fragment(run_every=ui.refresh_seconds(ctx.settings))
def live() -> None:
    ts, ticks = ui.live_ticks(ctx)
    chain = analytics.chain_table(ticks, ctx.underlying, ctx.expiry)
    spot, future = chain.attrs.get("spot"), chain.attrs.get("future")
    if spot is None and future is None:
        st.info("Waiting for the first snapshot of the market…", icon=":material/hourglass_top:")
        return
    ref_label, ref_ticks = ui.reference_ticks(ctx, ts)
    ref_chain = analytics.chain_table(ref_ticks, ctx.underlying, chain.attrs.get("expiry")) \
        if ref_ticks else None
    ref_spot = ref_chain.attrs.get("spot") if ref_chain is not None else None
    ref_future = ref_chain.attrs.get("future") if ref_chain is not None else None
    basis = future - spot if spot is not None and future is not None else None
    ref_basis = ref_future - ref_spot if ref_spot is not None and ref_future is not None else None
    change = spot - ref_spot if spot is not None and ref_spot is not None else None
    change_pct = 100 * change / ref_spot if change is not None and ref_spot else None

    atm = chain.attrs.get("atm")
    iv, ratio, pain = finite(analytics.atm_iv(chain)), finite(analytics.pcr(chain)), analytics.max_pain(chain)
    ref_iv = finite(analytics.atm_iv(ref_chain)) if ref_chain is not None else None
    ref_ratio = finite(analytics.pcr(ref_chain)) if ref_chain is not None else None
    vs = f"vs {ref_label}" if ref_label else ""
    since = f"since {ref_label}" if ref_label else None

    top = st.columns(5)
    top[0].metric(ctx.index_symbol, fmt_price(spot), None if change is None else fmt_change(change),
                  border=True, help=f"Index level; change {vs}")
    top[1].metric("Future", fmt_price(future),
                  None if future is None or ref_future is None else fmt_change(future - ref_future),
                  border=True, help=f"Nearest-month future; change {vs}")
    top[2].metric("Basis", MISSING if basis is None else fmt_change(basis),
                  None if basis is None or ref_basis is None else fmt_change(basis - ref_basis),
                  delta_color="off", border=True, help=f"Future minus spot; change {vs}")
    top[3].metric("Day change", MISSING if change is None else fmt_change(change),
                  None if change_pct is None else fmt_change(change_pct, kind="pct"),
                  delta_description=since, border=True,
                  help=f"Spot {vs}" if vs else "No earlier snapshot to compare with")
    age, warning = ui.freshness(ctx, ts)
    top[4].metric("Last tick", age, warning or ui.fmt_stamp(ts),
                  delta_color="red" if warning else "green", delta_arrow="off", border=True,
                  help="Age of the newest snapshot")

    bottom = st.columns(5)
    bottom[0].metric("ATM strike", fmt_strike(atm),
                     None if atm is None or spot is None else f"spot {fmt_change(spot - atm)} pts",
                     delta_color="off", delta_arrow="off", border=True)
    bottom[1].metric("ATM IV", fmt_pct(iv),
                     None if iv is None or ref_iv is None else f"{fmt_change(iv - ref_iv)} vol pts",
                     delta_color="gray", border=True, help=f"Mean of ATM call and put IV; change {vs}")
    bottom[2].metric("PCR (OI)", fmt_ratio(ratio),
                     None if ratio is None or ref_ratio is None else fmt_change(ratio - ref_ratio),
                     border=True, help=f"Put OI / call OI over the strikes collected; change {vs}")
    bottom[3].metric("Max pain", fmt_strike(pain),
                     None if pain is None or spot is None else f"{fmt_change(pain - spot)} pts from spot",
                     delta_color="off", delta_arrow="off", border=True,
                     help="Settlement price at which option buyers would be paid least")
    expiry = chain.attrs.get("expiry")
    days = chain.attrs.get("days_to_expiry")
    bottom[4].metric("Expiry", expiry.strftime("%d %b") if expiry else MISSING,
                     None if days is None else f"{days:.1f} days left", delta_color="off",
                     delta_arrow="off", border=True)

    points = ctx.feed.history(ctx.underlying)
    if points:
        st.plotly_chart(charts.spot_chart(day_series(points)), key="overview_spot_chart",
                        config={"displayModeBar": False})
    else:
        st.caption("The intraday chart appears with the first live snapshots.")


live()
