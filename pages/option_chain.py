"""Option chain in the exchange's layout: calls | strike | puts, refreshed live or as of a stored time."""
import streamlit as st

from datacentre import analytics
from datacentre.app import asof, reads, tables, ui
from datacentre.app.formatting import (
    MISSING,
    fmt_delta,
    fmt_moment,
    fmt_oi,
    fmt_price,
    fmt_strike,
)

WINDOW_STEPS = (5, 10, 20)
ALL = 0
DEFAULT_WINDOW = 10

ctx = ui.context()
ui.page_header("Option chain", ctx)

controls = st.columns([3, 2, 3, 2, 4, 2], vertical_alignment="bottom")
when = asof.as_of_ui(ctx, "chain", [*controls[2:5], controls[5]]) if ctx.store is not None \
    else asof.AsOf(live=True)


def window_choices(chain) -> list[int]:
    """The strike windows worth offering for ``chain``: those that show fewer strikes than
    the chain holds on its wider side of ATM, and "All"."""
    atm = chain.attrs.get("atm")
    if atm is None or chain.empty:
        return [ALL]
    strikes = chain["strike"]
    widest = max(int((strikes < atm).sum()), int((strikes > atm).sum()))
    return [w for w in WINDOW_STEPS if w < widest] + [ALL]


# The choices follow what is stored now (the live snapshot, or the moment asked for).
_, shown = asof.market_at(ctx, when)
choices = window_choices(analytics.chain_table(shown, ctx.underlying, ctx.expiry if when.live else None))
if st.session_state.get("chain_window") not in choices:
    st.session_state["chain_window"] = DEFAULT_WINDOW if DEFAULT_WINDOW in choices else ALL
window = controls[0].segmented_control(
    "Strikes around ATM", choices, format_func=lambda w: f"±{w}" if w else "All", required=True,
    key="chain_window", persist_state="session",
    help="ATM and this many strikes either side; only windows the stored chain fills")
show_greeks = controls[1].toggle("Greeks", key="chain_greeks", persist_state="session",
                                 help="Delta, gamma, theta and vega in place of volume, the price change "
                                      "and the quotes")


def chain_page() -> None:
    ts, ticks = asof.market_at(ctx, when)
    ref_label, ref_ticks = reads.reference_close(ctx, ts)
    expiry, note = asof.expiry_at(ctx, when, ticks)
    full = analytics.chain_table(ticks, ctx.underlying, expiry, previous=ref_ticks or None)
    if full.empty:
        st.info("No options for this underlying and expiry in the latest snapshot yet." if when.live
                else "No options of this underlying in the snapshot of that moment.",
                icon=":material/hourglass_top:")
        return
    chain = analytics.around_atm(full, window) if window else full
    spot, atm = full.attrs.get("spot"), full.attrs.get("atm")
    oi = analytics.oi_summary(full)
    scope = ui.oi_scope(oi, full)

    ref = analytics.chain_table(ref_ticks, ctx.underlying, full.attrs.get("expiry")) if ref_ticks else None
    ref_spot = ref.attrs.get("spot") if ref is not None else None
    ref_oi = analytics.oi_summary(ref) if ref is not None else None
    since = f"since {ref_label}" if ref_label else "no earlier session stored"

    # five cards (the ATM strike is the table's blue row): whole at 1280 pixels too
    m = st.columns(5)
    ui.metric(m[0], ctx.index_symbol, fmt_price(spot), fmt_delta(spot, ref_spot),
              help=f"Index level; change {since}. ATM strike {fmt_strike(atm)}, the blue row below")
    ui.oi_metrics(m[1], m[2], oi, ref_oi, spot, scope, since)
    ui.metric(m[3], "Call OI", fmt_oi(oi.call_oi), f"resistance {fmt_strike(oi.resistance)}",
              delta_color="blue", delta_arrow="off",
              help=f"Total call OI over {scope}; resistance is the strike with the most call OI")
    ui.metric(m[4], "Put OI", fmt_oi(oi.put_oi), f"support {fmt_strike(oi.support)}",
              delta_color="orange", delta_arrow="off",
              help=f"Total put OI over {scope}; support is the strike with the most put OI")

    tables.calls_puts_header()
    st.dataframe(tables.chain_view(chain, tables.exchange_columns(greeks=show_greeks), peaks=oi),
                 hide_index=True, column_config=tables.chain_column_config(ref_label),
                 row_height=tables.ROW_HEIGHT, height=tables.table_height(len(chain)), placeholder=MISSING,
                 key="chain_table")
    expiry = full.attrs.get("expiry")
    days = full.attrs.get("days_to_expiry")
    hours = ui.session_label(ts)
    st.caption(f"As of {fmt_moment(ts)}{f' ({hours})' if hours else ''} · expiry {expiry:%d %b %Y} "
               f"({MISSING if days is None else f'{days:.1f}'} days) · {len(chain)} of {oi.strikes} strikes "
               f"stored · changes vs {ref_label or MISSING} · shaded: in the money · tinted OI: resistance "
               "(most call OI) and support (most put OI)" + (f" · {note}" if note else ""))


asof.run_live_or_once(ctx, when, chain_page)
