"""OI build-up: open interest by strike, what its change means, and the day's OI and PCR."""
from datetime import time, timedelta

import streamlit as st

from datacentre import analytics
from datacentre.app import asof, charts, reads, tables, ui
from datacentre.app.formatting import (
    MISSING,
    fmt_change,
    fmt_day,
    fmt_delta,
    fmt_moment,
    fmt_oi,
    fmt_price,
    fmt_ratio,
    fmt_strike,
    fmt_time,
)
from datacentre.core.ticks import trading_day

OPEN, PREVIOUS_CLOSE, HOUR_AGO, QUARTER_AGO, CHOSEN = (
    "Day open", "Previous close", "1 h ago", "15 min ago", "Chosen time")
BASES = (OPEN, PREVIOUS_CLOSE, HOUR_AGO, QUARTER_AGO, CHOSEN)
AGO = {HOUR_AGO: timedelta(hours=1), QUARTER_AGO: timedelta(minutes=15)}
DAY_WIDE = ("a strike outside the collected window counts with its nearest known OI: the last seen, "
            "or the first for one that enters later")

ctx = ui.context()
ui.page_header("OI build-up", ctx)
ui.require_store(ctx)

controls = st.columns([2, 2, 4, 2, 2], vertical_alignment="bottom")
when = asof.as_of_ui(ctx, "buildup", controls[:3])
since = controls[3].selectbox("Change since", BASES, key="buildup_base", persist_state="session",
                              help="OI and price changes, and the build-up they imply, are measured "
                                   "from here")
chosen = controls[4].time_input("Chosen time (IST)", value=time(12, 0), step=timedelta(minutes=5),
                                key="buildup_chosen", persist_state="session", disabled=since != CHOSEN)


def base_snapshot(ts: str) -> tuple[str | None, list[dict], str]:
    """``(ts, ticks, label)`` of what changes are measured against."""
    day = trading_day(ts)
    if since == OPEN:
        then, ticks = reads.day_open(ctx, day)
        return then, ticks, f"the open ({fmt_time(then, seconds=False)})"
    if since == PREVIOUS_CLOSE:
        then, ticks = reads.previous_close(ctx, day)
        return then, ticks, f"the previous close ({fmt_moment(then)})" if then else "the previous close"
    if since in AGO:
        then, ticks = reads.snapshot_before(ctx, ts, AGO[since])
    else:
        then, ticks = reads.snapshot_at_clock(ctx, day, chosen)
    return then, ticks, fmt_time(then, seconds=False) if then else since


