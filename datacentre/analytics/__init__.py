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
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from datacentre.core.errors import SymbolError
from datacentre.core.instruments import CE, FUT, INDEX, PE, parse_expiry, parse_symbol, time_to_expiry
from datacentre.core.instruments import underlying as find_underlying
from datacentre.core.ticks import IST, TICK_FIELDS, format_ts, parse_ts

NUMERIC_FIELDS = ("ltp", "bid", "ask", "volume", "oi", "delta", "gamma", "theta", "vega", "iv")
PARSED_COLUMNS = ("underlying", "kind", "expiry", "strike")
FRAME_COLUMNS = (*TICK_FIELDS, *PARSED_COLUMNS)
OPTION_KINDS = (CE, PE)

SIDE_FIELDS = ("oi", "oi_change", "volume", "iv", "ltp", "ltp_change", "bid", "ask",
               "delta", "gamma", "theta", "vega")
CHAIN_COLUMNS = ("strike", *(f"ce_{f}" for f in SIDE_FIELDS), *(f"pe_{f}" for f in SIDE_FIELDS),
                 "ce_symbol", "pe_symbol")
CHAIN_ATTRS = ("underlying", "expiry", "ts", "previous_ts", "spot", "future", "atm",
               "strike_step", "lot_size", "days_to_expiry", "time_to_expiry")

LONG_BUILDUP = "Long Build-up"
SHORT_BUILDUP = "Short Build-up"
SHORT_COVERING = "Short Covering"
LONG_UNWINDING = "Long Unwinding"
NEUTRAL = "Neutral"
BUILDUPS = (LONG_BUILDUP, SHORT_BUILDUP, SHORT_COVERING, LONG_UNWINDING, NEUTRAL)

BUILDUP_COLUMNS = ("symbol", "kind", "strike", "expiry", "ltp", "ltp_change", "ltp_change_pct",
                   "oi", "oi_change", "oi_change_pct", "volume", "buildup")
SMILE_COLUMNS = ("strike", "ce_iv", "pe_iv", "otm_iv", "moneyness", "ce_delta", "pe_delta")
SERIES_COLUMNS = ("ts", "time", "spot", "future", "basis", "ce_oi", "pe_oi", "pcr",
                  "ce_oi_change", "pe_oi_change", "atm_strike", "atm_iv")
SERIES_GAP = pd.Timedelta(minutes=5)  # a longer pause in a day series is a gap (market shut, collector off)

_DAY = timedelta(days=1)
_NO_PARSE = (None, None, None, math.nan)


# ---------------------------------------------------------------- ticks

@lru_cache(maxsize=65536)
def _parsed(symbol) -> tuple[str | None, str | None, date | None, float]:
    try:
        ins = parse_symbol(symbol)
    except (SymbolError, TypeError):
        return _NO_PARSE
    strike = math.nan if ins.strike is None else float(ins.strike)
    return ins.underlying, ins.kind, ins.expiry, strike


def _numeric(values: list) -> np.ndarray:
    try:
        return np.array(values, dtype=float)
    except (TypeError, ValueError):
        return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=float)


def ticks_frame(ticks: Iterable[dict] | pd.DataFrame) -> pd.DataFrame:
    """Ticks as a DataFrame with the 14 tick fields plus parsed ``underlying`` (base),
    ``kind`` (INDEX/FUT/CE/PE), ``expiry`` (``datetime.date``) and ``strike``.

    Numbers are ``float64`` (NaN for missing, also for ``oi``/``volume``). Symbols that
    do not parse keep their row with the parsed columns empty. A DataFrame that already
    has the parsed columns is returned as is, so callers can build the frame once and
    pass it to every function here. Well under a millisecond for a 110-tick snapshot.
    """
    if isinstance(ticks, pd.DataFrame):
        if all(c in ticks.columns for c in PARSED_COLUMNS):
            return ticks
        records = ticks.to_dict("records")
    else:
        records = ticks if isinstance(ticks, list) else list(ticks)
    data: dict[str, Any] = {}
    for field in TICK_FIELDS:
        values = [t.get(field) for t in records]
        data[field] = _numeric(values) if field in NUMERIC_FIELDS else values
    parsed = [_parsed(s) for s in data["symbol"]]
    if parsed:
        bases, kinds, expiries, strikes = zip(*parsed)
    else:
        bases = kinds = expiries = strikes = ()
    data["underlying"] = list(bases)
    data["kind"] = list(kinds)
    data["expiry"] = pd.Series(list(expiries), dtype=object)
    data["strike"] = np.array(strikes, dtype=float)
    return pd.DataFrame(data, columns=list(FRAME_COLUMNS))


