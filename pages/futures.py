"""Futures: the future's price against the spot, its basis and its open interest through
the day, live or as of a stored moment."""
import streamlit as st

from datacentre import analytics
from datacentre.analytics import intraday
from datacentre.app import asof, daycharts, dayreads, tables, ui
from datacentre.app.formatting import fmt_change, fmt_delta, fmt_moment, fmt_oi, fmt_pct, fmt_price
from datacentre.core.instruments import has_expired, nearest_future, parse_symbol, time_to_expiry, underlying
from datacentre.core.ticks import parse_ts

ctx, controls, when = asof.day_page("Futures", "futures", [2, 2, 4, 3, 1], as_of_columns=3,
                                    caption=lambda c: c.index_symbol)
u = underlying(ctx.underlying)
start = dayreads.moment_of(ctx, when, options=False)
trading = sorted((s for s in dayreads.symbols_of(ctx, "FUT") if start.ts and not has_expired(
    parse_symbol(s).expiry, start.ts)), key=lambda s: parse_symbol(s).expiry)
nearest = nearest_future(trading, start.ts, u.base) if start.ts else None
future = controls[3].selectbox("Future", trading, index=trading.index(nearest.symbol) if nearest else None,
                               key="futures_symbol", placeholder="no future stored",
                               help="The futures still trading at the moment shown; default the nearest")


def futures_page() -> None:
    m = dayreads.moment_of(ctx, when, first=start)
    if dayreads.nothing_to_show(m, future is not None, "future of this underlying"):
        return
    symbols = [u.index_symbol, future]
    frame = intraday.futures_frame(m.rows(dayreads.contracts(ctx, m.day, symbols, "ltp", "oi", "volume"),
                                          intraday.contract_rows(m.ticks, symbols)), u.index_symbol, future)
    real = frame.dropna(subset=["ts"])
    if real.empty:
        st.info("No ticks of this future that day up to the moment shown.", icon=":material/hourglass_top:")
        return
    now, opening = real.iloc[-1], real.iloc[0]
    days = time_to_expiry(parse_symbol(future).expiry, parse_ts(m.ts)) * 365.0
    carry = intraday.annualised_basis(now["basis"], now["spot"], days)
    buildup = analytics.classify_buildup(now["future"] - opening["future"], now["oi_change"])
    cards = st.columns(5)
    badge = f":{tables.BUILDUP_BADGES.get(buildup, 'gray')}-badge[{buildup}]"
    ui.metric(cards[0], f"{future} &nbsp; {badge}", fmt_price(now["future"]),
              fmt_delta(now["future"], opening["future"]),
              help="The future's last price at the moment shown and its change since the day's first "
                   "snapshot; the badge is the build-up they show with the OI: price up with OI up is long "
                   "build-up, price down with OI up short build-up, price up with OI down short covering, "
                   "price down with OI down long unwinding")
    ui.metric(cards[1], "Basis", fmt_change(now["basis"]), fmt_delta(now["basis"], opening["basis"]),
              delta_color="off", help="Future − spot, in points; change since the day's first snapshot")
    ui.metric(cards[2], "Carry", fmt_pct(carry), f"{fmt_pct(now['basis_pct'])} of spot · {days:.0f} d left",
              delta_color="off", delta_arrow="off",
              help="The basis as a yearly rate: basis / spot × 365 / days to expiry")
    ui.metric(cards[3], "Open interest", fmt_oi(now["oi"]), fmt_change(now["oi_change"], kind="oi"),
              delta_color="off", help="The future's OI; change since the day's first snapshot")
    ui.metric(cards[4], "Volume", fmt_oi(now["volume"]), help="Traded today, cumulative, in lakh shares")
    st.plotly_chart(daycharts.futures_chart(frame, future, span=m.span(real["ts"])), key="futures_chart",
                    config={"displayModeBar": False})
    st.caption(f"Price and spot in points, basis = future − spot in points, open interest in lakh shares (L) "
               f"· as of {fmt_moment(m.ts)}")


asof.run_live_or_once(ctx, when, futures_page)
