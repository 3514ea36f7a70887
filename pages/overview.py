"""Overview: the market at a glance, refreshed live without reloading the page."""
import streamlit as st

from datacentre import analytics
from datacentre.app import charts, reads, ui
from datacentre.app.formatting import (
    MISSING,
    fmt_change,
    fmt_day,
    fmt_delta,
    fmt_moment,
    fmt_pct,
    fmt_price,
    fmt_strike,
)

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
    ref_label, ref_ticks = reads.reference_close(ctx, ts)
    ref = analytics.chain_table(ref_ticks, ctx.underlying, chain.attrs.get("expiry")) if ref_ticks else None
    ref_spot = ref.attrs.get("spot") if ref is not None else None
    ref_future = ref.attrs.get("future") if ref is not None else None
    basis = future - spot if spot is not None and future is not None else None
    ref_basis = ref_future - ref_spot if ref_spot is not None and ref_future is not None else None
    change = spot - ref_spot if spot is not None and ref_spot is not None else None
    change_pct = 100 * change / ref_spot if change is not None and ref_spot else None

    atm = chain.attrs.get("atm")
    iv, oi = analytics.atm_iv(chain), analytics.oi_summary(chain)
    ref_iv = analytics.atm_iv(ref) if ref is not None else None
    ref_oi = analytics.oi_summary(ref) if ref is not None else None
    vs = f"vs {ref_label}" if ref_label else ""
    after_hours = ui.session_label(ts)

    top = st.columns(5)
    ui.metric(top[0], ctx.index_symbol, fmt_price(spot), fmt_delta(spot, ref_spot),
              help=f"Index level; change {vs}")
    ui.metric(top[1], "Future", fmt_price(future), fmt_delta(future, ref_future),
              help=f"Nearest-month future; change {vs}")
    ui.metric(top[2], "Basis", fmt_change(basis), fmt_delta(basis, ref_basis), delta_color="off",
              help=f"Future minus spot; change {vs}")
    ui.metric(top[3], "Day change", fmt_change(change),
              None if change_pct is None else fmt_change(change_pct, kind="pct"),
              delta_description=ref_label,
              help=f"Spot {vs}" if vs else "No earlier session stored to compare with")
    age, warning = ui.freshness(ctx, ts)
    # The tick's time stays in view after hours too, so the card visibly moves with each snapshot.
    status = (warning, after_hours) if warning else (after_hours, fmt_moment(ts))
    ui.metric(top[4], "Last tick", age, " · ".join(filter(None, status)),
              delta_color="red" if warning else "orange" if after_hours else "green", delta_arrow="off",
              help=f"Age of the newest snapshot, {fmt_moment(ts)}" +
                   ("; taken after hours, outside the exchange's session" if after_hours else ""))

    scope = ui.oi_scope(oi, chain)
    bottom = st.columns(5)
    ui.metric(bottom[0], "ATM strike", fmt_strike(atm),
              None if atm is None or spot is None else f"spot {fmt_change(spot - atm)} pts",
              delta_color="off", delta_arrow="off")
    ui.metric(bottom[1], "ATM IV", fmt_pct(iv), fmt_delta(iv, ref_iv, suffix=" vol pts"), delta_color="gray",
              help=f"Mean of ATM call and put IV; change {vs}")
    ui.oi_metrics(bottom[2], bottom[3], oi, ref_oi, spot, scope, vs)
    expiry = chain.attrs.get("expiry")
    days = chain.attrs.get("days_to_expiry")
    ui.metric(bottom[4], "Expiry", expiry.strftime("%d %b") if expiry else MISSING,
              None if days is None else f"{days:.1f} days left", delta_color="off", delta_arrow="off")

    # The day chart is a session's: today's while the exchange is open, else the last one.
    day = reads.moment_series(ctx, ts, expiry)
    if day.frame is not None and not day.frame.empty:
        title = f"Last session, {fmt_day(day.day)}: the exchange is closed" if after_hours else None
        st.plotly_chart(charts.spot_chart(day.frame, title=title, span=day.span),
                        key="overview_spot_chart", config={"displayModeBar": False})
    else:
        st.caption("The session's chart appears with the first snapshots of a session.")


live()
