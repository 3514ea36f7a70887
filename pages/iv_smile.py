"""IV smile: implied volatility by strike, its skew and term structure, live or as of a stored time."""
import math
from datetime import time, timedelta

import pandas as pd
import streamlit as st

from datacentre import analytics
from datacentre.app import asof, charts, reads, tables, ui
from datacentre.app.formatting import (
    MISSING,
    fmt_change,
    fmt_day,
    fmt_delta,
    fmt_moment,
    fmt_pct,
    fmt_strike,
    fmt_time,
)
from datacentre.core.ticks import parse_ts, trading_day

OPEN, HOUR_AGO, CHOSEN = "Open", "1 h ago", "Chosen time"
OVERLAYS = (OPEN, HOUR_AGO, CHOSEN)
SKEW_ROWS = 8

ctx = ui.context()
ui.page_header("IV smile", ctx)
ui.require_store(ctx)

controls = st.columns([3, 2, 4, 2, 3, 2], vertical_alignment="bottom")
when = asof.as_of_ui(ctx, "smile", controls[:4])
overlays = controls[4].multiselect("Compare with", OVERLAYS, default=[OPEN], key="smile_overlays",
                                   persist_state="session", placeholder="nothing",
                                   help="Earlier smiles of the same session and expiry, dashed")
chosen = controls[5].time_input("Chosen time (IST)", value=time(12, 0), step=timedelta(minutes=5),
                                key="smile_chosen", persist_state="session",
                                disabled=CHOSEN not in overlays)


def overlay_smiles(ts: str, expiry) -> tuple[dict[str, pd.DataFrame], analytics.SkewMetrics | None,
                                              list[str]]:
    """The chosen earlier smiles by legend label, the skew figures at the open, and a note
    for each overlay that has no snapshot (never another moment in its place)."""
    session = reads.anchor_session(ctx, ts)
    opening = reads.day_open(ctx, session) if session else (None, [])
    wanted: dict[str, tuple[str, tuple[str | None, list[dict]]]] = {}
    if OPEN in overlays:
        wanted[OPEN] = (f"the open of {fmt_day(session)}" if session else "a session's open", opening)
    if HOUR_AGO in overlays:
        wanted[HOUR_AGO] = (f"{fmt_time(parse_ts(ts) - timedelta(hours=1), seconds=False)} IST",
                            reads.snapshot_before(ctx, ts, timedelta(hours=1)))
    if CHOSEN in overlays:
        wanted[CHOSEN] = (f"{chosen:%H:%M} IST" + (f" on {fmt_day(session)}" if session else ""),
                          reads.snapshot_at_clock(ctx, session, chosen) if session else (None, []))
    smiles, missing = {}, []
    for name, (what, (then, ticks)) in wanted.items():
        if not then or not ticks or then > ts:
            missing.append(f"{name}: no snapshot stored at {what}")
            continue
        if then == ts:
            continue
        day = "" if trading_day(then) == trading_day(ts) else f"{fmt_day(trading_day(then))} "
        smiles[f"{name} ({day}{fmt_time(then, seconds=False)})"] = analytics.smile(
            analytics.chain_table(ticks, ctx.underlying, expiry))
    open_skew = None
    if opening[1] and opening[0] <= ts:
        open_chain = analytics.chain_table(opening[1], ctx.underlying, expiry)
        open_skew = analytics.skew_metrics(open_chain) if not open_chain.empty else None
    return smiles, open_skew, missing