def _base(underlying: str) -> str:
    return find_underlying(underlying).base


def _as_date(expiry) -> date | None:
    if expiry is None or (isinstance(expiry, date) and not isinstance(expiry, datetime)):
        return expiry
    if isinstance(expiry, datetime):
        return expiry.date()
    text = str(expiry).strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        return parse_expiry(text)


class _Columns:
    """A frame's columns as numpy arrays, converted on first use.

    Pandas indexing costs ~0.1 ms per call, numpy on ~90 rows a few microseconds: the
    per-refresh paths (chain, build-up) select rows with these instead of DataFrames.
    """

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self._arrays: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.frame)

    def __getitem__(self, name: str) -> np.ndarray:
        found = self._arrays.get(name)
        if found is None:
            column = self.frame[name]
            found = column.to_numpy(dtype=float) if name in NUMERIC_FIELDS or name == "strike" \
                else column.to_numpy(dtype=object)
            self._arrays[name] = found
        return found

    def select(self, base: str, kinds: Sequence[str]) -> np.ndarray:
        """Row positions of ``base``'s instruments of the given kinds."""
        kind = self["kind"]
        wanted = np.zeros(len(kind), dtype=bool)
        for k in kinds:
            wanted |= kind == k
        return np.flatnonzero(wanted & (self["underlying"] == base))

    def latest_ts(self, rows: np.ndarray) -> str | None:
        stamps = [s for s in self["ts"][rows] if isinstance(s, str)]
        return max(stamps) if stamps else None

    def newest_per_symbol(self, rows: np.ndarray) -> np.ndarray:
        """``rows`` with one row per symbol, the newest (a live cache mixes snapshots)."""
        symbols = self["symbol"][rows]
        if len(set(symbols)) == len(rows):
            return rows
        stamps = [s if isinstance(s, str) else "" for s in self["ts"][rows]]
        newest: dict[str, int] = {}
        for i in np.argsort(np.array(stamps, dtype=object), kind="stable"):
            newest[symbols[i]] = rows[i]
        return np.sort(np.fromiter(newest.values(), dtype=np.intp, count=len(newest)))

    def last_price(self, rows: np.ndarray) -> float | None:
        """The newest finite ``ltp`` among ``rows``."""
        rows = rows[np.isfinite(self["ltp"][rows])]
        if not len(rows):
            return None
        stamps = [s if isinstance(s, str) else "" for s in self["ts"][rows]]
        return float(self["ltp"][rows[max(range(len(rows)), key=stamps.__getitem__)]])

    def spot(self, base: str) -> float | None:
        return self.last_price(self.select(base, (INDEX,)))

    def future(self, base: str) -> float | None:
        rows = self.select(base, (FUT,))
        day = _trading_day(self.latest_ts(rows))
        expiry = self["expiry"][rows]
        for e in sorted({e for e in expiry if isinstance(e, date) and (day is None or e >= day)}):
            price = self.last_price(rows[expiry == e])
            if price is not None:
                return price
        return None

    def expiries(self, base: str) -> list[date]:
        return sorted({e for e in self["expiry"][self.select(base, OPTION_KINDS)] if isinstance(e, date)})

    def previous_values(self, symbols: Iterable[str]) -> dict[str, tuple[float, float]]:
        """``symbol -> (oi, ltp)`` of the newest row of each of ``symbols``."""
        wanted = set(symbols)
        rows = np.flatnonzero([s in wanted for s in self["symbol"]])
        rows = self.newest_per_symbol(rows)
        return {s: (o, p) for s, o, p in zip(self["symbol"][rows], self["oi"][rows], self["ltp"][rows])}


