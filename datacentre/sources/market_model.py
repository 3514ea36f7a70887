"""The market simulator's model: its parameters and pure, vectorised pieces.

The model (parameters are the constants below and :data:`UNDERLYING_MODELS`):

* **Spot.** Log-normal diffusion whose volatility is the underlying's current ATM IV level
  (annualised over trading time: 252 sessions of 6 h 15 min), so NIFTY moves about 10-16 %
  and BANKNIFTY 12-18 % a year. The two indices' shocks are correlated
  (``SPOT_CORRELATION``) and share occasional small jumps (``JUMPS_PER_SESSION`` of size
  ``JUMP_SD``, scaled by ``jump_beta``). A weak pull (``SPOT_ANCHOR_HALF_LIFE``, 20 sessions)
  towards the typical level keeps weeks of live running near it. Index prices are rounded to
  0.01.
* **Volatility surface.** Per underlying, three mean-reverting (Ornstein-Uhlenbeck) states:
  the 30-day ATM level, the skew and the curvature. The level also moves opposite to spot
  returns (``LEVERAGE``: a 1 % fall adds about one vol point). The ATM vol of an expiry is
  ``level * (1 + TERM_SLOPE * (sqrt(T / 30d) - 1))`` clipped to ``atm_iv_bounds``; across
  strikes ``sigma = atm + skew*k + curvature*k**2`` with ``k = ln(K/F) / sqrt(T)`` (``T`` at
  least ``SMILE_MIN_T``) clipped to ``+-SMILE_K_LIMIT`` and sigma to ``[IV_MIN, IV_MAX]``:
  puts richer, a smile on both wings.
* **Options.** ``ltp`` is the Black-Scholes price (:mod:`datacentre.core.pricing`, spot = the
  index row's ltp, ``T = option_time(expiry, moment)``, the configured rate) at the row's
  ``iv`` (percent, 4 decimals) rounded to the 0.05 tick, at least 0.05; Greeks are computed
  at that same iv. A guard keeps call prices non-increasing and put prices non-decreasing in
  strike; when it has to act, it re-derives that strike's iv from the corrected price, so
  ``ltp`` is still the price at the stored iv.
* **Quotes.** ``bid <= ltp <= ask`` on the tick grid; the spread (in ticks) grows with the
  premium and with the distance from ATM, so cheap far strikes are relatively wide. A bid
  below 0.05 is ``None``.
* **Futures.** ``spot * exp(r*T)`` times a tiny mean-reverting basis noise (``BASIS_SD``).
* **Volume.** Cumulative day volume (reset at each IST date and each :meth:`session`), traded
  in whole lots as Poisson arrivals, heaviest at ATM, busier when spot moves and near expiry,
  and through the day in NSE's U shape (:func:`intraday_activity`): a burst at the open, a
  quiet middle, a ramp into the close.
* **Open interest.** Each contract runs build-up / unwinding / quiet episodes that switch at
  random (mean ``REGIME_MEAN_SECONDS``); build-up is likelier below the contract's typical
  OI and unwinding above it. Changes are whole lots, never exceed the lots traded in the step,
  and OI never goes below 0. The typical OI follows a profile around the current spot,
  peaking a few strikes out of the money, with more at round strikes (NIFTY nearest weekly:
  about 60 lakh units at the top); new contracts start at it, and after a big move OI builds up at
  the new at-the-money strikes.

Each function takes its randomness as a ``numpy`` generator and keeps no state, so it can be
tested on its own; :class:`Book` holds one set of contracts' OI and volume and moves them
with those functions. :mod:`datacentre.sources.simulator` owns the state (spot, surface,
books) and assembles the ticks.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np

from datacentre.core import pricing
from datacentre.core.instruments import YEAR_SECONDS, time_to_expiry

TICK = 0.05

SESSION_SECONDS = 22_500.0  # 09:15-15:30
SESSION_OPEN_UTC_SECONDS = 3 * 3600 + 45 * 60  # 09:15 IST
# The day's shape of trading, fitted to NSE's option chain every 15 minutes on 1 July 2019
# (NIFTY and BANKNIFTY, all strikes of the nearest expiry): about 10 % of the day's option
# volume trades by 09:30, 21 % by 10:00, 44-48 % by noon, 63-67 % by 14:00 and 86-89 % by
# 15:00, where a constant rate gives 4, 12, 44, 76 and 92 %.
OPEN_BURST, OPEN_FADE_SECONDS = 2.6, 1200.0
CLOSE_RAMP, CLOSE_RISE_SECONDS = 1.2, 3600.0
MIDDAY_ACTIVITY = 0.67
TRADING_SECONDS_PER_YEAR = 252 * SESSION_SECONDS
SPOT_ANCHOR_HALF_LIFE = 20 * SESSION_SECONDS  # a weak pull to the typical level: weeks of
# live running keep NIFTY within a few percent of 26,000
MIN_PRICING_T = 1.0 / YEAR_SECONDS  # one second: T never reaches 0 while a contract trades

SPOT_CORRELATION = 0.8
JUMPS_PER_SESSION = 2.0
JUMP_SD = 0.0012  # log size of one jump (about 30 NIFTY points)
LEVERAGE = 1.0  # ATM IV level change per unit log return, with the opposite sign

# Ornstein-Uhlenbeck states: stationary standard deviation and half-life (seconds).
IV_LEVEL_SD, IV_LEVEL_HALF_LIFE = 0.010, 5_400.0
SKEW_SD, SKEW_HALF_LIFE = 0.020, 7_200.0
CURVATURE_SD, CURVATURE_HALF_LIFE = 0.030, 7_200.0
BASIS_SD, BASIS_HALF_LIFE = 1e-4, 120.0
# The surface state vector, per underlying: ATM IV level, skew, curvature, futures basis.
STATE_SD = np.array([IV_LEVEL_SD, SKEW_SD, CURVATURE_SD, BASIS_SD])
STATE_HALF_LIFE = np.array([IV_LEVEL_HALF_LIFE, SKEW_HALF_LIFE, CURVATURE_HALF_LIFE, BASIS_HALF_LIFE])

TERM_SLOPE = 0.10
TERM_REFERENCE_T = 30.0 / 365.0
SMILE_K_LIMIT = 2.0
SMILE_MIN_T = 1.0 / 365.0  # on expiry day the smile keeps its one-day-out shape
IV_MIN, IV_MAX = 0.05, 0.60


OI_PEAK_OFFSET = 3.0  # strikes out of the money where the OI profile peaks
OI_PROFILE_WIDTH = 8.0  # strikes
OI_NOISE_SD = 0.3  # log-normal spread of typical OI between neighbouring contracts
VOLUME_DECAY_STRIKES = 4.0
REGIME_MEAN_SECONDS = 1_800.0
REGIME_QUIET_PROB = 0.25
BUILD_INTENSITY = (0.03, 0.30)  # fraction of the contract's typical OI per hour in an episode
FUTURE_OI_PACE = 0.1  # futures OI moves at a tenth of that pace
QUIET_INTENSITY = 0.01
OPTION_SPREAD_BASE = 0.3  # extra ticks of spread on top of one tick, Poisson mean
OPTION_SPREAD_PER_STRIKE = 0.12
OPTION_SPREAD_PER_RUPEE = 0.01
FUTURE_SPREAD_EXTRA = 3.0

BUILD_UP, QUIET, UNWINDING = 1, 0, -1

RIGHTS = np.array([1.0, -1.0])  # call, put (per contract pair)



@dataclass(frozen=True)
class UnderlyingModel:
    """Typical levels of one underlying; volumes and OI are in units (shares), per session."""

    base: str
    spot: float
    atm_iv: float  # long-run 30-day ATM IV
    atm_iv_bounds: tuple[float, float]
    skew: float
    curvature: float
    jump_beta: float
    option_oi_peak: float  # top of the nearest expiry's OI profile, per contract
    option_volume_atm: float  # day volume of the nearest expiry's ATM contract
    future_oi: float
    future_volume: float


# Levels checked against NSE's bhavcopy of 10 Jan 2025 and 27 Mar 2026 (Fridays, the nearest
# expiry a few days away): NIFTY's nearest-expiry ATM options traded 38-164 million units a day
# with 1-3 million open at ATM and 9-15 million at the busiest strike; its futures 7-11 million
# a day with 9-14 million open; BANKNIFTY's ATM options 1-4 million a day, 0.9-5.6 million open
# at the busiest strike, futures 1.3-2.1 million a day, 1-2.6 million open.
UNDERLYING_MODELS: dict[str, UnderlyingModel] = {
    "NIFTY": UnderlyingModel("NIFTY", 26_000.0, 0.13, (0.10, 0.16), -0.12, 0.30, 1.0,
                             6.0e6, 1.6e8, 1.4e7, 1.0e7),
    "BANKNIFTY": UnderlyingModel("BANKNIFTY", 59_000.0, 0.15, (0.12, 0.18), -0.14, 0.30, 1.25,
                                 2.0e6, 6.0e6, 2.0e6, 2.5e6),
}


# ---------------------------------------------------------------- pure model helpers

def option_time(expiry: date, moment: datetime) -> float:
    """Years to expiry used for pricing: ``time_to_expiry`` floored at one second."""
    return max(time_to_expiry(expiry, moment), MIN_PRICING_T)


def intraday_activity(epoch_seconds: np.ndarray) -> np.ndarray:
    """Relative trading rate at the instants ``epoch_seconds`` (UTC), averaging 1 over the
    session 09:15-15:30 IST; outside it, the rate at the session's nearer edge."""
    t = (np.asarray(epoch_seconds, dtype=float) - SESSION_OPEN_UTC_SECONDS) % 86_400.0
    t = np.where(t > 0.5 * (86_400.0 + SESSION_SECONDS), 0.0, np.minimum(t, SESSION_SECONDS))
    raw = (MIDDAY_ACTIVITY + OPEN_BURST * np.exp(-t / OPEN_FADE_SECONDS)
           + CLOSE_RAMP * np.exp(-(SESSION_SECONDS - t) / CLOSE_RISE_SECONDS))
    mean = (MIDDAY_ACTIVITY
            + (OPEN_BURST * OPEN_FADE_SECONDS * -math.expm1(-SESSION_SECONDS / OPEN_FADE_SECONDS)
               + CLOSE_RAMP * CLOSE_RISE_SECONDS * -math.expm1(-SESSION_SECONDS / CLOSE_RISE_SECONDS))
            / SESSION_SECONDS)
    return raw / mean


