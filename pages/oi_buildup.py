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
    fmt_from_spot,
    fmt_moment,
    fmt_oi,
    fmt_price,
    fmt_ratio,
    fmt_strike,
    fmt_time,
)
from datacentre.core.ticks import parse_ts

OPEN, PREVIOUS_CLOSE, HOUR_AGO, QUARTER_AGO, CHOSEN = (
    "Day open", "Previous close", "1 h ago", "15 min ago", "Chosen time")
BASES = (OPEN, PREVIOUS_CLOSE, HOUR_AGO, QUARTER_AGO, CHOSEN)
AGO = {HOUR_AGO: timedelta(hours=1), QUARTER_AGO: timedelta(minutes=15)}

ctx = ui.context()
ui.page_header("OI build-up", ctx)
ui.require_store(ctx)

controls = st.columns([3, 2, 4, 2, 2, 2], vertical_alignment="bottom")
when = asof.as_of_ui(ctx, "buildup", [*controls[:3], controls[5]])
since = controls[3].selectbox("Change since", BASES, key="buildup_base", persist_state="session",
                              help="OI and price changes, and the build-up they imply, are measured "
                                   "from here: the session's open, the last session's close, or an "
                                   "earlier moment of the same session")
chosen = controls[4].time_input("Chosen time (IST)", value=time(12, 0), step=timedelta(minutes=5),
                                key="buildup_chosen", persist_state="session", disabled=since != CHOSEN)


def base_snapshot(ts: str, session) -> tuple[str | None, list[dict], str]:
    """``(ts, ticks, label)`` of what changes are measured against."""
    if since == OPEN:
        then, ticks = reads.day_open(ctx, session) if session else (None, [])
        return then, ticks, f"the open ({fmt_time(then, seconds=False)})" if then else "the session's open"
    if since == PREVIOUS_CLOSE:
        then, ticks = reads.previous_close(ctx, ts)
        return then, ticks, f"the previous close ({fmt_moment(then)})" if then else "the previous close"
    if since in AGO:
        then, ticks = reads.snapshot_before(ctx, ts, AGO[since])
        wanted = fmt_time(parse_ts(ts) - AGO[since], seconds=False)
    else:
        then, ticks = reads.snapshot_at_clock(ctx, session, chosen) if session else (None, [])
        wanted = f"{chosen:%H:%M}"
    return then, ticks, fmt_time(then, seconds=False) if then else f"{since} ({wanted} IST)"


