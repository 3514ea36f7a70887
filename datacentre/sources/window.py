"""Which strikes of a chain the simulator publishes: its default window policy.

Three rules, each a minimum, so the published window is the widest of them:

* **the watch list's window**: ATM and ``window`` strikes either side;
* **the wings**: out to the strike beyond the 10-delta put below and the 10-delta call
  above (:data:`WING_DELTA`), so 25-delta skew always exists. A far expiry's wings are
  wide (BANKNIFTY's month reaches ±5 % of spot), an expiring weekly's are narrow;
* **sticky for the session**: a strike published once stays published until the
  session (or the stretch after hours) ends; the window grows with spot, never drops.

A snapshot then always holds every strike the session has collected so far, so totals
over it (PCR, total OI, max pain) move only with open interest, never because the
window followed the spot. Pure numpy; the simulator applies it per snapshot.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from statistics import NormalDist

import numpy as np

from datacentre.core.instruments import in_session
from datacentre.core.ticks import trading_day

WING_DELTA = 0.10
WING_MARGIN = 2  # strikes beyond the wing strike: its delta is reached even where the guard lifted an IV
_ITERATIONS = 3  # the wing strike moves the smile's vol there: a few fixed-point steps settle it


def wing_strikes(forward: np.ndarray, t: np.ndarray, vol_at: Callable[[np.ndarray], np.ndarray],
                 delta: float = WING_DELTA) -> tuple[np.ndarray, np.ndarray]:
    """The strikes where a put's and a call's delta are ``delta`` in size (Black-Scholes on
    the forward, no discounting of the delta): ``(put strike below, call strike above)``.

    ``vol_at(strikes)`` is the implied vol (a decimal) at strikes shaped like ``forward``;
    the smile's vol at each wing is found by fixed-point iteration from the ATM vol.
    """
    if not 0.0 < delta < 0.5:
        raise ValueError(f"wing delta must be between 0 and 0.5, got {delta}")
    z = NormalDist().inv_cdf(1.0 - delta)
    forward, root_t = np.asarray(forward, dtype=float), np.sqrt(np.asarray(t, dtype=float))
    low_vol = high_vol = vol_at(forward)
    for _ in range(_ITERATIONS):
        low = forward * np.exp(-z * low_vol * root_t + 0.5 * (low_vol * root_t) ** 2)
        high = forward * np.exp(z * high_vol * root_t + 0.5 * (high_vol * root_t) ** 2)
        low_vol, high_vol = vol_at(low), vol_at(high)
    return low, high


def published_range(atm: np.ndarray, wing_low: np.ndarray, wing_high: np.ndarray, step: float,
                    window: int, held: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The lowest and highest published strike at each step (arrays like ``atm``).

    ``atm`` are the steps' ATM strikes, ``wing_low``/``wing_high`` their
    :func:`wing_strikes`; ``held`` is the range already published earlier in the
    session. The range covers ATM ± ``window``, the wings and one strike beyond, and
    everything published before: it never shrinks along the steps.
    """
    atm = np.asarray(atm, dtype=float)
    low = np.minimum(atm - window * step, (np.floor(np.asarray(wing_low) / step) - WING_MARGIN) * step)
    high = np.maximum(atm + window * step, (np.ceil(np.asarray(wing_high) / step) + WING_MARGIN) * step)
    low = np.maximum(low, step)  # strikes are positive
    if held is not None:
        low, high = np.minimum(low, held[0]), np.maximum(high, held[1])
    return np.minimum.accumulate(low), np.maximum.accumulate(high)


def stretch(moment: datetime) -> tuple[date, bool]:
    """What a published window lasts for: ``(trading day, True)`` for the day's session,
    ``(trading day, False)`` for the hours outside it (the simulator runs at any hour)."""
    return trading_day(moment), in_session(moment)
