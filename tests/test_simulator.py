"""The market simulator: every invariant a trader (and the rest of the system) relies on.

Most tests look at one simulated session (09:15-15:30 IST at 5 s, a fixed seed), held in
flat numpy columns so the checks run over every row at once.
"""
from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import numpy as np
import pytest

from datacentre.core import pricing
from datacentre.core.errors import ConfigError, SymbolError
from datacentre.core.instruments import (
    UNDERLYINGS,
    atm_strike,
    current_future_expiry,
    option_expiries,
    parse_symbol,
    session_bounds,
    time_to_expiry,
    token_for,
)
from datacentre.core.ticks import TICK_FIELDS, UTC, format_ts
from datacentre.sources import MarketSimulator, Source
from datacentre.sources.market_model import (
    arbitrage_guard,
    option_time,
    reflected_cumsum,
    smile,
)

DAY = date(2026, 1, 7)  # a Wednesday: NIFTY weekly 13 Jan, BANKNIFTY monthly 27 Jan
SEED = 20260107
RATE = 0.065
INDEX = {"NIFTY": "NIFTY 50", "BANKNIFTY": "NIFTY BANK"}


def on_tick(x) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return np.abs(x * 20 - np.rint(x * 20)) < 1e-6


@pytest.fixture(scope="module")
def day():
    """One session as (moments, snapshots) plus flat per-row columns."""
    sim = MarketSimulator(seed=SEED, risk_free_rate=RATE)
    moments, snaps = [], []
    for moment, ticks in sim.session(DAY, 5.0):
        moments.append(moment)
        snaps.append(ticks)
    rows = [(i, r) for i, ticks in enumerate(snaps) for r in ticks]
    step = np.array([i for i, _ in rows])
    insts = {s: parse_symbol(s) for s in {r["symbol"] for _, r in rows}}
    kind = np.array([insts[r["symbol"]].kind for _, r in rows])
    base = np.array([insts[r["symbol"]].underlying for _, r in rows])
    spot = {b: np.array([next(r["ltp"] for r in t if r["symbol"] == INDEX[b]) for t in snaps])
            for b in INDEX}

    def col(name, fill=np.nan):
        return np.array([fill if r[name] is None else r[name] for _, r in rows], dtype=float)

    cols = {name: col(name) for name in ("ltp", "bid", "ask", "volume", "oi", "delta", "gamma",
                                         "theta", "vega", "iv")}
    opt = np.isin(kind, ["CE", "PE"])
    expiry = np.array([insts[r["symbol"]].expiry for _, r in rows], dtype=object)
    strike = np.array([insts[r["symbol"]].strike or np.nan for _, r in rows])
    S = np.select([base == "NIFTY", base == "BANKNIFTY"],
                  [spot["NIFTY"][step], spot["BANKNIFTY"][step]])
    years = {(e, i): time_to_expiry(e, moments[i]) for e in set(expiry) - {None}
             for i in range(len(moments))}
    T = np.array([years[e, i] if e else np.nan for i, e in zip(step, expiry)])
    return dict(moments=moments, snaps=snaps, rows=[r for _, r in rows], step=step, kind=kind,
                base=base, spot=spot, opt=opt, expiry=expiry, strike=strike, S=S, T=T,
                symbol=np.array([r["symbol"] for _, r in rows], dtype=object), **cols)


# ---------------------------------------------------------------- shape of the data

def test_session_covers_the_whole_session_at_the_interval(day):
    start, end = session_bounds(DAY)
    moments = day["moments"]
    assert moments[0] == start and moments[-1] == end
    assert len(moments) == 4501
    assert all(b - a == timedelta(seconds=5) for a, b in zip(moments, moments[1:]))


def test_every_tick_has_exactly_the_14_fields_and_its_snapshot_ts(day):
    for moment, ticks in zip(day["moments"], day["snaps"]):
        ts = format_ts(moment)
        assert len({t["symbol"] for t in ticks}) == len(ticks)
        for t in ticks:
            assert tuple(t) == TICK_FIELDS
            assert t["ts"] == ts and t["source"] == "sim"
            assert t["token"] == token_for(t["symbol"])


