"""Option-chain analytics: pure functions from ticks to tables and figures of merit.

Everything here takes tick dicts (a snapshot from :meth:`TickStore.snapshot_at`, the
live feed's cache, ...) or the DataFrame :func:`ticks_frame` makes of them, and
returns plain values or DataFrames. No Streamlit, no I/O.

The central object is the **chain**: :func:`chain_table` gives one row per strike of
one expiry with the columns in :data:`CHAIN_COLUMNS`::

    strike,
    ce_oi, ce_oi_change, ce_volume, ce_iv, ce_ltp, ce_ltp_change, ce_bid, ce_ask,
    ce_delta, ce_gamma, ce_theta, ce_vega,
    pe_... (the same twelve),
    ce_symbol, pe_symbol

Numbers are ``float64`` (NaN where a strike has no call or no put, or no previous
snapshot to compare with); ``iv`` is in percent, as in the ticks. ``chain.attrs``
carries the context (:data:`CHAIN_ATTRS`): ``underlying`` (base, ``"NIFTY"``),
``expiry`` (``datetime.date`` or None), ``ts`` and ``previous_ts`` (store text),
``spot``, ``future``, ``atm`` (float or None), ``strike_step``, ``lot_size``,
``days_to_expiry`` and ``time_to_expiry`` (years, to 15:30 IST on expiry).

Conventions for "no answer": a function that returns a *number* (:func:`pcr`,
:func:`atm_iv`, skew figures) returns ``nan``; one that returns a *strike*
(:func:`max_pain`, :func:`support_resistance`) returns ``None``.

Symbols are always parsed (:func:`datacentre.core.instruments.parse_symbol`), never
matched by substring, so ``BANKNIFTY...`` never leaks into ``NIFTY``.

The modules, by concern (import from here; the split is not part of the API):

* :mod:`~datacentre.analytics.frame`: :func:`ticks_frame`, the columns every function reads;
* :mod:`~datacentre.analytics.chain`: :func:`chain_table`, :func:`around_atm`,
  :func:`expiries`, :func:`spot_of`, :func:`future_of`;
* :mod:`~datacentre.analytics.oi`: :func:`oi_summary` (PCR, total OI, max pain,
  support/resistance: what every page shows, from one snapshot), the OI build-up;
* :mod:`~datacentre.analytics.smile`: ATM IV, the smile, skew, the term structure;
* :mod:`~datacentre.analytics.series`: a day's series for the charts.
"""
from __future__ import annotations

from datacentre.analytics.chain import (
    CHAIN_ATTRS,
    CHAIN_COLUMNS,
    SIDE_FIELDS,
    around_atm,
    chain_table,
    expiries,
    future_of,
    spot_of,
)
from datacentre.analytics.frame import (
    FRAME_COLUMNS,
    NUMERIC_FIELDS,
    OPTION_KINDS,
    PARSED_COLUMNS,
    ticks_frame,
)
from datacentre.analytics.oi import (
    BUILDUP_COLUMNS,
    BUILDUPS,
    LONG_BUILDUP,
    LONG_UNWINDING,
    NEUTRAL,
    SHORT_BUILDUP,
    SHORT_COVERING,
    OISummary,
    SupportResistance,
    biggest_oi_addition,
    buildup_table,
    classify_buildup,
    max_pain,
    oi_summary,
    pain_curve,
    pcr,
    support_resistance,
)
from datacentre.analytics.series import (
    SERIES_COLUMNS,
    SERIES_GAP,
    as_series_frame,
    break_gaps,
    day_bounds,
    series_frame,
    thin,
    wall_clock,
    wall_moment,
)
from datacentre.analytics.smile import (
    SMILE_COLUMNS,
    SkewMetrics,
    atm_iv,
    equidistant_skew,
    iv_at_delta,
    skew_metrics,
    smile,
    term_structure,
)

__all__ = [
    "BUILDUPS", "BUILDUP_COLUMNS", "CHAIN_ATTRS", "CHAIN_COLUMNS", "FRAME_COLUMNS", "LONG_BUILDUP",
    "LONG_UNWINDING", "NEUTRAL", "NUMERIC_FIELDS", "OPTION_KINDS", "PARSED_COLUMNS", "SERIES_COLUMNS",
    "OISummary", "SERIES_GAP", "SHORT_BUILDUP", "SHORT_COVERING", "SIDE_FIELDS", "SMILE_COLUMNS",
    "SkewMetrics",
    "SupportResistance", "around_atm", "as_series_frame", "atm_iv", "biggest_oi_addition", "break_gaps",
    "buildup_table", "chain_table", "classify_buildup", "day_bounds", "equidistant_skew", "expiries",
    "future_of", "iv_at_delta", "max_pain", "oi_summary", "pain_curve", "pcr",
    "series_frame", "skew_metrics", "smile", "spot_of", "support_resistance",
    "term_structure", "thin", "ticks_frame", "wall_clock", "wall_moment",
]
