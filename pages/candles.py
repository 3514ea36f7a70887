"""Candles: 1- and 5-minute candlesticks of the spot, a future or any option with the day's
VWAP and traded volume, live or as of a stored moment."""
import streamlit as st

from datacentre.analytics import intraday
from datacentre.app import asof, daycharts, dayreads, ui
from datacentre.app.formatting import MISSING, fmt_day, fmt_delta, fmt_oi, fmt_price, fmt_strike, fmt_time
from datacentre.core.instruments import (
    CE,
    PE,
    format_option,
    has_expired,
    nearest_future,
    parse_symbol,
    underlying,
)

SPOT, FUTURE, OPTION = "Spot", "Future", "Option"
INTERVALS = {1: "1 min", 5: "5 min"}

ctx, controls, when = asof.day_page("Candles", "candles", [2, 2, 4, 2, 3, 2])
u = underlying(ctx.underlying)
what = controls[4].segmented_control("Contract", (SPOT, FUTURE, OPTION), default=SPOT, required=True,
                                     key="candles_kind", persist_state="session")
interval = controls[5].segmented_control("Candle", list(INTERVALS), format_func=INTERVALS.get, default=1,
                                         required=True, key="candles_interval", persist_state="session")
start = dayreads.moment_of(ctx, when, options=what == OPTION)
symbol = u.index_symbol
if what == FUTURE:
    trading = [s for s in dayreads.symbols_of(ctx, "FUT")
               if start.ts and not has_expired(parse_symbol(s).expiry, start.ts)]
    nearest = nearest_future(trading, start.ts, u.base) if start.ts else None
    symbol = nearest.symbol if nearest else None
elif what == OPTION:
    strikes = dayreads.expiry_strikes(ctx, start.expiry)
    pick = st.columns([2, 1, 9], vertical_alignment="bottom")
    strike = pick[0].selectbox("Strike", strikes, format_func=fmt_strike, key="candles_strike",
                               index=dayreads.nearest_index(strikes, dayreads.atm(start, ctx.underlying)))
    right = pick[1].segmented_control("Side", (CE, PE), default=CE, required=True, key="candles_side",
                                      persist_state="session")
    symbol = format_option(u.base, start.expiry, strike, right) if strike is not None else None


def candles_page() -> None:
    m = dayreads.moment_of(ctx, when, first=start)
    if dayreads.nothing_to_show(m, symbol is not None, "ticks of this contract"):
        return
    frame = intraday.candle_frame(dayreads.candles(ctx, symbol, interval, m))
    last = frame.iloc[-1] if len(frame) else None
    first = frame.iloc[0] if len(frame) else None
    cards = st.columns(6)
    ui.metric(cards[0], symbol, fmt_price(last["close"]) if last is not None else MISSING,
              fmt_delta(last["close"], first["open"]) if last is not None else None,
              help="The last price at the moment shown; change since the day's first tick")
    ui.metric(cards[1], "Day high", fmt_price(frame["high"].max()))
    ui.metric(cards[2], "Day low", fmt_price(frame["low"].min()))
    vwap = last["vwap"] if last is not None else None
    ui.metric(cards[3], "VWAP", fmt_price(vwap), fmt_delta(last["close"], vwap) if last is not None else None,
              delta_description="price vs VWAP", delta_color="off",
              help="Volume-weighted average price of the day's trades so far (none for an index)")
    traded = frame["volume"].sum() if len(frame) else 0
    ui.metric(cards[4], "Volume", fmt_oi(traded) if traded else MISSING,
              help="Traded today up to the moment shown")
    ui.metric(cards[5], "As of", fmt_time(m.ts), "live" if m.live else fmt_day(m.day), delta_color="off",
              delta_arrow="off")
    st.plotly_chart(daycharts.candles_chart(frame, symbol, span=m.span(frame["ts"])), key="candles_chart",
                    config={"displayModeBar": False})
    st.caption(f"{INTERVALS[interval]} candles from the store's ticks, computed in SQL; each candle starts "
               "at its time, the last holds the ticks up to the moment shown. VWAP: Σ(price × traded) / "
               "Σ traded since the day's first tick.")


asof.run_live_or_once(ctx, when, candles_page)