def test_contents_of_each_snapshot(day):
    for moment, ticks in zip(day["moments"][::97], day["snaps"][::97]):
        by_kind: dict[tuple, list[float]] = {}
        for t in ticks:
            inst = parse_symbol(t["symbol"])
            by_kind.setdefault((inst.underlying, inst.kind, inst.expiry), []).append(inst.strike)
        fut = current_future_expiry(moment)
        nifty_near, nifty_next = option_expiries("NIFTY", moment, 2)
        bank = option_expiries("BANKNIFTY", moment, 1)[0]
        assert set(by_kind) == {
            ("NIFTY", "INDEX", None), ("BANKNIFTY", "INDEX", None),
            ("NIFTY", "FUT", fut), ("BANKNIFTY", "FUT", fut),
            ("NIFTY", "CE", nifty_near), ("NIFTY", "PE", nifty_near),
            ("NIFTY", "CE", nifty_next), ("NIFTY", "PE", nifty_next),
            ("BANKNIFTY", "CE", bank), ("BANKNIFTY", "PE", bank),
        }
        spot = {b: next(t["ltp"] for t in ticks if t["symbol"] == INDEX[b]) for b in INDEX}
        for (b, kind, expiry), strikes in by_kind.items():
            if kind not in ("CE", "PE"):
                continue
            n = 5 if (b, expiry) == ("NIFTY", nifty_next) else 10
            step = UNDERLYINGS[b].strike_step
            atm = atm_strike(spot[b], step)
            # contiguous, and at least the watch list's ATM +- n (the wings and the session add more)
            assert strikes == [strikes[0] + i * step for i in range(len(strikes))]
            assert strikes[0] <= atm - n * step and strikes[-1] >= atm + n * step
        assert 25_000 < spot["NIFTY"] < 27_000 and 56_500 < spot["BANKNIFTY"] < 61_500


def wings(ticks) -> dict[tuple, tuple[float, float]]:
    """(underlying, expiry) -> (delta of the lowest put, delta of the highest call)."""
    low: dict[tuple, tuple] = {}
    high: dict[tuple, tuple] = {}
    for t in ticks:
        inst = parse_symbol(t["symbol"])
        key = (inst.underlying, inst.expiry)
        if inst.kind == "PE" and (key not in low or inst.strike < low[key][0]):
            low[key] = (inst.strike, t["delta"])
        if inst.kind == "CE" and (key not in high or inst.strike > high[key][0]):
            high[key] = (inst.strike, t["delta"])
    return {key: (low[key][1], high[key][1]) for key in low}


def test_every_expiry_reaches_its_10_delta_strikes_so_25_delta_skew_exists(day):
    """The default window covers the 10-delta put and call of every collected expiry: wide
    for BANKNIFTY's month, narrower for NIFTY's weekly; 25-delta skew is always quoted."""
    from datacentre import analytics

    widths = {}
    for moment, ticks in zip(day["moments"][::150], day["snaps"][::150]):
        for (base, expiry), (put_delta, call_delta) in wings(ticks).items():
            assert -0.10 <= put_delta < 0 and 0 < call_delta <= 0.10, (moment, base, expiry)
            chain = analytics.chain_table(ticks, base, expiry)
            skew = analytics.skew_metrics(chain)
            assert math.isfinite(skew.risk_reversal_25d) and math.isfinite(skew.butterfly_25d)
            widths[base] = max(widths.get(base, 0), len(chain))
    # +-10 strikes is +-1.7 % of BANKNIFTY: its month needs far more to reach 10 delta
    assert widths["BANKNIFTY"] > 2 * 10 + 1 + 20


def test_a_strike_published_in_a_session_stays_until_it_ends(day):
    """The window grows with spot and never drops a strike, so totals over a snapshot move
    only with open interest; ATM is always inside it."""
    near = option_expiries("NIFTY", DAY, 1)[0]
    windows = [sorted(parse_symbol(t["symbol"]).strike for t in ticks
                      if parse_symbol(t["symbol"]).kind == "CE"
                      and parse_symbol(t["symbol"]).expiry == near) for ticks in day["snaps"]]
    assert all(set(a) <= set(b) for a, b in zip(windows, windows[1:]))
    assert len(windows[-1]) > len(windows[0])  # it grew as spot moved
    for w, s in zip(windows, day["spot"]["NIFTY"]):
        assert w[0] < atm_strike(s, 50) < w[-1]