def buildup_page() -> None:
    ts, ticks = asof.market_at(ctx, when)
    expiry, note = asof.expiry_at(ctx, when, ticks)
    if not ts or expiry is None:
        st.info("No options for this underlying yet." if when.live else "No options stored at that moment.",
                icon=":material/hourglass_top:")
        return
    session = reads.anchor_session(ctx, ts)
    base_ts, base_ticks, label = base_snapshot(ts, session)
    chain = analytics.chain_table(ticks, ctx.underlying, expiry, previous=base_ticks or None)
    table = analytics.buildup_table(ticks, base_ticks, ctx.underlying, expiry, kinds=("CE", "PE", "FUT"))
    base_chain = analytics.chain_table(base_ticks, ctx.underlying, expiry) if base_ticks else None
    if not base_ticks:
        st.warning(f"No snapshot stored for {label}, so no changes or build-up to show: pick another "
                   "base under *Change since*.", icon=":material/history_toggle_off:")

    # One function for every OI figure, from this one snapshot (the Overview's and the
    # Option chain's too); the day chart's point at this moment is the same snapshot's.
    oi = analytics.oi_summary(chain)
    then = analytics.oi_summary(base_chain) if base_chain is not None else None
    scope = ui.oi_scope(oi, chain)

    def moved(now, before) -> str | None:
        if before is None or now is None:
            return None
        return "unchanged" if now == before else f"from {fmt_strike(before)}"

    spot = chain.attrs.get("spot")
    then_spot = base_chain.attrs.get("spot") if base_chain is not None else None
    fut = table[table["kind"] == "FUT"].head(1)
    m = st.columns([1, 1, 1, 1, 2])  # the future's card spans two of the six below
    ui.metric(m[0], ctx.index_symbol, fmt_price(spot), fmt_delta(spot, then_spot),
              help=f"Index level; change since {label}")
    ui.metric(m[1], "Call OI", fmt_oi(oi.call_oi), fmt_delta(oi.call_oi, then and then.call_oi, kind="oi"),
              help=f"Total call OI over {scope}; change since {label}")
    ui.metric(m[2], "Put OI", fmt_oi(oi.put_oi), fmt_delta(oi.put_oi, then and then.put_oi, kind="oi"),
              help=f"Total put OI over {scope}; change since {label}")
    ui.metric(m[3], "PCR (OI)", fmt_ratio(oi.pcr), fmt_delta(oi.pcr, then and then.pcr),
              help=f"Put OI / call OI over {scope}, as on the PCR line of the day chart below; "
                   f"change since {label}")
    if len(fut):
        f = fut.iloc[0]
        badge = f":{tables.BUILDUP_BADGES.get(f['buildup'], 'gray')}-badge[{f['buildup']}]"
        ui.metric(m[4], f"Future {f['symbol']} &nbsp; {badge}", fmt_price(f["ltp"]),
                  fmt_change(f["ltp_change"]),
                  delta_description=f"OI {fmt_oi(f['oi'])} ({fmt_change(f['oi_change'], kind='oi')})",
                  help=f"Price and OI change since {label}, and the build-up they show: price up with OI "
                       "up is long build-up, price down with OI up short build-up, price up with OI down "
                       "short covering, price down with OI down long unwinding")
    else:
        ui.metric(m[4], "Future", MISSING)

    ce_k, ce_add = analytics.biggest_oi_addition(chain, "ce")
    pe_k, pe_add = analytics.biggest_oi_addition(chain, "pe")
    n = st.columns(6)
    ui.metric(n[0], "Resistance", fmt_strike(oi.resistance), moved(oi.resistance, then and then.resistance),
              delta_color="off", delta_arrow="off",
              help=f"Strike with the most call OI (call writers defend it) of {scope}; "
                   f"where it was at {label}")
    ui.metric(n[1], "Support", fmt_strike(oi.support), moved(oi.support, then and then.support),
              delta_color="off", delta_arrow="off",
              help=f"Strike with the most put OI (put writers defend it) of {scope}; "
                   f"where it was at {label}")
    ui.metric(n[2], "Call writing", fmt_strike(ce_k),
              None if ce_k is None else fmt_change(ce_add, kind="oi"), delta_color="blue", delta_arrow="off",
              help=f"Strike whose call OI grew most since {label}: fresh resistance")
    ui.metric(n[3], "Put writing", fmt_strike(pe_k),
              None if pe_k is None else fmt_change(pe_add, kind="oi"), delta_color="orange",
              delta_arrow="off",
              help=f"Strike whose put OI grew most since {label}: fresh support")
    ui.metric(n[4], "Max pain", fmt_strike(oi.max_pain), fmt_from_spot(oi.max_pain, spot),
              delta_color="off", delta_arrow="off",
              help=f"Settlement price at which option buyers would be paid least, over {scope}")
    hours = ui.session_label(ts)
    stamp = " · ".join(filter(None, ("live" if when.live else fmt_day(when.day), hours)))
    ui.metric(n[5], "As of", fmt_time(ts), stamp,
              delta_color="orange" if hours else "gray", delta_arrow="off",
              help=f"Changes since {fmt_moment(base_ts)}" if base_ts else None)

    st.markdown(f"##### Open interest by strike &nbsp;:gray[:small[change since {label} below]]")
    st.plotly_chart(charts.oi_bars(chain, show_change=tables.has_changes(chain), max_pain=oi.max_pain),
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
        day = reads.moment_series(ctx, ts, expiry)
        st.markdown(f"##### Total OI and PCR through the session &nbsp;:gray[:small[{day.label}]]")
        st.plotly_chart(charts.oi_series_chart(day.frame, height=480, span=day.span), key="oi_series",
                        config={"displayModeBar": False})
        st.caption(f"Each point is that snapshot's own total over the {expiry:%d %b} strikes it holds, "
                   "as the cards compute it" + (f"; {hours}: the last session, whole" if hours else
                                                ", up to the moment shown"))

    st.markdown("##### Futures")
    futures = tables.futures_view(table)
    if futures is None:
        st.caption("No future stored.")
    else:
        st.dataframe(futures, hide_index=True, width="stretch", row_height=tables.ROW_HEIGHT,
                     column_config=tables.futures_column_config(label))


asof.run_live_or_once(ctx, when, buildup_page)
