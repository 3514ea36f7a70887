"""Overview: the market at a glance, refreshed live without reloading the page."""
import streamlit as st

from datacentre import analytics
from datacentre.app import charts, ui
from datacentre.app.formatting import (
    MISSING,
    fmt_change,
    fmt_delta,
    fmt_moment,
    fmt_pct,
    fmt_price,
    fmt_ratio,
    fmt_strike,
)

MAX_POINTS = 2_000  # a second's resolution over a whole day is more than a chart can show

ctx = ui.context()
ui.page_header("Market overview", ctx)


@st.fragment(run_every=ui.refresh_seconds(ctx.settings))
def live() -> None:
    ts, ticks = ui.live_ticks(ctx)
    chain = analytics.chain_table(ticks, ctx.underlying, ctx.expiry)
    spot, future = chain.attrs.get("spot"), chain.attrs.get("future")
    if spot is None and future is None:
        st.info("Waiting for the first snapshot of the market…", icon=":material/hourglass_top:")
        return
    ref_label, ref_ticks = ui.reference_ticks(ctx, ts)
    ref = analytics.chain_table(ref_ticks, ctx.underlying, chain.attrs.get("expiry")) if ref_ticks else None
    ref_spot = ref.attrs.get("spot") if ref is not None else None
    ref_future = ref.attrs.get("future") if ref is not None else None
    basis = future - spot if spot is not None and future is not None else None
    ref_basis = ref_future - ref_spot if ref_spot is not None and ref_future is not None else None
    change = spot - ref_spot if spot is not None and ref_spot is not None else None
    change_pct = 100 * change / ref_spot if change is not None and ref_spot else None

    atm = chain.attrs.get("atm")
    iv, ratio, pain = analytics.atm_iv(chain), analytics.pcr(chain), analytics.max_pain(chain)
    ref_iv = analytics.atm_iv(ref) if ref is not None else None
    ref_ratio = analytics.pcr(ref) if ref is not None else None
    vs = f"vs {ref_label}" if ref_label else ""
    since = f"since {ref_label}" if ref_label else None

    top = st.columns(5)
    top[0].metric(ctx.index_symbol, fmt_price(spot), fmt_delta(spot, ref_spot),
                  border=True, help=f"Index level; change {vs}")
    top[1].metric("Future", fmt_price(future), fmt_delta(future, ref_future),
                  border=True, help=f"Nearest-month future; change {vs}")
    top[2].metric("Basis", fmt_change(basis), fmt_delta(basis, ref_basis),
                  delta_color="off", border=True, help=f"Future minus spot; change {vs}")
    top[3].metric("Day change", fmt_change(change),
                  None if change_pct is None else fmt_change(change_pct, kind="pct"), delta_description=since,
                  border=True,
                  help=f"Spot {vs}" if vs else "No earlier snapshot to compare with")
    age, warning = ui.freshness(ctx, ts)
    top[4].metric("Last tick", age, warning or fmt_moment(ts),
                  delta_color="red" if warning else "green", delta_arrow="off", border=True,
                  help="Age of the newest snapshot")

    bottom = st.columns(5)
    bottom[0].metric("ATM strike", fmt_strike(atm),
                     None if atm is None or spot is None else f"spot {fmt_change(spot - atm)} pts",
                     delta_color="off", delta_arrow="off", border=True)
    bottom[1].metric("ATM IV", fmt_pct(iv), fmt_delta(iv, ref_iv, suffix=" vol pts"),
                     delta_color="gray", border=True, help=f"Mean of ATM call and put IV; change {vs}")
    bottom[2].metric("PCR (OI)", fmt_ratio(ratio), fmt_delta(ratio, ref_ratio),
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
        series = analytics.series_frame(points, max_points=MAX_POINTS)
        st.plotly_chart(charts.spot_chart(series), key="overview_spot_chart",
                        config={"displayModeBar": False})
    else:
        st.caption("The intraday chart appears with the first live snapshots.")


live()