def test_after_the_session_the_window_starts_afresh_and_a_restart_keeps_it():
    sim = MarketSimulator(seed=4)
    close = datetime(2026, 1, 7, 10, 0, tzinfo=UTC)  # 15:30 IST
    ticks = [sim.snapshot(close - timedelta(minutes=60 - m)) for m in range(0, 61, 5)]
    in_session = {t["symbol"] for t in ticks[-1]}
    after = {t["symbol"] for t in sim.snapshot(close + timedelta(minutes=1))}
    assert after < in_session or after != in_session  # the stretch after hours has its own window
    # a collector restarted mid-session resumes with every strike the session published
    resumed = MarketSimulator(seed=5, resume_from=ticks[-2])
    again = {t["symbol"] for t in resumed.snapshot(close - timedelta(seconds=1))}
    assert {t["symbol"] for t in ticks[-2]} <= again


def test_field_types_and_nulls_by_kind(day):
    for t in day["rows"][::7]:
        kind = parse_symbol(t["symbol"]).kind
        assert isinstance(t["ltp"], float) and t["ltp"] > 0
        assert type(t["volume"]) is int
        if kind == "INDEX":
            assert t["volume"] == 0
            assert all(t[f] is None for f in ("oi", "bid", "ask", "delta", "gamma", "theta",
                                              "vega", "iv"))
            assert round(t["ltp"], 2) == t["ltp"]
            continue
        assert type(t["oi"]) is int and t["oi"] >= 0
        assert isinstance(t["ask"], float) and (t["bid"] is None or isinstance(t["bid"], float))
        greeks = [t[f] for f in ("delta", "gamma", "theta", "vega", "iv")]
        if kind == "FUT":
            assert greeks == [None] * 5
        else:
            assert all(isinstance(g, float) for g in greeks)


def test_rounding_of_prices_greeks_and_iv(day):
    fo = day["kind"] != "INDEX"
    assert on_tick(day["ltp"][fo]).all() and on_tick(day["ask"][fo]).all()
    bid = day["bid"][fo]
    assert on_tick(bid[~np.isnan(bid)]).all()
    opt = day["opt"]
    for name, digits in (("delta", 4), ("gamma", 6), ("theta", 4), ("vega", 4), ("iv", 4)):
        x = day[name][opt]
        assert np.allclose(x, np.round(x, digits), rtol=0, atol=1e-12), name


# ---------------------------------------------------------------- spot and futures

def test_spot_has_realistic_volatility_and_correlation(day):
    r = {b: np.diff(np.log(s)) for b, s in day["spot"].items()}
    annual = math.sqrt(252 * 4500)  # 5 s returns, 252 sessions of 6 h 15 min
    for b, ret in r.items():
        assert 0.09 < ret.std() * annual < 0.21, b
        assert np.abs(ret).max() < 0.01  # no crash in 5 seconds
    corr = np.corrcoef(r["NIFTY"], r["BANKNIFTY"])[0, 1]
    assert 0.65 < corr < 0.92


def test_futures_price_is_spot_carried_at_the_rate(day):
    fut = day["kind"] == "FUT"
    fair = day["S"][fut] * np.exp(RATE * day["T"][fut])
    assert np.all(np.abs(day["ltp"][fut] / fair - 1) < 8e-4)
    carry = day["T"][fut] > 2 / 365  # on expiry day the future converges to spot
    assert np.all(day["ltp"][fut][carry] > day["S"][fut][carry])
    spread = day["ask"][fut] - day["bid"][fut]
    assert np.all(spread > 0) and np.all(spread < 2.0)


# ---------------------------------------------------------------- options

