"""The day-chart figures of datacentre.analytics.intraday against values worked out by hand."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import make_tick

from datacentre import analytics
from datacentre.analytics import intraday

A, B, C = "2026-01-05T04:00:00+00:00", "2026-01-05T04:01:00+00:00", "2026-01-05T04:02:00+00:00"
LATE = "2026-01-05T05:00:00+00:00"  # an hour later: a pause in the series


def test_upto_keeps_nothing_after_the_moment():
    rows = [{"ts": A}, {"ts": B}, {"ts": C}]
    assert intraday.upto(rows, B) == rows[:2]
    assert intraday.upto(rows, "2026-01-05T04:00:30+00:00") == rows[:1]
    assert intraday.upto(rows, None) == rows
    assert intraday.upto([(A, 1), (C, 2)], B, key=lambda r: r[0]) == [(A, 1)]


def test_with_live_appends_only_newer_rows():
    stored = [{"ts": A, "v": 1}, {"ts": B, "v": 2}]
    live = [{"ts": B, "v": 20}, {"ts": C, "v": 3}]
    assert intraday.with_live(stored, live) == [*stored, {"ts": C, "v": 3}]
    assert intraday.with_live([], live) == live


def test_straddle_frame_adds_call_and_put():
    frame = intraday.straddle_frame([
        {"ts": A, "spot": 26010.0, "strike": 26000.0, "ce": 100.0, "pe": 90.0},
        {"ts": B, "spot": 26030.0, "strike": 26050.0, "ce": 96.0, "pe": None},
        {"ts": LATE, "spot": 26025.0, "strike": 26000.0, "ce": 102.0, "pe": 92.5},
    ])
    real = frame.dropna(subset=["ts"])
    assert list(real["premium"].fillna(-1)) == [190.0, -1, 194.5]
    assert list(real["strike"]) == [26000.0, 26050.0, 26000.0]
    assert str(real["time"].iloc[0]) == "2026-01-05 09:30:00+05:30"
    assert len(frame.attrs["gaps"]) == 1 and len(frame) == 4  # the hour's pause is broken
    empty = intraday.straddle_frame([])
    assert empty.empty and list(empty.columns) == list(intraday.STRADDLE_COLUMNS)


def test_legs_frame_sums_the_legs_where_both_are_priced():
    rows = [{"ts": A, "symbol": "X", "ltp": 10.0}, {"ts": A, "symbol": "Y", "ltp": 5.5},
            {"ts": B, "symbol": "X", "ltp": 11.0},
            {"ts": C, "symbol": "X", "ltp": 12.0}, {"ts": C, "symbol": "Y", "ltp": 4.0},
            {"ts": C, "symbol": "Z", "ltp": 99.0}]
    frame = intraday.legs_frame(rows, ["X", "Y"])
    assert list(frame.columns) == ["ts", "time", "X", "Y", "premium"]
    assert list(frame["ts"]) == [A, B, C]
    assert frame["premium"].tolist()[0] == 15.5 and math.isnan(frame["premium"].tolist()[1])
    assert frame["premium"].tolist()[2] == 16.0
    assert intraday.legs_frame(rows, ["Q"]).empty


def test_breakevens():
    assert intraday.breakevens(26000.0, 190.5) == (25809.5, 26190.5)
    assert intraday.breakevens(None, 190.5) == (None, None)
    assert intraday.breakevens(26000.0, math.nan) == (None, None)


def test_oi_history_changes_from_each_contract_first_oi():
    rows = [{"ts": A, "symbol": "X", "oi": 1000}, {"ts": A, "symbol": "Y", "oi": None},
            {"ts": B, "symbol": "X", "oi": 1500}, {"ts": B, "symbol": "Y", "oi": 700},
            {"ts": C, "symbol": "X", "oi": 900}, {"ts": C, "symbol": "Y", "oi": 800}]
    frame = intraday.oi_history(rows, ["X", "Y"])
    x = frame[frame["symbol"] == "X"]
    y = frame[frame["symbol"] == "Y"]
    assert x["oi_change"].tolist() == [0.0, 500.0, -100.0]
    assert y["ts"].tolist() == [B, C] and y["oi_change"].tolist() == [0.0, 100.0]
    assert intraday.oi_history(rows, ["Z"]).empty


# ------------------------------------------------------------- PCR and max pain

PAIN_ROWS = [
    # A: strikes 100, 110, 120; calls 10/20/30, puts 30/10/0
    (A, "CE", 100.0, 10), (A, "CE", 110.0, 20), (A, "CE", 120.0, 30),
    (A, "PE", 100.0, 30), (A, "PE", 110.0, 10), (A, "PE", 120.0, 0),
    # B: the window moved up, strike 100 is no longer stored
    (B, "CE", 110.0, 20), (B, "CE", 120.0, 40), (B, "PE", 110.0, 50), (B, "PE", 120.0, 10),
    # C: no OI at all
    (C, "CE", 110.0, None), (C, "PE", 110.0, None),
]


def test_pain_and_pcr_by_hand():
    frame = intraday.pain_pcr_frame(PAIN_ROWS).set_index("ts")
    # A: settle at 100 pays puts 10 x 10 = 100; at 110 calls 10 x 10 = 100; at 120 calls 400.
    # A tie between 100 and 110: the lower. PCR 40 / 60.
    assert frame.loc[A, "max_pain"] == 100.0
    assert frame.loc[A, "pcr"] == pytest.approx(40 / 60)
    assert (frame.loc[A, "ce_oi"], frame.loc[A, "pe_oi"], frame.loc[A, "strikes"]) == (60, 40, 3)
    # B: settle at 110 pays puts 10 x 10 = 100, at 120 calls 10 x 20 = 200; 100 is not a candidate.
    assert frame.loc[B, "max_pain"] == 110.0 and frame.loc[B, "pcr"] == 1.0
    assert frame.loc[B, "strikes"] == 2
    assert math.isnan(frame.loc[C, "max_pain"]) and math.isnan(frame.loc[C, "pcr"])
    assert intraday.pain_pcr_frame([]).empty


def chain_ticks(ts: str, spot: float, legs: dict[tuple[int, str], int]) -> list[dict]:
    ticks = [make_tick("NIFTY 50", spot)]
    for (strike, right), oi in legs.items():
        ticks.append(make_tick(f"NIFTY06JAN26{strike}{right}", 50.0 + strike % 300 / 10, oi=oi,
                               gamma=0.0005 + (strike - 25800) / 1e7, iv=12.0))
    return [{**t, "ts": ts} for t in ticks]


@pytest.mark.parametrize("seed", range(5))
def test_each_point_is_the_figure_of_that_snapshot_chain(seed):
    """PCR and max pain through the day agree with oi_summary of each snapshot's chain."""
    rng = np.random.default_rng(seed)
    snapshots = []
    for n, ts in enumerate((A, B, C)):
        strikes = range(25800 + 50 * n, 26300 + 50 * n, 50)
        legs = {(k, r): int(rng.integers(0, 5_000_000)) for k in strikes for r in ("CE", "PE")
                if rng.random() > 0.15}
        snapshots.append(chain_ticks(ts, 26000.0 + 40 * n, legs))
    rows = [row for ticks in snapshots for row in intraday.chain_oi_rows(ticks, "NIFTY", "2026-01-06")]
    frame = intraday.pain_pcr_frame(rows).set_index("ts")
    for ticks in snapshots:
        summary = analytics.oi_summary(analytics.chain_table(ticks, "NIFTY", "2026-01-06"))
        ts = ticks[0]["ts"]
        assert frame.loc[ts, "max_pain"] == summary.max_pain
        assert frame.loc[ts, "pcr"] == pytest.approx(summary.pcr)
        assert frame.loc[ts, "strikes"] == summary.strikes


