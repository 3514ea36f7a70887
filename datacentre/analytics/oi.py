"""Open-interest figures of a chain: max pain, PCR, support and resistance (together in
:func:`oi_summary`, what every page shows), and the build-up of positions.

A function that returns a *number* (:func:`pcr`) returns ``nan`` when there is no
answer; one that returns a *strike* (:func:`max_pain`, :func:`support_resistance`)
returns ``None``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from typing import NamedTuple

import numpy as np
import pandas as pd

from datacentre.analytics.chain import _by_strike, _option_legs
from datacentre.analytics.frame import OPTION_KINDS, _Columns, ticks_frame
from datacentre.core.instruments import FUT, PE
from datacentre.core.instruments import underlying as find_underlying

LONG_BUILDUP = "Long Build-up"
SHORT_BUILDUP = "Short Build-up"
SHORT_COVERING = "Short Covering"
LONG_UNWINDING = "Long Unwinding"
NEUTRAL = "Neutral"
BUILDUPS = (LONG_BUILDUP, SHORT_BUILDUP, SHORT_COVERING, LONG_UNWINDING, NEUTRAL)

BUILDUP_COLUMNS = ("symbol", "kind", "strike", "expiry", "ltp", "ltp_change", "ltp_change_pct",
                   "oi", "oi_change", "oi_change_pct", "volume", "buildup")


def _oi(chain: pd.DataFrame, *columns: str) -> tuple[np.ndarray, ...]:
    """The strikes, ascending, and ``columns`` (OI or volume) in that order, missing as 0."""
    strikes, *values = _by_strike(chain, *columns)
    return strikes, *(np.nan_to_num(v, nan=0.0) for v in values)


def pain_curve(chain: pd.DataFrame) -> pd.DataFrame:
    """For each strike as the expiry settlement price, what option buyers would be paid.

    Columns ``strike`` (ascending, whatever the chain's row order), ``call_payout``,
    ``put_payout``, ``total_payout`` in OI units times index points (missing OI counts
    as 0).
    """
    strikes, ce, pe = _oi(chain, "ce_oi", "pe_oi")
    calls, puts = _payouts(strikes, ce, pe)
    return pd.DataFrame({"strike": strikes, "call_payout": calls, "put_payout": puts,
                         "total_payout": calls + puts})


def _payouts(strikes: np.ndarray, ce: np.ndarray, pe: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # settle[j] - strike[i]: rows are settlement prices, columns the strikes held
    gap = strikes[:, None] - strikes[None, :]
    return np.clip(gap, 0, None) @ ce, np.clip(-gap, 0, None) @ pe


def max_pain(chain: pd.DataFrame) -> float | None:
    """The strike at which option buyers would be paid least at expiry.

    Only the chain's strikes are candidates; ties (far expiries often pay nothing
    over a range of strikes) go to the lowest strike, whatever the chain's row order.
    None when the chain is empty or carries no open interest.
    """
    strikes, ce, pe = _oi(chain, "ce_oi", "pe_oi")
    if not ce.sum() + pe.sum() > 0:  # also an empty chain
        return None
    calls, puts = _payouts(strikes, ce, pe)
    return float(strikes[int(np.argmin(calls + puts))])


def pcr(chain: pd.DataFrame, *, of: str = "oi") -> float:
    """Put-call ratio: total put OI / total call OI (``of="volume"`` for volumes).

    ``nan`` when the call total is 0 (or the chain is empty): the ratio is undefined,
    and NaN formats as a dash and plots as a gap.
    """
    if of not in ("oi", "volume"):
        raise ValueError(f"pcr of 'oi' or 'volume', not {of!r}")
    _, calls, puts = _oi(chain, f"ce_{of}", f"pe_{of}")
    return float(puts.sum() / calls.sum()) if calls.sum() > 0 else math.nan


def biggest_oi_addition(chain: pd.DataFrame, side: str) -> tuple[float | None, float]:
    """``(strike, change)`` where ``side``'s (``"ce"`` or ``"pe"``) OI grew most in a
    chain built with ``previous``: fresh resistance for calls, support for puts.
    Ties go to the lowest strike; ``(None, nan)`` when no strike's OI grew."""
    strikes, change = _by_strike(chain, f"{side}_oi_change")
    if not (change > 0).any():  # also all NaN
        return None, math.nan
    i = int(np.nanargmax(change))
    return float(strikes[i]), float(change[i])


class SupportResistance(NamedTuple):
    support: float | None  # strike with the most put OI
    resistance: float | None  # strike with the most call OI


def support_resistance(chain: pd.DataFrame) -> SupportResistance:
    """Highest put-OI strike (support) and highest call-OI strike (resistance).

    Ties go to the lowest strike, whatever the chain's row order; a side without any
    OI gives None.
    """
    def peak(column: str) -> float | None:
        strikes, oi = _oi(chain, column)
        if not len(oi) or oi.max() <= 0:
            return None
        return float(strikes[int(np.argmax(oi))])
    return SupportResistance(peak("pe_oi"), peak("ce_oi"))


class OISummary(NamedTuple):
    """The open-interest figures of one chain, all over the same strikes.

    Every page shows these for a moment from :func:`oi_summary` of that moment's
    chain, so PCR, the totals, max pain, support and resistance always agree.
    """

    call_oi: float  # total call OI, shares (nan for an empty chain)
    put_oi: float
    pcr: float  # put_oi / call_oi; nan when there is no call OI
    max_pain: float | None
    support: float | None  # strike with the most put OI
    resistance: float | None  # strike with the most call OI
    strikes: int  # strikes of the chain, i.e. the strikes every figure covers
    low: float | None  # the lowest and highest of them
    high: float | None


