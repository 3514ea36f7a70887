"""IV and Greeks on each expiry's forward (core.forward)."""
from __future__ import annotations

import math
from datetime import UTC, date, datetime

import numpy as np
import pytest

from datacentre.core import pricing
from datacentre.core.errors import ConfigError
from datacentre.core.forward import (
    NSE,
    NSE_RATE,
    chain_greeks,
    expiry_forward,
    parity_forward,
    quote_price,
    snapshot_greeks,
)
from datacentre.core.instruments import format_future, format_option, time_to_expiry

SPOT, R, T, VOL = 17000.0, 0.065, 30 / 365, 0.18
CARRY = 0.024  # the market's: below r, as on real NSE days
FORWARD = SPOT * math.exp(CARRY * T)
STRIKES = np.arange(16500.0, 17550.0, 50.0)


def market_prices(flag: str, vol=VOL) -> np.ndarray:
    """Black-76 prices on FORWARD (what a market with carry CARRY quotes)."""
    return np.asarray(pricing.bs_price(flag, FORWARD * math.exp(-R * T), STRIKES, T, R, vol))


def test_quote_price_prefers_a_two_sided_mid():
    assert quote_price(10.0, 9.0, 9.5) == 9.25
    assert quote_price(10.0, 0.0, 9.5) == 10.0  # NSE's 0 means no bid
    assert quote_price(10.0, 9.6, 9.5) == 10.0  # a crossed quote is not a quote
    assert quote_price(0.0) is None and quote_price(None, None, None) is None


def test_parity_forward_recovers_the_markets_forward():
    value = parity_forward(STRIKES, market_prices("c"), market_prices("p"), T, R, reference=SPOT)
    assert value == pytest.approx(FORWARD, abs=1e-6)


def test_parity_forward_survives_a_stale_last_price():
    calls = market_prices("c")
    calls[int(np.argmin(np.abs(STRIKES - SPOT)))] += 40.0  # one strike last traded long ago
    value = parity_forward(STRIKES, calls, market_prices("p"), T, R, reference=SPOT)
    assert value == pytest.approx(FORWARD, abs=1.0)


def test_expiry_forward_order_future_parity_spot():
    calls, puts = market_prices("c"), market_prices("p")
    assert expiry_forward(STRIKES, calls, puts, T, R, spot=SPOT, future=17100.0).method == "future"
    assert expiry_forward(STRIKES, calls, puts, T, R, spot=SPOT).method == "parity"
    none = [None] * len(STRIKES)
    fallback = expiry_forward(STRIKES, calls, none, T, R, spot=SPOT)
    assert fallback.method == "spot" and fallback.value == pytest.approx(SPOT * math.exp(R * T))
    assert expiry_forward(STRIKES, none, none, T, R) is None
    assert expiry_forward(STRIKES, calls, puts, 0.0, R, spot=SPOT) is None


def test_call_and_put_iv_agree_on_the_forward_not_on_spot():
    rights = ["CE"] * len(STRIKES) + ["PE"] * len(STRIKES)
    strikes = list(STRIKES) * 2
    prices = list(market_prices("c")) + list(market_prices("p"))
    ours, fwd = chain_greeks(rights, strikes, prices, T, R, spot=SPOT)
    assert fwd.method == "parity"
    ivs = np.array([g["iv"] for g in ours])
    assert np.allclose(ivs, VOL * 100, atol=1e-3)
    on_spot = np.asarray(pricing.implied_vol(prices, rights, SPOT, strikes, T, R)) * 100
    n = len(STRIKES)
    assert np.nanmedian(np.abs(on_spot[:n] - on_spot[n:])) > 1.0  # the gap the forward removes


def test_greeks_are_spot_greeks_with_the_forwards_carry():
    rights, strikes = ["CE", "PE"], [17000.0, 17000.0]
    prices = [float(market_prices("c")[STRIKES == 17000][0]), float(market_prices("p")[STRIKES == 17000][0])]
    ours, _ = chain_greeks(rights, strikes, prices, T, R, spot=SPOT, future=FORWARD)
    bump = 0.01
    for right, g in zip(("c", "p"), ours):
        def value(spot, t=T, right=right):
            forward = spot * math.exp(CARRY * t)
            return float(pricing.bs_price(right, forward * math.exp(-R * t), 17000.0, t, R, VOL))
        delta = (value(SPOT + bump) - value(SPOT - bump)) / (2 * bump)
        gamma = (value(SPOT + 1) - 2 * value(SPOT) + value(SPOT - 1))
        theta = value(SPOT, T - 1 / 365) - value(SPOT)
        assert g["delta"] == pytest.approx(delta, abs=1e-4)
        assert g["gamma"] == pytest.approx(gamma, rel=1e-3)
        assert g["theta"] == pytest.approx(theta, rel=2e-2)


