"""Option chain in the exchange's layout: calls | strike | puts, refreshed live or as of a stored time."""
import streamlit as st

from datacentre import analytics
from datacentre.app import asof, tables, ui
from datacentre.app.formatting import (
    MISSING,
    fmt_change,
    fmt_delta,
    fmt_moment,
    fmt_oi,
    fmt_price,
    fmt_ratio,
    fmt_strike,
)

WINDOWS = {5: "±5", 10: "±10", 15: "±15", 0: "All"}

ctx = ui.context()
ui.page_header("Option chain", ctx)

controls = st.columns([3, 2, 2, 2, 4], vertical_alignment="bottom")
window = controls[0].segmented_control("Strikes around ATM", list(WINDOWS), format_func=WINDOWS.get,
                                       default=10, required=True, key="chain_window", persist_state="session")
show_greeks = controls[1].toggle("Gamma, theta, vega", key="chain_greeks", persist_state="session",
                                 help="Show gamma, theta and vega too, at the outer edges of the table")
when = asof.as_of_ui(ctx, "chain", controls[2:]) if ctx.store is not None else asof.AsOf(live=True)


def chain_page() -> None:
    ts, ticks = asof.market_at(ctx, when)
    ref_label, ref_ticks = ui.reference_ticks(ctx, ts)
    # a stored moment shows an expiry it has (an imported day's contracts expired long ago)
    expiry, note = (ctx.expiry, None) if when.live else asof.pick_expiry(ctx, ticks)
    full = analytics.chain_table(ticks, ctx.underlying, expiry, previous=ref_ticks or None)
    if full.empty:
        st.info("No options for this underlying and expiry in the latest snapshot yet." if when.live
                else "No options of this underlying in the snapshot of that moment.",
                icon=":material/hourglass_top:")
        return
    chain = analytics.around_atm(full, window) if window else full
    spot, atm = full.attrs.get("spot"), full.attrs.get("atm")
    ratio, pain = analytics.pcr(full), analytics.max_pain(full)
    support = analytics.support_resistance(full)

    ref = analytics.chain_table(ref_ticks, ctx.underlying, full.attrs.get("expiry")) if ref_ticks else None
    ref_spot = ref.attrs.get("spot") if ref is not None else None
    ref_ratio = analytics.pcr(ref) if ref is not None else None
    since = f"since {ref_label}" if ref_label else "no earlier snapshot"

    m = st.columns(6)
    m[0].metric(ctx.index_symbol, fmt_price(spot), fmt_delta(spot, ref_spot), border=True,
                help=f"Index level; change {since}")
    m[1].metric("ATM strike", fmt_strike(atm),
                None if atm is None or spot is None else f"spot {fmt_change(spot - atm)} pts",
                delta_color="off", delta_arrow="off", border=True)
    m[2].metric("PCR (OI)", fmt_ratio(ratio), fmt_delta(ratio, ref_ratio), border=True,
                help=f"Put OI / call OI over every strike of this expiry; change {since}")
    m[3].metric("Max pain", fmt_strike(pain),
                None if pain is None or spot is None else f"{fmt_change(pain - spot)} pts from spot",
                delta_color="off", delta_arrow="off", border=True,
                help="Settlement price at which option buyers would be paid least")
    m[4].metric("Call OI", fmt_oi(full["ce_oi"].sum()), f"resistance {fmt_strike(support.resistance)}",
                delta_color="red", delta_arrow="off", border=True,
                help="Total call OI of this expiry; resistance is the strike with the most call OI")
    m[5].metric("Put OI", fmt_oi(full["pe_oi"].sum()), f"support {fmt_strike(support.support)}",
                delta_color="green", delta_arrow="off", border=True,
                help="Total put OI of this expiry; support is the strike with the most put OI")

    tables.calls_puts_header()
    st.dataframe(tables.chain_view(chain, tables.exchange_columns(greeks=show_greeks), peaks=support),
                 hide_index=True, column_config=tables.chain_column_config(ref_label),
                 row_height=tables.ROW_HEIGHT, height=tables.table_height(len(chain)), placeholder=MISSING,
                 key="chain_table")
    expiry = full.attrs.get("expiry")
    days = full.attrs.get("days_to_expiry")
    st.caption(f"As of {fmt_moment(ts)} · expiry {expiry:%d %b %Y} "
               f"({MISSING if days is None else f'{days:.1f}'} days) · changes vs {ref_label or MISSING} · "
               "shaded: in the money · bold red / green OI: resistance / support (highest call / put OI)"
               + (f" · {note}" if note else ""))


asof.run_live_or_once(ctx, when, chain_page)