def smile_page() -> None:
    ts, ticks = asof.market_at(ctx, when)
    expiry, note = asof.expiry_at(ctx, when, ticks)
    chain = analytics.chain_table(ticks, ctx.underlying, expiry)
    if chain.empty or not ts:
        st.info("No options for this underlying and expiry yet." if when.live else
                "No options stored at that moment.", icon=":material/hourglass_top:")
        return
    smile = analytics.smile(chain)
    skew = analytics.skew_metrics(chain)
    earlier, open_skew, missing = overlay_smiles(ts, chain.attrs["expiry"])

    def since_open(field: str) -> str | None:
        then = getattr(open_skew, field) if open_skew is not None else None
        return fmt_delta(getattr(skew, field), then, suffix=" pts")

    def points(x: float) -> str:
        return MISSING if not math.isfinite(x) else f"{fmt_change(x)} pts"

    m = st.columns(6)
    unquoted = "; none when the stored strikes do not reach that delta"
    ui.metric(m[0], "ATM IV", fmt_pct(skew.atm_iv), since_open("atm_iv"), delta_color="gray",
              help=f"Mean of call and put IV at ATM {fmt_strike(chain.attrs.get('atm'))}; "
                   "change since the open")
    ui.metric(m[1], "25Δ RR", points(skew.risk_reversal_25d), since_open("risk_reversal_25d"),
              delta_color="gray",
              help="Risk reversal: IV of the 25-delta call minus the 25-delta put, vol points: negative "
                   "when puts are bid over calls"
                   + unquoted)
    ui.metric(m[2], "25Δ fly", points(skew.butterfly_25d), since_open("butterfly_25d"),
              delta_color="gray",
              help="Butterfly: the mean of the 25-delta call and put IV minus ATM IV, vol points: how "
                   "curved the smile is" + unquoted)
    ui.metric(m[3], "25Δ put IV", fmt_pct(skew.put_25d_iv), since_open("put_25d_iv"), delta_color="gray",
              help="Put IV interpolated at delta −0.25" + unquoted)
    ui.metric(m[4], "25Δ call IV", fmt_pct(skew.call_25d_iv), since_open("call_25d_iv"), delta_color="gray",
              help="Call IV interpolated at delta 0.25" + unquoted)
    days = chain.attrs.get("days_to_expiry")
    ui.metric(m[5], "Expiry", chain.attrs["expiry"].strftime("%d %b"),
              None if days is None else f"{days:.1f} days left", delta_color="off", delta_arrow="off")

    st.plotly_chart(charts.smile_chart(smile, overlays=earlier, height=470), key="smile_chart",
                    config={"displayModeBar": False})
    hours = ui.session_label(ts)
    st.caption(f"As of {fmt_moment(ts)}{f' ({hours})' if hours else ''} · markers: call and put IV · solid "
               "line: out-of-the-money IV (puts below spot, calls above) · dashed: earlier smiles of the "
               "session" + "".join(f" · {text}" for text in [*missing, note] if text))

    left, right = st.columns([5, 6], gap="large")
    with left:
        st.markdown("##### Put vs call IV at equal distances from ATM")
        table = analytics.equidistant_skew(chain).head(SKEW_ROWS)
        if table.empty:
            st.caption("No strikes at equal distances around ATM.")
        else:
            st.dataframe(tables.skew_view(table), hide_index=True, width="stretch",
                         height=tables.table_height(len(table)), row_height=tables.ROW_HEIGHT,
                         column_config=tables.SKEW_COLUMN_CONFIG)
    with right:
        term = analytics.term_structure(ticks, ctx.underlying)
        st.markdown("##### Term structure &nbsp;:gray[:small[ATM IV by expiry]]")
        if len(term) > 1:
            st.plotly_chart(charts.term_structure_chart(term, height=360), key="term_chart",
                            config={"displayModeBar": False})
        else:
            st.caption("Only one expiry is stored for this underlying: no term structure to draw.")

    expiry_day = chain.attrs["expiry"]
    day = reads.moment_series(ctx, ts, expiry_day)
    st.markdown(f"##### ATM IV through the session &nbsp;:gray[:small[{expiry_day:%d %b} expiry · "
                f"{day.label}]]")
    st.plotly_chart(charts.atm_iv_chart(day.frame, height=340, span=day.span), key="atm_iv_chart",
                    config={"displayModeBar": False})


asof.run_live_or_once(ctx, when, smile_page)