def test_nse_convention_is_black_scholes_on_spot_at_ten_percent():
    prices = [float(pricing.bs_price("c", SPOT, 17100.0, T, NSE_RATE, 0.2))]
    ours, fwd = chain_greeks(["CE"], [17100.0], prices, T, R, spot=SPOT, convention=NSE)
    assert ours[0]["iv"] == pytest.approx(20.0, abs=1e-3) and fwd.method == "spot"
    with pytest.raises(ConfigError):
        chain_greeks(["CE"], [17100.0], prices, T, R, spot=SPOT, convention="black")


def test_snapshot_greeks_per_expiry_with_the_same_expiry_future():
    moment = datetime(2026, 1, 2, 6, 0, tzinfo=UTC)
    expiry = date(2026, 1, 27)
    t = time_to_expiry(expiry, moment)
    fut = 26100.0
    present = fut * math.exp(-R * t)
    ticks = [{"symbol": "NIFTY 50", "ltp": 26000.0}, {"symbol": format_future("NIFTY", expiry), "ltp": fut}]
    for k in (25900.0, 26000.0, 26100.0):
        for right in ("CE", "PE"):
            p = round(float(pricing.bs_price(right, present, k, t, R, 0.12)), 2)
            ticks.append({"symbol": format_option("NIFTY", expiry, k, right), "ltp": p, "bid": None,
                          "ask": None, "iv": None})
    ticks.append({"symbol": "NIFTY06JAN2626000CE", "ltp": 55.0, "iv": 9.5})
    out = snapshot_greeks(ticks, moment, R, missing_only=True)
    assert [t["symbol"] for t in out] == [t["symbol"] for t in ticks]
    for tick in out[2:-1]:
        assert tick["iv"] == pytest.approx(12.0, abs=0.05), tick["symbol"]
    assert out[-1]["iv"] == 9.5  # given, kept
    assert ticks[2]["iv"] is None  # the input is not changed


def test_csv_playback_computes_missing_iv_as_of_the_recorded_time(tmp_path):
    import csv

    from datacentre.core.ticks import TICK_FIELDS
    from datacentre.sources.csvfile import CsvFileSource
    recorded = datetime(2026, 1, 2, 6, 0, tzinfo=UTC)
    t = time_to_expiry(date(2026, 1, 6), recorded)
    rows = [{"symbol": "NIFTY 50", "ts": recorded.isoformat(), "ltp": 26000, "volume": 0, "source": "sim"}]
    for k in (25900, 26000, 26100):
        for right in ("CE", "PE"):
            price = round(float(pricing.bs_price(right, 26000, k, t, R, 0.11)), 2)
            rows.append({"symbol": f"NIFTY06JAN26{k}{right}", "ts": recorded.isoformat(), "volume": 10,
                         "ltp": price, "source": "sim"})
    rows[1]["iv"] = 30.0  # the file's own IV is kept
    path = tmp_path / "day.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, TICK_FIELDS)
        writer.writeheader()
        writer.writerows({k: r.get(k, "") for k in TICK_FIELDS} for r in rows)
    # played back years later: the contracts keep the time to expiry they had when recorded
    snap = {t["symbol"]: t for t in CsvFileSource(path).snapshot(datetime(2030, 1, 1, tzinfo=UTC))}
    assert snap["NIFTY06JAN2625900CE"]["iv"] == 30.0
    for symbol in ("NIFTY06JAN2626000CE", "NIFTY06JAN2626000PE", "NIFTY06JAN2626100PE"):
        assert snap[symbol]["iv"] == pytest.approx(11.0, abs=0.05) and snap[symbol]["delta"] is not None
    assert snap["NIFTY 50"]["iv"] is None and snap["NIFTY 50"]["ts"] == "2030-01-01T00:00:00+00:00"
