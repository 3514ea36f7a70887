"""Straddle: the ATM straddle premium through the day (rolling ATM or a fixed strike) and
the combined premium of any two legs, live or as of a stored moment."""
import streamlit as st

from datacentre.analytics import intraday
from datacentre.app import asof, daycharts, dayreads, ui
from datacentre.app.formatting import MISSING, fmt_delta, fmt_moment, fmt_price, fmt_strike
from datacentre.core.instruments import CE, PE, format_option, underlying

ROLLING, FIXED = "Rolling ATM", "Fixed strike"
SIDES = (CE, PE)
LEG_DEFAULTS = ((2, CE), (-2, PE))  # an out-of-the-money strangle two strikes either side

ctx, controls, when = asof.day_page("Straddle", "straddle", [2, 2, 4, 2, 3, 2])
u = underlying(ctx.underlying)
start = dayreads.moment_of(ctx, when)
strikes = dayreads.expiry_strikes(ctx, start.expiry)
atm = dayreads.atm(start, ctx.underlying)
mode = controls[4].segmented_control("Strike", (ROLLING, FIXED), default=ROLLING, required=True,
                                     key="straddle_strikes", persist_state="session",
                                     help="Rolling: at each snapshot the strike nearest the spot. "
                                          "Fixed: one strike all day")
fixed = controls[5].selectbox("Fixed strike", strikes, index=dayreads.nearest_index(strikes, atm),
                              format_func=fmt_strike, key="straddle_strike", disabled=mode != FIXED)


def premium_cards(frame, columns, name: str, strike=None) -> None:
    """The premium at the moment, its change since the day's first priced snapshot, its
    day range and (for a straddle) the breakevens."""
    priced = frame["premium"].dropna()
    now = priced.iloc[-1] if len(priced) else None
    opening = priced.iloc[0] if len(priced) else None
    ui.metric(columns[0], name, fmt_price(now), fmt_delta(now, opening),
              help="Premium at the moment shown, in points; change since the day's first snapshot")
    places = 0 if len(priced) and priced.max() >= 1000 else 2  # a card holds about 16 characters
    ui.metric(columns[1], "Day range",
              f"{fmt_price(priced.min(), places)} – {fmt_price(priced.max(), places)}" if len(priced)
              else MISSING,
              help="Lowest and highest premium of the day up to this moment")
    if strike is not None:
        low, high = intraday.breakevens(strike, now)
        text = f"{fmt_strike(round(low))} – {fmt_strike(round(high))}" if low else MISSING
        ui.metric(columns[2], "Breakevens", text,
                  help="Strike ∓ premium: where a short straddle stops making money at expiry")


def straddle_section() -> None:
    m = dayreads.moment_of(ctx, when, first=start)
    if dayreads.nothing_to_show(m, m.expiry is not None):
        return
    if mode == ROLLING:
        rows = m.rows(dayreads.straddle(ctx, m.day, m.expiry),
                      intraday.straddle_row(m.ticks, ctx.underlying, m.expiry))
    else:
        call, put = (format_option(u.base, m.expiry, fixed, right) for right in SIDES)
        legs = [u.index_symbol, call, put]
        rows = intraday.fixed_straddle_rows(
            m.rows(dayreads.contracts(ctx, m.day, legs), intraday.contract_rows(m.ticks, legs)),
            u.index_symbol, call, put, fixed)
    frame = intraday.straddle_frame(rows)
    last = frame.dropna(subset=["premium"]).tail(1)
    strike = last["strike"].iloc[0] if len(last) else (fixed if mode == FIXED else None)
    cards = st.columns(5)
    premium_cards(frame, cards, "Straddle", strike)
    ui.metric(cards[3], "Strike", fmt_strike(strike), "rolls with the spot" if mode == ROLLING else "fixed",
              delta_color="off", delta_arrow="off")
    ui.metric(cards[4], "Call + put", f"{fmt_price(last['ce'].iloc[0])} + {fmt_price(last['pe'].iloc[0])}"
              if len(last) else MISSING, fmt_moment(m.ts), delta_color="off", delta_arrow="off",
              help="The two legs' last prices at the moment shown")
    st.plotly_chart(daycharts.straddle_chart(frame, span=m.span(frame["ts"].dropna())),
                    key="straddle_chart", config={"displayModeBar": False})
    how = ("at each snapshot the strike nearest the spot (halfway between two, the lower), the option "
           "chain's ATM" if mode == ROLLING else f"the {fmt_strike(fixed)} call and put all day")
    st.caption(f"{m.expiry:%d %b %Y} expiry · {how}" + (f" · {m.note}" if m.note else ""))


asof.run_live_or_once(ctx, when, straddle_section)

st.markdown("##### Combined premium of two legs")
leg_cols = st.columns([2, 2, 2, 2, 4], vertical_alignment="bottom")
chosen = []
for n, (offset, side) in enumerate(LEG_DEFAULTS):
    guess = None if atm is None else atm + offset * u.strike_step
    strike = leg_cols[2 * n].selectbox(f"Leg {n + 1} strike", strikes, format_func=fmt_strike,
                                       index=dayreads.nearest_index(strikes, guess), key=f"straddle_leg{n}")
    right = leg_cols[2 * n + 1].segmented_control(f"Leg {n + 1}", SIDES, default=side, required=True,
                                                  key=f"straddle_leg{n}_side", persist_state="session")
    if strike is not None:
        chosen.append((strike, right))


def legs_section() -> None:
    m = dayreads.moment_of(ctx, when, first=start)
    if dayreads.nothing_to_show(m, m.expiry is not None) or not chosen:
        return
    legs = [(format_option(u.base, m.expiry, strike, right), f"{fmt_strike(strike)} {right}", right)
            for strike, right in chosen]
    symbols = [symbol for symbol, _, _ in legs]
    frame = intraday.legs_frame(m.rows(dayreads.contracts(ctx, m.day, symbols),
                                       intraday.contract_rows(m.ticks, symbols)), symbols)
    cards = st.columns(5)
    premium_cards(frame, cards, " + ".join(label for _, label, _ in legs))
    st.plotly_chart(daycharts.legs_chart(frame, legs, span=m.span(frame["ts"].dropna())),
                    key="legs_chart", config={"displayModeBar": False})


asof.run_live_or_once(ctx, when, legs_section)