def _trading_day(ts: str | None) -> date | None:
    return None if ts is None else parse_ts(ts).date()


def spot_of(ticks, underlying: str) -> float | None:
    """The index level of ``underlying`` (``"NIFTY"`` or ``"NIFTY 50"``), or None."""
    return _Columns(ticks_frame(ticks)).spot(_base(underlying))


def future_of(ticks, underlying: str) -> float | None:
    """The nearest-expiry future's price (any expiry, by parsed base), or None.

    Futures that expired before the snapshot's day are skipped; a future without a
    price falls through to the next expiry.
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
    day = _trading_day(ts)
    live = [e for e in available if day is None or e >= day]
    return (live or available)[0]


# ---------------------------------------------------------------- the chain

def _nearest(strikes: np.ndarray, price: float | None) -> float | None:
    if price is None or not len(strikes) or not math.isfinite(price):
        return None
    return float(strikes[int(np.argmin(np.abs(strikes - price)))])


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

    before: dict[str, tuple[float, float]] = {}
    previous_ts = None
    if previous is not None:
        prev = _Columns(ticks_frame(previous))
        before = prev.previous_values(symbols)
        previous_ts = prev.latest_ts(np.arange(len(prev)))
    nan_pair = (math.nan, math.nan)

    strikes = np.unique(cols["strike"][legs])
    data: dict[str, Any] = {"strike": strikes}
    for kind, prefix in ((CE, "ce_"), (PE, "pe_")):
        side = legs[kinds == kind]
        pos = np.searchsorted(strikes, cols["strike"][side])
        values = {f: cols[f][side] for f in SIDE_FIELDS if f in NUMERIC_FIELDS}
        if previous is not None:
            then = np.array([before.get(s, nan_pair) for s in cols["symbol"][side]], dtype=float)
            then = then.reshape(len(side), 2)
            values["oi_change"] = values["oi"] - then[:, 0]
            values["ltp_change"] = values["ltp"] - then[:, 1]
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
    """ATM and ``strikes`` listed strikes either side, ``attrs`` kept (the whole chain
    without an ATM). Compute figures such as :func:`pcr` on the whole chain first."""
    atm = chain.attrs.get("atm")
    if atm is None:
        return chain
    at = int(np.searchsorted(chain["strike"].to_numpy(dtype=float), atm))
    window = chain.iloc[max(0, at - strikes): at + strikes + 1].reset_index(drop=True)
    window.attrs = dict(chain.attrs)
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


def _oi(chain: pd.DataFrame, column: str) -> np.ndarray:
    return np.nan_to_num(chain[column].to_numpy(dtype=float), nan=0.0)


# ---------------------------------------------------------------- OI figures

def pain_curve(chain: pd.DataFrame) -> pd.DataFrame:
    """For each strike as the expiry settlement price, what option buyers would be paid.

    Columns ``strike``, ``call_payout``, ``put_payout``, ``total_payout`` in OI units
    times index points (missing OI counts as 0).
    """
    strikes = chain["strike"].to_numpy(dtype=float)
    ce, pe = _oi(chain, "ce_oi"), _oi(chain, "pe_oi")
    # settle[j] - strike[i]: rows are settlement prices, columns the strikes held
    gap = strikes[:, None] - strikes[None, :]
    calls = np.clip(gap, 0, None) @ ce
    puts = np.clip(-gap, 0, None) @ pe
    return pd.DataFrame({"strike": strikes, "call_payout": calls, "put_payout": puts,
                         "total_payout": calls + puts})


def max_pain(chain: pd.DataFrame) -> float | None:
    """The strike at which option buyers would be paid least at expiry.

    Only the chain's strikes are candidates; ties go to the lower strike. None when
    the chain is empty or carries no open interest.
    """
    if chain.empty or not (_oi(chain, "ce_oi").sum() + _oi(chain, "pe_oi").sum()) > 0:
        return None
    curve = pain_curve(chain)
    return float(curve["strike"].iloc[int(np.argmin(curve["total_payout"].to_numpy()))])


def pcr(chain: pd.DataFrame, *, of: str = "oi") -> float:
    """Put-call ratio: total put OI / total call OI (``of="volume"`` for volumes).

    ``nan`` when the call total is 0 (or the chain is empty): the ratio is undefined,
    and NaN formats as a dash and plots as a gap.
    """
    if of not in ("oi", "volume"):
        raise ValueError(f"pcr of 'oi' or 'volume', not {of!r}")
    calls = _oi(chain, f"ce_{of}").sum()
    return float(_oi(chain, f"pe_{of}").sum() / calls) if calls > 0 else math.nan


def biggest_oi_addition(chain: pd.DataFrame, side: str) -> tuple[float | None, float]:
    """``(strike, change)`` where ``side``'s (``"ce"`` or ``"pe"``) OI grew most in a
    chain built with ``previous``: fresh resistance for calls, support for puts.
    ``(None, nan)`` when no strike's OI grew."""
    change = chain[f"{side}_oi_change"].to_numpy(dtype=float)
    if not (change > 0).any():  # also all NaN
        return None, math.nan
    i = int(np.nanargmax(change))
    return float(chain["strike"].iloc[i]), float(change[i])