def test_ltp_is_the_black_scholes_price_at_the_stored_iv(day):
    o = day["opt"]
    flag = np.where(day["kind"][o] == "CE", "c", "p")
    price = np.empty(o.sum())
    for f in ("c", "p"):
        m = flag == f
        price[m] = pricing.bs_price(f, day["S"][o][m], day["strike"][o][m], day["T"][o][m], RATE,
                                    day["iv"][o][m] / 100)
    ltp = day["ltp"][o]
    floor = (ltp == 0.05) & (price < 0.075)
    assert np.all(floor | (np.abs(ltp - price) <= 0.025 + 1e-6))


def test_greeks_are_those_of_the_stored_iv(day):
    o = day["opt"]
    for f, kind in (("c", "CE"), ("p", "PE")):
        m = o & (day["kind"] == kind)
        g = pricing.greeks(f, day["S"][m], day["strike"][m], day["T"][m], RATE, day["iv"][m] / 100)
        for name, tol in (("delta", 5e-5), ("gamma", 5e-7), ("theta", 5e-5), ("vega", 5e-5)):
            assert np.allclose(day[name][m], np.asarray(g[name], dtype=float), rtol=0,
                               atol=tol + 1e-9), name
    assert np.all(day["delta"][o & (day["kind"] == "CE")] >= 0)
    assert np.all(day["delta"][o & (day["kind"] == "PE")] <= 0)
    assert np.all(day["gamma"][o] >= 0) and np.all(day["vega"][o] >= 0)
    assert np.all(day["theta"][o & (day["kind"] == "CE")] <= 0)


def test_quotes_straddle_ltp_and_cheap_strikes_are_relatively_wide(day):
    fo = day["kind"] != "INDEX"
    ltp, bid, ask = day["ltp"][fo], day["bid"][fo], day["ask"][fo]
    has_bid = ~np.isnan(bid)
    assert np.all(bid[has_bid] >= 0.05 - 1e-9) and np.all(bid[has_bid] <= ltp[has_bid] + 1e-9)
    assert np.all(ask >= ltp - 1e-9)
    assert has_bid[ltp >= 1].mean() > 0.98
    o = day["opt"]
    rel = (day["ask"][o] - np.nan_to_num(day["bid"][o], nan=0.0)) / day["ltp"][o]
    cheap, dear = day["ltp"][o] < 30, day["ltp"][o] > 150
    assert cheap.any() and dear.any()
    assert np.median(rel[cheap]) > 3 * np.median(rel[dear])


def test_no_arbitrage_across_strikes(day):
    for ticks in day["snaps"]:
        chains: dict[tuple, list[tuple[float, float]]] = {}
        for t in ticks:
            inst = parse_symbol(t["symbol"])
            if inst.is_option:
                chains.setdefault((inst.underlying, inst.expiry, inst.kind), []).append(
                    (inst.strike, t["ltp"]))
        for (_, _, kind), pts in chains.items():
            prices = np.array([p for _, p in sorted(pts)])
            if kind == "CE":
                assert np.all(np.diff(prices) <= 1e-9)
            else:
                assert np.all(np.diff(prices) >= -1e-9)


def _atm_iv(day, base, expiry):
    out = []
    for i, ticks in enumerate(day["snaps"]):
        atm = atm_strike(day["spot"][base][i], UNDERLYINGS[base].strike_step)
        out.append(next(t["iv"] for t in ticks if parse_symbol(t["symbol"]).kind == "CE"
                        and parse_symbol(t["symbol"]).expiry == expiry
                        and parse_symbol(t["symbol"]).strike == atm))
    return np.array(out)


def test_iv_surface_levels_drift_and_term_structure(day):
    near, nxt = option_expiries("NIFTY", DAY, 2)
    bank = option_expiries("BANKNIFTY", DAY, 1)[0]
    nifty, nifty_next = _atm_iv(day, "NIFTY", near), _atm_iv(day, "NIFTY", nxt)
    banknifty = _atm_iv(day, "BANKNIFTY", bank)
    assert np.all((nifty >= 9.5) & (nifty <= 16.5))
    assert np.all((banknifty >= 11.5) & (banknifty <= 18.5))
    for series in (nifty, banknifty):
        assert series.std() > 0.1  # it drifts through the day ...
        assert np.abs(np.diff(series)).max() < 1.0  # ... smoothly
    assert np.mean(nifty_next > nifty) > 0.9  # term structure: the later expiry is richer


