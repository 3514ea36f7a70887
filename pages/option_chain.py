"""Option chain in the exchange's layout: calls | strike | puts, refreshed live."""
import math

import pandas as pd
import streamlit as st

from datacentre import analytics, ui
from datacentre.formatting import (
    MISSING,
    column_formatters,
    fmt_change,
    fmt_oi,
    fmt_price,
    fmt_ratio,
    fmt_strike,
)

WINDOW_KEY = "chain_window"
WINDOWS = {5: "±5", 10: "±10", 15: "±15", 0: "All"}
ROW_HEIGHT = 32

# The exchange's order: calls read outwards from the strike, puts mirror them, and
# bid comes before ask on both sides.
CALL_FIELDS = ("oi", "oi_change", "volume", "iv", "delta", "ltp", "ltp_change", "bid", "ask")
PUT_FIELDS = ("bid", "ask", "ltp_change", "ltp", "delta", "iv", "volume", "oi_change", "oi")
CALL_COLUMNS = [f"ce_{f}" for f in CALL_FIELDS]
PUT_COLUMNS = [f"pe_{f}" for f in PUT_FIELDS]
COLUMNS = [*CALL_COLUMNS, "strike", *PUT_COLUMNS]
CHANGE_COLUMNS = ["ce_oi_change", "ce_ltp_change", "pe_ltp_change", "pe_oi_change"]

ITM_CSS = "background-color: #fbf3d5"
ATM_CSS = "background-color: #cfe0fb; font-weight: 700"
STRIKE_CSS = "background-color: #eef1f6; font-weight: 700"
UP_CSS = "color: #15803d"
DOWN_CSS = "color: #b91c1c"
MAX_CALL_OI_CSS = "color: #b91c1c; font-weight: 700"
MAX_PUT_OI_CSS = "color: #15803d; font-weight: 700"

ctx = ui.context()
ui.page_header("Option chain", ctx)

controls = st.columns([3, 2, 5], vertical_alignment="bottom")
window = controls[0].segmented_control("Strikes around ATM", list(WINDOWS), format_func=WINDOWS.get,
                                       default=10, required=True, key=WINDOW_KEY, persist_state="session")
show_greeks = controls[1].toggle("Gamma, theta, vega", key="chain_greeks", persist_state="session",
                                 help="Show gamma, theta and vega too, at the outer edges of the table")


def labels(change_ref: str | None) -> dict:
    """Column headers as on the exchange's page; the side is in the help text."""
    since = f" since {change_ref}" if change_ref else ""
    names = {"oi": ("OI", "open interest"), "oi_change": ("Chg OI", f"change in OI{since}"),
             "volume": ("Volume", "contracts traded today"), "iv": ("IV", "implied volatility"),
             "delta": ("Delta", "delta"), "gamma": ("Gamma", "gamma"),
             "theta": ("Theta", "theta per calendar day"), "vega": ("Vega", "vega per vol point"),
             "ltp": ("LTP", "last traded price"), "ltp_change": ("Chg", f"change in LTP{since}"),
             "bid": ("Bid", "best bid"), "ask": ("Ask", "best ask")}
    config = {"strike": st.column_config.Column("Strike", help="ATM row in blue", alignment="center")}
    for prefix, side in (("ce_", "Call"), ("pe_", "Put")):
        for field, (label, meaning) in names.items():
            config[prefix + field] = st.column_config.Column(label, help=f"{side} {meaning}",
                                                             alignment="right")
    return config


def columns(greeks: bool) -> list[str]:
    if not greeks:
        return COLUMNS
    extra = ("gamma", "theta", "vega")
    calls = [*(f"ce_{f}" for f in extra), *CALL_COLUMNS]
    puts = [*PUT_COLUMNS, *(f"pe_{f}" for f in reversed(extra))]
    return [*calls, "strike", *puts]


