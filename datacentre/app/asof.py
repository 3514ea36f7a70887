"""The as-of picker: a page shows the live market, or the market as stored at a moment.

:func:`as_of_ui` draws the choice (live, or a stored day and minute, IST) and
:func:`market_at` gives that moment's snapshot; :func:`run_live_or_once` reruns a
page body with the feed when live. :func:`pick_expiry` chooses the expiry a
snapshot can show.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import streamlit as st

from datacentre import analytics
from datacentre.app import ui
from datacentre.app.days import ist_clock, ist_ts, minute_of
from datacentre.app.formatting import fmt_day
from datacentre.app.reads import day_times, snapshot_as_of, stored_days
from datacentre.core.ticks import trading_day

LIVE, STORED = "Live", "Stored"
AS_OF_MODES = (LIVE, STORED)


@dataclass(frozen=True)
class AsOf:
    """The moment a page shows: the live market, or a stored snapshot."""

    live: bool
    day: date | None = None  # IST day of a stored moment
    target: str | None = None  # the requested time (store text) of a stored moment


def as_of_ui(ctx: ui.Context, key: str, columns: Sequence | None = None) -> AsOf:
    """Live or a stored day and time (IST); draws into ``columns`` (three) when given."""
    cols = columns if columns is not None else st.columns([2, 2, 5], vertical_alignment="bottom")
    mode = cols[0].segmented_control("As of", AS_OF_MODES, default=LIVE, required=True, key=f"{key}_mode",
                                     persist_state="session",
                                     help="The live market, or the market as it was at a stored moment")
    if mode == LIVE:
        return AsOf(live=True)
    days = stored_days(ctx)
    if not days:
        cols[1].caption("Nothing stored yet")
        return AsOf(live=True)
    day = cols[1].selectbox("Day", days, format_func=fmt_day, key=f"{key}_day", persist_state="session")
    times = day_times(ctx, day)
    first, last = ist_clock(times[0]), ist_clock(times[-1])
    if first == last:
        cols[2].caption(f"One snapshot at {first:%H:%M:%S} IST")
        return AsOf(live=False, day=day, target=times[-1])
    clock = kept_slider(cols[2], "Time (IST)", key=f"{key}_time_{day.isoformat()}",
                        default=minute_of(last, up=True), min_value=minute_of(first),
                        max_value=minute_of(last, up=True), step=timedelta(minutes=1), format="HH:mm",
                        help="The snapshot in force at the end of this minute")
    return AsOf(live=False, day=day, target=ist_ts(day, clock.replace(second=59)))


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
    ts = max((t["ts"] for t in ticks if t.get("ts")), default=None)
    day = trading_day(ts) if ts else None
    live = [e for e in available if day is None or e >= day]
    chosen = (live or available)[0]
    note = (f"The sidebar's expiry {ctx.expiry:%d %b} was not trading then: showing {chosen:%d %b %Y}."
            if ctx.expiry else None)
    return chosen, note