def test_iv_has_put_skew_and_smile(day):
    for ticks in day["snaps"][::50]:
        chains: dict[tuple, list[tuple[float, float]]] = {}
        for t in ticks:
            inst = parse_symbol(t["symbol"])
            if inst.kind == "CE":
                chains.setdefault((inst.underlying, inst.expiry), []).append((inst.strike, t["iv"]))
        for pts in chains.values():
            iv = np.array([v for _, v in sorted(pts)])
            mid = len(iv) // 2
            assert iv[0] > iv[mid] + 0.2  # downside puts are richer
            assert iv.argmin() > mid  # the smile bottoms above spot ...
            assert np.all(np.diff(iv, 2) > -1e-3)  # ... and is convex


def test_guard_repairs_a_smile_too_steep_for_no_arbitrage():
    S, T = 26_000.0, 2 / 365
    K = np.arange(25_000.0, 27_050.0, 50.0)
    sigma = np.where(K > 26_300, 0.10 + (K - 26_300) / 100 * 0.30, 0.12)  # absurd call wing
    call = np.asarray(pricing.bs_price("c", S, K, T, RATE, sigma))
    put = np.asarray(pricing.bs_price("p", S, K, T, RATE, sigma))
    assert np.any(np.diff(call) > 0)
    c, p, sc, sp = arbitrage_guard(call, put, sigma, sigma, S, K, T, RATE)
    assert np.all(np.diff(c) <= 1e-3) and np.all(np.diff(p) >= -1e-3)  # up to the iv rounding
    assert np.allclose(c, pricing.bs_price("c", S, K, T, RATE, sc), atol=1e-9)
    assert np.allclose(np.round(sc * 100, 4), sc * 100)


def test_smile_is_bounded():
    iv = smile(np.array([1.0, 20_000.0, 26_000.0, 40_000.0]), 26_000.0, 1e-6, 0.12, -0.12, 0.3)
    assert np.all((iv >= 0.05) & (iv <= 0.60))


# ---------------------------------------------------------------- volume and open interest

def _by_symbol(day, name):
    out: dict[str, list[float]] = {}
    for sym, v in zip(day["symbol"], day[name]):
        out.setdefault(sym, []).append(v)
    return {s: np.array(v) for s, v in out.items()}


def test_volume_is_cumulative_in_lots_and_heaviest_at_atm(day):
    first = day["snaps"][0]
    assert all(t["volume"] == 0 for t in first)
    lots = {s: parse_symbol(s).lot_size for s in set(day["symbol"])}
    for sym, vol in _by_symbol(day, "volume").items():
        assert np.all(np.diff(vol) >= 0), sym
        if lots[sym]:
            assert np.all(vol % lots[sym] == 0), sym
    # volume traded per step, by distance from the spot of that step
    o = day["opt"] & (day["base"] == "NIFTY")
    order = np.lexsort((day["step"][o], day["symbol"][o]))
    sym, vol = day["symbol"][o][order], day["volume"][o][order]
    traded = np.where(sym[1:] == sym[:-1], np.diff(vol), np.nan)
    distance = (np.abs(day["strike"][o] - day["S"][o]) / 50)[order][1:]
    atm, far = np.nanmean(traded[distance < 1]), np.nanmean(traded[distance > 8])
    assert atm > 4 * far
    last = day["snaps"][-1]
    near = option_expiries("NIFTY", DAY, 1)[0]
    day_volume = [t["volume"] for t in last if parse_symbol(t["symbol"]).expiry == near]
    assert 5e6 < max(day_volume) < 5e8
    fut = next(t for t in last if parse_symbol(t["symbol"]).kind == "FUT")
    assert fut["volume"] > 0


def test_open_interest_moves_in_lot_episodes_and_never_below_zero(day):
    changes = []
    for sym, oi in _by_symbol(day, "oi").items():
        inst = parse_symbol(sym)
        if inst.kind == "INDEX":
            assert np.all(np.isnan(oi))
            continue
        assert np.all(oi >= 0)
        d = np.diff(oi)
        assert np.all(d % inst.lot_size == 0), sym
        if inst.is_option and len(oi) > 1000:
            changes.append(np.sign(oi[-1] - oi[0]))
    # episodes of build-up and unwinding: both happen across the chain
    assert changes.count(1) > 5 and changes.count(-1) > 5