def style(chain: pd.DataFrame, shown: list[str]):
    """Shade the in-the-money side, mark the ATM row and colour the changes."""
    spot = chain.attrs.get("spot") or chain.attrs.get("future")
    atm = chain.attrs.get("atm")
    view = chain[shown]
    view.attrs = {}  # Streamlit would try to serialise them (dates) and warn
    calls = [c for c in shown if c.startswith("ce_")]
    puts = [c for c in shown if c.startswith("pe_")]

    def shade(frame: pd.DataFrame) -> pd.DataFrame:
        css = pd.DataFrame("", index=frame.index, columns=frame.columns)
        strikes = frame["strike"]
        if spot is not None:
            css.loc[strikes < spot, calls] = ITM_CSS
            css.loc[strikes > spot, puts] = ITM_CSS
        css["strike"] = STRIKE_CSS
        if atm is not None:
            css.loc[strikes == atm, :] = ATM_CSS
        for column, peak_css in (("ce_oi", MAX_CALL_OI_CSS), ("pe_oi", MAX_PUT_OI_CSS)):
            values = frame[column]
            if values.notna().any():
                peak = values.idxmax()
                css.loc[peak, column] = f"{css.loc[peak, column]}; {peak_css}".lstrip("; ")
        return css

    def sign(value) -> str:
        if value is None or not math.isfinite(value) or value == 0:
            return ""
        return UP_CSS if value > 0 else DOWN_CSS

    formats = column_formatters(shown)
    return (view.style.apply(shade, axis=None)
            .map(sign, subset=[c for c in CHANGE_COLUMNS if c in shown])
            .format(formats))


@st.fragment(run_every=ui.refresh_seconds(ctx.settings))
def live_chain() -> None:
    ts, ticks = ui.live_ticks(ctx)
    ref_label, ref_ticks = ui.reference_ticks(ctx, ts)
    full = analytics.chain_table(ticks, ctx.underlying, ctx.expiry, previous=ref_ticks or None)
    if full.empty:
        st.info("No options for this underlying and expiry in the latest snapshot yet.",
                icon=":material/hourglass_top:")
        return
    chain = analytics.chain_table(ticks, ctx.underlying, ctx.expiry, previous=ref_ticks or None,
                                  atm_window=window or None)
    spot, atm = full.attrs.get("spot"), full.attrs.get("atm")
    ratio, pain = analytics.pcr(full), analytics.max_pain(full)
    support = analytics.support_resistance(full)

    ref_chain = analytics.chain_table(ref_ticks, ctx.underlying, full.attrs.get("expiry")) \
        if ref_ticks else None
    ref_spot = ref_chain.attrs.get("spot") if ref_chain is not None else None
    ref_ratio = analytics.pcr(ref_chain) if ref_chain is not None else math.nan
    since = f"since {ref_label}" if ref_label else "no earlier snapshot"

    m = st.columns(6)
    m[0].metric(ctx.index_symbol, fmt_price(spot),
                None if spot is None or ref_spot is None else fmt_change(spot - ref_spot),
                border=True, help=f"Index level; change {since}")
    m[1].metric("ATM strike", fmt_strike(atm),
                None if atm is None or spot is None else f"spot {fmt_change(spot - atm)} pts",
                delta_color="off", delta_arrow="off", border=True)
    m[2].metric("PCR (OI)", fmt_ratio(ratio),
                None if not math.isfinite(ratio - ref_ratio) else fmt_change(ratio - ref_ratio),
                border=True, help=f"Put OI / call OI over every strike of this expiry; change {since}")
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

    shown = columns(show_greeks)
    head = st.columns(2)
    head[0].markdown(":red[**CALLS**]", text_alignment="center")
    head[1].markdown(":green[**PUTS**]", text_alignment="center")
    st.dataframe(style(chain, shown), hide_index=True, column_config=labels(ref_label),
                 row_height=ROW_HEIGHT, height=(len(chain) + 1) * ROW_HEIGHT + 3, placeholder=MISSING,
                 key="chain_table")
    expiry = full.attrs.get("expiry")
    days = full.attrs.get("days_to_expiry")
    st.caption(f"As of {ui.fmt_stamp(ts)} · expiry {expiry:%d %b %Y} "
               f"({MISSING if days is None else f'{days:.1f}'} days) · changes vs {ref_label or MISSING} · "
               "shaded: in the money · red / green figures: highest call / put OI")


live_chain()
