"""The option chain: one row per strike of one expiry, with its context in ``attrs``.

:func:`chain_table` builds it from ticks; :func:`spot_of`, :func:`future_of` and
:func:`expiries` read the rest of a snapshot; :func:`around_atm` windows a chain.
"""
from __future__ import annotations

import math
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from datacentre.analytics.frame import (
    NUMERIC_FIELDS,
    OPTION_KINDS,
    _as_date,
    _base,
    _Columns,
    ticks_frame,
)
from datacentre.core.instruments import CE, PE, time_to_expiry
from datacentre.core.instruments import underlying as find_underlying
from datacentre.core.ticks import parse_ts, trading_day

SIDE_FIELDS = ("oi", "oi_change", "volume", "iv", "ltp", "ltp_change", "bid", "ask",
               "delta", "gamma", "theta", "vega")
CHAIN_COLUMNS = ("strike", *(f"ce_{f}" for f in SIDE_FIELDS), *(f"pe_{f}" for f in SIDE_FIELDS),
                 "ce_symbol", "pe_symbol")
CHAIN_ATTRS = ("underlying", "expiry", "ts", "previous_ts", "spot", "future", "atm",
               "strike_step", "lot_size", "days_to_expiry", "time_to_expiry")


def spot_of(ticks, underlying: str) -> float | None:
    """The index level of ``underlying`` (``"NIFTY"`` or ``"NIFTY 50"``), or None."""
    return _Columns(ticks_frame(ticks)).spot(_base(underlying))


def future_of(ticks, underlying: str) -> float | None:
    """The nearest future's price (by parsed base), or None.

    The nearest is the earliest expiry not yet expired (15:30 IST on its date) at the
    newest tick given, :func:`~datacentre.core.instruments.nearest_future`; a future
    without a price falls through to the next expiry.
    """
    return _Columns(ticks_frame(ticks)).future(_base(underlying))


def expiries(ticks, underlying: str) -> list[date]:
    """The option expiries present for ``underlying``, nearest first."""
    return _Columns(ticks_frame(ticks)).expiries(_base(underlying))


def _pick_expiry(available: list[date], expiry, ts: str | None) -> date | None:
    if expiry is not None:
        return _as_date(expiry)
    if not available:
        return None
    day = None if ts is None else trading_day(ts)
    live = [e for e in available if day is None or e >= day]
    return (live or available)[0]


def _nearest(strikes: np.ndarray, price: float | None) -> float | None:
    """The strike nearest ``price``; halfway between two, the lower one."""
    if price is None or not len(strikes) or not math.isfinite(price):
        return None
    strikes = np.sort(strikes)  # argmin takes the first of a tie: make that the lower strike
    return float(strikes[int(np.argmin(np.abs(strikes - price)))])


def _by_strike(chain: pd.DataFrame, *columns: str) -> tuple[np.ndarray, ...]:
    """The chain's strikes, ascending, and ``columns`` as float arrays in the same order.

    A chain can come in any row order (a caller's own frame, a filtered or shuffled
    one); an ``argmin``/``argmax`` over these arrays takes the first of a tie, so the
    lowest strike, whatever the order of the rows.
    """
    strikes = chain["strike"].to_numpy(dtype=float)
    order = np.argsort(strikes, kind="stable")
    return strikes[order], *(chain[c].to_numpy(dtype=float)[order] for c in columns)


def _parity_atm(strikes: np.ndarray, ce_ltp: np.ndarray, pe_ltp: np.ndarray) -> float | None:
    """Without a spot or future: the strike where call and put cost the most alike."""
    gap = np.abs(ce_ltp - pe_ltp)
    if not np.isfinite(gap).any():
        return None
    return float(strikes[int(np.nanargmin(gap))])


def _option_legs(cols: _Columns, base: str, expiry) -> tuple[np.ndarray, date | None, str | None]:
    """Rows of ``base``'s options of the chosen expiry, the expiry and the snapshot ts."""
    ts = cols.latest_ts(np.flatnonzero(cols["underlying"] == base))
    options = cols.select(base, OPTION_KINDS)
    available = sorted({e for e in cols["expiry"][options] if isinstance(e, date)})
    chosen = _pick_expiry(available, expiry, ts)
    legs = options[cols["expiry"][options] == chosen] if chosen is not None else options[:0]
    return cols.newest_per_symbol(legs), chosen, ts


