"""The traders' day charts, pure: the straddle, leg premiums, OI of chosen strikes, PCR
and max pain, the future against its OI and basis, gamma exposure and IV rank.

Each function takes the rows a store method returns (:meth:`TickStore.straddle_series`,
:meth:`~TickStore.contract_series`, :meth:`~TickStore.chain_oi_series`,
:meth:`~TickStore.session_atm_iv`) or a chain, and the ``*_rows`` helpers turn a live
snapshot into rows of the same shape, so a live point and a stored one go through the
same arithmetic. :func:`upto` cuts rows at a moment: what a chart shows for a moment uses
nothing stored after it.

Frames carry ``ts`` (store text) and ``time`` (tz-aware IST) and have their pauses broken
by :func:`~datacentre.analytics.series.break_gaps`, like the other day series.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from datacentre.analytics.chain import chain_table, expiries
from datacentre.analytics.frame import OPTION_KINDS
from datacentre.analytics.oi import _payouts
from datacentre.analytics.series import break_gaps
from datacentre.analytics.smile import atm_iv
from datacentre.core.instruments import CE, PE
from datacentre.core.ticks import IST

CONTRACT_FIELDS = ("ts", "symbol", "ltp", "volume", "oi", "iv", "gamma")
GEX_MOVE = 0.01  # gamma exposure is quoted per 1 % move of the index


def upto(rows: Iterable, ts: str | None, *, key=lambda row: row["ts"]) -> list:
    """``rows`` (oldest first) stamped at or before ``ts``: no look-ahead. None keeps all."""
    rows = list(rows)
    return rows if ts is None else [r for r in rows if key(r) <= ts]


def with_live(rows: Sequence, live: Sequence, *, key=lambda row: row["ts"]) -> list:
    """Stored ``rows`` followed by the ``live`` rows newer than the last of them (the
    live snapshot the store has not been read for yet)."""
    last = max((key(r) for r in rows), default="")
    return [*rows, *(r for r in live if key(r) > last)]


def _timed(frame: pd.DataFrame) -> pd.DataFrame:
    frame["time"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601").dt.tz_convert(IST)
    return frame


def _columns(rows: Sequence[dict], fields: Sequence[str]) -> pd.DataFrame:
    """Dict rows as a frame, built column by column (several times faster than from the
    dicts for a day's 27,000 rows)."""
    return pd.DataFrame({f: [r.get(f) for r in rows] for f in fields}, columns=list(fields))


def _empty(columns: Sequence[str]) -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="float") for c in columns})
    frame["ts"] = frame["ts"].astype(object)
    frame["time"] = pd.Series(dtype=pd.DatetimeTZDtype(tz=IST))
    frame.attrs["gaps"] = []
    return frame


# ---------------------------------------------------------------- live snapshots as rows

def contract_rows(ticks: Iterable[dict], symbols: Iterable[str]) -> list[dict]:
    """The ticks of ``symbols`` in a snapshot as :meth:`TickStore.contract_series` rows."""
    wanted = set(symbols)
    rows = [{f: t.get(f) for f in CONTRACT_FIELDS} for t in ticks if t.get("symbol") in wanted]
    return sorted(rows, key=lambda r: (r["ts"] or "", r["symbol"]))


def straddle_row(ticks, underlying: str, expiry) -> list[dict]:
    """A snapshot's ATM straddle as a :meth:`TickStore.straddle_series` row (none
    without a spot): the chain's ATM strike and its call and put prices."""
    chain = chain_table(ticks, underlying, expiry)
    spot, atm, ts = chain.attrs.get("spot"), chain.attrs.get("atm"), chain.attrs.get("ts")
    if spot is None or ts is None:
        return []
    at = chain[chain["strike"] == atm] if atm is not None else chain.iloc[:0]

    def price(column: str) -> float | None:
        value = float(at[column].iloc[0]) if len(at) else math.nan
        return value if math.isfinite(value) else None

    return [{"ts": ts, "spot": spot, "strike": atm, "ce": price("ce_ltp"), "pe": price("pe_ltp")}]