def test_chain_oi_rows_of_a_live_snapshot():
    ticks = chain_ticks(A, 26000.0, {(26000, "CE"): 10, (26000, "PE"): 20, (26050, "CE"): 30})
    assert sorted(intraday.chain_oi_rows(ticks, "NIFTY", "2026-01-06")) == [
        (A, "CE", 26000.0, 10), (A, "CE", 26050.0, 30), (A, "PE", 26000.0, 20)]


def test_straddle_row_of_a_live_snapshot():
    ticks = chain_ticks(A, 26030.0, {(26000, "CE"): 10, (26050, "CE"): 10, (26050, "PE"): 10})
    [row] = intraday.straddle_row(ticks, "NIFTY", "2026-01-06")
    assert row == {"ts": A, "spot": 26030.0, "strike": 26050.0, "ce": 50.0 + 26050 % 300 / 10,
                   "pe": 50.0 + 26050 % 300 / 10}
    assert intraday.straddle_row([t for t in ticks if t["symbol"] != "NIFTY 50"], "NIFTY", "2026-01-06") == []


def test_contract_rows_of_a_live_snapshot():
    ticks = chain_ticks(A, 26030.0, {(26000, "CE"): 10, (26050, "PE"): 7})
    rows = intraday.contract_rows(ticks, ["NIFTY06JAN2626050PE", "NIFTY 50"])
    assert [(r["symbol"], r["oi"]) for r in rows] == [("NIFTY 50", None), ("NIFTY06JAN2626050PE", 7)]
    assert set(rows[0]) == set(intraday.CONTRACT_FIELDS)


# ------------------------------------------------------------- futures

