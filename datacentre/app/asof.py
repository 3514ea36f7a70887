"""The as-of picker: a page shows the live market, or the market as stored at a moment.

:func:`as_of_ui` draws the choice (live, or a stored session and minute, IST) and
:func:`market_at` gives that moment's snapshot; :func:`run_live_or_once` reruns a
page body with the feed when live. :func:`expiry_at` chooses the expiry a snapshot
shows: the sidebar's live, any expiry the snapshot holds (expired ones included) at a
stored moment.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import streamlit as st

from datacentre import analytics
from datacentre.app import ui
from datacentre.app.days import ist_clock, ist_ts, minute_of
from datacentre.app.formatting import fmt_day
from datacentre.app.reads import default_session, session_times, snapshot_as_of, stored_sessions
from datacentre.core.instruments import has_expired

LIVE, STORED = "Live", "Stored"
AS_OF_MODES = (LIVE, STORED)


@dataclass(frozen=True)
class AsOf:
    """The moment a page shows: the live market, or a stored snapshot."""

    live: bool
    day: date | None = None  # the session of a stored moment
    target: str | None = None  # the requested time (store text) of a stored moment
    key: str = ""
    slot: object = field(default=None, compare=False)  # where a stored moment's expiry picker goes


def day_page(title: str, key: str, widths: Sequence[int], *, as_of_columns: int = 4,
             caption: Callable[[ui.Context], str] | None = None) -> tuple[ui.Context, list, AsOf]:
    """The top of a day-chart page: its header (``caption(ctx)`` in grey, if given), the
    store (or an error and a stop), and a row of controls of ``widths`` whose first
    ``as_of_columns`` take the as-of picker. Returns the context, the row and the moment."""
    ctx = ui.context()
    ui.page_header(title, ctx, caption=caption(ctx) if caption else None)
    ui.require_store(ctx)
    controls = st.columns(list(widths), vertical_alignment="bottom")
    return ctx, controls, as_of_ui(ctx, key, controls[:as_of_columns])


def as_of_ui(ctx: ui.Context, key: str, columns: Sequence | None = None) -> AsOf:
    """Live or a stored session and time (IST); draws into ``columns`` (three, or four:
    the fourth takes a stored moment's expiry picker, see :func:`expiry_at`)."""
    cols = columns if columns is not None else st.columns([2, 2, 5], vertical_alignment="bottom")
    slot = cols[3] if len(cols) > 3 else cols[2]
    mode = cols[0].segmented_control("As of", AS_OF_MODES, default=LIVE, required=True, key=f"{key}_mode",
                                     persist_state="session",
                                     help="The live market, or the market as it was at a stored moment")
    if mode == LIVE:
        return AsOf(live=True)
    days = stored_sessions(ctx)
    if not days:
        cols[1].caption("No session stored yet")
        return AsOf(live=True)
    day = cols[1].selectbox("Session", days, index=days.index(default_session(ctx, days)),
                            format_func=fmt_day, key=f"{key}_day", persist_state="session",
                            help="A trading day's session (09:15-15:30 IST); ticks after hours are not one")
    times = session_times(ctx, day)
    first, last = ist_clock(times[0]), ist_clock(times[-1])
    if first == last:
        cols[2].caption(f"One snapshot at {first:%H:%M:%S} IST")
        return AsOf(live=False, day=day, target=times[-1], key=key, slot=slot)
    clock = kept_slider(cols[2], "Time (IST)", key=f"{key}_time_{day.isoformat()}",
                        default=minute_of(last, up=True), min_value=minute_of(first),
                        max_value=minute_of(last, up=True), step=timedelta(minutes=1), format="HH:mm",
                        help="The snapshot in force at the end of this minute")
    return AsOf(live=False, day=day, target=ist_ts(day, clock.replace(second=59)), key=key, slot=slot)


def kept_slider(container, label: str, *, key: str, default, min_value, max_value, **options):
    """A slider whose position survives changes of its bounds and visits to other pages.

    Streamlit resets a slider whose ``min_value``/``max_value`` change (today's last
    snapshot moves every few seconds); the position the user chose is kept under
    ``{key}__kept`` and handed back before the widget is drawn. Until the user moves
    it, the slider follows ``default``.
    """
    kept = f"{key}__kept"
    value = st.session_state.get(kept, default)
    st.session_state[key] = min(max(value, min_value), max_value)

    def moved() -> None:
        st.session_state[kept] = st.session_state[key]

    return container.slider(label, min_value=min_value, max_value=max_value, key=key, on_change=moved,
                            **options)


def market_at(ctx: ui.Context, when: AsOf) -> tuple[str | None, list[dict]]:
    """``(ts, ticks)`` the page shows: the live snapshot, or the stored one in force."""
    if when.live:
        return ui.live_ticks(ctx)
    return snapshot_as_of(ctx, when.target)


def run_live_or_once(ctx: ui.Context, when: AsOf, body: Callable[[], None]) -> None:
    """Run ``body`` in a fragment refreshed with the feed when live, else once."""
    if when.live:
        st.fragment(run_every=ui.refresh_seconds(ctx.settings))(body)()
    else:
        body()


def pick_expiry(ctx: ui.Context, ticks: list[dict]) -> tuple[date | None, str | None]:
    """The sidebar's expiry when ``ticks`` carry it, else their nearest live one;
    returns ``(expiry, note)`` with a note for the page when it had to fall back."""
    available = analytics.expiries(ticks, ctx.underlying)
    if not available:
        return None, None
    if ctx.expiry in available:
        return ctx.expiry, None
    chosen = nearest_trading(available, ticks)
    note = (f"The sidebar's expiry {ctx.expiry:%d %b} was not trading then: showing {chosen:%d %b %Y}."
            if ctx.expiry else None)
    return chosen, note


def nearest_trading(available: list[date], ticks: list[dict]) -> date:
    """Of ``available`` expiries (nearest first), the nearest still trading when ``ticks``
    were taken (on its expiry day until 15:30 IST), else the nearest."""
    ts = max((t["ts"] for t in ticks if t.get("ts")), default=None)
    live = [e for e in available if ts is None or not has_expired(e, ts)]
    return (live or available)[0]


def expiry_at(ctx: ui.Context, when: AsOf, ticks: list[dict], *,
              options: list[date] | None = None) -> tuple[date | None, str | None]:
    """The expiry a page shows for ``ticks``: live, :func:`pick_expiry` (the sidebar's);
    at a stored moment, a picker in ``when.slot`` over every expiry those ticks hold
    (or ``options``), expired ones included, starting on the one nearest to expiry that
    was still trading then, which on an expiry day is the expiring weekly."""
    if when.live or when.slot is None:
        return pick_expiry(ctx, ticks)
    available = options if options is not None else analytics.expiries(ticks, ctx.underlying)
    if not available:
        return None, None
    key = f"{when.key}_expiry_{when.day}"
    return expiry_picker(when.slot, key, available, ticks), None


def expiry_picker(container, key: str, available: list[date], ticks: list[dict]) -> date:
    """An expiry selectbox over ``available``: the user's pick while it is available, else
    the nearest expiry trading when ``ticks`` were taken (so moving in time never keeps
    a default that was right for another moment)."""
    kept = f"{key}__chosen"
    picked = st.session_state.get(kept)
    st.session_state[key] = picked if picked in available else nearest_trading(available, ticks)

    def chose() -> None:
        st.session_state[kept] = st.session_state[key]

    return container.selectbox("Expiry", available, key=key, on_change=chose,
                               format_func=lambda e: f"{e:%d %b %Y} ({e:%a})",
                               help="Any expiry stored at this moment, expired ones included")
