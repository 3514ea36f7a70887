"""Replay: step or play through a stored session and see the market as it was.

The day's snapshot times, spot/OI series and opening snapshot are cached per store
and day (:mod:`datacentre.app.reads`); a step fetches only the one as-of snapshot. The
time slider moves over the day's snapshots, one position each, labelled with their
IST time: a day with an evening of live ticks after the session keeps the session
as easy to drag through as any other day.

Speed ``N×`` plays ``N`` seconds of market time per real second. The player steps
every ``interval / N`` seconds (one snapshot a step), but never more often than every
:data:`~datacentre.app.player.MIN_PLAY_PERIOD_S`: faster speeds skip snapshots instead
(at 60× with 5-second snapshots, 6 snapshots every half second, 12 a second). Each step moves a market
clock by ``N`` times the real time since the previous step, so a slow render costs
smoothness, not speed. Pauses in the data (the market closed, the collector
stopped) are jumped over.
"""
import math
import time
from datetime import timedelta

import streamlit as st

from datacentre import analytics
from datacentre.app import asof, reads, tables, ui
from datacentre.app.formatting import (
    MISSING,
    fmt_change,
    fmt_day,
    fmt_delta,
    fmt_moment,
    fmt_pct,
    fmt_price,
    fmt_ratio,
    fmt_strike,
    fmt_time,
)
from datacentre.app.player import (
    play_cadence,
    play_step,
    position_of,
    replay_frame,
    snapshot_interval,
    snapshot_labels,
)
from datacentre.core.ticks import parse_ts

SPEEDS = (1, 2, 5, 10, 30, 60)
DEFAULT_SPEED = 10
POS_KEY = "replay_pos"  # the ts of the snapshot shown (the source of truth)
PLAYING_KEY = "replay_playing"
SLIDER_KEY = "replay_time"  # the slider: an index into the day's snapshots
PLAY_CLOCK_KEY = "replay_market_clock"  # (wall time, market time, position) of the last step
MAX_CATCH_UP = 3  # a late step makes up at most this many periods
ATM_WINDOW = 8

ctx = ui.context()
ui.page_header("Replay", ctx)
ui.require_store(ctx)
days = reads.stored_days(ctx)
if not days:
    st.info(f"Nothing of {ctx.underlying} is stored yet. Backfill a session with "
            "`python -m datacentre backfill`, or let the collector run.", icon=":material/database:")
    st.stop()


def stop_playing() -> None:
    st.session_state[PLAYING_KEY] = False


controls = st.columns([3, 4, 2, 4], vertical_alignment="bottom")
day = controls[0].selectbox("Session", days, format_func=fmt_day, key="replay_day",
                            persist_state="session", on_change=stop_playing,
                            help="A day (IST) with stored snapshots of the selected underlying")
speed = controls[1].segmented_control("Speed", SPEEDS, format_func=lambda s: f"{s}×", default=DEFAULT_SPEED,
                                      required=True, key="replay_speed", persist_state="session",
                                      help="Seconds of market time played per real second")
times = reads.day_times(ctx, day)
if not times:
    st.info("No snapshots stored for that day.", icon=":material/database:")
    st.stop()
interval = snapshot_interval(times)
period, advance_s = play_cadence(speed, interval)
if st.session_state.get(POS_KEY) not in times:
    # a fresh visit, or another day: start at the day's first snapshot
    st.session_state[POS_KEY] = times[0]
    st.session_state[PLAYING_KEY] = False
if SLIDER_KEY not in st.session_state:
    # Arriving from another page (Streamlit drops an undrawn slider's state): the
    # player's timer stopped when the page was left, so show it paused.
    st.session_state[PLAYING_KEY] = False
playing = bool(st.session_state.get(PLAYING_KEY))


def toggle_play() -> None:
    now = st.session_state.get(PLAYING_KEY, False)
    if not now and st.session_state.get(POS_KEY) == times[-1]:
        st.session_state[POS_KEY] = times[0]  # play again from the start
    st.session_state[PLAYING_KEY] = not now


controls[2].button("Pause" if playing else "Play", type="primary", on_click=toggle_play, width="stretch",
                   icon=":material/pause:" if playing else ":material/play_arrow:", key="replay_play")
per_step = max(1, round(advance_s / interval))
controls[3].caption(f"{len(times):,} snapshots every {interval:g} s · at {speed}× the player moves "
                    f"{per_step} snapshot{'s' if per_step > 1 else ''} every {period:g} s")

opening_ts, opening = reads.day_open(ctx, day)
labels = snapshot_labels(times)  # the slider's positions are the snapshots, labelled IST


def move(by: int) -> None:
    i = position_of(times, st.session_state[POS_KEY]) + by
    st.session_state[POS_KEY] = times[min(max(i, 0), len(times) - 1)]


def jump(to: int) -> None:
    st.session_state[POS_KEY] = times[to]


def slid() -> None:
    st.session_state[POS_KEY] = times[st.session_state[SLIDER_KEY]]


def advance() -> None:
    """One player step: the market clock moves ``speed`` times the real time since the
    last step (so a slow render does not slow the replay down), and the snapshot in
    force at the new market time is shown. A pause in the data is jumped over."""
    pos = st.session_state[POS_KEY]
    wall = time.monotonic()
    last = st.session_state.get(PLAY_CLOCK_KEY)
    if last is None or last[2] != pos:  # the first step, or the user moved the position
        market, elapsed = parse_ts(pos), period
    else:
        market, elapsed = last[1], min(wall - last[0], MAX_CATCH_UP * period)
    pos, market = play_step(times, pos, market + timedelta(seconds=speed * elapsed))
    st.session_state[POS_KEY] = pos
    st.session_state[PLAY_CLOCK_KEY] = (wall, market, pos)