def test_oi_change_never_exceeds_traded_volume(day):
    vol, oi = _by_symbol(day, "volume"), _by_symbol(day, "oi")
    for sym in vol:
        if parse_symbol(sym).kind != "INDEX":
            assert np.all(np.abs(np.diff(oi[sym])) <= np.diff(vol[sym])), sym


def test_open_interest_magnitudes(day):
    first = day["snaps"][0]
    near = option_expiries("NIFTY", DAY, 1)[0]
    spot = day["spot"]["NIFTY"][0]
    atm = {t["symbol"]: t["oi"] for t in first
           if parse_symbol(t["symbol"]).expiry == near and parse_symbol(t["symbol"]).is_option
           and abs(parse_symbol(t["symbol"]).strike - spot) <= 100}
    assert 3e6 <= np.median(list(atm.values())) <= 2e7  # 30 lakh to 2 crore units (seeds: 43-68 lakh)


def test_new_strikes_arrive_with_history(day):
    near = option_expiries("NIFTY", DAY, 1)[0]
    windows = [{parse_symbol(t["symbol"]).strike for t in ticks if parse_symbol(t["symbol"]).kind == "CE"
                and parse_symbol(t["symbol"]).expiry == near} for ticks in day["snaps"]]
    # a strike that enters the window arrives with open interest already built
    entered = [b - a for a, b in zip(windows, windows[1:])]
    i = next(i for i, e in enumerate(entered) if e)
    strike = min(entered[i], key=lambda k: abs(k - day["spot"]["NIFTY"][i + 1]))
    tick = next(t for t in day["snaps"][i + 1] if parse_symbol(t["symbol"]).strike == strike
                and parse_symbol(t["symbol"]).expiry == near)
    assert tick["oi"] > 0


# ---------------------------------------------------------------- live use

def test_source_protocol():
    sim = MarketSimulator(seed=1)
    assert isinstance(sim, Source) and sim.name == "sim"


def test_same_seed_same_market_and_none_is_random():
    moments = [datetime(2026, 1, 7, 20, 0, tzinfo=UTC) + timedelta(seconds=5 * i) for i in range(5)]

    def run(seed):
        sim = MarketSimulator(seed=seed)
        return [sim.snapshot(m) for m in moments]

    assert run(42) == run(42)
    assert run(42) != run(43)
    assert run(None) != run(None)
    a, b = MarketSimulator(seed=5), MarketSimulator(seed=5)
    assert list(a.session(DAY, 60.0)) == list(b.session(DAY, 60.0))


def test_snapshot_runs_at_any_hour_and_moves_with_elapsed_time():
    sim = MarketSimulator(seed=3)
    night = datetime(2026, 1, 10, 22, 30, tzinfo=UTC)  # a Saturday night
    ticks = [sim.snapshot(night + timedelta(seconds=s)) for s in (0, 5, 10, 10.5, 3600)]
    sizes = [len(t) for t in ticks]  # the wings' strikes, and never fewer (one stretch after hours)
    assert sizes == sorted(sizes) and sizes[0] > 110
    assert ticks[3][0]["ts"] == "2026-01-10T22:30:10.500+00:00"
    spots = [t[0]["ltp"] for t in ticks]
    assert len(set(spots)) == 5
    volume = [{t["symbol"]: t["volume"] for t in snap} for snap in ticks]
    assert all(volume[i + 1][s] >= volume[i][s] for i in range(4) for s in volume[i]
               if s in volume[i + 1])
    naive = MarketSimulator(seed=3).snapshot(night.replace(tzinfo=None))
    assert naive[0]["ts"] == format_ts(night)


