"""Replay: step or play through a stored session and see the market as it was.

Sessions are NSE sessions (09:15-15:30 IST): the picker lists the stored ones and
opens on the last complete session; after-hours ticks are not part of any. The
session's snapshot times, series and opening snapshot are cached per store and day
(:mod:`datacentre.app.reads`); a step fetches only the one snapshot. The time slider
moves over the session's snapshots, one position each, labelled with their IST time.
Every figure shown is of the snapshot at the cursor or before it: the day charts end
there.

Speed ``N×`` plays ``N`` seconds of market time per real second. The player steps
every ``interval / N`` seconds (one snapshot a step), but never more often than every
:data:`~datacentre.app.player.MIN_PLAY_PERIOD_S`: faster speeds skip snapshots instead
(at 60× with 5-second snapshots, 6 snapshots every half second). Each step moves the
market clock by exactly ``N`` times the period (:func:`~datacentre.app.player.play_forward`),
so market time advances evenly step after step: a slow render delays a step, it never
makes the next one jump. Pauses in the data (the collector stopped) are jumped over.
"""
import math
from datetime import date

import streamlit as st

from datacentre import analytics
from datacentre.app import asof, reads, tables, ui
from datacentre.app.formatting import (
    MISSING,
    fmt_day,
    fmt_delta,
    fmt_moment,
    fmt_pct,
    fmt_price,
    fmt_strike,
    fmt_time,
)
from datacentre.app.player import (
    play_cadence,
    play_forward,
    position_of,
    replay_frame,
    snapshot_interval,
    snapshot_labels,
)
from datacentre.core.instruments import has_expired, session_bounds

SPEEDS = (1, 2, 5, 10, 30, 60)
DEFAULT_SPEED = 10
POS_KEY = "replay_pos"  # the ts of the snapshot shown (the source of truth)
PLAYING_KEY = "replay_playing"
SLIDER_KEY = "replay_time"  # the slider: an index into the day's snapshots
PLAY_CLOCK_KEY = "replay_market_clock"  # (market time, position) of the last step
SESSION_KEY = "session"  # also the query parameter: /replay?session=2026-12-01
ATM_WINDOW = 8

ctx = ui.context()
ui.page_header("Replay", ctx, caption=f"{ctx.index_symbol} · a stored session")
ui.require_store(ctx)
days = reads.stored_sessions(ctx)
if not days:
    st.info(f"No session of {ctx.underlying} is stored yet (ticks after hours are not a session). Backfill "
            "one with `python -m datacentre backfill`, or let the collector run through market hours.",
            icon=":material/database:")
    st.stop()


def stop_playing() -> None:
    st.session_state[PLAYING_KEY] = False


controls = st.columns([3, 3, 5, 2], vertical_alignment="bottom")  # session, expiry, speed, play
options = [d.isoformat() for d in days]
default = reads.default_session(ctx, days).isoformat()
if st.session_state.get(SESSION_KEY) not in options:
    st.session_state[SESSION_KEY] = default
day = date.fromisoformat(controls[0].selectbox(
    "Session", options, format_func=lambda d: fmt_day(date.fromisoformat(d)), key=SESSION_KEY,
    bind="query-params", on_change=stop_playing,
    help="A stored session (09:15-15:30 IST) of the selected underlying; it opens on the last complete one"))
speed = controls[2].segmented_control("Speed", SPEEDS, format_func=lambda s: f"{s}×", default=DEFAULT_SPEED,
                                      required=True, key="replay_speed", persist_state="session",
                                      help="Seconds of market time played per real second")
times = reads.session_times(ctx, day)
if not times:
    st.info("No snapshots stored for that session.", icon=":material/database:")
    st.stop()
opening_ts, opening = reads.day_open(ctx, day)
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

# The expiries traded at the open and at the snapshot shown (never later ones), the one
# expiring that day included; it opens on the nearest still trading at the open (the
# sidebar's choice is the live market's).
shown_ticks = reads.ticks_at(ctx, st.session_state[POS_KEY])
expiries = sorted({*analytics.expiries(opening, ctx.underlying),
                   *analytics.expiries(shown_ticks, ctx.underlying)})
expiry = asof.expiry_picker(controls[1], f"replay_expiry_{day.isoformat()}", expiries,
                            opening or shown_ticks) if expiries else None


def toggle_play() -> None:
    now = st.session_state.get(PLAYING_KEY, False)
    if not now and st.session_state.get(POS_KEY) == times[-1]:
        st.session_state[POS_KEY] = times[0]  # play again from the start
    st.session_state[PLAYING_KEY] = not now


controls[3].button("Pause" if playing else "Play", type="primary", on_click=toggle_play, width="stretch",
                   icon=":material/pause:" if playing else ":material/play_arrow:", key="replay_play")
