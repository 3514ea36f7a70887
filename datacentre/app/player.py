"""The replay player: a session played by moving a market clock ``speed`` times as fast
as the wall clock and showing the snapshot in force.

:func:`play_step` and its neighbours are the player's pure parts; :func:`replay_frame`
is the work of one replay step without drawing anything (the bench times it as the
page runs it).
"""
from __future__ import annotations

import math
import statistics
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache

import pandas as pd
import plotly.graph_objects as go

from datacentre import analytics
from datacentre.app import charts
from datacentre.app.tables import has_changes
from datacentre.core.ticks import IST, format_ts, parse_ts

MIN_PLAY_PERIOD_S = 0.5
SPOT_HEIGHT = 280
PANEL_HEIGHT = 470



def snapshot_interval(times: Sequence[str]) -> float:
    """The day's usual gap between snapshots in seconds (the collector's interval)."""
    if len(times) < 2:
        return 1.0
    sample = times[:200]
    gaps = [(parse_ts(b) - parse_ts(a)).total_seconds() for a, b in zip(sample, sample[1:])]
    return max(statistics.median(gaps), 0.001)


def play_cadence(speed: float, interval: float) -> tuple[float, float]:
    """``(seconds between steps, market seconds per step)`` at ``speed``×: a step per
    snapshot, but never more often than every :data:`MIN_PLAY_PERIOD_S` (faster speeds
    skip snapshots instead)."""
    period = max(interval / speed, MIN_PLAY_PERIOD_S)
    return period, speed * period


def position_of(times: Sequence[str], ts: str) -> int:
    """Index in ``times`` of the snapshot in force at ``ts`` (the first before it)."""
    return max(bisect_right(times, ts) - 1, 0)


def snapshot_labels(times: Sequence[str]) -> list[str]:
    """The replay slider's labels: each snapshot's IST time, ``'13:07:05'``, with
    milliseconds (``'13:07:05.500'``) where snapshots share a second, so every label
    is unique (the select slider tells its positions apart by label). Memoised: a
    page run costs a hash of the list."""
    return list(_snapshot_labels(tuple(times)))


@lru_cache(maxsize=8)
def _snapshot_labels(times: tuple[str, ...]) -> tuple[str, ...]:
    if not len(times):
        return []
    moments = pd.to_datetime(pd.Series(times), utc=True, format="ISO8601").dt.tz_convert(IST)
    hours, minutes, seconds = (moments.dt.hour.to_numpy(), moments.dt.minute.to_numpy(),
                               moments.dt.second.to_numpy())
    labels = [f"{h:02d}:{m:02d}:{s:02d}" for h, m, s in zip(hours, minutes, seconds)]
    if len(set(labels)) < len(labels):
        millis = moments.dt.microsecond.to_numpy() // 1000
        shared = pd.Series(labels).duplicated(keep=False).to_numpy()
        labels = [f"{label}.{ms:03d}" if twin else label for label, ms, twin in zip(labels, millis, shared)]
        seen: dict[str, int] = {}
        for i, label in enumerate(labels):  # a last resort: the store keeps milliseconds
            seen[label] = seen.get(label, 0) + 1
            if seen[label] > 1:
                labels[i] = f"{label} #{seen[label]}"
    return tuple(labels)


def play_forward(times: Sequence[str], pos: str, clock: tuple[datetime, str] | None,
                 advance_s: float) -> tuple[str, datetime]:
    """One player step: ``(snapshot, market clock)`` after moving the market clock exactly
    ``advance_s`` seconds, so every visible step covers the same market time whatever
    the speed (faster speeds skip snapshots instead of lurching when a render is late).

    ``clock`` is the previous step's ``(market clock, snapshot)``; the clock restarts at
    ``pos`` when there is none or the user moved the position since.
    """
    market = clock[0] if clock is not None and clock[1] == pos else parse_ts(pos)
    return play_step(times, pos, market + timedelta(seconds=advance_s))


def play_step(times: Sequence[str], pos: str, market: datetime) -> tuple[str, datetime]:
    """``(snapshot, market clock)`` after a step that moved the market clock to ``market``:
    the snapshot in force then; when that is still ``pos`` and a pause longer than
    :data:`analytics.SERIES_GAP` follows it (the market closed, the collector stopped),
    the first snapshot after the pause, with the clock moved there."""
    i = position_of(times, pos)
    j = position_of(times, format_ts(market))
    if j == i and i + 1 < len(times) and parse_ts(times[i + 1]) - parse_ts(pos) > analytics.SERIES_GAP:
        j, market = i + 1, parse_ts(times[i + 1])
    return times[min(j, len(times) - 1)], market


# ---------------------------------------------------------------------- a replay step


@dataclass
class ReplayFrame:
    """What the replay page draws for one moment."""

    ts: str | None
    chain: pd.DataFrame
    window: pd.DataFrame  # the chain around ATM, for the table
    figures: dict[str, go.Figure] = field(default_factory=dict)
    oi: analytics.OISummary | None = None
    atm_iv: float = math.nan
    skew: analytics.SkewMetrics | None = None


def replay_frame(ticks: list[dict], base: str, expiry: date | None, *, opening: list[dict] | None,
                 series: pd.DataFrame | None, atm_window: int = 8, span=None) -> ReplayFrame:
    """Chain, figures of merit and the three figures of one replay step (no Streamlit).

    ``opening`` is the session's first snapshot (changes are measured from it) and
    ``series`` the session's :func:`reads.day_series` up to this step (nothing after
    it), drawn on the session's ``span``.
    """
    chain = analytics.chain_table(ticks, base, expiry, previous=opening or None)
    ts = chain.attrs.get("ts")
    spot = charts.spot_chart(series, ts, height=SPOT_HEIGHT, span=span)
    if chain.empty:
        return ReplayFrame(ts, chain, chain, {"spot": spot})
    oi = analytics.oi_summary(chain)
    figures = {
        "spot": spot,
        "smile": charts.smile_chart(analytics.smile(chain), height=PANEL_HEIGHT),
        "oi": charts.oi_bars(chain, show_change=has_changes(chain), max_pain=oi.max_pain,
                             height=PANEL_HEIGHT),
    }
    return ReplayFrame(ts, chain, analytics.around_atm(chain, atm_window), figures, oi,
                       analytics.atm_iv(chain), analytics.skew_metrics(chain))