def test_day_volume_resets_at_ist_midnight_but_oi_carries():
    sim = MarketSimulator(seed=4)
    before = datetime(2026, 1, 7, 18, 29, 50, tzinfo=UTC)  # 23:59:50 IST
    sim.snapshot(before - timedelta(seconds=600))
    a = {t["symbol"]: t for t in sim.snapshot(before)}
    b = {t["symbol"]: t for t in sim.snapshot(before + timedelta(seconds=15))}
    fut = next(s for s in a if parse_symbol(s).kind == "FUT")
    assert a[fut]["volume"] > 0
    common = [s for s in a if s in b and parse_symbol(s).kind != "INDEX"]
    busy = sorted(common, key=lambda s: a[s]["volume"])[len(common) // 2:]  # far wings barely trade
    assert all(b[s]["volume"] < a[s]["volume"] for s in busy)
    assert sum(b[s]["volume"] for s in common) < sum(a[s]["volume"] for s in common) / 5
    assert all(abs(b[s]["oi"] - a[s]["oi"]) <= b[s]["volume"] for s in common)


def test_expiry_rolls_over_and_the_next_weekly_keeps_its_history():
    sim = MarketSimulator(seed=6)
    cutoff = datetime(2026, 1, 13, 10, 0, tzinfo=UTC)  # NIFTY weekly expiry, 15:30 IST
    a = {t["symbol"]: t for t in sim.snapshot(cutoff - timedelta(seconds=5))}
    b = {t["symbol"]: t for t in sim.snapshot(cutoff)}

    def expiries(snap):
        return {parse_symbol(s).expiry for s in snap
                if parse_symbol(s).kind == "CE" and parse_symbol(s).underlying == "NIFTY"}

    assert expiries(a) == {date(2026, 1, 13), date(2026, 1, 20)}
    assert expiries(b) == {date(2026, 1, 20), date(2026, 1, 27)}
    common = [s for s in a if s in b and parse_symbol(s).is_option]
    assert len(common) >= 20
    assert all(abs(b[s]["oi"] - a[s]["oi"]) <= b[s]["volume"] - a[s]["volume"] for s in common)


def test_session_close_on_a_monthly_expiry_day_shows_the_next_contracts():
    snaps = list(MarketSimulator(seed=12).session(date(2026, 1, 27), 300.0))
    assert len(snaps) == 76
    (_, before), (close, last) = snaps[-2], snaps[-1]
    assert close == session_bounds(date(2026, 1, 27))[1]

    def contracts(ticks):
        return {(parse_symbol(t["symbol"]).underlying, parse_symbol(t["symbol"]).kind,
                 parse_symbol(t["symbol"]).expiry) for t in ticks
                if parse_symbol(t["symbol"]).kind in ("FUT", "CE")}

    assert contracts(before) == {("NIFTY", "FUT", date(2026, 1, 27)),
                                 ("BANKNIFTY", "FUT", date(2026, 1, 27)),
                                 ("NIFTY", "CE", date(2026, 1, 27)), ("NIFTY", "CE", date(2026, 2, 3)),
                                 ("BANKNIFTY", "CE", date(2026, 1, 27))}
    assert contracts(last) == {("NIFTY", "FUT", date(2026, 2, 24)),
                               ("BANKNIFTY", "FUT", date(2026, 2, 24)),
                               ("NIFTY", "CE", date(2026, 2, 3)), ("NIFTY", "CE", date(2026, 2, 10)),
                               ("BANKNIFTY", "CE", date(2026, 2, 24))}
    a, b = ({t["symbol"]: t for t in ticks} for ticks in (before, last))
    common = [s for s in a if s in b and parse_symbol(s).is_option]
    assert len(common) >= 10
    assert all(abs(b[s]["oi"] - a[s]["oi"]) <= b[s]["volume"] - a[s]["volume"] for s in common)


def test_resume_continues_where_the_store_left_off():
    a = MarketSimulator(seed=8)
    start = datetime(2026, 1, 7, 5, 0, tzinfo=UTC)
    for s in range(0, 60, 5):
        last = a.snapshot(start + timedelta(seconds=s))
    junk = [{"symbol": "NOT A SYMBOL", "ts": last[0]["ts"]}, {"ltp": 1.0}, {"symbol": "NIFTY 50"},
            {**last[0], "ltp": None, "ts": "2025-01-01T00:00:00+00:00"}, "garbage"]
    b = MarketSimulator(seed=9, resume_from=last + junk)
    first = {t["symbol"]: t for t in b.snapshot(start + timedelta(seconds=60))}
    before = {t["symbol"]: t for t in last}
    for index in ("NIFTY 50", "NIFTY BANK"):
        assert first[index]["ltp"] == before[index]["ltp"]
    common = [s for s in before if s in first and parse_symbol(s).kind != "INDEX"]
    assert len(common) == len(before) - 2
    for s in common:
        assert first[s]["oi"] == before[s]["oi"] and first[s]["volume"] == before[s]["volume"]
    atm = next(t for t in last if parse_symbol(t["symbol"]).kind == "CE"
               and parse_symbol(t["symbol"]).strike == atm_strike(before["NIFTY 50"]["ltp"], 50)
               and parse_symbol(t["symbol"]).expiry == date(2026, 1, 13))
    assert abs(first[atm["symbol"]]["iv"] - atm["iv"]) < 0.5
    then = {t["symbol"]: t for t in b.snapshot(start + timedelta(seconds=65))}
    assert all(then[s]["volume"] >= first[s]["volume"] for s in common if s in then)

    next_day = MarketSimulator(seed=9, resume_from=last).snapshot(start + timedelta(days=1))
    carried = {t["symbol"]: t for t in next_day}
    assert all(carried[s]["volume"] == 0 and carried[s]["oi"] == before[s]["oi"]
               for s in common if s in carried)


def test_option_time_never_reaches_zero_while_trading():
    expiry = date(2026, 1, 13)
    assert option_time(expiry, datetime(2026, 1, 13, 10, 0, tzinfo=UTC)) > 0
    moment = datetime(2026, 1, 12, 10, 0, tzinfo=UTC)
    assert option_time(expiry, moment) == time_to_expiry(expiry, moment)


def test_reflected_cumsum_matches_the_recursion():
    rng = np.random.default_rng(0)
    steps = rng.integers(-5, 4, size=(200, 3))
    start = np.array([0, 3, 10])
    got = reflected_cumsum(start, steps)
    x = start.copy()
    for t in range(len(steps)):
        x = np.maximum(x + steps[t], 0)
        assert np.array_equal(got[t], x)


def test_constructor_validates():
    with pytest.raises(ConfigError):
        MarketSimulator(atm_window=0)
    with pytest.raises(SymbolError):
        MarketSimulator(underlyings=("SENSEX",))
    with pytest.raises(ConfigError):
        MarketSimulator().session(DAY, 0.01)
    moment = datetime(2026, 1, 7, 5, 0, tzinfo=UTC)
    with pytest.raises(ConfigError):
        MarketSimulator(wing_delta=0.6)
    # without the wings a snapshot is exactly the watch list's ATM +- N
    assert len(MarketSimulator(seed=1, next_expiry_window=None, wing_delta=None).snapshot(moment)) == 88
    assert len(MarketSimulator(seed=1, next_expiry_window=None).snapshot(moment)) > 88
    only = MarketSimulator(seed=1, underlyings=("BANKNIFTY",), atm_window=3, wing_delta=None)
    ticks = only.snapshot(datetime(2026, 1, 7, 5, 0, tzinfo=UTC))
    assert {parse_symbol(t["symbol"]).underlying for t in ticks} == {"BANKNIFTY"}
    assert len(ticks) == 2 + 2 * 7


def test_backfill_market_of_a_day_does_not_depend_on_sessions_already_stored(tmp_path):
    from datacentre.ops.backfill import backfill
    from datacentre.store.tickstore import TickStore
    days = [date(2026, 1, 5), date(2026, 1, 6)]
    with TickStore(f"sqlite:///{tmp_path / 'a.db'}") as a, TickStore(f"sqlite:///{tmp_path / 'b.db'}") as b:
        backfill(a, days, interval=900, seed=3)
        backfill(b, days[:1], interval=900, seed=3)
        result = backfill(b, days, interval=900, seed=3)  # the first day is stored already
        assert result.skipped == days[:1] and result.sessions == days[1:]
        assert [t["ltp"] for t in b.iter_ticks(["NIFTY 50"])] == \
            [t["ltp"] for t in a.iter_ticks(["NIFTY 50"])]
