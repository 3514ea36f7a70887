"""Gamma exposure: dealers' net gamma by strike from the stored gamma and OI, live or as
of a stored moment."""
import streamlit as st

from datacentre import analytics
from datacentre.analytics import intraday
from datacentre.app import asof, daycharts, dayreads, ui
from datacentre.app.formatting import MISSING, fmt_expiry, fmt_moment, fmt_price, fmt_strike, fmt_time

THIS, ALL = "This expiry", "All expiries"
CONVENTION = ("Sign convention: dealers are long the calls and short the puts customers hold, so calls "
              "add positive gamma and puts negative. Per strike, gamma × OI (shares) × spot² × 1 %: the "
              "rupees of index dealers buy (+) or sell (−) to stay hedged when the index rises 1 %. "
              "Positive net exposure damps moves (dealers sell rallies, buy dips); negative exposure "
              "feeds them.")

ctx, controls, when = asof.day_page("Gamma exposure", "gex", [2, 2, 4, 2, 3])
start = dayreads.moment_of(ctx, when)
scope = controls[4].segmented_control("Expiries", (THIS, ALL), default=THIS, required=True, key="gex_scope",
                                      persist_state="session",
                                      help="The sidebar's expiry, or every expiry in the snapshot summed "
                                           "by strike")


def gex_page() -> None:
    m = dayreads.moment_of(ctx, when, first=start)
    if dayreads.nothing_to_show(m, m.expiry is not None):
        return
    expiries = [m.expiry] if scope == THIS else analytics.expiries(m.ticks, ctx.underlying)
    table = intraday.snapshot_gex(m.ticks, ctx.underlying, expiries)
    summary = intraday.gex_summary(table)
    cards = st.columns(6)
    ui.metric(cards[0], "Net GEX", daycharts.rupee_crore(summary.net), "per 1 % move",
              delta_color="off", delta_arrow="off",
              help="Calls plus puts (negative) over every strike shown")
    ui.metric(cards[1], "Calls", daycharts.rupee_crore(summary.calls),
              help="Gamma exposure of the calls (positive by the sign convention)")
    ui.metric(cards[2], "Puts", daycharts.rupee_crore(summary.puts),
              help="Gamma exposure of the puts (negative by the sign convention)")
    ui.metric(cards[3], "Most positive", fmt_strike(summary.call_wall),
              help="The strike with the largest positive net exposure: dealers sell into a rise there")
    ui.metric(cards[4], "Most negative", fmt_strike(summary.put_wall),
              help="The strike with the largest negative net exposure: dealers sell into a fall there")
    spot = table.attrs.get("spot")
    ui.metric(cards[5], "Spot", fmt_price(spot), fmt_time(m.ts), delta_color="off", delta_arrow="off",
              border=True)
    st.plotly_chart(daycharts.gex_chart(table, summary), key="gex_chart", config={"displayModeBar": False})
    which = (f"the {fmt_expiry(m.expiry)} expiry" if scope == THIS
             else ", ".join(fmt_expiry(e) for e in expiries) or MISSING)
    st.caption(f"{CONVENTION} Strikes stored in the snapshot of {fmt_moment(m.ts)}, {which}."
               + (f" {m.note}" if m.note and scope == THIS else ""))


asof.run_live_or_once(ctx, when, gex_page)
