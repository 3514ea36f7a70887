"""The intraday chart queries of the store, on SQLite and PostgreSQL, against a hand-made
store whose answers are worked out below by hand."""
from __future__ import annotations

from datetime import date

import pytest
from conftest import make_tick

from datacentre.core.errors import StoreError
from datacentre.store.intraday import MAX_CONTRACTS

DAY = date(2026, 1, 5)  # a Monday; the weekly expiry is Tuesday 6 Jan, the next 13 Jan
T1, T2, T3 = "2026-01-05T04:00:00+00:00", "2026-01-05T04:01:00+00:00", "2026-01-05T04:02:00+00:00"
EXPIRY_DAY = "2026-01-06T09:00:00+00:00"  # 14:30 IST on expiry day
AFTER_HOURS = "2026-01-05T12:00:00+00:00"  # 17:30 IST: not in the session
SPOTS = {T1: 26010.0, T2: 26030.0, T3: 26025.0}  # ATM 26,000; 26,050; 26,000 (halfway: the lower)


def option(strike: int, right: str, ltp: float, oi: int, iv: float, expiry: str = "06JAN26") -> dict:
    return make_tick(f"NIFTY{expiry}{strike}{right}", ltp, oi=oi, iv=iv, gamma=0.001, volume=1000)


def snapshot(ts: str, n: int) -> list[dict]:
    """Strikes 25,950-26,100 of the 6 Jan expiry; prices and OI move with ``n``."""
    ticks = [make_tick("NIFTY 50", SPOTS.get(ts, 26000.0)),
             make_tick("NIFTY27JAN26FUT", 26100.0 + n, oi=10_000_000 + 1000 * n, volume=500 * n)]
    for strike in (25950, 26000, 26050, 26100):
        ticks.append(option(strike, "CE", 100.0 + n + (26000 - strike) / 10, 1_000 * (strike - 25900) + n,
                            12.0 + n))
        ticks.append(option(strike, "PE", 90.0 + n + (strike - 26000) / 10, 2_000 * (26150 - strike) - n,
                            13.0 + n))
    return ticks


@pytest.fixture
def market(any_store):
    for n, ts in enumerate((T1, T2, T3)):
        any_store.write_snapshot(ts, snapshot(ts, n))
    any_store.write_snapshot(AFTER_HOURS, [make_tick("NIFTY 50", 26200.0)])
    # expiry day: the 6 Jan options still trade, the 13 Jan ones are the next expiry
    any_store.write_snapshot(EXPIRY_DAY, [
        make_tick("NIFTY 50", 26120.0),
        option(26100, "CE", 40.0, 5_000, 20.0), option(26100, "PE", 20.0, 6_000, 21.0),
        option(26100, "CE", 140.0, 7_000, 14.0, "13JAN26"),
        option(26100, "PE", 120.0, 8_000, 15.0, "13JAN26"),
        option(26150, "CE", 110.0, 9_000, 13.5, "13JAN26"),
    ])
    return any_store


def test_contract_series_reads_the_contracts_in_the_range(market):
    rows = market.contract_series(["NIFTY27JAN26FUT", "NIFTY 50"], T2, T3)
    assert [(r["ts"], r["symbol"], r["ltp"]) for r in rows] == [
        (T2, "NIFTY 50", 26030.0), (T2, "NIFTY27JAN26FUT", 26101.0),
        (T3, "NIFTY 50", 26025.0), (T3, "NIFTY27JAN26FUT", 26102.0)]
    assert rows[1]["oi"] == 10_001_000 and rows[1]["volume"] == 500
    option_row = market.contract_series(["NIFTY06JAN2626000CE"], T1, T1)[0]
    assert (option_row["iv"], option_row["gamma"], option_row["oi"]) == (12.0, 0.001, 100_000)
    assert market.contract_series([]) == []
    assert market.contract_series(["NIFTY13JAN2699999CE"]) == []