class SupportResistance(NamedTuple):
    support: float | None  # strike with the most put OI
    resistance: float | None  # strike with the most call OI


def support_resistance(chain: pd.DataFrame) -> SupportResistance:
    """Highest put-OI strike (support) and highest call-OI strike (resistance).

    Ties go to the lower strike; a side without any OI gives None.
    """
    def peak(column: str) -> float | None:
        oi = _oi(chain, column)
        if not len(oi) or oi.max() <= 0:
            return None
        return float(chain["strike"].iloc[int(np.argmax(oi))])
    return SupportResistance(peak("pe_oi"), peak("ce_oi"))


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
    before = then.previous_values(cols["symbol"][rows])
    pairs = np.array([before.get(s, (math.nan, math.nan)) for s in cols["symbol"][rows]], dtype=float)
    pairs = pairs.reshape(len(rows), 2)
    then_oi, then_ltp = pairs[:, 0], pairs[:, 1]
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


# ---------------------------------------------------------------- volatility

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
    """The IV smile: ``strike, ce_iv, pe_iv, otm_iv, moneyness, ce_delta, pe_delta``.

    ``otm_iv`` takes the out-of-the-money side: puts below ``spot``, calls above, the
    mean of both at a strike equal to it; it is NaN where that side has no IV (the
    in-the-money side is not substituted). ``spot`` defaults to the chain's spot, else
    its future, else its ATM strike. ``moneyness`` is strike / spot. ``attrs`` are the chain's, with
    ``spot`` set to the reference used.
    """
    ref = float(spot) if spot is not None else _reference(chain)
    strikes = chain["strike"].to_numpy(dtype=float)
    ce, pe = chain["ce_iv"].to_numpy(dtype=float), chain["pe_iv"].to_numpy(dtype=float)
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
                        "moneyness": moneyness,
                        "ce_delta": chain["ce_delta"].to_numpy(dtype=float),
                        "pe_delta": chain["pe_delta"].to_numpy(dtype=float)})
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
    order = np.argsort(d, kind="stable")
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


# ---------------------------------------------------------------- intraday series

def day_bounds(moment) -> tuple[str, str]:
    """The IST calendar day containing ``moment`` (store text, datetime or date) as a
    ``(start_ts, end_ts)`` pair for the store's inclusive range queries."""
    if isinstance(moment, date) and not isinstance(moment, datetime):
        day = moment
    else:
        day = parse_ts(moment).astimezone(IST).date()
    start = datetime(day.year, day.month, day.day, tzinfo=IST)
    return format_ts(start), format_ts(start + _DAY - timedelta(milliseconds=1))