def ou_decay(dt: np.ndarray, half_life: np.ndarray) -> np.ndarray:
    """Fraction of an Ornstein-Uhlenbeck deviation left after ``dt`` seconds."""
    return np.exp(-math.log(2.0) * dt / half_life)


def spot_step(log_spot: np.ndarray, log_anchor: np.ndarray, vol: np.ndarray, dt: float,
              shock: np.ndarray, jump: np.ndarray) -> np.ndarray:
    """One step of ``dt`` seconds of the log indices: a log-normal move (``vol`` annualised
    over trading time), a weak pull towards ``log_anchor`` and ``jump`` (already scaled)."""
    years = dt / TRADING_SECONDS_PER_YEAR
    pull = (log_anchor - log_spot) * -math.expm1(-math.log(2.0) * dt / SPOT_ANCHOR_HALF_LIFE)
    return log_spot + pull - 0.5 * vol * vol * years + vol * math.sqrt(years) * shock + jump


def atm_vol(level, t, bounds: tuple[float, float]):
    """ATM implied vol of an expiry ``t`` years away, from the 30-day level (term structure)."""
    return np.clip(level * (1.0 + TERM_SLOPE * (np.sqrt(t / TERM_REFERENCE_T) - 1.0)), *bounds)


def smile(strike, forward, t, atm, skew, curvature):
    """Implied vol across strikes: quadratic in ``k = ln(K/F)/sqrt(T)``, clipped to sane bounds."""
    k = np.log(strike / forward) / np.sqrt(np.maximum(t, SMILE_MIN_T))
    k = np.clip(k, -SMILE_K_LIMIT, SMILE_K_LIMIT)
    return np.clip(atm + skew * k + curvature * k * k, IV_MIN, IV_MAX)


