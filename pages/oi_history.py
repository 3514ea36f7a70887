"""OI history: open interest and its change through the day for chosen strikes, and the
PCR and max pain through the day, live or as of a stored moment."""
import streamlit as st

from datacentre.analytics import intraday
from datacentre.app import asof, daycharts, dayreads, ui
from datacentre.app.formatting import (
    MISSING,
    fmt_change,
    fmt_day,
    fmt_delta,
    fmt_oi,
    fmt_ratio,
    fmt_strike,
    fmt_time,
)
from datacentre.core.instruments import CE, PE, format_option, underlying

SIDES = {"Calls and puts": (CE, PE), "Calls": (CE,), "Puts": (PE,)}
OI, CHANGE = "OI", "OI change"
MAX_STRIKES = 8

ctx, controls, when = asof.day_page("OI history", "oi_history", [2, 2, 4, 2, 4])
u = underlying(ctx.underlying)
start = dayreads.moment_of(ctx, when)
strikes = dayreads.expiry_strikes(ctx, start.expiry)
atm = dayreads.atm(start, ctx.underlying)
around = [strikes[i] for i in range(len(strikes))
          if atm is not None and abs(strikes[i] - atm) <= u.strike_step * 1.01]
choices = st.columns([6, 3, 2, 3], vertical_alignment="bottom")
picked = choices[0].multiselect("Strikes", strikes, default=around, format_func=fmt_strike,
                                 max_selections=MAX_STRIKES, key=f"oi_history_strikes_{start.expiry}",
                                 placeholder="choose strikes",
                                 help=f"Up to {MAX_STRIKES} strikes of the expiry (default: ATM and one "
                                      "either side)")
sides = SIDES[choices[1].selectbox("Options", list(SIDES), key="oi_history_sides", persist_state="session")]
shown = choices[2].segmented_control("Show", (OI, CHANGE), default=OI, required=True, key="oi_history_show",
                                      persist_state="session",
                                      help="Open interest, or its change since the day's first snapshot")


def strikes_section() -> None:
    m = dayreads.moment_of(ctx, when, first=start)
    if dayreads.nothing_to_show(m, m.expiry is not None):
        return
    if not picked:
        st.caption("Choose strikes above to see their open interest through the day.")
        return
    labels = {format_option(u.base, m.expiry, k, side): (f"{fmt_strike(k)} {side}", side)
              for k in sorted(picked) for side in sides}
    frame = intraday.oi_history(m.rows(dayreads.contracts(ctx, m.day, list(labels), "oi"),
                                       intraday.contract_rows(m.ticks, labels)), list(labels))
    cards = st.columns(4)
    latest = frame.sort_values("ts").groupby("symbol").tail(1) if len(frame) else frame
    for n, side in enumerate((CE, PE)):
        mine = latest[[labels[s][1] == side for s in latest["symbol"]]] if len(latest) else latest
        name = "Calls" if side == CE else "Puts"
        total = mine["oi"].sum() if len(mine) else None
        change = mine["oi_change"].sum() if len(mine) else None
        ui.metric(cards[n], f"{name} OI, chosen strikes", fmt_oi(total) if side in sides else MISSING,
                  fmt_change(change, kind="oi") if side in sides and len(mine) else None, delta_color="off",
                  help=f"Open interest of the chosen {name.lower()} at the moment shown; change since the "
                       "day's first snapshot")
    if len(latest):
        top = latest.loc[latest["oi_change"].idxmax()]
        ui.metric(cards[2], "Most OI added", labels[top["symbol"]][0],
                  fmt_change(top["oi_change"], kind="oi"),
                  help="The chosen contract whose OI grew most since the day's first snapshot")
    ui.metric(cards[3], "As of", fmt_time(m.ts), "live" if m.live else fmt_day(m.day), delta_color="off",
              delta_arrow="off")
    st.plotly_chart(daycharts.oi_history_chart(frame, labels, change=shown == CHANGE,
                                               span=m.span(frame["ts"])),
                    key="oi_history_chart", config={"displayModeBar": False})
    st.caption(f"{m.expiry:%d %b %Y} expiry · calls solid in the call colour, puts in the put colour; "
               "a strike's call and put share a dash" + (f" · {m.note}" if m.note else ""))


def pain_section() -> None:
    m = dayreads.moment_of(ctx, when, first=start)
    if dayreads.nothing_to_show(m, m.expiry is not None):
        return
    frame = intraday.pain_pcr_frame(m.rows(dayreads.chain_oi(ctx, m.day, m.expiry),
                                           intraday.chain_oi_rows(m.ticks, ctx.underlying, m.expiry),
                                           key=lambda row: row[0]))
    spot = intraday.legs_frame(m.rows(dayreads.contracts(ctx, m.day, [u.index_symbol]),
                                      intraday.contract_rows(m.ticks, [u.index_symbol])), [u.index_symbol])
    spot = spot.rename(columns={u.index_symbol: "spot"})
    real = frame.dropna(subset=["ts"])
    now = real.iloc[-1] if len(real) else None
    opening = real.iloc[0] if len(real) else None
    cards = st.columns(5)
    ui.metric(cards[0], "PCR (OI)", fmt_ratio(now["pcr"]) if now is not None else MISSING,
              fmt_delta(now["pcr"], opening["pcr"]) if now is not None else None,
              help="Put OI / call OI of the strikes stored in the snapshot shown; change since the "
                   "day's first snapshot")
    ui.metric(cards[1], "Max pain", fmt_strike(now["max_pain"]) if now is not None else MISSING,
              None if now is None else f"from {fmt_strike(opening['max_pain'])} at the open",
              delta_color="off", delta_arrow="off",
              help="The strike at which option buyers would be paid least at expiry")
    ui.metric(cards[2], "Call OI", fmt_oi(now["ce_oi"]) if now is not None else MISSING,
              fmt_delta(now["ce_oi"], opening["ce_oi"], kind="oi") if now is not None else None,
              delta_color="off")
    ui.metric(cards[3], "Put OI", fmt_oi(now["pe_oi"]) if now is not None else MISSING,
              fmt_delta(now["pe_oi"], opening["pe_oi"], kind="oi") if now is not None else None,
              delta_color="off")
    ui.metric(cards[4], "Strikes", f"{int(now['strikes'])}" if now is not None else MISSING,
              help="Strikes of the expiry stored in the snapshot shown, which every figure here covers")
    st.plotly_chart(daycharts.pain_pcr_chart(frame, spot, span=m.span(real["ts"])), key="pain_pcr_chart",
                    config={"displayModeBar": False})
    st.caption("Each point is the chain of one snapshot (about one a minute, and the moment shown), as the "
               "option chain page computes it: nothing from after the moment is used. The figures cover the "
               "strikes stored in each snapshot: when the collected window moves with the spot, a strike "
               "entering or leaving it moves them.")


asof.run_live_or_once(ctx, when, strikes_section)
st.markdown("##### PCR and max pain through the day")
asof.run_live_or_once(ctx, when, pain_section)