def test_contract_series_refuses_too_many_contracts(market):
    with pytest.raises(StoreError, match=f"at most {MAX_CONTRACTS}"):
        market.contract_series([f"NIFTY06JAN26{26000 + 50 * i}CE" for i in range(MAX_CONTRACTS + 1)])


def test_straddle_follows_the_strike_nearest_the_spot(market):
    rows = market.straddle_series("NIFTY", date(2026, 1, 6), T1, T3)
    # ce = 100 + n + (26000 - K) / 10, pe = 90 + n + (K - 26000) / 10
    assert rows == [
        {"ts": T1, "spot": 26010.0, "strike": 26000.0, "ce": 100.0, "pe": 90.0},
        {"ts": T2, "spot": 26030.0, "strike": 26050.0, "ce": 96.0, "pe": 96.0},
        {"ts": T3, "spot": 26025.0, "strike": 26000.0, "ce": 102.0, "pe": 92.0},  # halfway: the lower
    ]


def test_straddle_without_the_strike_stored_has_no_prices(market):
    rows = market.straddle_series("NIFTY", "2026-01-06", start_ts=AFTER_HOURS, end_ts=AFTER_HOURS)
    assert rows == [{"ts": AFTER_HOURS, "spot": 26200.0, "strike": 26200.0, "ce": None, "pe": None}]
    assert market.straddle_series("NIFTY", "2030-01-01", T1, T1)[0]["ce"] is None  # no such expiry
    assert market.straddle_series("BANKNIFTY", "2026-01-06") == []


def test_chain_oi_at_the_chosen_snapshots(market):
    rows = sorted(market.chain_oi_series("NIFTY", date(2026, 1, 6), [T1, T3]))
    assert len(rows) == 16  # 4 strikes x 2 kinds x 2 snapshots
    assert rows[:2] == [(T1, "CE", 25950.0, 50_000), (T1, "CE", 26000.0, 100_000)]
    assert (T3, "PE", 26100.0, 99_998) in rows  # 2,000 x (26,150 - 26,100) - 2
    assert market.chain_oi_series("NIFTY", "2026-01-06", []) == []
    # another expiry's options are not in this chain
    assert {r[2] for r in market.chain_oi_series("NIFTY", "2026-01-13", [EXPIRY_DAY])} == {26100.0, 26150.0}


def test_session_atm_iv_takes_each_session_close_and_the_next_expiry(market):
    windows = [(DAY, "2026-01-05T03:45:00+00:00", "2026-01-05T10:00:00+00:00"),
               (date(2026, 1, 6), "2026-01-06T03:45:00+00:00", "2026-01-06T10:00:00+00:00"),
               (date(2026, 1, 2), "2026-01-02T03:45:00+00:00", "2026-01-02T10:00:00+00:00")]
    monday, tuesday, friday = market.session_atm_iv("NIFTY", windows)
    # Monday's close is T3 (the 17:30 IST tick is after hours): spot 26,025 -> ATM 26,000 of 6 Jan
    assert monday == {"day": DAY, "ts": T3, "spot": 26025.0, "expiry": "2026-01-06", "strike": 26000.0,
                      "ce_iv": 14.0, "pe_iv": 15.0}
    # on expiry day the next expiry (13 Jan) is used: its 26,100 call and put
    assert tuesday == {"day": date(2026, 1, 6), "ts": EXPIRY_DAY, "spot": 26120.0, "expiry": "2026-01-13",
                       "strike": 26100.0, "ce_iv": 14.0, "pe_iv": 15.0}
    assert friday["ts"] is None and friday["spot"] is None and friday["strike"] is None
    assert market.session_atm_iv("NIFTY", []) == []


def test_session_atm_iv_of_a_day_up_to_a_moment(market):
    [row] = market.session_atm_iv("NIFTY", [(DAY, "2026-01-04T18:30:00+00:00", T2)])
    assert (row["ts"], row["strike"], row["ce_iv"], row["pe_iv"]) == (T2, 26050.0, 13.0, 14.0)
