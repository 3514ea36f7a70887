"""IV and Greeks from option prices, on the forward of each expiry (Black-76 style).

Wherever prices come without IV or Greeks (imported files, a broker that sends none, CSV
playback), they are computed here, one way:

1. **The forward** ``F`` of the expiry: the price of the same-expiry future when one is known;
   else put-call parity ``F = K + e^{rT} (C - P)`` at the :data:`PARITY_STRIKES` strikes
   nearest the money that have both a call and a put price, taking their median; else, with
   no pair at all, ``F = S e^{rT}`` from the index ``S``. Parity uses the mid of a two-sided
   quote where there is one, else the last price, and the median keeps one stale last price
   from moving ``F``.
2. **The price** of each option: the mid of a two-sided quote (bid > 0, ask >= bid), else the
   last price.
3. **IV**: Black-76 on ``F``, i.e. Black-Scholes on ``F e^{-rT}`` with rate ``r``
   (:func:`datacentre.core.pricing.implied_vol`); ``T`` in years of 365 days to 15:30 IST
   on the expiry day. ``r`` only discounts; the carry of the index (dividends, financing) is
   in ``F``, which is why a call and a put at one strike get the same IV.
4. **Greeks** at that IV, with respect to the index: ``delta`` and ``gamma`` per point of the
   index and ``theta`` (per calendar day) holding the index still, with the carry
   ``c = ln(F / S) / T`` implied by the forward (generalised Black-Scholes with cost of carry
   ``c``); ``vega`` per vol point. Without the index ``S``, the carry is taken as ``r``.

The other convention, ``nse`` (:data:`NSE`): NSE's published IV is reproduced (median within
0.2-0.3 vol points on real option-chain snapshots) by Black-Scholes on the **index** with
``r = 10 %`` (:data:`NSE_RATE`) and the **last price**, i.e. a forward ``S e^{0.10 T}``. With
NSE's carry of 10 % against a market carry of about 2.5 %, call and put IVs at one strike
differ by 3-5 vol points near the money; the forward convention is the default for that
reason.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np

from datacentre.core import pricing
from datacentre.core.errors import ConfigError, SymbolError
from datacentre.core.instruments import CE, FUT, INDEX, PE, parse_symbol, time_to_expiry, underlying
from datacentre.core.numbers import finite_or_none
from datacentre.core.ticks import parse_ts

FORWARD, NSE = "forward", "nse"
IV_CONVENTIONS = (FORWARD, NSE)
NSE_RATE = 0.10
PARITY_STRIKES = 5
GREEK_DIGITS = {"delta": 4, "gamma": 6, "theta": 4, "vega": 4, "iv": 4}
GREEK_NAMES = ("delta", "gamma", "theta", "vega", "iv")


@dataclass(frozen=True)
class Forward:
    value: float
    method: str  # "future", "parity" or "spot"


def check_convention(convention: str) -> str:
    key = str(convention).strip().lower()
    if key not in IV_CONVENTIONS:
        raise ConfigError(f"unknown IV convention {convention!r}: use {' or '.join(IV_CONVENTIONS)}")
    return key


def _positive(value) -> float | None:
    number = finite_or_none(value)
    return number if number is not None and number > 0 else None


def quote_price(ltp, bid=None, ask=None) -> float | None:
    """The mid of a two-sided quote (bid > 0, ask >= bid), else the last price (or None)."""
    b, a = _positive(bid), _positive(ask)
    if b is not None and a is not None and a >= b:
        return 0.5 * (a + b)
    return _positive(ltp)


def parity_forward(strikes: Sequence[float], calls: Sequence[float | None], puts: Sequence[float | None],
                   t: float, r: float, *, reference: float | None = None,
                   count: int = PARITY_STRIKES) -> float | None:
    """Median of ``K + e^{rT} (C - P)`` over the ``count`` strikes nearest ``reference`` that
    have both prices (``reference`` defaults to the strike where ``|C - P|`` is smallest).
    None when no strike has both prices or ``t <= 0``."""
    if not t > 0:
        return None
    pairs = [(float(k), c, p) for k, c, p in zip(strikes, calls, puts)
             if c is not None and p is not None and c > 0 and p > 0]
    if not pairs:
        return None
    if reference is None:
        reference = min(pairs, key=lambda kcp: abs(kcp[1] - kcp[2]))[0]
    nearest = sorted(pairs, key=lambda kcp: abs(kcp[0] - reference))[:count]
    growth = math.exp(r * t)
    estimates = [k + growth * (c - p) for k, c, p in nearest]
    value = float(np.median(estimates))
    return value if value > 0 else None


def expiry_forward(strikes: Sequence[float], calls: Sequence[float | None], puts: Sequence[float | None],
                   t: float, r: float, *, spot: float | None = None,
                   future: float | None = None) -> Forward | None:
    """The forward of one expiry (see the module docstring): future, else parity, else spot."""
    if not t > 0:
        return None
    if _positive(future) is not None:
        return Forward(float(future), "future")
    value = parity_forward(strikes, calls, puts, t, r, reference=_positive(spot))
    if value is not None:
        return Forward(value, "parity")
    if _positive(spot) is not None:
        return Forward(float(spot) * math.exp(r * t), "spot")
    return None


def option_greeks(prices: Sequence[float | None], rights: Sequence[str], strikes: Sequence[float],
                  t: float, r: float, forward: float, spot: float | None = None) -> dict[str, np.ndarray]:
    """``iv`` (percent), ``delta``, ``gamma``, ``theta`` (per day), ``vega`` (per vol point) as
    arrays; NaN where no volatility fits the price. See the module docstring."""
    price = np.array([np.nan if p is None else p for p in prices], dtype=float)
    flags = np.asarray(rights)
    k = np.asarray(strikes, dtype=float)
    present = forward * math.exp(-r * t)  # F e^{-rT}: the "spot" of Black-76 in Black-Scholes form
    sigma = np.asarray(pricing.implied_vol(price, flags, present, k, t, r), dtype=float)
    fits = np.isfinite(sigma)
    g = pricing.greeks(flags, present, k, t, r, np.where(fits, sigma, 0.0))
    s = _positive(spot)
    scale = present / s if s is not None else 1.0  # d(F e^{-rT}) / dS
    carry = math.log(forward / s) / t if s is not None else r
    delta = np.asarray(g["delta"], dtype=float)
    out = {
        "iv": sigma * 100.0,
        "delta": delta * scale,
        "gamma": np.asarray(g["gamma"], dtype=float) * scale * scale,
        # theta holding the index still: the forward's present value drifts at (c - r)
        "theta": np.asarray(g["theta"], dtype=float) + (r - carry) * present * delta / pricing.DAYS_PER_YEAR,
        "vega": np.asarray(g["vega"], dtype=float),
    }
    return {name: np.where(fits, values, np.nan) for name, values in out.items()}


def _rounded(values: dict[str, np.ndarray], i: int) -> dict[str, float | None]:
    return {name: round(float(values[name][i]), GREEK_DIGITS[name]) + 0.0
            if np.isfinite(values[name][i]) else None for name in GREEK_NAMES}


def chain_greeks(rights: Sequence[str], strikes: Sequence[float], ltp: Sequence[float | None], t: float,
                 r: float, *, bids: Sequence[float | None] | None = None,
                 asks: Sequence[float | None] | None = None, spot: float | None = None,
                 future: float | None = None, convention: str = FORWARD
                 ) -> tuple[list[dict[str, float | None]], Forward | None]:
    """IV and Greeks of one expiry's options, and the forward they were computed on.

    Each result is ``{delta, gamma, theta, vega, iv}`` rounded as stored, ``None`` where
    nothing fits (no price, ``t <= 0``, a price outside the no-arbitrage bounds).
    """
    convention = check_convention(convention)
    n = len(rights)
    bids = bids if bids is not None else [None] * n
    asks = asks if asks is not None else [None] * n
    empty = [dict.fromkeys(GREEK_NAMES) for _ in range(n)]
    if n == 0 or not t > 0:
        return empty, None
    if convention == NSE:
        s = _positive(spot)
        if s is None:
            return empty, None
        rate, forward = NSE_RATE, Forward(s * math.exp(NSE_RATE * t), "spot")
        prices = [_positive(p) for p in ltp]
    else:
        rate = r
        prices = [quote_price(p, b, a) for p, b, a in zip(ltp, bids, asks)]
        by_strike: dict[float, dict[str, float | None]] = {}
        for right, k, price in zip(rights, strikes, prices):
            by_strike.setdefault(float(k), {})[str(right).upper()] = price
        ks = sorted(by_strike)
        forward = expiry_forward(ks, [by_strike[k].get(CE) for k in ks], [by_strike[k].get(PE) for k in ks],
                                 t, rate, spot=spot, future=future)
        if forward is None:
            return empty, None
    values = option_greeks(prices, list(rights), list(strikes), t, rate, forward.value, spot)
    return [_rounded(values, i) for i in range(n)], forward


def snapshot_greeks(ticks: Sequence[dict], moment: datetime | str, r: float, *,
                    convention: str = FORWARD, missing_only: bool = False) -> list[dict]:
    """Copies of ``ticks`` (one snapshot) with the options' IV and Greeks computed per expiry.

    The index tick of the snapshot gives the spot, a future of the same expiry the forward.
    ``missing_only`` keeps options that already have an IV as they are (playback of files
    that carry some). Ticks that are not options, or whose symbol does not parse, are copied
    unchanged.
    """
    moment = parse_ts(moment)
    out = [dict(t) for t in ticks]
    spots: dict[str, float] = {}
    futures: dict[tuple[str, date], float] = {}
    groups: dict[tuple[str, date], list[tuple[int, object]]] = {}
    for i, tick in enumerate(out):
        try:
            ins = parse_symbol(tick["symbol"])
        except (SymbolError, KeyError):
            continue
        if ins.kind == INDEX and _positive(tick.get("ltp")):
            spots[ins.underlying] = float(tick["ltp"])
        elif ins.kind == FUT and _positive(tick.get("ltp")):
            futures[(ins.underlying, ins.expiry)] = float(tick["ltp"])
        elif ins.kind in (CE, PE):
            groups.setdefault((ins.underlying, ins.expiry), []).append((i, ins))
    for (base, expiry), members in groups.items():
        todo = [(i, ins) for i, ins in members if not (missing_only and out[i].get("iv") is not None)]
        if not todo:
            continue
        underlying(base)  # a known underlying, or SymbolError
        t = time_to_expiry(expiry, moment)
        # the forward comes from the whole chain of the expiry, the Greeks only for ``todo``
        everyone = [out[i] for i, _ in members]
        computed, _ = chain_greeks([ins.kind for _, ins in members], [ins.strike for _, ins in members],
                                   [tk.get("ltp") for tk in everyone], t, r,
                                   bids=[tk.get("bid") for tk in everyone],
                                   asks=[tk.get("ask") for tk in everyone], spot=spots.get(base),
                                   future=futures.get((base, expiry)), convention=convention)
        wanted = {i for i, _ in todo}
        for (i, _), values in zip(members, computed):
            if i in wanted:
                out[i].update(values)
    return out