def test_futures_frame_basis_and_oi_change():
    rows = [{"ts": A, "symbol": "NIFTY 50", "ltp": 26000.0, "oi": None, "volume": 0},
            {"ts": A, "symbol": "F", "ltp": 26130.0, "oi": 1_000_000, "volume": 10},
            {"ts": B, "symbol": "NIFTY 50", "ltp": 26050.0, "oi": None, "volume": 0},
            {"ts": B, "symbol": "F", "ltp": 26150.0, "oi": 1_200_000, "volume": 30},
            {"ts": C, "symbol": "NIFTY 50", "ltp": 26040.0, "oi": None, "volume": 0}]
    frame = intraday.futures_frame(rows, "NIFTY 50", "F")
    assert frame["ts"].tolist() == [A, B]  # C has no future
    assert frame["basis"].tolist() == [130.0, 100.0]
    assert frame["basis_pct"].tolist() == pytest.approx([0.5, 100 / 26050 * 100])
    assert frame["oi_change"].tolist() == [0.0, 200_000.0]
    assert frame["volume"].tolist() == [10.0, 30.0]
    assert intraday.futures_frame(rows[:1], "NIFTY 50", "F").empty


def test_annualised_basis():
    # 130 points on 26,000 with 36.5 days left: 0.5 % x 10 = 5 % a year
    assert intraday.annualised_basis(130.0, 26000.0, 36.5) == pytest.approx(5.0)
    assert math.isnan(intraday.annualised_basis(130.0, 26000.0, 0.0))
    assert math.isnan(intraday.annualised_basis(None, 26000.0, 3.0))


# ------------------------------------------------------------- gamma exposure

def test_gex_by_hand():
    chain = pd.DataFrame({"strike": [110.0, 100.0, 120.0],
                          "ce_gamma": [0.005, 0.01, np.nan], "ce_oi": [2000.0, 1000.0, 50.0],
                          "pe_gamma": [0.001, 0.02, 0.01], "pe_oi": [100.0, 500.0, 300.0]})
    chain.attrs["spot"] = 100.0
    table = intraday.gex_table(chain)
    # S^2 x 1 % = 100: at 100, +0.01 x 1000 x 100 = 1000 and -0.02 x 500 x 100 = -1000
    assert table["strike"].tolist() == [100.0, 110.0, 120.0]
    assert table["call_gex"].tolist() == pytest.approx([1000.0, 1000.0, 0.0])
    assert table["put_gex"].tolist() == pytest.approx([-1000.0, -10.0, -300.0])
    assert table["net_gex"].tolist() == pytest.approx([0.0, 990.0, -300.0])
    summary = intraday.gex_summary(table)
    assert summary.net == pytest.approx(690.0)
    assert (summary.calls, summary.puts) == pytest.approx((2000.0, -1310.0))
    assert (summary.call_wall, summary.put_wall) == (110.0, 120.0)
    assert intraday.gex_table(chain, spot=200.0)["call_gex"].iloc[0] == pytest.approx(4000.0)


def test_gex_without_a_price_or_a_chain():
    chain = pd.DataFrame({"strike": [100.0], "ce_gamma": [0.01], "ce_oi": [1.0], "pe_gamma": [0.0],
                          "pe_oi": [0.0]})
    assert intraday.gex_table(chain).empty
    summary = intraday.gex_summary(intraday.gex_table(chain))
    assert math.isnan(summary.net) and summary.call_wall is None


def test_gex_from_a_stored_chain_uses_its_spot():
    ticks = chain_ticks(A, 26000.0, {(26000, "CE"): 1000, (26000, "PE"): 3000})
    table = intraday.gex_table(analytics.chain_table(ticks, "NIFTY", "2026-01-06"))
    gamma = 0.0005 + 200 / 1e7
    assert table.attrs["spot"] == 26000.0
    assert table["net_gex"].iloc[0] == pytest.approx(gamma * (1000 - 3000) * 26000.0 ** 2 * 0.01)


# ------------------------------------------------------------- IV rank

def test_iv_rank_and_percentile_by_hand():
    result = intraday.iv_rank([10.0, 12.0, 14.0, 16.0, 18.0, math.nan], 15.0)
    assert result.rank == pytest.approx(62.5)  # (15 - 10) / (18 - 10)
    assert result.percentile == pytest.approx(60.0)  # 10, 12 and 14 of 5 sessions were lower
    assert (result.low, result.high, result.sessions, result.current) == (10.0, 18.0, 5, 15.0)
    top = intraday.iv_rank([10.0, 12.0], 20.0)
    assert (top.rank, top.percentile, top.high) == (100.0, 100.0, 20.0)  # a new high
    bottom = intraday.iv_rank([10.0, 12.0], 8.0)
    assert (bottom.rank, bottom.percentile, bottom.low) == (0.0, 0.0, 8.0)