@st.fragment(run_every=period if playing else None)
def player() -> None:
    if st.session_state.get(PLAYING_KEY):
        advance()
        if st.session_state[POS_KEY] == times[-1]:
            st.session_state[PLAYING_KEY] = False
            st.rerun()  # the whole page, so the timer stops
    ts = st.session_state[POS_KEY]
    i = position_of(times, ts)

    bar = st.columns([14, 1, 1, 1, 1], vertical_alignment="bottom")
    st.session_state[SLIDER_KEY] = i
    bar[0].select_slider("Time (IST)", options=range(len(times)), format_func=labels.__getitem__,
                         key=SLIDER_KEY, on_change=slid,
                         help="One position per stored snapshot, so pauses in the data (the market "
                              "shut, the collector off) take no room; the arrows step one snapshot")
    bar[1].button("", icon=":material/first_page:", help="First snapshot", on_click=jump, args=(0,),
                  key="replay_first", width="stretch")
    bar[2].button("", icon=":material/chevron_left:", help="Previous snapshot", on_click=move, args=(-1,),
                  key="replay_back", width="stretch")
    bar[3].button("", icon=":material/chevron_right:", help="Next snapshot", on_click=move, args=(1,),
                  key="replay_next", width="stretch")
    bar[4].button("", icon=":material/last_page:", help="Last snapshot", on_click=jump, args=(-1,),
                  key="replay_last", width="stretch")

    ticks = reads.ticks_at(ctx, ts)
    expiry, note = asof.pick_expiry(ctx, ticks)
    series = reads.day_series(ctx, day, expiry)
    frame = replay_frame(ticks, ctx.underlying, expiry, opening=opening, series=series,
                               atm_window=ATM_WINDOW)
    chain = frame.chain
    if chain.empty:
        st.plotly_chart(frame.figures["spot"], key="replay_spot", config={"displayModeBar": False})
        st.info("No options of this underlying in that snapshot.", icon=":material/hourglass_top:")
        return
    opening_chain = analytics.chain_table(opening, ctx.underlying, expiry) if opening else None
    then = opening_chain.attrs if opening_chain is not None else {}
    spot = chain.attrs.get("spot")
    open_iv = analytics.atm_iv(opening_chain) if opening_chain is not None else math.nan
    open_pcr = analytics.pcr(opening_chain) if opening_chain is not None else math.nan

    m = st.columns(6)
    m[0].metric(ctx.index_symbol, fmt_price(spot), fmt_delta(spot, then.get("spot")), border=True,
                help="Index level; change since the day's first snapshot")
    m[1].metric("Future", fmt_price(chain.attrs.get("future")),
                fmt_delta(chain.attrs.get("future"), then.get("future")), border=True,
                help="Nearest future; change since the day's first snapshot")
    m[2].metric("ATM IV", fmt_pct(frame.atm_iv),
                fmt_delta(frame.atm_iv, open_iv, suffix=" vol pts"),
                delta_color="gray", border=True,
                help=f"At ATM {fmt_strike(chain.attrs.get('atm'))}; change since the open")
    m[3].metric("PCR (OI)", fmt_ratio(frame.pcr), fmt_delta(frame.pcr, open_pcr), border=True,
                help="Put OI / call OI of this expiry; change since the open")
    pain = frame.max_pain
    m[4].metric("Max pain", fmt_strike(pain),
                None if pain is None or spot is None else f"{fmt_change(pain - spot)} pts from spot",
                delta_color="off", delta_arrow="off", border=True,
                help="Settlement price at which option buyers would be paid least")
    m[5].metric("As of", fmt_time(ts), f"snapshot {i + 1:,} of {len(times):,}", delta_color="gray",
                delta_arrow="off", border=True, help=fmt_moment(ts))

    st.plotly_chart(frame.figures["spot"], key="replay_spot", config={"displayModeBar": False})
    left, right = st.columns(2, gap="medium")
    left.markdown("##### IV smile")
    left.plotly_chart(frame.figures["smile"], key="replay_smile", config={"displayModeBar": False})
    since = f"change since {fmt_time(opening_ts, seconds=False)} below" if tables.has_changes(chain) \
        else "at the open"
    right.markdown(f"##### Open interest by strike &nbsp;:gray[:small[{since}]]")
    right.plotly_chart(frame.figures["oi"], key="replay_oi", config={"displayModeBar": False})

    expiry_day = chain.attrs.get("expiry")
    st.markdown(f"##### Option chain &nbsp;:gray[:small[{expiry_day:%d %b %Y} expiry · ATM ±{ATM_WINDOW} · "
                f"changes since {fmt_time(opening_ts, seconds=False)}]]")
    tables.calls_puts_header()
    st.dataframe(tables.chain_view(frame.window), hide_index=True, width="stretch",
                 column_config=tables.chain_column_config(f"the open ({fmt_time(opening_ts)})"),
                 row_height=tables.ROW_HEIGHT, height=tables.table_height(len(frame.window)),
                 placeholder=MISSING, key="replay_chain")
    if note:
        st.caption(note)


player()
