"""IV rank: where the ATM implied volatility of a moment sits among the stored sessions'
closing ATM IV, live or as of a stored moment; a backfill when too few are stored."""
import streamlit as st

from datacentre.analytics import intraday
from datacentre.app import asof, backfilljob, daycharts, dayreads, ui
from datacentre.app.formatting import fmt_day, fmt_expiry, fmt_moment, fmt_pct, fmt_time

LOOKBACKS = (20, 60, 120, 250)
MIN_SESSIONS = 20  # fewer and a rank says little
BACKFILL_INTERVALS = (300, 60, 30, 15, 5)  # seconds; a session's closing IV needs few snapshots

ctx, controls, when = asof.day_page(
    "IV rank", "iv_rank", [2, 2, 4, 3, 1], as_of_columns=3,
    caption=lambda c: f"{c.index_symbol} · ATM IV of the nearest expiry after each session")
start = dayreads.moment_of(ctx, when, options=False)
lookback = controls[3].segmented_control("Sessions", LOOKBACKS, default=LOOKBACKS[-1], required=True,
                                         key="iv_rank_lookback", persist_state="session",
                                         help="How many stored sessions before the moment shown to rank "
                                              "against")


def rank_page() -> None:
    m = dayreads.moment_of(ctx, when, first=start)
    if dayreads.nothing_to_show(m, what="snapshot of this underlying"):
        return
    days = dayreads.stored_days_before(ctx, m.day, lookback)
    history = intraday.atm_iv_history(dayreads.session_iv(ctx, days))
    current, expiry = intraday.atm_iv_after(m.ticks, ctx.underlying, m.day)
    rank = intraday.iv_rank(history["atm_iv"], current)
    cards = st.columns(6)
    ui.metric(cards[0], "ATM IV", fmt_pct(current), f"{fmt_expiry(expiry)} expiry" if expiry else None,
              delta_color="off", delta_arrow="off",
              help="Mean of the call and put IV at the strike nearest the spot, nearest expiry after "
                   "the day, at the moment shown")
    ui.metric(cards[1], "IV rank", fmt_pct(rank.rank, 0),
              help="(IV − low) / (high − low) over the sessions and now: 0 at the low, 100 at the high")
    ui.metric(cards[2], "IV percentile", fmt_pct(rank.percentile, 0),
              help="The share of the sessions whose closing ATM IV was below the IV now")
    ui.metric(cards[3], "Low", fmt_pct(rank.low))
    ui.metric(cards[4], "High", fmt_pct(rank.high))
    span = f"{history['day'].iloc[0]:%d %b %y} – {history['day'].iloc[-1]:%d %b %y}" if len(history) else None
    ui.metric(cards[5], "Sessions", f"{rank.sessions}", span, delta_color="off", delta_arrow="off",
              help="Stored sessions before the moment shown with an ATM IV at their close")
    now_label = f"{m.day:%d %b %y} {fmt_time(m.ts, seconds=False)}" + (" (live)" if m.live else "")
    st.plotly_chart(daycharts.iv_rank_chart(history, (now_label, current)), key="iv_rank_chart",
                    config={"displayModeBar": False})
    st.caption("Each session's value is its last snapshot in the session (09:15–15:30 IST): ATM IV of "
               "the nearest expiry after that day, at the strike nearest the spot · the star is the moment "
               f"shown, {fmt_moment(m.ts)}")


def backfill_offer(stored: int, simulated: bool) -> None:
    st.warning(f"IV rank needs at least {MIN_SESSIONS} stored sessions to say much; {stored} "
               f"{'is' if stored == 1 else 'are'} stored before this moment.", icon=":material/history:")
    with st.container(border=True):
        cols = st.columns([2, 2, 2, 6], vertical_alignment="bottom")
        days = cols[0].number_input("Sessions to backfill", min_value=1, max_value=250,
                                    value=max(MIN_SESSIONS, 1), key="iv_rank_backfill_days")
        interval = cols[1].selectbox("One snapshot every", BACKFILL_INTERVALS,
                                     key="iv_rank_backfill_interval",
                                     format_func=lambda s: f"{s} s",
                                     help="A session's closing IV needs one snapshot; a coarse grid is fast")
        cols[3].code(f"python -m datacentre backfill --days {days} --interval {interval}", language="bash")
        job = backfilljob.current_job(ctx.settings)
        running = job is not None and job.status == backfilljob.RUNNING
        if not simulated:
            cols[2].caption("Backfill writes simulated sessions; this market is not the simulator's.")
        elif cols[2].button("Backfill", icon=":material/download:", disabled=running, key="iv_rank_backfill",
                            type="primary"):
            job = backfilljob.start_backfill(ctx.settings, int(days), float(interval))
        if job is not None:
            # polled while it runs; once done, drawn once
            st.fragment(run_every=1.0 if job.status == backfilljob.RUNNING else None)(backfill_progress)()


def backfill_progress() -> None:
    job = backfilljob.current_job(ctx.settings)
    if job is None:
        return
    done, total = job.progress
    if job.status == backfilljob.RUNNING:
        st.progress(min(done / total, 1.0) if total else 0.0,
                    text=f"Backfilling {job.days} sessions — {done:,} of {total:,} snapshots")
    elif job.status == backfilljob.FAILED:
        st.error(f"The backfill failed: {job.error}", icon=":material/error:")
    else:
        written = ", ".join(fmt_day(d) for d in job.sessions) or "nothing new"
        st.success(f"Backfilled {len(job.sessions)} sessions ({written}); {len(job.skipped)} were already "
                   f"stored.", icon=":material/check_circle:")
        if st.session_state.get("iv_rank_backfill_seen") != id(job):
            st.session_state["iv_rank_backfill_seen"] = id(job)
            st.cache_data.clear()  # the stored days and every day's reads now include the new sessions
            st.rerun(scope="app")


asof.run_live_or_once(ctx, when, rank_page)
before = dayreads.stored_days_before(ctx, start.day, lookback) if start.ts else []
if len(before) < MIN_SESSIONS:
    backfill_offer(len(before), any(t.get("source") == "sim" for t in start.ticks))
