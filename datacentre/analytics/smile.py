"""Implied volatility across a chain and across expiries: ATM IV, the smile,
25-delta skew, equidistant skew and the term structure (IVs in percent)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from datacentre.analytics.chain import _atm_of, _by_strike, _reference, chain_table, expiries
from datacentre.analytics.frame import ticks_frame

SMILE_COLUMNS = ("strike", "ce_iv", "pe_iv", "otm_iv", "moneyness", "ce_delta", "pe_delta")


def atm_iv(chain: pd.DataFrame) -> float:
    """Mean of the call and put IV (percent) at the ATM strike; ``nan`` if unknown.

    One side alone is used when the other has no IV.
    """
    atm = _atm_of(chain)
    if atm is None:
        return math.nan
    row = chain[chain["strike"].to_numpy() == atm]
    values = row[["ce_iv", "pe_iv"]].to_numpy(dtype=float).ravel()
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else math.nan


def smile(chain: pd.DataFrame, spot: float | None = None) -> pd.DataFrame:
    """The IV smile: ``strike, ce_iv, pe_iv, otm_iv, moneyness, ce_delta, pe_delta``,
    by strike.

    ``otm_iv`` takes the out-of-the-money side: puts below ``spot``, calls above, the
    mean of both at a strike equal to it; it is NaN where that side has no IV (the
    in-the-money side is not substituted). ``spot`` defaults to the chain's spot, else
    its future, else its ATM strike. ``moneyness`` is strike / spot. ``attrs`` are the chain's, with
    ``spot`` set to the reference used.
    """
    ref = float(spot) if spot is not None else _reference(chain)
    strikes, ce, pe, ce_delta, pe_delta = _by_strike(chain, "ce_iv", "pe_iv", "ce_delta", "pe_delta")
    if ref is None:
        otm = np.full(len(strikes), np.nan)
        moneyness = np.full(len(strikes), np.nan)
    else:
        with np.errstate(invalid="ignore"):
            both = np.where(np.isfinite(ce) & np.isfinite(pe), (ce + pe) / 2,
                            np.where(np.isfinite(ce), ce, pe))
        otm = np.where(strikes < ref, pe, np.where(strikes > ref, ce, both))
        moneyness = strikes / ref
    out = pd.DataFrame({"strike": strikes, "ce_iv": ce, "pe_iv": pe, "otm_iv": otm,
                        "moneyness": moneyness, "ce_delta": ce_delta, "pe_delta": pe_delta})
    out.attrs.update(chain.attrs)
    out.attrs["spot"] = ref
    return out


def iv_at_delta(deltas, ivs, target: float) -> float:
    """IV interpolated linearly at ``target`` delta; ``nan`` outside the quoted deltas."""
    d, v = np.asarray(deltas, dtype=float), np.asarray(ivs, dtype=float)
    ok = np.isfinite(d) & np.isfinite(v)
    d, v = d[ok], v[ok]
    if not len(d) or not d.min() <= target <= d.max():
        return math.nan
    order = np.lexsort((v, d))  # then by IV, so strikes quoting one delta give one answer in any order
    return float(np.interp(target, d[order], v[order]))


@dataclass(frozen=True)
class SkewMetrics:
    """25-delta skew figures, IVs in percent points (``nan`` when not quoted).

    ``risk_reversal_25d`` = IV(25Δ call) − IV(25Δ put): negative when puts are bid
    over calls, the usual index skew. ``butterfly_25d`` = mean of the two − ATM IV.
    """

    atm_iv: float
    call_25d_iv: float
    put_25d_iv: float
    risk_reversal_25d: float
    butterfly_25d: float


def skew_metrics(chain: pd.DataFrame) -> SkewMetrics:
    """25-delta risk reversal and butterfly from the stored deltas (chain or smile)."""
    call = iv_at_delta(chain["ce_delta"], chain["ce_iv"], 0.25)
    put = iv_at_delta(chain["pe_delta"], chain["pe_iv"], -0.25)
    atm = atm_iv(chain)
    return SkewMetrics(atm, call, put, call - put, (call + put) / 2 - atm)


def equidistant_skew(chain: pd.DataFrame) -> pd.DataFrame:
    """OTM put vs OTM call IV at strikes the same distance below and above ATM.

    Columns ``distance`` (points), ``put_strike``, ``call_strike``, ``put_iv``,
    ``call_iv``, ``put_minus_call`` (positive = put skew), nearest first.
    """
    columns = ["distance", "put_strike", "call_strike", "put_iv", "call_iv", "put_minus_call"]
    atm = _atm_of(chain)
    if atm is None:
        return pd.DataFrame({c: np.array([], dtype=float) for c in columns})
    by_strike = chain.set_index("strike")
    strikes = set(by_strike.index)
    distances = sorted(atm - k for k in strikes if k < atm and 2 * atm - k in strikes)
    put_k = np.array([atm - d for d in distances], dtype=float)
    call_k = np.array([atm + d for d in distances], dtype=float)
    put_iv = by_strike["pe_iv"].reindex(put_k).to_numpy(dtype=float)
    call_iv = by_strike["ce_iv"].reindex(call_k).to_numpy(dtype=float)
    return pd.DataFrame({"distance": np.array(distances, dtype=float), "put_strike": put_k,
                         "call_strike": call_k, "put_iv": put_iv, "call_iv": call_iv,
                         "put_minus_call": put_iv - call_iv}, columns=columns)


def term_structure(ticks, underlying: str) -> pd.DataFrame:
    """ATM IV per option expiry: ``expiry, days_to_expiry, atm_strike, atm_iv``."""
    frame = ticks_frame(ticks)
    rows = []
    for expiry in expiries(frame, underlying):
        chain = chain_table(frame, underlying, expiry)
        rows.append({"expiry": expiry, "days_to_expiry": chain.attrs["days_to_expiry"],
                     "atm_strike": chain.attrs["atm"], "atm_iv": atm_iv(chain)})
    table = pd.DataFrame(rows, columns=["expiry", "days_to_expiry", "atm_strike", "atm_iv"])
    return table.astype({"days_to_expiry": float, "atm_strike": float, "atm_iv": float})

