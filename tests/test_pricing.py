"""Black-Scholes prices, Greeks and implied volatility (datacentre.core.pricing)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from vollib.black_scholes import black_scholes as vollib_price
from vollib.black_scholes.greeks import analytical as vollib_greeks
from vollib.black_scholes.implied_volatility import implied_volatility as vollib_iv

from datacentre.core import pricing
from datacentre.core.errors import ConfigError
from datacentre.core.pricing import bs_price, greeks, implied_vol

CALL_SPELLINGS = ["c", "C", "ce", "CE", "Ce", "call", "CALL", "Call", " CE "]
PUT_SPELLINGS = ["p", "P", "pe", "PE", "pE", "put", "PUT", "Put", "pe\n"]
GREEKS = ("delta", "gamma", "theta", "vega")
# dPrice/dsigma >= VEGA_FLOOR * S: the last bit of a price (~2e-16 * S) then moves sigma < 1e-10.
VEGA_FLOOR = 1e-5


def annual_vega(flag, S, K, T, r, sigma):
    return np.asarray(greeks(flag, S, K, T, r, sigma)["vega"]) * 100.0


def iv_grid():
    """Moneyness 0.7..1.3 x T from one day to a year x sigma 5 %..100 %, flattened."""
    m, T, sigma = np.meshgrid(
        np.linspace(0.7, 1.3, 25), np.geomspace(1 / 365, 1.0, 20), np.linspace(0.05, 1.0, 20), indexing="ij"
    )
    return 100.0 * m.ravel(), T.ravel(), sigma.ravel()


# ---------------------------------------------------------------- prices


@pytest.mark.parametrize("flag, expected", [("c", 4.76), ("p", 0.81)])
def test_hull_textbook_price(flag, expected):
    # Hull, Options, Futures and Other Derivatives, the Black-Scholes-Merton worked example.
    assert bs_price(flag, 42, 40, 0.5, 0.1, 0.2) == pytest.approx(expected, abs=0.005)


@pytest.mark.parametrize(
    "flag, S, K, T, r, sigma, expected",
    [
        ("c", 42.0, 40.0, 0.5, 0.1, 0.2, 4.759422392871532),  # textbook formula, scipy.stats.norm
        ("p", 42.0, 40.0, 0.5, 0.1, 0.2, 0.8085993729000922),
        ("c", 100.0, 90.0, 0.5, 0.01, 0.2, 12.111581435),  # vollib doctest
        ("p", 100.0, 90.0, 0.5, 0.01, 0.2, 1.66270456231),
        ("c", 100.0, 100.0, 0.5, 0.01, 0.2, 5.87602423383),
    ],
)
def test_known_prices(flag, S, K, T, r, sigma, expected):
    assert bs_price(flag, S, K, T, r, sigma) == pytest.approx(expected, rel=1e-10)


def test_prices_match_vollib_on_a_random_sample():
    rng = np.random.default_rng(7)
    n = 300
    S = rng.uniform(50, 150, n)
    K = rng.uniform(40, 160, n)
    T = rng.uniform(1 / 365, 2.0, n)
    r = rng.uniform(-0.01, 0.1, n)
    sigma = rng.uniform(0.05, 1.0, n)
    flags = rng.choice(["c", "p"], n)
    ours = bs_price(flags, S, K, T, r, sigma)
    ref = np.array([vollib_price(*args) for args in zip(flags, S, K, T, r, sigma)])
    assert np.allclose(ours, ref, rtol=1e-12, atol=1e-12 * S)


@pytest.mark.parametrize("T", [1 / 365, 7 / 365, 0.25, 1.0, 5.0])
@pytest.mark.parametrize("r", [0.0, 0.065, -0.01])
def test_put_call_parity(T, r):
    S = 26_000.0
    K = np.linspace(20_000, 32_000, 41)
    sigma = np.linspace(0.08, 0.6, 41)
    call, put = bs_price("c", S, K, T, r, sigma), bs_price("p", S, K, T, r, sigma)
    assert np.allclose(call - put, S - K * np.exp(-r * T), rtol=0, atol=1e-11 * S)


def test_prices_respect_no_arbitrage_bounds():
    S, T, r = 100.0, 0.3, 0.05
    K = np.linspace(50, 150, 101)
    sigma = 0.25
    call, put = bs_price("c", S, K, T, r, sigma), bs_price("p", S, K, T, r, sigma)
    discounted = K * np.exp(-r * T)
    assert np.all(call > np.maximum(S - discounted, 0)) and np.all(call < S)
    assert np.all(put > np.maximum(discounted - S, 0)) and np.all(put < discounted)
    assert np.all(np.diff(call) < 0) and np.all(np.diff(put) > 0)


@pytest.mark.parametrize(
    "flag, S, K, T, r, sigma, expected",
    [
        ("c", 110.0, 100.0, 0.0, 0.05, 0.2, 10.0),  # expiry: intrinsic
        ("p", 90.0, 100.0, 0.0, 0.05, 0.2, 10.0),
        ("c", 90.0, 100.0, 0.0, 0.05, 0.2, 0.0),
        ("c", 110.0, 100.0, 1.0, 0.05, 0.0, 110.0 - 100.0 * math.exp(-0.05)),  # zero vol: discounted
        ("p", 110.0, 100.0, 1.0, 0.05, 0.0, 0.0),
        ("p", 90.0, 100.0, 1.0, 0.05, 0.0, 100.0 * math.exp(-0.05) - 90.0),
        ("c", 100.0, 100.0, 0.0, 0.0, 0.0, 0.0),  # at the money, 0/0 inside d1
    ],
)
def test_degenerate_prices_are_intrinsic(flag, S, K, T, r, sigma, expected):
    assert bs_price(flag, S, K, T, r, sigma) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("T, sigma", [(-0.1, 0.2), (0.5, -0.2), (math.nan, 0.2), (0.5, math.nan)])
def test_invalid_price_inputs_give_nan(T, sigma):
    assert math.isnan(bs_price("c", 100.0, 100.0, T, 0.05, sigma))


def test_deep_otm_price_keeps_relative_precision():
    # Far out of the money the price is tiny but must still be accurate relative to itself.
    price = bs_price("c", 100.0, 200.0, 0.1, 0.0, 0.2)
    assert 0 < price < 1e-20
    assert vollib_price("c", 100.0, 200.0, 0.1, 0.0, 0.2) == pytest.approx(price, rel=1e-9)


# ---------------------------------------------------------------- flags and shapes


@pytest.mark.parametrize("flag", CALL_SPELLINGS)
def test_call_spellings(flag):
    assert bs_price(flag, 42, 40, 0.5, 0.1, 0.2) == pytest.approx(4.759422392871532, rel=1e-12)


@pytest.mark.parametrize("flag", PUT_SPELLINGS)
def test_put_spellings(flag):
    assert bs_price(flag, 42, 40, 0.5, 0.1, 0.2) == pytest.approx(0.8085993729000922, rel=1e-12)


@pytest.mark.parametrize(
    "flags",
    [
        ["CE", "pe", "Call", "PUT", "c", "P"],
        np.array(["CE", "pe", "Call", "PUT", "c", "P"]),
        np.array(["CE", "pe", "Call", "PUT", "c", "P"], dtype=object),
        ("CE", "pe", "Call", "PUT", "c", "P"),
    ],
)
def test_mixed_flag_arrays(flags):
    K = np.array([90.0, 95.0, 100.0, 105.0, 110.0, 115.0])
    expected_call = [True, False, True, False, True, False]
    expected = [bs_price("c" if c else "p", 100.0, k, 0.25, 0.05, 0.3) for c, k in zip(expected_call, K)]
    prices = bs_price(flags, 100.0, K, 0.25, 0.05, 0.3)
    assert np.allclose(prices, expected, rtol=1e-14)
    assert np.allclose(implied_vol(prices, flags, 100.0, K, 0.25, 0.05), 0.3, rtol=0, atol=1e-12)
    g = greeks(flags, 100.0, K, 0.25, 0.05, 0.3)
    assert np.all((g["delta"] > 0) == np.array(expected_call))


@pytest.mark.parametrize(
    "flag", ["x", "", "calls", "cp", "long", None, 1, 1.0, b"c", ["c", "bad"], np.array([1, 0]), [True]]
)
def test_invalid_flags_raise_config_error(flag):
    with pytest.raises(ConfigError, match="flag"):
        bs_price(flag, 100.0, 100.0, 0.5, 0.05, 0.2)
    with pytest.raises(ConfigError, match="flag"):
        implied_vol(5.0, flag, 100.0, 100.0, 0.5, 0.05)
    with pytest.raises(ConfigError, match="flag"):
        greeks(flag, 100.0, 100.0, 0.5, 0.05, 0.2)


@pytest.mark.parametrize(
    "flags",
    [np.array("CE"), np.array(["CE", "x", "PE"])[::2], np.array([["c", "P"], ["put", "CALL"]])],
    ids=["0-d", "strided", "2-d"],
)
def test_flag_array_layouts(flags):
    expected_call = np.vectorize(lambda f: f.lower() in ("c", "ce", "call"))(flags)
    call = bs_price("c", 100.0, 100.0, 0.5, 0.05, 0.2)
    put = bs_price("p", 100.0, 100.0, 0.5, 0.05, 0.2)
    prices = bs_price(flags, 100.0, 100.0, 0.5, 0.05, 0.2)
    assert np.shape(prices) == flags.shape
    assert np.array_equal(prices, np.where(expected_call, call, put))


def test_invalid_flag_message_names_the_value():
    with pytest.raises(ConfigError, match="'XE'"):
        bs_price(["CE", "XE", "PE"], 100.0, 100.0, 0.5, 0.05, 0.2)


def test_config_error_is_a_value_error():
    with pytest.raises(ValueError):
        implied_vol(5.0, "straddle", 100.0, 100.0, 0.5, 0.05)


def test_scalar_inputs_give_a_float():
    price = bs_price("c", 100.0, 100.0, 0.5, 0.05, 0.2)
    iv = implied_vol(price, "c", 100.0, 100.0, 0.5, 0.05)
    assert isinstance(price, float) and isinstance(iv, float)
    assert all(isinstance(v, float) for v in greeks("c", 100.0, 100.0, 0.5, 0.05, 0.2).values())


def test_broadcasting():
    S = np.array([[95.0], [100.0], [105.0]])  # (3, 1)
    K = np.array([90.0, 100.0, 110.0, 120.0])  # (4,)
    flags = np.array(["c", "p", "c", "p"])  # (4,)
    sigma = 0.25
    prices = bs_price(flags, S, K, 0.5, 0.05, sigma)
    assert prices.shape == (3, 4)
    for i in range(3):
        for j in range(4):
            expected = bs_price(flags[j], S[i, 0], K[j], 0.5, 0.05, sigma)
            assert prices[i, j] == pytest.approx(expected, rel=1e-14)
    iv = implied_vol(prices, flags, S, K, 0.5, 0.05)
    assert iv.shape == (3, 4)
    assert np.allclose(iv, sigma, rtol=0, atol=1e-12)
    g = greeks(flags, S, K, 0.5, 0.05, sigma)
    assert all(g[name].shape == (3, 4) for name in ("price", *GREEKS))


def test_flag_array_alone_sets_the_shape():
    prices = bs_price(np.array(["c", "p"]), 100.0, 100.0, 0.5, 0.0, 0.2)
    assert prices.shape == (2,)
    assert prices[0] == pytest.approx(prices[1], rel=1e-14)  # r = 0: ATM call == ATM put
    assert implied_vol(prices, ["c", "p"], 100.0, 100.0, 0.5, 0.0).shape == (2,)


def test_empty_arrays():
    assert bs_price([], [], 100.0, 0.5, 0.05, 0.2).shape == (0,)
    assert implied_vol([], [], [], 100.0, 0.5, 0.05).shape == (0,)


# ---------------------------------------------------------------- greeks


def test_hull_textbook_greeks():
    # Hull's running Greeks example: S=49, K=50, r=5 %, sigma=20 %, T=20 weeks.
    g = greeks("c", 49.0, 50.0, 0.3846, 0.05, 0.2)
    assert g["delta"] == pytest.approx(0.522, abs=5e-4)
    assert g["gamma"] == pytest.approx(0.066, abs=5e-4)
    assert g["theta"] * 365 == pytest.approx(-4.31, abs=5e-3)  # per year in the book
    assert g["vega"] * 100 == pytest.approx(12.1, abs=0.05)  # per unit sigma in the book
    assert g["price"] == pytest.approx(2.40, abs=5e-3)


@pytest.mark.parametrize(
    "flag, name, expected",
    [
        ("c", "delta", 0.5216016339715761),
        ("c", "gamma", 0.06554537725247868),
        ("c", "theta", -4.30538996455 / 365),
        ("c", "vega", 0.121052427542),
        ("p", "delta", 0.5216016339715761 - 1),
        ("p", "gamma", 0.06554537725247868),
        ("p", "theta", -1.8530056722 / 365),
        ("p", "vega", 0.121052427542),
    ],
)
def test_known_greeks(flag, name, expected):
    assert greeks(flag, 49.0, 50.0, 0.3846, 0.05, 0.2)[name] == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("flag", ["c", "p"])
@pytest.mark.parametrize("S", [80.0, 100.0, 125.0])
@pytest.mark.parametrize("T", [2 / 365, 0.25, 2.0])
@pytest.mark.parametrize("sigma", [0.1, 0.45])
def test_greeks_match_vollib(flag, S, T, sigma):
    K, r = 100.0, 0.065
    g = greeks(flag, S, K, T, r, sigma)
    for name in GREEKS:
        expected = getattr(vollib_greeks, name)(flag, S, K, T, r, sigma)
        assert g[name] == pytest.approx(expected, rel=1e-9, abs=1e-15), name


@pytest.mark.parametrize("flag", ["c", "p"])
@pytest.mark.parametrize("K", [80.0, 100.0, 120.0])
@pytest.mark.parametrize("T", [10 / 365, 0.5, 3.0])
@pytest.mark.parametrize("sigma", [0.12, 0.6])
def test_greeks_match_finite_differences(flag, K, T, sigma):
    S, r = 100.0, 0.05
    g = greeks(flag, S, K, T, r, sigma)

    def p(**bump):
        args = {"S": S, "T": T, "sigma": sigma} | bump
        return bs_price(flag, args["S"], K, args["T"], r, args["sigma"])

    scale = S * sigma * math.sqrt(T)  # one standard deviation of S at expiry
    h = 1e-4 * scale
    delta = (p(S=S + h) - p(S=S - h)) / (2 * h)
    h = 1e-3 * scale
    gamma = (p(S=S + h) - 2 * p() + p(S=S - h)) / h**2
    day = 1 / 365
    # theta per calendar day: the price change as one day passes (T shrinks by a day)
    theta = (p(T=T - 1e-3 * day) - p(T=T + 1e-3 * day)) / 2e-3
    # vega per vol point: the price change for sigma + 1 %
    vega = (p(sigma=sigma + 1e-5) - p(sigma=sigma - 1e-5)) / 2e-5 / 100
    assert g["delta"] == pytest.approx(delta, rel=1e-6, abs=1e-9)
    assert g["gamma"] == pytest.approx(gamma, rel=1e-4, abs=1e-8)
    assert g["theta"] == pytest.approx(theta, rel=1e-6, abs=1e-9)
    assert g["vega"] == pytest.approx(vega, rel=1e-6, abs=1e-9)


def test_theta_is_per_calendar_day_and_vega_per_vol_point():
    S, K, T, r, sigma = 26_000.0, 26_000.0, 7 / 365, 0.065, 0.12
    g = greeks("c", S, K, T, r, sigma)
    one_day_later = bs_price("c", S, K, T - 1 / 365, r, sigma)
    one_point_up = bs_price("c", S, K, T, r, sigma + 0.01)
    # one day of decay and one vol point, to first order (second-order terms are small here)
    assert g["theta"] == pytest.approx(one_day_later - g["price"], rel=0.05)
    assert g["vega"] == pytest.approx(one_point_up - g["price"], rel=0.01)
    assert -25 < g["theta"] < -5 and 5 < g["vega"] < 25  # rupees per day / per point for NIFTY


def test_greek_signs_and_relations():
    S, T, r = 100.0, 0.5, 0.03
    K = np.linspace(60, 140, 33)
    c, p = greeks("c", S, K, T, r, 0.3), greeks("p", S, K, T, r, 0.3)
    assert np.all((c["delta"] > 0) & (c["delta"] < 1)) and np.all((p["delta"] > -1) & (p["delta"] < 0))
    assert np.allclose(c["delta"] - p["delta"], 1.0, atol=1e-15)
    assert np.allclose(c["gamma"], p["gamma"]) and np.allclose(c["vega"], p["vega"])
    assert np.all(c["gamma"] > 0) and np.all(c["vega"] > 0)
    # parity: theta_c - theta_p = -d/dT (S - K e^{-rT}) / 365 = -r K e^{-rT} / 365
    assert np.allclose(c["theta"] - p["theta"], -r * K * np.exp(-r * T) / 365, rtol=1e-12)


@pytest.mark.parametrize("T, sigma", [(0.0, 0.2), (0.5, 0.0), (-1.0, 0.2)])
def test_greeks_undefined_at_expiry_or_zero_vol(T, sigma):
    g = greeks("c", 110.0, 100.0, T, 0.05, sigma)
    assert all(math.isnan(g[name]) for name in GREEKS)
    if T >= 0:
        assert g["price"] >= 10.0


# ---------------------------------------------------------------- implied volatility


@pytest.mark.parametrize("flag", ["c", "p"])
@pytest.mark.parametrize("r", [0.0, 0.07])
def test_implied_vol_round_trip_on_a_grid(flag, r):
    K, T, sigma = iv_grid()
    S = 100.0
    price = bs_price(flag, S, K, T, r, sigma)
    iv = implied_vol(price, flag, S, K, T, r)
    meaningful = annual_vega(flag, S, K, T, r, sigma) >= VEGA_FLOOR * S
    assert meaningful.mean() > 0.7  # the check below covers most of the grid
    assert np.all(np.isfinite(iv[meaningful]))
    assert np.max(np.abs(iv[meaningful] - sigma[meaningful])) < 1e-10
    # elsewhere the answer is NaN (no time value left in the price) or still close
    rest = ~meaningful & np.isfinite(iv)
    assert np.all(np.abs(iv[rest] - sigma[rest]) < 1e-2)


@pytest.mark.parametrize("flag", ["c", "p"])
def test_deep_in_the_money_goes_through_parity(flag):
    # A deep ITM option is mostly intrinsic value; solving on the OTM twin keeps 1e-10.
    S, T, r, sigma = 100.0, 1.0, 0.05, 0.3
    K = 60.0 if flag == "c" else 160.0
    price = bs_price(flag, S, K, T, r, sigma)
    assert abs(annual_vega(flag, S, K, T, r, sigma)) > VEGA_FLOOR * S
    assert implied_vol(price, flag, S, K, T, r) == pytest.approx(sigma, abs=1e-12)


def test_implied_vol_agrees_with_vollib_on_a_random_sample():
    rng = np.random.default_rng(42)
    n = 400
    S = 26_000.0
    K = S * rng.uniform(0.7, 1.3, n)
    T = rng.uniform(1, 365, n) / 365
    r = 0.065
    sigma = rng.uniform(0.05, 1.0, n)
    flags = rng.choice(["c", "p"], n)
    price = bs_price(flags, S, K, T, r, sigma)
    meaningful = annual_vega(flags, S, K, T, r, sigma) >= VEGA_FLOOR * S
    assert meaningful.sum() > 300
    ours = implied_vol(price, flags, S, K, T, r)
    for i in np.flatnonzero(meaningful):
        ref = vollib_iv(price[i], S, K[i], T[i], r, flags[i])
        assert abs(ours[i] - ref) < 1e-10, (flags[i], K[i], T[i], sigma[i])
        assert abs(ours[i] - sigma[i]) < 1e-10


@pytest.mark.parametrize(
    "flag, K, T, sigma",
    [
        ("c", 26_000.0, 1 / (365 * 24), 0.15),  # one hour to expiry
        ("p", 25_500.0, 1 / 365, 0.08),
        ("c", 27_000.0, 3 / 365, 0.12),  # OTM call a few days out: price ~ 1e-6
        ("c", 26_000.0, 10.0, 0.3),  # long dated
        ("p", 26_000.0, 5.0, 2.5),  # huge vol: price near the upper bound
        ("c", 27_746.0, 1.0, 0.005),  # tiny vol, at the money forward
        ("p", 40_000.0, 0.5, 0.2),  # deep ITM put
    ],
)
def test_implied_vol_extreme_but_solvable(flag, K, T, sigma):
    S, r = 26_000.0, 0.065
    price = bs_price(flag, S, K, T, r, sigma)
    vega = annual_vega(flag, S, K, T, r, sigma)
    tolerance = max(1e-12, 4e-16 * S / vega)  # what the price's last bit allows
    assert implied_vol(price, flag, S, K, T, r) == pytest.approx(sigma, abs=tolerance)


def test_at_the_money_forward_exactly():
    # x = ln(S / (K e^{-rT})) == 0 exactly: the initial guess must avoid 0/0.
    price = bs_price("c", 100.0, 100.0, 0.5, 0.0, 0.25)
    assert implied_vol(price, "c", 100.0, 100.0, 0.5, 0.0) == pytest.approx(0.25, abs=1e-14)


def test_vectorised_equals_scalar():
    rng = np.random.default_rng(3)
    K = rng.uniform(80, 120, 50)
    T = rng.uniform(0.01, 1, 50)
    sigma = rng.uniform(0.1, 0.5, 50)
    flags = rng.choice(["CE", "PE"], 50)
    price = bs_price(flags, 100.0, K, T, 0.05, sigma)
    together = implied_vol(price, flags, 100.0, K, T, 0.05)
    one_by_one = [implied_vol(p, f, 100.0, k, t, 0.05) for p, f, k, t in zip(price, flags, K, T)]
    assert np.array_equal(together, one_by_one)


S0, K0, T0, R0 = 100.0, 100.0, 0.5, 0.05
DISCOUNTED = K0 * math.exp(-R0 * T0)


@pytest.mark.parametrize(
    "price, flag, S, K, T, r",
    [
        (0.0, "c", S0, K0, T0, R0),  # zero price
        (-1.0, "p", S0, K0, T0, R0),  # negative price
        (S0 - DISCOUNTED - 0.01, "c", S0, K0, T0, R0),  # below discounted intrinsic
        (S0 - DISCOUNTED, "c", S0, K0, T0, R0),  # exactly intrinsic: no time value
        (19.0, "c", 120.0, K0, T0, R0),  # below intrinsic (ITM call)
        (DISCOUNTED - 80.0 - 1e-6, "p", 80.0, K0, T0, R0),  # below intrinsic (ITM put)
        (S0, "c", S0, K0, T0, R0),  # at the upper bound S
        (S0 + 5.0, "c", S0, K0, T0, R0),  # above it
        (DISCOUNTED, "p", S0, K0, T0, R0),  # at the upper bound K e^{-rT}
        (DISCOUNTED + 1.0, "p", S0, K0, T0, R0),
        (5.0, "c", S0, K0, 0.0, R0),  # expired
        (5.0, "c", S0, K0, -0.1, R0),
        (math.nan, "c", S0, K0, T0, R0),
        (math.inf, "c", S0, K0, T0, R0),
        (5.0, "c", math.nan, K0, T0, R0),
        (5.0, "c", math.inf, K0, T0, R0),
        (5.0, "p", math.inf, K0, T0, R0),
        (5.0, "c", S0, math.nan, T0, R0),
        (5.0, "c", S0, math.inf, T0, R0),
        (5.0, "p", S0, math.inf, T0, R0),
        (5.0, "c", S0, K0, math.nan, R0),
        (5.0, "c", S0, K0, math.inf, R0),
        (5.0, "p", S0, K0, math.inf, R0),
        (5.0, "c", S0, K0, T0, math.nan),
        (5.0, "c", S0, K0, T0, math.inf),
        (5.0, "c", S0, K0, T0, -math.inf),
        (5.0, "c", 0.0, K0, T0, R0),  # no underlying
        (5.0, "c", -100.0, K0, T0, R0),
        (5.0, "c", S0, 0.0, T0, R0),
        (5.0, "p", S0, -100.0, T0, R0),
    ],
)
def test_no_volatility_fits_gives_nan(price, flag, S, K, T, r):
    assert math.isnan(implied_vol(price, flag, S, K, T, r))


def test_nan_elements_do_not_disturb_the_others():
    K = np.array([100.0, 100.0, 100.0, 110.0, 90.0])
    T = np.array([0.5, 0.0, 0.5, 0.5, 0.5])
    good = bs_price("p", 100.0, K, T, 0.05, 0.2)
    price = good.copy()
    price[2] = 0.0
    price[4] = -1.0
    iv = implied_vol(price, "p", 100.0, K, T, 0.05)
    assert np.isnan(iv[[1, 2, 4]]).all()
    assert iv[[0, 3]] == pytest.approx([0.2, 0.2], abs=1e-12)


def test_large_arrays_keep_shape_and_order():
    # 21,000 options: solved in several blocks internally; results must land in place.
    rng = np.random.default_rng(11)
    shape = (3, 7000)
    K = rng.uniform(24_000, 28_000, shape)
    T = rng.uniform(1, 60, shape) / 365
    sigma = rng.uniform(0.08, 0.4, shape)
    flags = rng.choice(["CE", "PE"], shape[1])  # broadcast along the rows
    price = bs_price(flags, 26_000.0, K, T, 0.065, sigma)
    invalid = rng.random(shape) < 0.01
    price[invalid] = -1.0
    iv = implied_vol(price, flags, 26_000.0, K, T, 0.065)
    assert iv.shape == shape
    assert np.isnan(iv[invalid]).all()
    vega = annual_vega(flags, 26_000.0, K, T, 0.065, sigma)
    check = ~invalid & (vega >= VEGA_FLOOR * 26_000.0)
    assert check.mean() > 0.9
    assert np.max(np.abs(iv[check] - sigma[check])) < 1e-10  # also fails on NaN


def test_implied_vol_is_monotone_in_price():
    S, K, T, r = 26_000.0, 26_500.0, 14 / 365, 0.065
    price = np.linspace(1.0, 500.0, 200)
    iv = implied_vol(price, "CE", S, K, T, r)
    assert np.all(np.isfinite(iv)) and np.all(np.diff(iv) > 0)
    assert np.allclose(bs_price("CE", S, K, T, r, iv), price, rtol=1e-12)


@pytest.mark.parametrize("relative_error", [3e-2, 1e-2, 1e-3])
@pytest.mark.parametrize("side", [1, -1])
def test_householder_step_is_fourth_order(relative_error, side):
    # One step from a relative error e must leave ~e**4: that is why one step usually suffices.
    x = np.array([-0.3, -0.05, -0.01, 0.0, -0.5, -0.08])
    s = np.array([0.1, 0.05, 0.2, 0.3, 1.0, 0.01])
    start = s * (1 + side * relative_error)
    step, below = pricing._householder_step(x, pricing._normalised_otm_black(x, s), start)
    assert np.array_equal(below, np.full(x.size, side < 0))
    assert np.all(np.abs((start + step) / s - 1) < relative_error**4 + 1e-14)


@pytest.mark.parametrize(
    "s_low, s_high, x_max, bound",
    [
        (1e-3, 0.2, 0.1, 5e-7),  # NIFTY-like: one Householder step is plenty
        (1e-3, 0.2, 0.5, 1e-5),
        (0.2, 1.0, 0.5, 1e-3),
        (1.0, 2.5, 0.5, 0.1),
        (3.0, 8.0, 0.5, 0.05),  # the large-s asymptotic
    ],
)
def test_initial_guess_quality(s_low, s_high, x_max, bound):
    x, s = (a.ravel() for a in np.meshgrid(-np.linspace(0, x_max, 40), np.geomspace(s_low, s_high, 40)))
    beta = pricing._normalised_otm_black(x, s)
    keep = beta > 1e-300  # representable prices only
    guess = pricing._initial_guess(x[keep], beta[keep])
    assert np.max(np.abs(guess / s[keep] - 1)) < bound


@pytest.mark.parametrize("factor", [1e-3, 0.3, 4.0, 100.0])
def test_solver_survives_a_bad_initial_guess(monkeypatch, factor):
    # The bracket and the bisection / doubling fallback must rescue any positive start.
    x = np.array([-0.3, -0.05, 0.0, -1.0, -0.01, -0.2])
    s = np.array([0.1, 0.05, 0.3, 2.0, 0.004, 0.03])
    beta = pricing._normalised_otm_black(x, s)
    monkeypatch.setattr(pricing, "_initial_guess", lambda x_, beta_: s * factor)
    assert np.allclose(pricing._normalised_implied_vol(x, beta), s, rtol=1e-12, atol=0)