def oi_profile(strikes: np.ndarray, spot: float, step: float, right: np.ndarray) -> np.ndarray:
    """Relative typical OI (peak about 1): highest a few strikes out of the money, more at
    round strikes, little in the money. ``right`` is +1 for calls, -1 for puts."""
    otm = right * (strikes - spot) / step  # strikes out of the money (negative: in the money)
    shape = np.exp(-((otm - OI_PEAK_OFFSET) ** 2) / (2 * OI_PROFILE_WIDTH ** 2))
    shape *= np.exp(np.minimum(otm, 0.0) / 4.0)
    round_bonus = 1.0 + 0.5 * (strikes % (10 * step) == 0) + 0.2 * (strikes % (2 * step) == 0)
    return shape * round_bonus


def chain_typical_oi(model: UnderlyingModel, strikes: np.ndarray, spot: float, step: float,
                     oi_scale: float, weight: np.ndarray) -> np.ndarray:
    """Typical OI of each contract of a chain (call then put per strike) with spot at
    ``spot``: it follows spot, so OI builds up at new at-the-money strikes after a big move."""
    profile = oi_profile(np.repeat(strikes, 2), spot, step, np.tile(RIGHTS, len(strikes)))
    return model.option_oi_peak * oi_scale * profile * weight


def volume_shape(otm: np.ndarray) -> np.ndarray:
    """Relative trading activity by strikes out of the money (in-the-money trades less)."""
    return np.exp((np.minimum(otm, 0.0) - np.abs(otm)) / VOLUME_DECAY_STRIKES)