def chain_table(ticks, underlying: str, expiry=None, *, previous=None,
                atm_window: int | None = None) -> pd.DataFrame:
    """One row per strike of one expiry: the option-chain page's table.

    ``expiry`` is a ``date``, ISO text or ``06JAN26`` (default: the nearest expiry still
    trading on the snapshot's day). ``previous`` are earlier ticks (e.g. the day's
    opening snapshot): ``*_oi_change`` and ``*_ltp_change`` are measured against them
    by symbol, NaN for contracts it lacks (and everywhere when it is None).
    ``atm_window`` keeps only ATM and that many strikes either side (figures such as
    :func:`pcr` and :func:`max_pain` then cover only those strikes: compute them on
    the full chain and window for display).

    Columns :data:`CHAIN_COLUMNS`, context in ``attrs`` (:data:`CHAIN_ATTRS`, see the
    module doc). ATM is the listed strike nearest the spot (the future when there is
    no spot; put-call price parity when there is neither). An unknown expiry gives an
    empty chain, not an error. About 2 ms for a 110-tick snapshot.
    """
    cols = _Columns(ticks_frame(ticks))
    u = find_underlying(underlying)
    legs, chosen, ts = _option_legs(cols, u.base, expiry)
    kinds, symbols = cols["kind"][legs], cols["symbol"][legs]

    then_oi = then_ltp = previous_ts = None
    if previous is not None:
        prev = _Columns(ticks_frame(previous))
        then_oi, then_ltp = prev.previous_values(symbols)
        previous_ts = prev.latest_ts(np.arange(len(prev)))

    strikes = np.unique(cols["strike"][legs])
    data: dict[str, Any] = {"strike": strikes}
    for kind, prefix in ((CE, "ce_"), (PE, "pe_")):
        on_side = kinds == kind
        side = legs[on_side]
        pos = np.searchsorted(strikes, cols["strike"][side])
        values = {f: cols[f][side] for f in SIDE_FIELDS if f in NUMERIC_FIELDS}
        if then_oi is not None:
            values["oi_change"] = values["oi"] - then_oi[on_side]
            values["ltp_change"] = values["ltp"] - then_ltp[on_side]
        for field in SIDE_FIELDS:
            column = np.full(len(strikes), np.nan)
            if field in values:
                column[pos] = values[field]
            data[prefix + field] = column
        named = np.full(len(strikes), None, dtype=object)
        named[pos] = cols["symbol"][side]
        data[prefix + "symbol"] = named
    chain = pd.DataFrame(data, columns=list(CHAIN_COLUMNS))

    spot, future = cols.spot(u.base), cols.future(u.base)
    atm = _nearest(strikes, spot if spot is not None else future)
    if atm is None and len(strikes):
        atm = _parity_atm(strikes, data["ce_ltp"], data["pe_ltp"])
    years = None
    if chosen is not None and ts is not None:
        years = time_to_expiry(chosen, parse_ts(ts))
    chain.attrs.update({
        "underlying": u.base, "expiry": chosen, "ts": ts, "previous_ts": previous_ts,
        "spot": spot, "future": future, "atm": atm, "strike_step": u.strike_step,
        "lot_size": u.lot_size, "time_to_expiry": years,
        "days_to_expiry": None if years is None else years * 365.0,
    })
    return chain if atm_window is None else around_atm(chain, atm_window)


def around_atm(chain: pd.DataFrame, strikes: int) -> pd.DataFrame:
    """ATM and ``strikes`` listed strikes either side, by strike, ``attrs`` kept (the
    whole chain without an ATM). Compute figures such as :func:`pcr` on the whole
    chain first."""
    atm = chain.attrs.get("atm")
    if atm is None:
        return chain
    attrs = dict(chain.attrs)
    if not chain["strike"].is_monotonic_increasing:
        chain = chain.sort_values("strike", kind="stable")
    at = int(np.searchsorted(chain["strike"].to_numpy(dtype=float), atm))
    window = chain.iloc[max(0, at - strikes): at + strikes + 1].reset_index(drop=True)
    window.attrs = attrs
    return window


def _reference(chain: pd.DataFrame) -> float | None:
    """The price OTM is measured from: spot, else future, else the ATM strike."""
    for key in ("spot", "future", "atm"):
        value = chain.attrs.get(key)
        if value is not None and math.isfinite(value):
            return float(value)
    return None


def _atm_of(chain: pd.DataFrame) -> float | None:
    atm = chain.attrs.get("atm")
    if atm is not None and (chain["strike"] == atm).any():
        return float(atm)
    return _nearest(chain["strike"].to_numpy(dtype=float), _reference(chain))