def buildup_page() -> None:
    ts, ticks = asof.market_at(ctx, when)
    expiry, note = asof.pick_expiry(ctx, ticks)
    if not ts or expiry is None:
        st.info("No options for this underlying yet." if when.live else "No options stored at that moment.",
                icon=":material/hourglass_top:")
        return
    base_ts, base_ticks, label = base_snapshot(ts)
    chain = analytics.chain_table(ticks, ctx.underlying, expiry, previous=base_ticks or None)
    table = analytics.buildup_table(ticks, base_ticks, ctx.underlying, expiry, kinds=("CE", "PE", "FUT"))
    base_chain = analytics.chain_table(base_ticks, ctx.underlying, expiry) if base_ticks else None
    if not base_ticks:
        st.warning(f"No snapshot stored for {label}: changes and build-up cannot be computed.",
                   icon=":material/history_toggle_off:")

    support = analytics.support_resistance(chain)
    then = analytics.support_resistance(base_chain) if base_chain is not None else None
    # The cards' totals and PCR are the day chart's, at the same snapshot: every strike of
    # the expiry seen that day, one outside the collected window at its nearest known OI.
    series = reads.oi_totals(ctx, trading_day(ts), expiry, moment=(ts, ticks), upto=when.live)
    ce_total, pe_total, ratio = analytics.totals_at(series, ts)
    then_ce = then_pe = then_ratio = None
    if base_ts and base_ticks:
        base_series = reads.oi_totals(ctx, trading_day(base_ts), expiry, moment=(base_ts, base_ticks))
        then_ce, then_pe, then_ratio = analytics.totals_at(base_series, base_ts)

    def moved(now, before) -> str | None:
        if before is None or now is None:
            return None
        return "unchanged" if now == before else f"from {fmt_strike(before)}"

    spot = chain.attrs.get("spot")
    then_spot = base_chain.attrs.get("spot") if base_chain is not None else None
    fut = table[table["kind"] == "FUT"].head(1)
    m = st.columns([1, 1, 1, 1, 2])  # the future's card spans two of the six below
    m[0].metric(ctx.index_symbol, fmt_price(spot), fmt_delta(spot, then_spot), border=True,
                help=f"Index level; change since {label}")
    m[1].metric("Call OI", fmt_oi(ce_total), fmt_delta(ce_total, then_ce, kind="oi"), delta_color="red",
                border=True,
                help=f"Total call OI of this expiry over every strike seen that day ({DAY_WIDE}); "
                     f"change since {label}")
    m[2].metric("Put OI", fmt_oi(pe_total), fmt_delta(pe_total, then_pe, kind="oi"), delta_color="green",
                border=True,
                help=f"Total put OI of this expiry over every strike seen that day ({DAY_WIDE}); "
                     f"change since {label}")
    m[3].metric("PCR (OI)", fmt_ratio(ratio), fmt_delta(ratio, then_ratio), border=True,
                help=f"Put OI / call OI of this expiry over every strike seen that day ({DAY_WIDE}), "
                     f"as on the PCR line of the day chart below; change since {label}")
    if len(fut):
        f = fut.iloc[0]
        badge = f":{tables.BUILDUP_BADGES.get(f['buildup'], 'gray')}-badge[{f['buildup']}]"
        m[4].metric(f"Future {f['symbol']} &nbsp; {badge}", fmt_price(f["ltp"]), fmt_change(f["ltp_change"]),
                    delta_description=f"OI {fmt_oi(f['oi'])} ({fmt_change(f['oi_change'], kind='oi')})",
                    border=True,
                    help=f"Price and OI change since {label}, and the build-up they show: price up with OI "
                         "up is long build-up, price down with OI up short build-up, price up with OI down "
                         "short covering, price down with OI down long unwinding")
    else:
        m[4].metric("Future", MISSING, border=True)

    ce_k, ce_add = analytics.biggest_oi_addition(chain, "ce")
    pe_k, pe_add = analytics.biggest_oi_addition(chain, "pe")
    pain = analytics.max_pain(chain)
    n = st.columns(6)
    n[0].metric("Resistance", fmt_strike(support.resistance),
                moved(support.resistance, then and then.resistance),
                delta_color="off", delta_arrow="off", border=True,
                help=f"Strike with the most call OI (call writers defend it); where it was at {label}")
    n[1].metric("Support", fmt_strike(support.support), moved(support.support, then and then.support),
                delta_color="off", delta_arrow="off", border=True,
                help=f"Strike with the most put OI (put writers defend it); where it was at {label}")
    n[2].metric("Most call OI added", fmt_strike(ce_k),
                None if ce_k is None else fmt_change(ce_add, kind="oi"), delta_color="red", delta_arrow="off",
                border=True, help=f"Strike whose call OI grew most since {label}: fresh resistance")
    n[3].metric("Most put OI added", fmt_strike(pe_k),
                None if pe_k is None else fmt_change(pe_add, kind="oi"), delta_color="green",
                delta_arrow="off", border=True,
                help=f"Strike whose put OI grew most since {label}: fresh support")
    n[4].metric("Max pain", fmt_strike(pain),
                None if pain is None or spot is None else f"{fmt_change(pain - spot)} pts from spot",
                delta_color="off", delta_arrow="off", border=True,
                help="Settlement price at which option buyers would be paid least")
    n[5].metric("As of", fmt_time(ts), "live" if when.live else fmt_day(trading_day(ts)),
                delta_color="gray", delta_arrow="off", border=True,
                help=f"Changes since {fmt_moment(base_ts)}" if base_ts else None)

    st.markdown(f"##### Open interest by strike &nbsp;:gray[:small[change since {label} below]]")
    st.plotly_chart(charts.oi_bars(chain, show_change=tables.has_changes(chain), max_pain=pain),
                    key="oi_bars", config={"displayModeBar": False})

    st.markdown(f"##### Build-up by strike &nbsp;:gray[:small[since {label}]]")
    strikes = tables.buildup_strikes(table)
    tables.calls_puts_header()
    st.dataframe(tables.buildup_view(strikes, chain.attrs.get("atm")), hide_index=True, width="stretch",
                 column_config=tables.buildup_column_config(label), row_height=tables.ROW_HEIGHT,
                 height=tables.table_height(len(strikes)), placeholder=MISSING, key="buildup_table")
    st.caption("Long Build-up: price ↑ OI ↑ · Short Build-up: price ↓ OI ↑ · Short Covering: price ↑ OI ↓ · "
               "Long Unwinding: price ↓ OI ↓" + (f" · {note}" if note else ""))

    left, right = st.columns(2, gap="large")
    with left:
        st.markdown(f"##### OI change by strike, coloured by build-up &nbsp;:gray[:small[since {label}]]")
        st.plotly_chart(charts.buildup_bars(table, height=480), key="buildup_bars",
                        config={"displayModeBar": False})
    with right:
        st.markdown("##### Total OI and PCR through the day")
        st.plotly_chart(charts.oi_series_chart(series, None if when.live else ts, height=480),
                        key="oi_series", config={"displayModeBar": False})
        st.caption(f"Every strike of the {expiry:%d %b} expiry seen that day, as in the Call OI, Put OI "
                   f"and PCR cards ({DAY_WIDE})")

    st.markdown("##### Futures")
    futures = tables.futures_view(table)
    if futures is None:
        st.caption("No future stored.")
    else:
        st.dataframe(futures, hide_index=True, width="stretch", row_height=tables.ROW_HEIGHT,
                     column_config=tables.futures_column_config(label))


asof.run_live_or_once(ctx, when, buildup_page)