def chain_oi_rows(ticks, underlying: str, expiry) -> list[tuple]:
    """A snapshot's options of ``expiry`` as :meth:`TickStore.chain_oi_series` rows."""
    chain = chain_table(ticks, underlying, expiry)
    ts = chain.attrs.get("ts")
    rows = []
    for kind, column in ((CE, "ce_oi"), (PE, "pe_oi")):
        listed = chain[chain[f"{kind.lower()}_symbol"].notna()]
        rows += [(ts, kind, float(k), None if not math.isfinite(oi) else int(oi))
                 for k, oi in zip(listed["strike"], listed[column].to_numpy(dtype=float))]
    return rows


# ---------------------------------------------------------------- premiums

STRADDLE_COLUMNS = ("ts", "time", "spot", "strike", "ce", "pe", "premium")


def straddle_frame(rows: Sequence[dict]) -> pd.DataFrame:
    """The rolling ATM straddle: :meth:`TickStore.straddle_series` rows (plus any
    :func:`straddle_row`) as columns :data:`STRADDLE_COLUMNS`; ``premium`` = call +
    put at the ATM strike of that snapshot (NaN where either is missing)."""
    if not rows:
        return _empty(STRADDLE_COLUMNS)
    frame = _columns(rows, ("ts", "spot", "strike", "ce", "pe"))
    numbers = ["spot", "strike", "ce", "pe"]
    frame[numbers] = frame[numbers].apply(pd.to_numeric, errors="coerce").astype(float)
    frame["premium"] = frame["ce"] + frame["pe"]
    return break_gaps(_timed(frame)[list(STRADDLE_COLUMNS)])


def fixed_straddle_rows(rows: Sequence[dict], index_symbol: str, call: str, put: str,
                        strike: float) -> list[dict]:
    """A straddle at one strike all day as :meth:`TickStore.straddle_series` rows, from
    :meth:`~TickStore.contract_series` rows of the index, the call and the put."""
    prices: dict[str, dict[str, float]] = {}
    for r in rows:
        if r["symbol"] in (index_symbol, call, put):
            prices.setdefault(r["ts"], {})[r["symbol"]] = r["ltp"]
    return [{"ts": ts, "spot": p.get(index_symbol), "strike": float(strike), "ce": p.get(call),
             "pe": p.get(put)} for ts, p in sorted(prices.items())]


def legs_frame(rows: Sequence[dict], legs: Sequence[str]) -> pd.DataFrame:
    """Each of ``legs``' last price per snapshot and their sum, ``premium`` (the combined
    premium of a fixed straddle or any two strikes), from :meth:`TickStore.contract_series`
    rows. Columns ``ts, time``, one per leg symbol, ``premium`` (NaN unless every leg is
    priced in that snapshot)."""
    columns = ["ts", "time", *legs, "premium"]
    wanted = [r for r in rows if r["symbol"] in set(legs)]
    if not wanted or not legs:
        return _empty(columns)
    frame = (_columns(wanted, ("ts", "symbol", "ltp")).astype({"ltp": float})
             .pivot_table(index="ts", columns="symbol", values="ltp", aggfunc="last", dropna=False)
             .reindex(columns=list(legs)).sort_index())
    frame["premium"] = frame[list(legs)].sum(axis=1, min_count=len(legs))
    frame = frame.reset_index()
    frame.columns.name = None
    return break_gaps(_timed(frame)[columns])


def breakevens(strike: float | None, premium: float | None) -> tuple[float | None, float | None]:
    """Where a short straddle at ``strike`` for ``premium`` stops making money at expiry."""
    if strike is None or premium is None or not math.isfinite(premium):
        return None, None
    return strike - premium, strike + premium


# ---------------------------------------------------------------- open interest

OI_HISTORY_COLUMNS = ("ts", "time", "symbol", "oi", "oi_change")


def oi_history(rows: Sequence[dict], symbols: Sequence[str]) -> pd.DataFrame:
    """OI of each of ``symbols`` through the day, long: one row per snapshot and symbol,
    ``oi_change`` against that symbol's first OI in ``rows`` (the day's first snapshot
    holding it). From :meth:`TickStore.contract_series` rows."""
    wanted = [r for r in rows if r["symbol"] in set(symbols) and r.get("oi") is not None]
    if not wanted:
        return _empty(OI_HISTORY_COLUMNS)
    frame = _columns(wanted, ("ts", "symbol", "oi")).astype({"oi": float})
    frame = frame.sort_values(["symbol", "ts"], kind="stable")
    frame["oi_change"] = frame["oi"] - frame.groupby("symbol")["oi"].transform("first")
    frame = _timed(frame.reset_index(drop=True))[list(OI_HISTORY_COLUMNS)]
    return frame