def quote_ticks(rng: np.random.Generator, ltp_ticks: np.ndarray, extra: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Bid and ask in ticks around ``ltp_ticks``: spread ``1 + Poisson(extra)`` ticks with the
    last trade anywhere inside it. A bid under one tick means no bid."""
    spread = 1 + rng.poisson(extra)
    bid = ltp_ticks - rng.integers(0, spread + 1)
    return bid, bid + spread


def regime_path(rng: np.random.Generator, regime: np.ndarray, intensity: np.ndarray,
                build_prob: np.ndarray, dt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-step OI regime and intensity of each contract over ``len(dt)`` steps: at each step
    a contract starts a new episode with probability ``1 - exp(-dt/REGIME_MEAN_SECONDS)``."""
    steps, n = len(dt), len(regime)
    switch = rng.random((steps, n)) < -np.expm1(-dt / REGIME_MEAN_SECONDS)[:, None]
    draw = rng.random((steps, n))
    fresh = np.where(draw < build_prob, BUILD_UP,
                     np.where(draw < build_prob + REGIME_QUIET_PROB, QUIET, UNWINDING))
    fresh_intensity = rng.uniform(*BUILD_INTENSITY, size=(steps, n))
    last = np.maximum.accumulate(np.where(switch, np.arange(steps)[:, None], -1), axis=0)
    at = np.maximum(last, 0)
    started = last >= 0
    return (np.where(started, np.take_along_axis(fresh, at, 0), regime),
            np.where(started, np.take_along_axis(fresh_intensity, at, 0), intensity))


def oi_changes(rng: np.random.Generator, regime: np.ndarray, intensity: np.ndarray,
               typical_lots: np.ndarray, dt: np.ndarray, traded_lots: np.ndarray) -> np.ndarray:
    """OI change in lots per step: build-up adds, unwinding removes, quiet jitters; never
    more than the lots traded in that step."""
    rate = np.where(regime == QUIET, QUIET_INTENSITY, intensity) * typical_lots
    lots = rng.poisson(rate * (dt / 3600.0)[:, None])
    sign = np.where(regime == QUIET, rng.choice((-1, 1), size=regime.shape), regime)
    return np.clip(sign * lots, -traded_lots, traded_lots)


def reflected_cumsum(start: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """``x[t] = max(x[t-1] + steps[t], 0)`` from ``x[-1] = start >= 0``, vectorised over time."""
    total = start + np.cumsum(steps, axis=0)
    return total - np.minimum(np.minimum.accumulate(total, axis=0), 0)


def arbitrage_guard(call: np.ndarray, put: np.ndarray, sig_call: np.ndarray, sig_put: np.ndarray,
                    S, K, T, r: float):
    """Make call prices non-increasing and put prices non-decreasing along the strike axis
    (the last one, strikes ascending). Where a price has to change, its vol is re-implied
    from the corrected price (rounded like stored ivs) so price and vol stay consistent."""
    out = []
    for flag, price, sig, fixed in (("c", call, sig_call, np.minimum.accumulate(call, axis=-1)),
                                    ("p", put, sig_put, np.maximum.accumulate(put, axis=-1))):
        bad = np.abs(fixed - price) > 1e-9
        if bad.any():
            S_, K_, T_ = (np.broadcast_to(a, price.shape)[bad] for a in (S, K, T))
            implied = np.asarray(pricing.implied_vol(fixed[bad], flag, S_, K_, T_, r), dtype=float)
            sig = sig.copy()
            sig[bad] = np.where(np.isfinite(implied), np.round(implied * 100, 4) / 100, sig[bad])
            price = price.copy()
            price[bad] = np.asarray(pricing.bs_price(flag, S_, K_, T_, r, sig[bad]), dtype=float)
        out.append((price, sig))
    return out[0][0], out[1][0], out[0][1], out[1][1]


def ticks_of(price: np.ndarray) -> np.ndarray:
    """Price to whole ticks, at least one."""
    return np.maximum(np.rint(price / TICK), 1).astype(np.int64)


def price_of(ticks: np.ndarray) -> np.ndarray:
    return np.round(ticks * TICK, 2)


# ---------------------------------------------------------------- open interest and volume

@dataclass
class Book:
    """Open interest and day volume of a set of contracts, in units; changes come in lots."""

    lot: int
    symbols: np.ndarray  # object
    tokens: np.ndarray  # object
    typical_oi: np.ndarray  # float units: what the regimes revert around
    weight: np.ndarray  # per-contract popularity factor (log-normal around 1)
    oi: np.ndarray  # int64 units
    volume: np.ndarray  # int64 units, this IST day
    regime: np.ndarray  # int64: BUILD_UP, QUIET, UNWINDING
    intensity: np.ndarray  # fraction of typical OI per hour in the current episode
    oi_pace: float = 1.0  # scales the intensity (futures OI moves slowly)

    @classmethod
    def opened(cls, rng: np.random.Generator, lot: int, symbols: Sequence[str], tokens: Sequence[str],
               typical: np.ndarray, weight: np.ndarray, oi: np.ndarray, volume: np.ndarray) -> Book:
        """New contracts: an ``oi`` below 0 (not known) starts at the typical OI in whole lots,
        and each contract starts an episode drawn at random."""
        n = len(symbols)
        typical_lots = np.maximum(np.rint(typical / lot), 1)
        oi = np.where(oi >= 0, oi, (typical_lots * lot).astype(np.int64))
        draw = rng.random(n)
        regime = np.where(draw < 0.5, BUILD_UP,
                          np.where(draw < 0.5 + REGIME_QUIET_PROB, QUIET, UNWINDING))
        return cls(lot=lot, symbols=np.array(symbols, dtype=object),
                   tokens=np.array(tokens, dtype=object), typical_oi=typical, weight=weight,
                   oi=oi, volume=volume, regime=regime,
                   intensity=rng.uniform(*BUILD_INTENSITY, size=n))

    def extend(self, other: Book, *, front: bool = False) -> None:
        for name in ("symbols", "tokens", "typical_oi", "weight", "oi", "volume", "regime",
                     "intensity"):
            a, b = getattr(self, name), getattr(other, name)
            setattr(self, name, np.concatenate((b, a) if front else (a, b)))

    def advance(self, rng: np.random.Generator, dt: np.ndarray, rate: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
        """Trade and move OI over the steps ``dt`` (seconds) at ``rate`` lots/s (steps x
        contracts); return the volume and OI paths (steps x contracts, units)."""
        traded = rng.poisson(rate * dt[:, None])
        ratio = self.oi / np.maximum(self.typical_oi, self.lot)
        build_prob = np.clip(0.75 - 0.3 * ratio, 0.1, 0.7)  # balanced at 1.25x typical
        regime, intensity = regime_path(rng, self.regime, self.intensity, build_prob, dt)
        change = oi_changes(rng, regime, intensity * self.oi_pace, self.typical_oi / self.lot, dt,
                            traded)
        volume = self.volume + np.cumsum(traded, axis=0) * self.lot
        oi = reflected_cumsum(self.oi, change * self.lot)
        self.volume, self.oi = volume[-1].copy(), oi[-1].copy()
        self.regime, self.intensity = regime[-1].copy(), intensity[-1].copy()
        return volume, oi
