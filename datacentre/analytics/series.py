"""A day's series for the charts: the IST day's bounds, one row per snapshot thinned
to what a chart can show, its pauses broken so lines do not bridge them."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import TypeVar

import numpy as np
import pandas as pd

from datacentre.core.ticks import IST, format_ts, trading_day, trading_day_start

SERIES_COLUMNS = ("ts", "time", "spot", "future", "basis", "ce_oi", "pe_oi", "pcr",
                  "ce_oi_change", "pe_oi_change", "atm_strike", "atm_iv")
SERIES_GAP = pd.Timedelta(minutes=5)  # a longer pause in a day series is a gap (market shut, collector off)

_DAY = timedelta(days=1)

T = TypeVar("T")


def day_bounds(moment) -> tuple[str, str]:
    """The IST calendar day containing ``moment`` (store text, datetime or date) as a
    ``(start_ts, end_ts)`` pair for the store's inclusive range queries."""
    day = moment if isinstance(moment, date) and not isinstance(moment, datetime) else trading_day(moment)
    return (format_ts(trading_day_start(day)),
            format_ts(trading_day_start(day + _DAY) - timedelta(milliseconds=1)))


def thin(items: Iterable[T], max_points: int | None, *, every_n: int = 1) -> list[T]:
    """Every ``stride``-th item from the first, and always the last (a series' newest
    point): the one rule by which every day chart is thinned, from the store's series
    and day OI to the live feed's points.

    ``stride`` is ``every_n``, raised to ``ceil(len / max_points)`` when there are more
    items than ``max_points`` (None: no cap), so at most ``max_points + 1`` items come
    back, evenly spaced but for the last.
    """
    items = list(items)
    if every_n < 1 or (max_points is not None and max_points < 1):
        raise ValueError(f"thin needs every_n >= 1 and max_points >= 1 (or None), "
                         f"got every_n={every_n}, max_points={max_points}")
    stride = every_n if max_points is None else max(every_n, -(-len(items) // max_points))
    return items if stride == 1 else [*items[:-1:stride], *items[-1:]]


def series_frame(rows: Sequence[dict], *, max_points: int | None = None) -> pd.DataFrame:
    """:meth:`TickStore.underlying_series` rows (or the live feed's ``Point`` s) as a
    DataFrame for the day's charts, its pauses broken by :func:`break_gaps`.

    Columns :data:`SERIES_COLUMNS`: ``time`` is the snapshot time as a tz-aware IST
    timestamp; ``basis`` = future − spot; ``pcr`` = pe_oi / ce_oi (NaN where call OI is
    0); ``*_oi_change`` are against the first row. ``attrs["expiry"]`` is the options'
    expiry (ISO text) the OI totals and ATM IV refer to; ``attrs["gaps"]`` the pauses.
    ``max_points`` thins the rows with :func:`thin`.
    """
    frame = pd.DataFrame(thin(rows, max_points))
    for column in SERIES_COLUMNS:
        if column not in frame.columns and column != "time":
            frame[column] = np.nan if column != "ts" else pd.Series([], dtype="str")
    expiry = frame["expiry"].dropna().iloc[0] if "expiry" in frame and frame["expiry"].notna().any() else None
    numbers = ["spot", "future", "ce_oi", "pe_oi", "atm_strike", "atm_iv"]
    frame[numbers] = frame[numbers].apply(pd.to_numeric, errors="coerce").astype(float)
    frame["time"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601").dt.tz_convert(IST)
    frame["basis"] = frame["future"] - frame["spot"]
    calls = frame["ce_oi"].where(frame["ce_oi"] > 0)
    frame["pcr"] = frame["pe_oi"] / calls
    for side in ("ce_oi", "pe_oi"):
        first = frame[side].iloc[0] if len(frame) else np.nan
        frame[f"{side}_change"] = frame[side] - first
    frame = frame[list(SERIES_COLUMNS)].reset_index(drop=True)
    frame.attrs["expiry"] = expiry
    return break_gaps(frame)


def break_gaps(frame: pd.DataFrame, *, longer_than: pd.Timedelta = SERIES_GAP) -> pd.DataFrame:
    """``frame`` (a day series with a ``time`` column, oldest first) with an empty row
    inside each pause longer than ``longer_than``, so a line breaks there instead of
    bridging it.

    ``attrs["gaps"]`` lists the pauses as ``(last time before, first time after)``: the
    charts squeeze them out of the time axis, so a day with an evening of live ticks
    after the session still shows the session at full width. A frame that already
    carries ``attrs["gaps"]`` is returned as it is.
    """
    if "gaps" in frame.attrs:
        return frame
    times = frame["time"]
    pauses = times.diff() > longer_than
    if pauses.any():
        after = times[pauses]
        before = times.shift(1)[pauses]
        # the empty row goes a millisecond before the first point after the pause: in the
        # pause whatever the data's resolution, and within the edge the charts keep visible
        breaks = pd.DataFrame({"time": after - pd.Timedelta(milliseconds=1)})
        out = pd.concat([frame, breaks]).sort_values("time", kind="stable").reset_index(drop=True)
        gaps = list(zip(before, after))
    else:
        out, gaps = frame.copy(deep=False), []
    out.attrs = {**frame.attrs, "gaps": gaps}
    return out


def as_series_frame(series) -> pd.DataFrame | None:
    """A day series in any of the forms the charts take (:func:`series_frame` output, the
    store's :meth:`~TickStore.underlying_series` rows as a list or a DataFrame) as
    :func:`series_frame` gives it, its pauses broken; None for None."""
    if isinstance(series, pd.DataFrame):
        if series.empty:
            return series
        if "time" in series.columns:
            return break_gaps(series)
        return series_frame(series.to_dict("records"))
    if series is None:
        return None
    rows = list(series)
    return series_frame(rows) if rows else None


def wall_clock(times: pd.Series) -> np.ndarray:
    """IST wall-clock times without a zone, as a chart's time axis should read them."""
    times = pd.to_datetime(times)
    if times.dt.tz is not None:
        times = times.dt.tz_convert(IST).dt.tz_localize(None)
    return times.to_numpy()


def wall_moment(moment) -> pd.Timestamp:
    """One moment as :func:`wall_clock` gives it (a naive one is taken as IST already)."""
    moment = pd.Timestamp(moment)
    return moment.tz_convert(IST).tz_localize(None) if moment.tz is not None else moment