per_step = max(1, round(advance_s / interval))
cadence = (f"{len(times):,} snapshots every {interval:g} s · at {speed}× each step moves the market "
           f"{advance_s:g} s ({per_step} snapshot{'s' if per_step > 1 else ''}) every {period:g} s")

labels = snapshot_labels(times)  # the slider's positions are the snapshots, labelled IST


def move(by: int) -> None:
    i = position_of(times, st.session_state[POS_KEY]) + by
    st.session_state[POS_KEY] = times[min(max(i, 0), len(times) - 1)]


def jump(to: int) -> None:
    st.session_state[POS_KEY] = times[to]


def slid() -> None:
    st.session_state[POS_KEY] = times[st.session_state[SLIDER_KEY]]


def advance() -> None:
    """One player step: the market clock moves exactly ``advance_s`` and the snapshot in
    force then is shown (:func:`play_forward`)."""
    pos, market = play_forward(times, st.session_state[POS_KEY], st.session_state.get(PLAY_CLOCK_KEY),
                               advance_s)
    st.session_state[POS_KEY] = pos
    st.session_state[PLAY_CLOCK_KEY] = (market, pos)


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
    st.caption(cadence)

    ticks = reads.ticks_at(ctx, ts)
    # the session's day charts up to this snapshot: nothing from after it
    series = reads.day_series(ctx, day, expiry, upto=ts)
    frame = replay_frame(ticks, ctx.underlying, expiry, opening=opening, series=series,
                         atm_window=ATM_WINDOW, span=session_bounds(day))
    chain = frame.chain
    if chain.empty:
        st.plotly_chart(frame.figures["spot"], key="replay_spot", config={"displayModeBar": False})
        st.info(f"No options of the {expiry:%d %b} expiry in this snapshot: it stopped trading at 15:30 IST "
                "on its expiry day." if expiry and has_expired(expiry, ts) else
                "No options of this underlying in that snapshot.", icon=":material/hourglass_top:")
        return
    opening_chain = analytics.chain_table(opening, ctx.underlying, expiry) if opening else None
    then = opening_chain.attrs if opening_chain is not None else {}
    spot = chain.attrs.get("spot")
    open_iv = analytics.atm_iv(opening_chain) if opening_chain is not None else math.nan
    open_oi = analytics.oi_summary(opening_chain) if opening_chain is not None else None
    oi, scope = frame.oi, ui.oi_scope(frame.oi, chain)
    since_open = f"since the open ({fmt_time(opening_ts)})"

    m = st.columns(6)
    ui.metric(m[0], ctx.index_symbol, fmt_price(spot), fmt_delta(spot, then.get("spot")),
              help=f"Index level; change {since_open}")
    ui.metric(m[1], "Future", fmt_price(chain.attrs.get("future")),
              fmt_delta(chain.attrs.get("future"), then.get("future")),
              help=f"Nearest future; change {since_open}")
    ui.metric(m[2], "ATM IV", fmt_pct(frame.atm_iv), fmt_delta(frame.atm_iv, open_iv, suffix=" vol pts"),
              delta_color="gray", help=f"At ATM {fmt_strike(chain.attrs.get('atm'))}; change {since_open}")
    ui.oi_metrics(m[3], m[4], oi, open_oi, spot, scope, since_open)
    ui.metric(m[5], "As of", fmt_time(ts), f"{i + 1:,} of {len(times):,}", delta_color="gray",
              delta_arrow="off", help=f"Snapshot {i + 1:,} of the session's {len(times):,}: {fmt_moment(ts)}")

    st.plotly_chart(frame.figures["spot"], key="replay_spot", config={"displayModeBar": False})
    left, right = st.columns(2, gap="medium")
    left.markdown("##### IV smile")
    left.plotly_chart(frame.figures["smile"], key="replay_smile", config={"displayModeBar": False})
    since = f"change since {fmt_time(opening_ts, seconds=False)} below" if tables.has_changes(chain) \
        else "at the open"
    right.markdown(f"##### Open interest by strike &nbsp;:gray[:small[{since}]]")
    right.plotly_chart(frame.figures["oi"], key="replay_oi", config={"displayModeBar": False})

    window = frame.window
    low, high = window["strike"].min(), window["strike"].max()
    shown = f"{len(window)} strikes {fmt_strike(low)}–{fmt_strike(high)} of {oi.strikes} stored"
    st.markdown(f"##### Option chain &nbsp;:gray[:small[{chain.attrs['expiry']:%d %b %Y} expiry · {shown} · "
                f"changes since {fmt_time(opening_ts, seconds=False)}]]")
    tables.calls_puts_header()
    st.dataframe(tables.chain_view(window, peaks=oi), hide_index=True, width="stretch",
                 column_config=tables.chain_column_config(f"the open ({fmt_time(opening_ts)})"),
                 row_height=tables.ROW_HEIGHT, height=tables.table_height(len(window)),
                 placeholder=MISSING, key="replay_chain")


player()