PAIN_COLUMNS = ("ts", "time", "ce_oi", "pe_oi", "pcr", "max_pain", "strikes")


def pain_pcr_frame(rows: Sequence[tuple]) -> pd.DataFrame:
    """PCR and max pain at each snapshot, from :meth:`TickStore.chain_oi_series` rows
    ``(ts, kind, strike, oi)``.

    Each snapshot is its own chain: the figures cover the strikes stored in it, by the
    rules of :func:`~datacentre.analytics.oi_summary` (missing OI counts as 0; max pain
    is one of the snapshot's strikes, ties to the lowest; None without OI; PCR NaN
    without call OI), so the last point equals what the chain of that snapshot shows.
    """
    if not rows:
        return _empty(PAIN_COLUMNS)
    frame = pd.DataFrame(list(rows), columns=["ts", "kind", "strike", "oi"])
    frame["oi"] = pd.to_numeric(frame["oi"], errors="coerce").astype(float)
    times = np.sort(frame["ts"].unique())
    strikes = np.sort(frame["strike"].astype(float).unique())
    t = np.searchsorted(times, frame["ts"].to_numpy())
    k = np.searchsorted(strikes, frame["strike"].to_numpy(dtype=float))
    present = np.zeros((len(times), len(strikes)), dtype=bool)
    present[t, k] = True
    oi = {}
    for kind in OPTION_KINDS:
        side = (frame["kind"] == kind).to_numpy()
        grid = np.zeros((len(times), len(strikes)))
        np.add.at(grid, (t[side], k[side]), np.nan_to_num(frame["oi"].to_numpy()[side]))
        oi[kind] = grid
    ce_total, pe_total = oi[CE].sum(axis=1), oi[PE].sum(axis=1)
    calls, puts = _payouts(strikes, oi[CE].T, oi[PE].T)  # (strikes, snapshots)
    payout = np.where(present, (calls + puts).T, np.inf)
    pain = strikes[np.argmin(payout, axis=1)]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(ce_total > 0, pe_total / ce_total, np.nan)
    out = pd.DataFrame({"ts": times, "ce_oi": ce_total, "pe_oi": pe_total, "pcr": ratio,
                        "max_pain": np.where(ce_total + pe_total > 0, pain, np.nan),
                        "strikes": present.sum(axis=1)})
    return break_gaps(_timed(out)[list(PAIN_COLUMNS)])


# ---------------------------------------------------------------- futures

FUTURES_COLUMNS = ("ts", "time", "spot", "future", "basis", "basis_pct", "oi", "oi_change", "volume")