def test_iv_rank_without_an_answer():
    assert math.isnan(intraday.iv_rank([], 15.0).rank)
    flat = intraday.iv_rank([12.0, 12.0], 12.0)
    assert math.isnan(flat.rank) and flat.percentile == 0.0
    unknown = intraday.iv_rank([10.0, 12.0], math.nan)
    assert math.isnan(unknown.rank) and math.isnan(unknown.percentile) and unknown.sessions == 2


def test_atm_iv_history_means_call_and_put():
    rows = [{"day": 1, "ts": A, "spot": 1.0, "expiry": "e", "strike": 1.0, "ce_iv": 14.0, "pe_iv": 15.0},
            {"day": 2, "ts": B, "spot": 1.0, "expiry": "e", "strike": 1.0, "ce_iv": None, "pe_iv": 13.0},
            {"day": 3, "ts": None, "spot": None, "expiry": None, "strike": None, "ce_iv": None,
             "pe_iv": None},
            {"day": 4, "ts": C, "spot": 1.0, "expiry": "e", "strike": 1.0, "ce_iv": None, "pe_iv": None}]
    frame = intraday.atm_iv_history(rows)
    assert frame["day"].tolist() == [1, 2] and frame["atm_iv"].tolist() == [14.5, 13.0]


def test_fixed_straddle_rows_from_contract_rows():
    rows = [{"ts": A, "symbol": "NIFTY 50", "ltp": 26010.0}, {"ts": A, "symbol": "C", "ltp": 100.0},
            {"ts": A, "symbol": "P", "ltp": 90.0}, {"ts": B, "symbol": "NIFTY 50", "ltp": 26020.0},
            {"ts": B, "symbol": "C", "ltp": 104.0}, {"ts": B, "symbol": "X", "ltp": 1.0}]
    assert intraday.fixed_straddle_rows(rows, "NIFTY 50", "C", "P", 26000) == [
        {"ts": A, "spot": 26010.0, "strike": 26000.0, "ce": 100.0, "pe": 90.0},
        {"ts": B, "spot": 26020.0, "strike": 26000.0, "ce": 104.0, "pe": None}]


def test_candle_frame_running_vwap_by_hand():
    candles = [
        {"ts": A, "open": 10.0, "high": 12.0, "low": 9.0, "close": 11.0, "volume": 100, "vwap": 10.5},
        {"ts": B, "open": 11.0, "high": 11.5, "low": 10.0, "close": 10.2, "volume": 0, "vwap": None},
        {"ts": C, "open": 10.2, "high": 14.0, "low": 10.2, "close": 13.0, "volume": 300, "vwap": 13.0},
    ]
    frame = intraday.candle_frame(candles)
    # (10.5 x 100 + 13 x 300) / 400 = 12.375
    assert frame["vwap"].tolist() == pytest.approx([10.5, 10.5, 12.375])
    assert frame["candle_vwap"].isna().tolist() == [False, True, False]
    index = intraday.candle_frame([{**c, "volume": 0, "vwap": None} for c in candles])
    assert index["vwap"].isna().all()
    assert intraday.candle_frame([]).empty


def test_snapshot_gex_sums_the_expiries_by_strike():
    near = chain_ticks(A, 26000.0, {(26000, "CE"): 1000, (26050, "PE"): 500})
    far = [{**t, "symbol": t["symbol"].replace("06JAN26", "13JAN26")}
           for t in near if t["symbol"] != "NIFTY 50"]
    ticks = near + far
    one = intraday.gex_table(analytics.chain_table(ticks, "NIFTY", "2026-01-06"))
    both = intraday.snapshot_gex(ticks, "NIFTY", analytics.expiries(ticks, "NIFTY"))
    assert both["strike"].tolist() == [26000.0, 26050.0]
    assert both["net_gex"].tolist() == pytest.approx((2 * one["net_gex"]).tolist())
    assert both.attrs["spot"] == 26000.0
    assert intraday.snapshot_gex(ticks, "NIFTY", []).empty


def test_atm_iv_after_skips_the_day_own_expiry():
    ticks = chain_ticks(A, 26000.0, {(26000, "CE"): 1, (26000, "PE"): 1})
    later = [{**t, "symbol": t["symbol"].replace("06JAN26", "13JAN26"), "iv": 15.0}
             for t in ticks if t["symbol"] != "NIFTY 50"]
    from datetime import date
    iv, expiry = intraday.atm_iv_after(ticks + later, "NIFTY", date(2026, 1, 6))
    assert (iv, expiry) == (15.0, date(2026, 1, 13))
    iv, expiry = intraday.atm_iv_after(ticks + later, "NIFTY", date(2026, 1, 5))
    assert (iv, expiry) == (12.0, date(2026, 1, 6))
    assert math.isnan(intraday.atm_iv_after(ticks, "NIFTY", date(2026, 1, 6))[0])