def series_frame(rows: Sequence[dict], *, max_points: int | None = None) -> pd.DataFrame:
    """:meth:`TickStore.underlying_series` rows (or the live feed's ``Point`` s) as a
    DataFrame for the day's charts, its pauses broken by :func:`break_gaps`.

    Columns :data:`SERIES_COLUMNS`: ``time`` is the snapshot time as a tz-aware IST
    timestamp; ``basis`` = future − spot; ``pcr`` = pe_oi / ce_oi (NaN where call OI is
    0); ``*_oi_change`` are against the first row. ``attrs["expiry"]`` is the options'
    expiry (ISO text) the OI totals and ATM IV refer to; ``attrs["gaps"]`` the pauses.
    ``max_points`` thins the rows evenly to at most that many, always keeping the newest.
    """
    rows = list(rows)
    if max_points is not None and len(rows) > max_points:
        stride = -(-len(rows) // max_points)
        rows = [*rows[:-1:stride], rows[-1]]
    frame = pd.DataFrame(rows)
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


# ---------------------------------------------------------------- day-wide OI totals

def snapshot_oi(ticks, underlying: str, expiry) -> dict[str, tuple[str, float]]:
    """``symbol -> (kind, oi)`` of ``underlying``'s options of ``expiry`` in ``ticks``
    (the newest row per symbol; options without an OI are left out)."""
    cols = _Columns(ticks_frame(ticks))
    legs, _, _ = _option_legs(cols, _base(underlying), _as_date(expiry))
    return {s: (k, float(o)) for s, k, o in zip(cols["symbol"][legs], cols["kind"][legs], cols["oi"][legs])
            if math.isfinite(o)}


def held_oi(oi: pd.DataFrame, moment: tuple[str, dict[str, tuple[str, float]]] | None = None,
            *, upto: bool = False) -> pd.DataFrame:
    """Each option's OI at each snapshot of a day, every strike seen that day counted.

    ``oi`` is indexed by snapshot time (store text) with ``(kind, symbol)`` columns
    (``kind`` CE or PE), NaN where a snapshot lacks the contract (the collector stores
    a window of strikes that moves with the spot). ``moment`` = ``(ts, snapshot_oi)``
    adds (or replaces) the row of that snapshot; ``upto`` drops the rows after it.

    A contract absent from a snapshot counts with its nearest known OI: the last seen,
    or the first for a strike that enters later. The totals then move only with open
    interest, not with the window.
    """
    frame = oi.copy()
    if moment is not None:
        ts, values = moment
        for symbol, (kind, _) in values.items():
            if (kind, symbol) not in frame.columns:
                frame[(kind, symbol)] = np.nan
        row = pd.DataFrame([[values.get(s, (k, math.nan))[1] for k, s in frame.columns]],
                           index=[ts], columns=frame.columns)
        frame = pd.concat([frame.drop(index=ts, errors="ignore"), row])
        if upto:
            frame = frame[frame.index <= ts]
    return frame.sort_index().ffill().bfill()


def oi_totals_series(held: pd.DataFrame, expiry=None) -> pd.DataFrame:
    """:func:`held_oi` summed into call and put totals and the PCR through the day, in
    :func:`series_frame`'s shape (``pcr`` = put OI / call OI over the same strikes)."""
    if held.empty:
        return pd.DataFrame()
    kinds = held.columns.get_level_values(0)
    calls = held.loc[:, kinds == CE].sum(axis=1).to_numpy(dtype=float)
    puts = held.loc[:, kinds == PE].sum(axis=1).to_numpy(dtype=float)
    expiry = expiry.isoformat() if isinstance(expiry, date) else expiry
    return series_frame([{"ts": ts, "ce_oi": c, "pe_oi": p, "expiry": expiry}
                         for ts, c, p in zip(held.index, calls, puts)])


def totals_at(series: pd.DataFrame, ts: str | None) -> tuple[float, float, float]:
    """``(call OI, put OI, PCR)`` of :func:`oi_totals_series` at snapshot ``ts`` (NaNs
    when it has no such row)."""
    if ts is None or series.empty:
        return math.nan, math.nan, math.nan
    row = series[series["ts"] == ts]
    if row.empty:
        return math.nan, math.nan, math.nan
    last = row.iloc[-1]
    return float(last["ce_oi"]), float(last["pe_oi"]), float(last["pcr"])