def futures_frame(rows: Sequence[dict], index_symbol: str, future_symbol: str) -> pd.DataFrame:
    """The future against the index through the day, from :meth:`TickStore.contract_series`
    rows of both: ``basis`` = future − spot (points), ``basis_pct`` = basis / spot × 100,
    the future's ``oi`` and ``oi_change`` against its first OI in ``rows``, ``volume``
    (cumulative for the day). Snapshots without the future are left out."""
    wanted = [r for r in rows if r["symbol"] in (index_symbol, future_symbol)]
    if not any(r["symbol"] == future_symbol for r in wanted):
        return _empty(FUTURES_COLUMNS)
    frame = _columns(wanted, ("ts", "symbol", "ltp", "oi", "volume"))
    for column in ("ltp", "oi", "volume"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    spot = frame[frame["symbol"] == index_symbol].set_index("ts")["ltp"]
    fut = frame[frame["symbol"] == future_symbol].set_index("ts").sort_index()
    out = pd.DataFrame({"future": fut["ltp"], "oi": fut["oi"], "volume": fut["volume"]})
    out["spot"] = spot.reindex(out.index)
    out["basis"] = out["future"] - out["spot"]
    out["basis_pct"] = out["basis"] / out["spot"] * 100.0
    first = out["oi"].dropna()
    out["oi_change"] = out["oi"] - (first.iloc[0] if len(first) else np.nan)
    out = out.rename_axis("ts").reset_index()
    return break_gaps(_timed(out)[list(FUTURES_COLUMNS)])


def annualised_basis(basis: float | None, spot: float | None, days_to_expiry: float | None) -> float:
    """The future's premium as a yearly carry in percent: basis / spot × 365 / days."""
    if None in (basis, spot, days_to_expiry) or not spot or days_to_expiry <= 0:
        return math.nan
    return basis / spot * 365.0 / days_to_expiry * 100.0


# ---------------------------------------------------------------- candles

CANDLE_COLUMNS = ("ts", "time", "open", "high", "low", "close", "volume", "candle_vwap", "vwap")


def candle_frame(candles: Sequence[dict]) -> pd.DataFrame:
    """:meth:`TickStore.candles` rows (oldest first) with the running VWAP of the day.

    ``candle_vwap`` is each candle's own volume-weighted price; ``vwap`` = Σ(candle_vwap ×
    volume) / Σ volume over the candles so far, i.e. Σ(price × traded) / Σ traded over
    every tick since the first candle: NaN until something trades (always for an index,
    which has no volume)."""
    if not candles:
        return _empty(CANDLE_COLUMNS)
    frame = pd.DataFrame(list(candles), columns=["ts", "open", "high", "low", "close", "volume", "vwap"])
    frame = frame.rename(columns={"vwap": "candle_vwap"})
    numbers = ["open", "high", "low", "close", "volume", "candle_vwap"]
    frame[numbers] = frame[numbers].apply(pd.to_numeric, errors="coerce").astype(float)
    traded = frame["volume"].where(frame["candle_vwap"].notna(), 0.0).fillna(0.0)
    weighted = (frame["candle_vwap"].fillna(0.0) * traded).cumsum()
    total = traded.cumsum()
    frame["vwap"] = (weighted / total.where(total > 0)).astype(float)
    return _timed(frame)[list(CANDLE_COLUMNS)]


# ---------------------------------------------------------------- gamma exposure

GEX_COLUMNS = ("strike", "call_gex", "put_gex", "net_gex")


class GexSummary(NamedTuple):
    """Totals of :func:`gex_table`, in rupees per 1 % move of the index."""

    net: float
    calls: float
    puts: float
    call_wall: float | None  # strike with the largest positive net exposure
    put_wall: float | None  # strike with the largest negative net exposure


def gex_table(chain: pd.DataFrame, spot: float | None = None) -> pd.DataFrame:
    """Net gamma exposure by strike from the stored gamma and OI of a chain.

    Convention: dealers are long the calls and short the puts that customers hold, so a
    call's exposure counts positive and a put's negative. Per strike,
    ``call_gex = ce_gamma × ce_oi × S² × 0.01`` and ``put_gex = −pe_gamma × pe_oi × S² × 0.01``:
    the rupees of the index dealers must buy (positive) or sell when it rises 1 %
    (OI is in shares, gamma per index point per share, ``S`` the spot, else the future).
    ``net_gex`` is their sum; a missing gamma or OI counts as 0. Rows by strike.
    """
    price = spot if spot is not None else chain.attrs.get("spot") or chain.attrs.get("future")
    if price is None or chain.empty:
        frame = pd.DataFrame({c: pd.Series(dtype=float) for c in GEX_COLUMNS})
        frame.attrs["spot"] = price
        return frame
    scale = float(price) ** 2 * GEX_MOVE
    chain = chain.sort_values("strike", kind="stable")

    def side(prefix: str) -> np.ndarray:
        gamma = np.nan_to_num(chain[f"{prefix}_gamma"].to_numpy(dtype=float))
        return gamma * np.nan_to_num(chain[f"{prefix}_oi"].to_numpy(dtype=float)) * scale

    calls, puts = side("ce"), -side("pe")
    frame = pd.DataFrame({"strike": chain["strike"].to_numpy(dtype=float), "call_gex": calls,
                          "put_gex": puts, "net_gex": calls + puts})
    frame.attrs["spot"] = float(price)
    return frame


def snapshot_gex(ticks, underlying: str, expiries: Sequence) -> pd.DataFrame:
    """:func:`gex_table` of a snapshot summed by strike over ``expiries`` (every expiry's
    exposure at the same spot: a strike's gamma is the market's whatever the expiry)."""
    tables = [gex_table(chain_table(ticks, underlying, e)) for e in expiries]
    tables = [t for t in tables if not t.empty]
    if not tables:
        return gex_table(chain_table([], underlying))
    out = pd.concat(tables).groupby("strike", as_index=False)[list(GEX_COLUMNS[1:])].sum()
    out.attrs["spot"] = tables[0].attrs["spot"]
    return out


def gex_summary(table: pd.DataFrame) -> GexSummary:
    """Total net, call and put exposure, and the strikes where the net is largest either
    way (ties to the lowest strike; None when no strike's net has that sign)."""
    if table.empty:
        return GexSummary(math.nan, math.nan, math.nan, None, None)
    strikes, net = table["strike"].to_numpy(dtype=float), table["net_gex"].to_numpy(dtype=float)
    call_wall = float(strikes[int(np.argmax(net))]) if (net > 0).any() else None
    put_wall = float(strikes[int(np.argmin(net))]) if (net < 0).any() else None
    return GexSummary(float(net.sum()), float(table["call_gex"].sum()), float(table["put_gex"].sum()),
                      call_wall, put_wall)


# ---------------------------------------------------------------- IV rank

IV_HISTORY_COLUMNS = ("day", "ts", "spot", "expiry", "strike", "atm_iv")


def _mean_iv(ce, pe) -> float:
    values = [float(v) for v in (ce, pe) if v is not None and math.isfinite(float(v))]
    return sum(values) / len(values) if values else math.nan


def atm_iv_history(rows: Sequence[dict]) -> pd.DataFrame:
    """:meth:`TickStore.session_atm_iv` rows with ``atm_iv``: the mean of the call and put
    IV at the ATM strike (one side when the other has none, as
    :func:`~datacentre.analytics.atm_iv`); windows without a snapshot or an IV are left out."""
    found = [{**r, "atm_iv": _mean_iv(r.get("ce_iv"), r.get("pe_iv"))} for r in rows if r.get("ts")]
    frame = pd.DataFrame(found, columns=list(IV_HISTORY_COLUMNS))
    frame["atm_iv"] = frame["atm_iv"].astype(float)
    return frame[np.isfinite(frame["atm_iv"].to_numpy())].reset_index(drop=True)


def atm_iv_after(ticks, underlying: str, day) -> tuple[float, object]:
    """``(atm_iv, expiry)`` of a snapshot as :meth:`TickStore.session_atm_iv` measures a
    session: the ATM IV (:func:`~datacentre.analytics.atm_iv`) of the nearest expiry
    after ``day``; ``(nan, None)`` without one."""
    later = [e for e in expiries(ticks, underlying) if e > day]
    if not later:
        return math.nan, None
    return atm_iv(chain_table(ticks, underlying, later[0])), later[0]


class IVRank(NamedTuple):
    """Where the ATM IV of a moment sits among past sessions' closing ATM IV."""

    current: float
    rank: float  # (current − low) / (high − low) × 100, 0 to 100
    percentile: float  # share of past sessions whose IV was below current, × 100
    low: float  # the lowest and highest of the past sessions and current
    high: float
    sessions: int  # past sessions with an IV


def iv_rank(history: Sequence[float], current: float) -> IVRank:
    """IV rank and IV percentile of ``current`` against ``history`` (past sessions' ATM
    IV; NaNs ignored).

    The range runs over the past sessions and ``current`` itself (as the usual 52-week
    range includes today), so the rank lies in 0-100; it is NaN when that range is flat.
    The percentile counts the past sessions strictly below ``current``. Both are NaN
    without a past session or without a current IV.
    """
    past = np.asarray([v for v in history if v is not None], dtype=float)
    past = past[np.isfinite(past)]
    now = math.nan if current is None else float(current)
    if not len(past) or not math.isfinite(now):
        low = float(past.min()) if len(past) else math.nan
        high = float(past.max()) if len(past) else math.nan
        return IVRank(now, math.nan, math.nan, low, high, len(past))
    low, high = min(float(past.min()), now), max(float(past.max()), now)
    rank = (now - low) / (high - low) * 100.0 if high > low else math.nan
    percentile = float((past < now).mean() * 100.0)
    return IVRank(now, rank, percentile, low, high, len(past))
