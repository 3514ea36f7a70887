"""The market simulator: a live NIFTY / BANKNIFTY options market that needs no broker.

Every call to :meth:`MarketSimulator.snapshot` moves the market forward by the real time
elapsed since the previous call (at most ``MAX_STEP_SECONDS``), at any wall-clock hour, and
returns one snapshot of ticks. :meth:`MarketSimulator.session` generates a whole past
session (09:15-15:30 IST, both ends included) in vectorised chunks for backfill.

The model (the spot, the volatility surface, prices, quotes, volume and open interest) and
its parameters are in :mod:`datacentre.sources.market_model`.

Snapshots carry: both indices, each one's current monthly future, options on the nearest
expiry (NIFTY weekly, BANKNIFTY monthly) and NIFTY's next weekly (term structure). Which
strikes of each expiry a snapshot holds is :mod:`datacentre.sources.window`'s policy: at
least ATM +- the watch list's window (``atm_window``, ``next_expiry_window``), out past
the 10-delta put and call (``wing_delta``), and every strike published earlier in the
session (``sticky``), so the window grows with spot and never drops a strike before the
session ends. A strike entering it already has a history (OI and volume are kept for a
wider grid).

Randomness comes from one ``numpy.random.default_rng(seed)``: the same seed and the same
sequence of calls give identical ticks.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np

from datacentre.core import pricing
from datacentre.core.config import DEFAULT_ATM_WINDOW, DEFAULT_RISK_FREE_RATE, check_interval
from datacentre.core.errors import ConfigError, DataCentreError
from datacentre.core.instruments import (
    FUT,
    INDEX,
    current_future_expiry,
    format_future,
    format_option,
    parse_symbol,
    session_bounds,
    time_to_expiry,
    token_for,
    underlying,
)
from datacentre.core.numbers import finite_or_none
from datacentre.core.ticks import format_ts, parse_ts, trading_day
from datacentre.core.watchlist import NEXT_WEEKLY, WatchList, nearest_chains
from datacentre.sources.market_model import (
    FUTURE_OI_PACE,
    FUTURE_SPREAD_EXTRA,
    JUMP_SD,
    JUMPS_PER_SESSION,
    LEVERAGE,
    OI_NOISE_SD,
    OPTION_SPREAD_BASE,
    OPTION_SPREAD_PER_RUPEE,
    OPTION_SPREAD_PER_STRIKE,
    RIGHTS,
    SESSION_SECONDS,
    SPOT_CORRELATION,
    STATE_HALF_LIFE,
    STATE_SD,
    TICK,
    UNDERLYING_MODELS,
    Book,
    arbitrage_guard,
    atm_vol,
    chain_typical_oi,
    intraday_activity,
    option_time,
    ou_decay,
    price_of,
    quote_ticks,
    smile,
    spot_step,
    ticks_of,
    volume_shape,
)
from datacentre.sources.window import WING_DELTA, published_range, stretch, wing_strikes

SOURCE = "sim"
MAX_STEP_SECONDS = 900.0  # a longer gap between calls moves the market by 15 minutes only

NEXT_EXPIRY_WINDOW = 5
NEXT_EXPIRY_OI_SCALE = 0.35
NEXT_EXPIRY_VOLUME_SCALE = 0.15
#: OI and volume of a chain relative to the nearest expiry's, by watch-list rule.
_CHAIN_SCALES = {NEXT_WEEKLY: (NEXT_EXPIRY_OI_SCALE, NEXT_EXPIRY_VOLUME_SCALE)}
GRID_MARGIN = 25  # strikes kept beyond the window either side, so entering strikes have a past


# ---------------------------------------------------------------- state

@dataclass
class _Chain:
    """One option expiry on a strike grid wider than the published window.

    Contracts are strike-major: index ``2*i`` is the call and ``2*i + 1`` the put at
    ``first_strike + i*step``."""

    base: str
    expiry: date
    step: float
    first_strike: float
    book: Book

    @property
    def strikes(self) -> np.ndarray:
        return self.first_strike + self.step * np.arange(len(self.book.oi) // 2)


@dataclass(frozen=True)
class _ChainSpec:
    base: str
    expiry: date
    window: int
    oi_scale: float
    volume_scale: float




class MarketSimulator:
    """The default data source: a simulated, internally consistent index options market.

    ``resume_from`` takes the latest stored ticks (one row per symbol is enough) so a
    restarted collector continues where it stopped: spot from the index rows, OI of every
    known future and option, the ATM IV level from the nearest-expiry ATM option, and day
    volume when the first snapshot falls on the same IST date. Rows it cannot use are
    ignored. ``next_expiry_window=None`` leaves NIFTY's next weekly out. ``watchlist`` (a
    :class:`~datacentre.core.watchlist.WatchList`) chooses the underlyings, expiries and
    windows instead of ``underlyings``, ``atm_window`` and ``next_expiry_window``; those
    windows are the minimum a snapshot holds (:mod:`~datacentre.sources.window`): with
    ``wing_delta`` (None: off) out to that delta's put and call, with ``sticky`` every
    strike the session (or the hours outside it) has published so far.
    """

    name = SOURCE

    def __init__(self, *, seed: int | None = None, atm_window: int = DEFAULT_ATM_WINDOW,
                 risk_free_rate: float = DEFAULT_RISK_FREE_RATE,
                 underlyings: Sequence[str] = ("NIFTY", "BANKNIFTY"),
                 resume_from: Iterable[dict] | None = None,
                 next_expiry_window: int | None = NEXT_EXPIRY_WINDOW,
                 watchlist: WatchList | None = None, wing_delta: float | None = WING_DELTA,
                 sticky: bool = True) -> None:
        if int(atm_window) < 1:
            raise ConfigError(f"ATM window must be at least 1 strike, got {atm_window}")
        if next_expiry_window is not None and int(next_expiry_window) < 1:
            raise ConfigError(f"next expiry window must be at least 1 strike or None, "
                              f"got {next_expiry_window}")
        if wing_delta is not None and not 0.0 < wing_delta < 0.5:
            raise ConfigError(f"wing delta must be between 0 and 0.5 (or None), got {wing_delta}")
        self.wing_delta, self.sticky = wing_delta, bool(sticky)
        self.atm_window = int(atm_window)
        self.next_expiry_window = None if next_expiry_window is None else int(next_expiry_window)
        self.risk_free_rate = float(risk_free_rate)
        self.seed = seed
        bases = list(dict.fromkeys(underlying(u).base for u in underlyings))
        if not bases:
            raise ConfigError("the simulator needs at least one underlying")
        self.watchlist = watchlist or nearest_chains(bases, self.atm_window, self.next_expiry_window)
        bases = list(self.watchlist.bases)
        self.underlyings = tuple(bases)
        self._models = [UNDERLYING_MODELS[b] for b in bases]
        self._rng = np.random.default_rng(seed)

        n = len(bases)
        corr = np.full((n, n), SPOT_CORRELATION)
        np.fill_diagonal(corr, 1.0)
        self._chol = np.linalg.cholesky(corr)
        self._beta = np.array([m.jump_beta for m in self._models])
        self._iv_bounds = np.array([m.atm_iv_bounds for m in self._models])
        # state columns: ATM IV level, skew, curvature, futures basis
        self._mean = np.array([[m.atm_iv, m.skew, m.curvature, 0.0] for m in self._models])
        self._log_anchor = np.log([m.spot for m in self._models])
        self._log_spot = self._log_anchor + self._rng.normal(0, 0.01, n)
        self._state = self._clip_state(self._mean + STATE_SD * self._rng.standard_normal((n, 4)))

        self._chains: dict[tuple[str, date], _Chain] = {}
        self._futures: dict[tuple[str, date], Book] = {}
        self._last: datetime | None = None
        self._day: date | None = None
        self._resume_oi: dict[str, int] = {}
        self._resume_volume: dict[str, int] = {}
        self._resume_day: date | None = None
        # (base, expiry) -> the lowest and highest strike published in the current stretch
        self._published: dict[tuple[str, date], tuple[float, float]] = {}
        self._stretch: tuple[date, bool] | None = None
        if resume_from:
            self._resume(resume_from)

    def __repr__(self) -> str:
        return (f"MarketSimulator(seed={self.seed!r}, underlyings={self.underlyings}, "
                f"atm_window={self.atm_window})")

    # ------------------------------------------------------------ public

    def snapshot(self, moment: datetime) -> list[dict]:
        """Advance the market to ``moment`` and return its ticks (the first call initialises)."""
        return self._advance([parse_ts(moment)])[0]

    def session(self, day: date, interval: float) -> Iterator[tuple[datetime, list[dict]]]:
        """Every snapshot of the session of ``day`` as ``(moment, ticks)``: 09:15 IST, then
        every ``interval`` seconds up to and including 15:30 IST when the interval divides the
        session (4,501 snapshots at 5 s). Day volume starts at 0.

        On an expiry day the 15:30 snapshot already shows the next expiry (the expiring
        contract has stopped trading), as :func:`instruments.nearest_option_expiry` says."""
        interval = check_interval(interval)
        start, end = session_bounds(day)
        count = math.floor((end - start).total_seconds() / interval + 1e-9) + 1
        return self._run_session(day, [start + timedelta(seconds=i * interval)
                                       for i in range(count)])

    def _run_session(self, day: date, moments: list[datetime]
                     ) -> Iterator[tuple[datetime, list[dict]]]:
        self._start_day(day, keep_resumed_volume=False)
        chunk = 600  # snapshots generated at once: bounds memory, keeps the first yield quick
        for first in range(0, len(moments), chunk):
            for part in self._same_layout(moments[first:first + chunk]):
                yield from zip(part, self._advance(part))

    def _same_layout(self, moments: list[datetime]) -> list[list[datetime]]:
        """Split consecutive moments where the contract set changes (an expiry rolls)."""
        if len(moments) == 1 or self._layout(moments[0]) == self._layout(moments[-1]):
            return [moments]
        half = len(moments) // 2
        return self._same_layout(moments[:half]) + self._same_layout(moments[half:])

    # ------------------------------------------------------------ resume

    def _resume(self, rows: Iterable[dict]) -> None:
        newest: dict[str, tuple[datetime, dict]] = {}
        for row in rows:
            try:
                symbol, moment = row["symbol"], parse_ts(row["ts"])
                parse_symbol(symbol)
            except (DataCentreError, KeyError, TypeError, ValueError):
                continue
            if symbol not in newest or moment > newest[symbol][0]:
                newest[symbol] = (moment, row)
        if not newest:
            return
        self._resume_day = trading_day(max(m for m, _ in newest.values()))
        # the strikes this stretch has published so far stay published after a restart
        self._stretch = stretch(max(m for m, _ in newest.values()))
        candidates: dict[str, list[tuple]] = {}
        for symbol, (moment, row) in newest.items():
            inst = parse_symbol(symbol)
            if inst.underlying not in self.underlyings:
                continue
            if inst.is_option and stretch(moment) == self._stretch:
                key = (inst.underlying, inst.expiry)
                low, high = self._published.get(key, (inst.strike, inst.strike))
                self._published[key] = (min(low, inst.strike), max(high, inst.strike))
            u = self.underlyings.index(inst.underlying)
            if inst.kind == INDEX:
                ltp = finite_or_none(row.get("ltp"))
                if ltp is not None and ltp > 0:
                    self._log_spot[u] = math.log(ltp)
                continue
            oi, volume = finite_or_none(row.get("oi")), finite_or_none(row.get("volume"))
            if oi is not None and oi >= 0:
                self._resume_oi[symbol] = int(oi)
            if volume is not None and volume >= 0:
                self._resume_volume[symbol] = int(volume)
            iv = finite_or_none(row.get("iv"))
            if inst.kind != FUT and iv is not None and iv > 0:
                candidates.setdefault(inst.underlying, []).append((inst, moment, iv / 100.0))
        for base, found in candidates.items():
            u = self.underlyings.index(base)
            spot = math.exp(self._log_spot[u])
            newest_ts = max(c[1] for c in found)  # rows of strikes that left the window are stale
            inst, moment, iv = min((c for c in found if c[1] == newest_ts),
                                   key=lambda c: (c[0].expiry, abs(c[0].strike - spot)))
            t = time_to_expiry(inst.expiry, moment)
            if t > 0:
                level = iv / float(atm_vol(1.0, t, (0.0, np.inf)))
                self._state[u, 0] = np.clip(level, *self._iv_bounds[u])

    # ------------------------------------------------------------ the market step

    def _layout(self, moment: datetime) -> tuple:
        return (stretch(moment), current_future_expiry(moment), tuple(self._chain_specs(moment)))

    def _chain_specs(self, moment: datetime) -> list[_ChainSpec]:
        return [_ChainSpec(c.base, c.expiry, c.window, *_CHAIN_SCALES.get(c.rule, (1.0, 1.0)))
                for c in self.watchlist.chains(moment)]

    def _start_day(self, day: date, *, keep_resumed_volume: bool) -> None:
        self._day = day
        for book in [*self._futures.values(), *(c.book for c in self._chains.values())]:
            book.volume[:] = 0
        if not (keep_resumed_volume and day == self._resume_day):
            self._resume_volume.clear()

    def _clip_state(self, state: np.ndarray) -> np.ndarray:
        state[:, 0] = np.clip(state[:, 0], self._iv_bounds[:, 0], self._iv_bounds[:, 1])
        state[:, 1] = np.minimum(state[:, 1], 0.0)
        state[:, 2] = np.maximum(state[:, 2], 0.0)
        return state

    def _evolve(self, dt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Spot and surface paths over the steps ``dt``: (spot (steps x n, rounded to 0.01),
        state (steps x n x 4: level, skew, curvature, basis), standardised spot shocks)."""
        rng, steps, n = self._rng, len(dt), len(self.underlyings)
        shocks = rng.standard_normal((steps, n)) @ self._chol.T
        jump_count = rng.poisson(JUMPS_PER_SESSION * dt / SESSION_SECONDS)
        jumps = rng.standard_normal(steps) * np.sqrt(jump_count) * JUMP_SD
        decay = ou_decay(dt[:, None, None], STATE_HALF_LIFE)
        noise = STATE_SD * np.sqrt(1.0 - decay ** 2) * rng.standard_normal((steps, n, 4))
        log_spot, state = self._log_spot, self._state
        log_path, state_path = np.empty((steps, n)), np.empty((steps, n, 4))
        for t in range(steps):
            new_log = spot_step(log_spot, self._log_anchor, state[:, 0], dt[t], shocks[t],
                                self._beta * jumps[t])
            state = self._mean + (state - self._mean) * decay[t] + noise[t]
            state[:, 0] -= LEVERAGE * (new_log - log_spot)
            state = self._clip_state(state)
            log_spot = new_log
            log_path[t], state_path[t] = log_spot, state
        self._log_spot, self._state = log_spot, state
        return np.round(np.exp(log_path), 2), state_path, shocks

    def _advance(self, moments: list[datetime]) -> list[list[dict]]:
        """Move the market through ``moments`` (same IST day and expiries) and return the
        ticks of each."""
        seconds = np.array([m.timestamp() for m in moments])
        previous = seconds[0] if self._last is None else self._last.timestamp()
        dt = np.clip(np.diff(seconds, prepend=previous), 0.0, MAX_STEP_SECONDS)
        day = trading_day(moments[0])
        if day != self._day:
            self._start_day(day, keep_resumed_volume=True)
        if stretch(moments[0]) != self._stretch:  # a session, or the hours outside it, begins
            self._stretch, self._published = stretch(moments[0]), {}
        self._last = moments[-1]

        spot, state, shocks = self._evolve(dt)
        # trading picks up when spot moves, and follows the day's U shape
        activity = (0.4 + 0.75 * np.abs(shocks)) * intraday_activity(seconds)[:, None]

        index_rows = [(underlying(b).index_symbol, token_for(underlying(b).index_symbol))
                      for b in self.underlyings]
        fut_cols = self._future_columns(moments, dt, spot, state, activity)
        option_parts = [self._option_columns(spec, moments, dt, spot, state, activity)
                        for spec in self._chain_specs(moments[0])]
        # each part: its columns and, last, which of its rows each step publishes
        columns = [np.concatenate(parts, axis=1).tolist() for parts in zip(*option_parts)]
        published = columns.pop()

        out = []
        for t, (moment, spots) in enumerate(zip(moments, spot.tolist())):
            ts = format_ts(moment)
            rows = [_row(sym, tok, ts, ltp, None, None, 0, None)
                    for (sym, tok), ltp in zip(index_rows, spots)]
            rows += [_row(sym, tok, ts, ltp[t], bid[t], ask[t], vol[t], oi[t])
                     for sym, tok, ltp, bid, ask, vol, oi in fut_cols]
            rows += [{"symbol": s, "token": k, "ts": ts, "ltp": p, "bid": b or None, "ask": a,
                      "volume": v, "oi": o, "delta": de, "gamma": g, "theta": th, "vega": ve,
                      "iv": iv, "source": SOURCE}
                     for s, k, p, b, a, v, o, de, g, th, ve, iv, shown
                     in zip(*(c[t] for c in columns), published[t]) if shown]
            out.append(rows)
        return out

    def _future_columns(self, moments: list[datetime], dt: np.ndarray, spot: np.ndarray,
                        state: np.ndarray, activity: np.ndarray) -> list[tuple]:
        """Per underlying: symbol, token and per-step ltp, bid, ask, volume, oi lists."""
        expiry = current_future_expiry(moments[0])
        carry = self.risk_free_rate * np.array([time_to_expiry(expiry, m) for m in moments])
        out = []
        for u, base in enumerate(self.underlyings):
            book = self._future_book(base, expiry)
            rate = self._models[u].future_volume / book.lot / SESSION_SECONDS * activity[:, u:u + 1]
            volume, oi = book.advance(self._rng, dt, rate)
            ltp = ticks_of(spot[:, u] * np.exp(carry + state[:, u, 3]))
            bid, ask = quote_ticks(self._rng, ltp, np.full(len(moments), FUTURE_SPREAD_EXTRA))
            out.append((book.symbols[0], book.tokens[0], price_of(ltp).tolist(),
                        [b or None for b in np.where(bid >= 1, price_of(bid), 0.0).tolist()],
                        price_of(ask).tolist(), volume[:, 0].tolist(), oi[:, 0].tolist()))
        return out

    def _published_range(self, spec: _ChainSpec, S: np.ndarray, T: np.ndarray, vol_at
                         ) -> tuple[np.ndarray, np.ndarray]:
        """The lowest and highest strike each step publishes (:mod:`~datacentre.sources.window`),
        remembered for the rest of the stretch when the window is sticky."""
        step = float(underlying(spec.base).strike_step)
        atm = np.rint(S[:, 0] / step) * step  # as instruments.atm_strike (ties to even)
        forward = S * np.exp(self.risk_free_rate * T)
        if self.wing_delta is None:
            wing_low = wing_high = atm
        else:
            wing_low, wing_high = (w[:, 0] for w in wing_strikes(forward, T, lambda k: vol_at(k, forward),
                                                                 self.wing_delta))
        key = (spec.base, spec.expiry)
        low, high = published_range(atm, wing_low, wing_high, step, spec.window,
                                    self._published.get(key) if self.sticky else None)
        if self.sticky:
            self._published[key] = (float(low[-1]), float(high[-1]))
        return low, high

    def _option_columns(self, spec: _ChainSpec, moments: list[datetime], dt: np.ndarray,
                        spot: np.ndarray, state: np.ndarray, activity: np.ndarray) -> list:
        """Per-step arrays (steps x rows, CE then PE per strike) of one expiry over the
        strikes any of the steps publishes, and last which rows each step publishes."""
        u = self.underlyings.index(spec.base)
        model, lot = self._models[u], underlying(spec.base).lot_size
        S = spot[:, u:u + 1]
        T = np.array([[option_time(spec.expiry, m)] for m in moments])
        level, skew, curvature = state[:, u, 0:1], state[:, u, 1:2], state[:, u, 2:3]
        atm_sigma = atm_vol(level, T, tuple(model.atm_iv_bounds))

        def vol_at(strike, forward):
            return smile(strike, forward, T, atm_sigma, skew, curvature)

        low, high = self._published_range(spec, S, T, vol_at)
        chain = self._chain(spec, S[:, 0], float(low.min()), float(high.max()))
        step = chain.step
        strikes = chain.strikes
        contract_strikes = np.repeat(strikes, 2)
        contract_rights = np.tile(RIGHTS, len(strikes))

        otm_all = contract_rights * (contract_strikes - S) / step
        near_expiry = 1.0 + 2.0 * math.exp(-T[0, 0] * 365.0)
        rate = (model.option_volume_atm / lot / SESSION_SECONDS * spec.volume_scale * near_expiry
                * volume_shape(otm_all) * activity[:, u:u + 1])
        volume, oi = chain.book.advance(self._rng, dt, rate)

        # every strike any step publishes, priced at every step; each step shows its own range
        first = int(np.rint((low.min() - chain.first_strike) / step))
        count = int(np.rint((high.max() - low.min()) / step)) + 1
        strike_index = np.broadcast_to(first + np.arange(count), (len(moments), count))
        K = chain.first_strike + step * strike_index
        shown = (low[:, None] - step / 2 <= K) & (high[:, None] + step / 2 >= K)
        r = self.risk_free_rate
        forward = S * np.exp(r * T)
        sigma = vol_at(K, forward)
        sigma = np.round(sigma * 100, 4) / 100
        Sb, Tb = np.broadcast_to(S, K.shape), np.broadcast_to(T, K.shape)
        call = np.asarray(pricing.bs_price("c", Sb, K, Tb, r, sigma), dtype=float)
        put = np.asarray(pricing.bs_price("p", Sb, K, Tb, r, sigma), dtype=float)
        call, put, sig_c, sig_p = arbitrage_guard(call, put, sigma, sigma, Sb, K, Tb, r)
        ticks = np.stack([ticks_of(call), ticks_of(put)], axis=-1)
        # rounding to the tick is monotone; this only settles float ties the guard left behind
        ticks[..., 0] = np.minimum.accumulate(ticks[..., 0], axis=1)
        ticks[..., 1] = np.maximum.accumulate(ticks[..., 1], axis=1)
        sig = np.stack([sig_c, sig_p], axis=-1)
        g_c = pricing.greeks("c", Sb, K, Tb, r, sig_c)
        g_p = pricing.greeks("p", Sb, K, Tb, r, sig_p)

        distance = np.abs(K - S) / step
        extra = (OPTION_SPREAD_BASE + OPTION_SPREAD_PER_STRIKE * distance)[..., None] \
            + OPTION_SPREAD_PER_RUPEE * ticks * TICK
        bid, ask = quote_ticks(self._rng, ticks, extra)

        contracts = (2 * strike_index)[..., None] + np.arange(2)
        steps = len(moments)
        rows = contracts.shape[1] * 2

        def flat(a):
            return a.reshape(steps, rows)

        def pair(name, digits):  # "+ 0.0" turns -0.0 into 0.0
            return flat(np.round(np.stack([np.asarray(g_c[name], dtype=float),
                                           np.asarray(g_p[name], dtype=float)], axis=-1), digits)
                        + 0.0)

        at = flat(contracts)
        return [
            chain.book.symbols[at], chain.book.tokens[at],
            flat(price_of(ticks)), flat(np.where(bid >= 1, price_of(bid), 0.0)), flat(price_of(ask)),
            np.take_along_axis(volume, at, axis=1), np.take_along_axis(oi, at, axis=1),
            pair("delta", 4), pair("gamma", 6), pair("theta", 4), pair("vega", 4),
            flat(np.round(sig * 100, 4)), np.repeat(shown, 2, axis=1),
        ]

    # ------------------------------------------------------------ contracts

    def _new_book(self, base: str, symbols: list[str], typical: np.ndarray,
                  weight: np.ndarray) -> Book:
        oi = np.array([self._resume_oi.get(s, -1) for s in symbols], dtype=np.int64)
        volume = np.array([self._resume_volume.get(s, 0) for s in symbols], dtype=np.int64)
        return Book.opened(self._rng, underlying(base).lot_size, symbols,
                           [token_for(s) for s in symbols], typical, weight, oi, volume)

    def _future_book(self, base: str, expiry: date) -> Book:
        key = (base, expiry)
        if key not in self._futures:
            self._futures = {k: v for k, v in self._futures.items() if k[0] != base}
            model = UNDERLYING_MODELS[base]
            book = self._new_book(base, [format_future(base, expiry)], np.array([model.future_oi]),
                                  np.ones(1))
            book.oi_pace = FUTURE_OI_PACE
            self._futures[key] = book
        return self._futures[key]

    @staticmethod
    def _typical_oi(spec: _ChainSpec, strikes: np.ndarray, spot: float, weight: np.ndarray
                    ) -> np.ndarray:
        return chain_typical_oi(UNDERLYING_MODELS[spec.base], strikes, spot,
                                underlying(spec.base).strike_step, spec.oi_scale, weight)

    def _chain_contracts(self, spec: _ChainSpec, strikes: np.ndarray, spot: float) -> Book:
        weight = np.exp(self._rng.normal(-OI_NOISE_SD ** 2 / 2, OI_NOISE_SD, 2 * len(strikes)))
        symbols = [format_option(spec.base, spec.expiry, k, right)
                   for k in strikes for right in ("CE", "PE")]
        return self._new_book(spec.base, symbols, self._typical_oi(spec, strikes, spot, weight),
                              weight)

    def _chain(self, spec: _ChainSpec, spot_path: np.ndarray, lowest: float, highest: float) -> _Chain:
        """The chain of ``spec``, created or widened to cover the strikes ``lowest`` to
        ``highest`` (the published range along ``spot_path``) and a strike beyond."""
        step = float(underlying(spec.base).strike_step)
        low, high = lowest - step, highest + step
        spot = float(spot_path[0])
        key = (spec.base, spec.expiry)
        chain = self._chains.get(key)
        if chain is None:
            live = {(s.base, s.expiry) for s in self._chain_specs(self._last)}
            self._chains = {k: c for k, c in self._chains.items() if k in live}
            first = low - GRID_MARGIN * step
            strikes = first + step * np.arange(round((high - low) / step) + 2 * GRID_MARGIN + 1)
            chain = _Chain(spec.base, spec.expiry, step, first,
                           self._chain_contracts(spec, strikes, spot))
            self._chains[key] = chain
        if low < chain.first_strike:
            first = low - GRID_MARGIN * step
            strikes = first + step * np.arange(round((chain.first_strike - first) / step))
            chain.book.extend(self._chain_contracts(spec, strikes, spot), front=True)
            chain.first_strike = first
        last = chain.strikes[-1]
        if high > last:
            strikes = last + step * np.arange(1, round((high - last) / step) + GRID_MARGIN + 1)
            chain.book.extend(self._chain_contracts(spec, strikes, spot))
        chain.book.typical_oi = self._typical_oi(spec, chain.strikes, spot, chain.book.weight)
        return chain


def _row(symbol, token, ts, ltp, bid, ask, volume, oi) -> dict:
    """An index or futures tick: no Greeks, no iv."""
    return {"symbol": symbol, "token": token, "ts": ts, "ltp": ltp, "bid": bid, "ask": ask,
            "volume": volume, "oi": oi, "delta": None, "gamma": None, "theta": None,
            "vega": None, "iv": None, "source": SOURCE}