def oi_summary(chain: pd.DataFrame) -> OISummary:
    """PCR, total call and put OI, max pain, support and resistance of ``chain``: one
    function for every page, from one snapshot, so the figures agree wherever they show.

    The figures cover exactly the chain's strikes (``strikes``, ``low``..``high``);
    build the chain from the whole snapshot and window it only for display.
    """
    strikes, ce, pe = _oi(chain, "ce_oi", "pe_oi")
    if not len(strikes):
        return OISummary(math.nan, math.nan, math.nan, None, None, None, 0, None, None)
    peaks = support_resistance(chain)
    return OISummary(float(ce.sum()), float(pe.sum()), pcr(chain), max_pain(chain), peaks.support,
                     peaks.resistance, len(strikes), float(strikes[0]), float(strikes[-1]))


def _as_array(x) -> np.ndarray:
    if isinstance(x, (pd.Series, pd.Index)):
        return x.to_numpy(dtype=float, na_value=np.nan)
    return np.asarray(pd.to_numeric(np.asarray(x, dtype=object).ravel(), errors="coerce"),
                      dtype=float).reshape(np.shape(x))


def _scalar(x) -> float:
    if x is None or x is pd.NA:
        return math.nan
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def classify_buildup(price_change, oi_change, *, price_tol: float = 0.0, oi_tol: float = 0.0):
    """Name the positioning behind a move in price and open interest.

    ======================  =================  ==================
    price                   OI up              OI down
    ======================  =================  ==================
    up                      Long Build-up      Short Covering
    down                    Short Build-up     Long Unwinding
    ======================  =================  ==================

    No change in either (``abs(change) <= tol``), or a missing change (None/NaN),
    is ``"Neutral"``. Scalars give a string; arrays give an object array of strings,
    and if either input is a Series the result is a Series on its index (inputs are
    matched by position, not aligned).
    """
    if np.ndim(price_change) == 0 and np.ndim(oi_change) == 0:
        p, o = _scalar(price_change), _scalar(oi_change)
        if not (abs(p) > price_tol and abs(o) > oi_tol):  # also catches NaN
            return NEUTRAL
        if o > 0:
            return LONG_BUILDUP if p > 0 else SHORT_BUILDUP
        return SHORT_COVERING if p > 0 else LONG_UNWINDING
    p, o = np.broadcast_arrays(_as_array(price_change), _as_array(oi_change))
    with np.errstate(invalid="ignore"):
        up, down = p > price_tol, p < -price_tol
        more, less = o > oi_tol, o < -oi_tol
    labels = np.select([up & more, down & more, up & less, down & less],
                       [LONG_BUILDUP, SHORT_BUILDUP, SHORT_COVERING, LONG_UNWINDING],
                       default=NEUTRAL).astype(object)
    for x in (price_change, oi_change):
        if isinstance(x, pd.Series):
            return pd.Series(labels, index=x.index, name="buildup", dtype=object)
    return labels


def buildup_table(now_ticks, base_ticks, underlying: str, expiry=None, *,
                  kinds: Sequence[str] = OPTION_KINDS) -> pd.DataFrame:
    """Per-contract price and OI change from ``base_ticks`` to ``now_ticks``, classified.

    Options of one expiry (default the nearest); add ``"FUT"`` to ``kinds`` for the
    futures (every expiry). Columns :data:`BUILDUP_COLUMNS`; ``*_change_pct`` in
    percent; contracts missing from ``base_ticks`` have NaN changes and are Neutral.
    Sorted futures first (nearest expiry first), then by strike, CE before PE. ``attrs``: underlying,
    expiry, ts, base_ts.
    """
    cols = _Columns(ticks_frame(now_ticks))
    u = find_underlying(underlying)
    legs, chosen, ts = _option_legs(cols, u.base, expiry)
    rows = legs[np.isin(cols["kind"][legs], list(kinds))]
    if FUT in kinds:
        rows = np.concatenate([cols.newest_per_symbol(cols.select(u.base, (FUT,))), rows])

    then = _Columns(ticks_frame(base_ticks))
    then_oi, then_ltp = then.previous_values(cols["symbol"][rows])
    ltp, oi = cols["ltp"][rows], cols["oi"][rows]
    with np.errstate(divide="ignore", invalid="ignore"):
        ltp_pct = np.where(then_ltp > 0, (ltp - then_ltp) / then_ltp * 100.0, np.nan)
        oi_pct = np.where(then_oi > 0, (oi - then_oi) / then_oi * 100.0, np.nan)
    kind = cols["kind"][rows]
    strike = cols["strike"][rows]
    expiry_day = np.array([e.toordinal() if isinstance(e, date) else 0 for e in cols["expiry"][rows]])
    order = np.lexsort((kind == PE, expiry_day, strike, kind != FUT))
    table = pd.DataFrame({
        "symbol": cols["symbol"][rows], "kind": kind, "strike": strike,
        "expiry": cols["expiry"][rows], "ltp": ltp, "ltp_change": ltp - then_ltp,
        "ltp_change_pct": ltp_pct, "oi": oi, "oi_change": oi - then_oi, "oi_change_pct": oi_pct,
        "volume": cols["volume"][rows],
        "buildup": classify_buildup(ltp - then_ltp, oi - then_oi),
    }, columns=list(BUILDUP_COLUMNS)).iloc[order].reset_index(drop=True)
    table.attrs.update({"underlying": u.base, "expiry": chosen, "ts": ts,
                        "base_ts": then.latest_ts(np.arange(len(then)))})
    return table
