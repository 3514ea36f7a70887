"""Analytics on hand-built ticks, the store's series queries, and a simulated full session."""
from __future__ import annotations

import math
from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest

from datacentre import analytics as A
from datacentre.core.instruments import token_for
from datacentre.store.tickstore import TickStore

TS = "2026-01-02T08:13:05+00:00"  # a Friday; NIFTY weeklies expire 06 and 13 Jan
OPEN_TS = "2026-01-02T03:45:00+00:00"


def tick(symbol: str, ltp: float | None, ts: str = TS, **fields) -> dict:
    row = {"symbol": symbol, "token": token_for(symbol), "ts": ts, "ltp": ltp, "bid": None, "ask": None,
           "volume": 0, "oi": None, "delta": None, "gamma": None, "theta": None, "vega": None, "iv": None,
           "source": "sim"}
    row.update(fields)
    return row


def option(symbol: str, ltp: float, oi: int, iv: float | None = None, ts: str = TS, **fields) -> dict:
    return tick(symbol, ltp, ts, oi=oi, iv=iv, volume=fields.pop("volume", 1000), **fields)


@pytest.fixture
def snapshot() -> list[dict]:
    """NIFTY at 26,010 with a 06JAN26 chain of three strikes (26,200 call only), a 13JAN26
    strike, and BANKNIFTY contracts that would collide if symbols were matched by substring."""
    return [
        tick("NIFTY 50", 26010.0),
        tick("NIFTY BANK", 59020.0),
        tick("NIFTY27JAN26FUT", 26120.0, oi=13_000_000),
        tick("NIFTY24FEB26FUT", 26250.0, oi=2_000_000),
        tick("BANKNIFTY27JAN26FUT", 59200.0, oi=900_000),
        option("NIFTY06JAN2625900CE", 160.0, 1_000_000, 12.0, bid=159.9, ask=160.1, delta=0.7,
               gamma=0.001, theta=-10.0, vega=12.0),
        option("NIFTY06JAN2625900PE", 50.0, 3_000_000, 13.0, delta=-0.3),
        option("NIFTY06JAN2626000CE", 100.0, 2_000_000, 11.0, delta=0.52),
        option("NIFTY06JAN2626000PE", 90.0, 2_500_000, 11.5, delta=-0.48),
        option("NIFTY06JAN2626100CE", 55.0, 4_000_000, 10.5, delta=0.3),
        option("NIFTY06JAN2626100PE", 145.0, 1_500_000, 11.0, delta=-0.7),
        option("NIFTY06JAN2626200CE", 25.0, 3_500_000, 10.2, delta=0.15),
        option("NIFTY13JAN2626000CE", 180.0, 700_000, 12.5),
        option("NIFTY13JAN2626000PE", 170.0, 800_000, 12.9),
        option("BANKNIFTY06JAN2626000CE", 9999.0, 99_999_999, 99.0),
        option("BANKNIFTY27JAN2659000PE", 500.0, 50_000, 14.0),
    ]


@pytest.fixture
def opening(snapshot) -> list[dict]:
    """The same contracts at the open: every price 10 lower and OI 100,000 lower, except
    26,100 PE (OI higher then) and without the 26,200 call."""
    rows = []
    for t in snapshot:
        if t["symbol"] == "NIFTY06JAN2626200CE":
            continue
        row = {**t, "ts": OPEN_TS, "ltp": t["ltp"] - 10}
        if t["oi"] is not None:
            row["oi"] = t["oi"] + (200_000 if t["symbol"] == "NIFTY06JAN2626100PE" else -100_000)
        rows.append(row)
    return rows


# ---------------------------------------------------------------- ticks

def test_ticks_frame_parses_symbols(snapshot):
    frame = A.ticks_frame([*snapshot, tick("GARBAGE", 1.0)])
    assert list(frame.columns) == list(A.FRAME_COLUMNS)
    by_symbol = frame.set_index("symbol")
    assert by_symbol.loc["BANKNIFTY06JAN2626000CE", "underlying"] == "BANKNIFTY"
    row = by_symbol.loc["NIFTY06JAN2626000PE"]
    assert (row["underlying"], row["kind"], row["expiry"], row["strike"]) == ("NIFTY", "PE", date(2026, 1, 6),
                                                                              26000.0)
    assert by_symbol.loc["NIFTY 50", "kind"] == "INDEX" and math.isnan(by_symbol.loc["NIFTY 50", "oi"])
    assert pd.isna(by_symbol.loc["GARBAGE", "kind"])
    assert frame["oi"].dtype == np.float64
    assert A.ticks_frame(frame) is frame  # already parsed: reused as is
    empty = A.ticks_frame([])
    assert empty.empty and list(empty.columns) == list(A.FRAME_COLUMNS)


def test_spot_future_expiries(snapshot):
    assert A.spot_of(snapshot, "NIFTY") == 26010.0
    assert A.spot_of(snapshot, "NIFTY 50") == 26010.0
    assert A.spot_of(snapshot, "BANKNIFTY") == 59020.0
    assert A.future_of(snapshot, "NIFTY") == 26120.0  # nearest expiry first
    assert A.future_of(snapshot, "NIFTY BANK") == 59200.0
    assert A.expiries(snapshot, "NIFTY") == [date(2026, 1, 6), date(2026, 1, 13)]
    assert A.expiries(snapshot, "BANKNIFTY") == [date(2026, 1, 6), date(2026, 1, 27)]
    assert A.spot_of([], "NIFTY") is None and A.future_of([], "NIFTY") is None


def test_future_skips_expired_and_unpriced_contracts(snapshot):
    ticks = [*snapshot, tick("NIFTY30DEC25FUT", 25000.0)]
    ticks = [{**t, "ltp": None} if t["symbol"] == "NIFTY27JAN26FUT" else t for t in ticks]
    assert A.future_of(ticks, "NIFTY") == 26250.0



@pytest.mark.parametrize("ts, expected", [
    ("2026-01-27T09:59:59+00:00", 25010.0),  # 15:29:59 IST on the last Tuesday: January
    ("2026-01-27T10:00:00+00:00", 25100.0),  # 15:30 IST: January has expired
])
def test_future_rolls_at_1530_ist_on_expiry_day(ts, expected):
    ticks = [tick("NIFTY 50", 25000.0, ts), tick("NIFTY27JAN26FUT", 25010.0, ts),
             tick("NIFTY24FEB26FUT", 25100.0, ts)]
    assert A.future_of(ticks, "NIFTY") == expected


def test_future_of_only_expired_futures_is_none():
    ts = "2026-01-27T10:00:00+00:00"
    assert A.future_of([tick("NIFTY 50", 25000.0, ts), tick("NIFTY27JAN26FUT", 25010.0, ts)],
                       "NIFTY") is None

# ---------------------------------------------------------------- chain

def test_chain_pivots_one_row_per_strike(snapshot):
    chain = A.chain_table(snapshot, "NIFTY")
    assert list(chain.columns) == list(A.CHAIN_COLUMNS)
    assert chain["strike"].tolist() == [25900.0, 26000.0, 26100.0, 26200.0]
    row = chain.set_index("strike").loc[26000.0]
    assert (row["ce_oi"], row["pe_oi"], row["ce_iv"], row["pe_iv"]) == (2_000_000, 2_500_000, 11.0, 11.5)
    assert (row["ce_symbol"], row["pe_symbol"]) == ("NIFTY06JAN2626000CE", "NIFTY06JAN2626000PE")
    first = chain.iloc[0]
    quote = (first["ce_bid"], first["ce_ask"], first["ce_gamma"], first["ce_theta"])
    assert quote == (159.9, 160.1, 0.001, -10.0)
    last = chain.iloc[-1]
    assert last["ce_oi"] == 3_500_000 and math.isnan(last["pe_oi"]) and pd.isna(last["pe_symbol"])
    assert chain["ce_oi_change"].isna().all() and chain["pe_ltp_change"].isna().all()  # no previous


def test_chain_never_mixes_banknifty_into_nifty(snapshot):
    chain = A.chain_table(snapshot, "NIFTY")
    assert chain["ce_oi"].max() < 99_999_999
    assert not chain["ce_symbol"].dropna().str.startswith("BANK").any()
    bank = A.chain_table(snapshot, "BANKNIFTY")
    assert bank.attrs["expiry"] == date(2026, 1, 6) and bank["strike"].tolist() == [26000.0]
    assert bank.attrs["spot"] == 59020.0 and bank.attrs["future"] == 59200.0
    bank = A.chain_table(snapshot, "BANKNIFTY", "2026-01-27")
    assert bank["pe_oi"].tolist() == [50_000] and bank.attrs["atm"] == 59000.0


def test_chain_attrs(snapshot):
    chain = A.chain_table(snapshot, "NIFTY 50")
    attrs = chain.attrs
    assert set(A.CHAIN_ATTRS) <= set(attrs)
    assert attrs["underlying"] == "NIFTY" and attrs["expiry"] == date(2026, 1, 6)
    assert attrs["ts"] == TS and attrs["previous_ts"] is None
    assert (attrs["spot"], attrs["future"], attrs["atm"]) == (26010.0, 26120.0, 26000.0)
    assert (attrs["strike_step"], attrs["lot_size"]) == (50, 65)
    # 08:13:05 UTC on 2 Jan to 10:00 UTC on 6 Jan
    assert attrs["days_to_expiry"] == pytest.approx(4 + (10 * 3600 - (8 * 3600 + 13 * 60 + 5)) / 86400)
    assert attrs["time_to_expiry"] == pytest.approx(attrs["days_to_expiry"] / 365)


@pytest.mark.parametrize("expiry", [date(2026, 1, 13), "2026-01-13", "13JAN26", datetime(2026, 1, 13)])
def test_chain_for_a_chosen_expiry(snapshot, expiry):
    chain = A.chain_table(snapshot, "NIFTY", expiry)
    assert chain.attrs["expiry"] == date(2026, 1, 13)
    assert chain["strike"].tolist() == [26000.0] and chain["ce_oi"].tolist() == [700_000]


def test_chain_nearest_expiry_skips_expired_contracts(snapshot):
    # A live cache can still hold a contract that expired before today.
    stale = option("NIFTY30DEC2526000CE", 1.0, 5, 1.0, ts="2025-12-30T09:59:55+00:00")
    chain = A.chain_table([*snapshot, stale], "NIFTY")
    assert chain.attrs["expiry"] == date(2026, 1, 6) and chain.attrs["ts"] == TS


def test_chain_nearest_expiry_after_ist_midnight():
    # 19:30 UTC on the 06JAN26 expiry is 01:00 IST on the 7th: the trading day after it
    ts = "2026-01-06T19:30:00+00:00"
    ticks = [tick("NIFTY 50", 26010.0, ts),
             option("NIFTY06JAN2626000CE", 0.05, 5, 1.0, ts="2026-01-06T09:59:55+00:00"),
             option("NIFTY13JAN2626000CE", 180.0, 700_000, 12.5, ts=ts)]
    assert A.chain_table(ticks, "NIFTY").attrs["expiry"] == date(2026, 1, 13)


def test_chain_for_unknown_expiry_is_empty_not_an_error(snapshot):
    chain = A.chain_table(snapshot, "NIFTY", "2026-03-31")
    assert chain.empty and list(chain.columns) == list(A.CHAIN_COLUMNS)
    assert chain.attrs["spot"] == 26010.0 and chain.attrs["atm"] is None
    assert A.max_pain(chain) is None and math.isnan(A.pcr(chain)) and math.isnan(A.atm_iv(chain))
    empty = A.chain_table([], "NIFTY")
    assert empty.empty and empty.attrs["expiry"] is None and empty.attrs["ts"] is None


def test_chain_changes_against_previous(snapshot, opening):
    chain = A.chain_table(snapshot, "NIFTY", previous=opening).set_index("strike")
    assert chain.loc[26000.0, "ce_oi_change"] == 100_000
    assert chain.loc[26000.0, "ce_ltp_change"] == pytest.approx(10.0)
    assert chain.loc[26100.0, "pe_oi_change"] == -200_000
    assert chain.loc[26100.0, "pe_ltp_change"] == pytest.approx(10.0)
    assert math.isnan(chain.loc[26200.0, "ce_oi_change"])  # not in the opening snapshot
    assert A.chain_table(snapshot, "NIFTY", previous=opening).attrs["previous_ts"] == OPEN_TS


def test_chain_takes_the_newest_tick_of_each_symbol(snapshot):
    # A live cache mixes snapshots; an older copy of a symbol must not win.
    older = option("NIFTY06JAN2626000CE", 1.0, 1, 1.0, ts="2026-01-02T08:00:00+00:00")
    chain = A.chain_table([*snapshot, older], "NIFTY").set_index("strike")
    assert chain.loc[26000.0, "ce_oi"] == 2_000_000 and chain.loc[26000.0, "ce_ltp"] == 100.0


def test_chain_atm_window_and_atm_fallbacks(snapshot):
    assert A.chain_table(snapshot, "NIFTY", atm_window=1)["strike"].tolist() == [25900.0, 26000.0, 26100.0]
    assert A.chain_table(snapshot, "NIFTY", atm_window=0)["strike"].tolist() == [26000.0]
    no_spot = [t for t in snapshot if t["symbol"] != "NIFTY 50"]
    chain = A.chain_table(no_spot, "NIFTY")
    assert chain.attrs["spot"] is None and chain.attrs["atm"] == 26100.0  # nearest the future, 26,120
    bare = [t for t in no_spot if "FUT" not in t["symbol"]]
    assert A.chain_table(bare, "NIFTY").attrs["atm"] == 26000.0  # call 100 vs put 90: closest pair


def test_chain_accepts_a_prebuilt_frame(snapshot, opening):
    frame = A.ticks_frame(snapshot)
    pd.testing.assert_frame_equal(A.chain_table(frame, "NIFTY", previous=A.ticks_frame(opening)),
                                  A.chain_table(snapshot, "NIFTY", previous=opening))


# ---------------------------------------------------------------- OI figures

def chain_of(strikes, ce_oi, pe_oi, **columns) -> pd.DataFrame:
    data = {"strike": np.asarray(strikes, dtype=float), "ce_oi": np.asarray(ce_oi, dtype=float),
            "pe_oi": np.asarray(pe_oi, dtype=float)}
    data.update({k: np.asarray(v, dtype=float) for k, v in columns.items()})
    return pd.DataFrame(data)


def brute_force_max_pain(strikes, ce_oi, pe_oi) -> float:
    best, best_pain = None, math.inf
    for settle in strikes:
        pain = sum(c * max(settle - k, 0) + p * max(k - settle, 0) for k, c, p in zip(strikes, ce_oi, pe_oi))
        if pain < best_pain:
            best, best_pain = settle, pain
    return best


def test_max_pain_on_known_numbers():
    # settle 100: puts pay 20*10 + 10*20 = 400; 110: 10*10 + 10*10 = 200; 120: 10*20 + 20*10 = 400
    chain = chain_of([100, 110, 120], [10, 20, 30], [30, 20, 10])
    assert A.max_pain(chain) == 110.0
    curve = A.pain_curve(chain)
    assert curve["total_payout"].tolist() == [400.0, 200.0, 400.0]
    assert curve["call_payout"].tolist() == [0.0, 100.0, 400.0]


@pytest.mark.parametrize("seed", range(20))
def test_max_pain_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 30))
    strikes = np.sort(rng.choice(np.arange(24000, 28000, 50), n, replace=False)).astype(float)
    ce, pe = rng.integers(0, 5_000_000, n), rng.integers(0, 5_000_000, n)
    ce[rng.random(n) < 0.2] = 0
    chain = chain_of(strikes, ce, pe)
    assert A.max_pain(chain) == brute_force_max_pain(strikes, ce, pe)


def test_max_pain_edge_cases():
    assert A.max_pain(chain_of([], [], [])) is None
    assert A.max_pain(chain_of([100, 110], [0, 0], [0, 0])) is None
    assert A.max_pain(chain_of([100, 110, 120], [np.nan, 5, np.nan], [np.nan, 5, np.nan])) == 110.0
    assert A.max_pain(chain_of([100, 110], [1, 0], [0, 1])) == 100.0  # a tie goes to the lower strike


def test_pcr():
    chain = chain_of([100, 110], [100, 300], [200, 400], ce_volume=[10, 10], pe_volume=[5, 5])
    assert A.pcr(chain) == 1.5
    assert A.pcr(chain, of="volume") == 0.5
    assert math.isnan(A.pcr(chain_of([100], [0], [500])))
    assert math.isnan(A.pcr(chain_of([], [], [])))
    assert A.pcr(chain_of([100, 110], [np.nan, 100], [50, np.nan])) == 0.5
    with pytest.raises(ValueError):
        A.pcr(chain, of="iv")


def test_pcr_and_max_pain_on_the_built_chain(snapshot):
    chain = A.chain_table(snapshot, "NIFTY")
    assert A.pcr(chain) == pytest.approx((3_000_000 + 2_500_000 + 1_500_000) / (1_000_000 + 2_000_000
                                                                                 + 4_000_000 + 3_500_000))
    ce, pe = chain["ce_oi"].fillna(0).tolist(), chain["pe_oi"].fillna(0).tolist()
    assert A.max_pain(chain) == brute_force_max_pain(chain["strike"].tolist(), ce, pe)


def test_support_resistance():
    chain = chain_of([100, 110, 120, 130], [5, 9, 30, 30], [40, 10, 40, 1])
    assert A.support_resistance(chain) == (100.0, 120.0)  # ties go to the lower strike
    assert A.support_resistance(chain).resistance == 120.0
    assert A.support_resistance(chain_of([100], [0], [np.nan])) == (None, None)
    assert A.support_resistance(chain_of([], [], [])) == (None, None)


# ---------------------------------------------------------------- build-up

@pytest.mark.parametrize("price, oi, label", [
    (1.5, 100, "Long Build-up"), (-1.5, 100, "Short Build-up"), (1.5, -100, "Short Covering"),
    (-1.5, -100, "Long Unwinding"), (0, 100, "Neutral"), (2, 0, "Neutral"), (0, 0, "Neutral"),
    (None, 100, "Neutral"), (1, math.nan, "Neutral"), (np.float64(-0.05), np.int64(-65), "Long Unwinding"),
])
def test_classify_buildup_scalar(price, oi, label):
    assert A.classify_buildup(price, oi) == label


def test_classify_buildup_vectorised():
    price = [1.0, -1.0, 1.0, -1.0, 0.0, 1.0, None, np.nan]
    oi = [10, 10, -10, -10, 10, 0, 10, 10]
    expected = ["Long Build-up", "Short Build-up", "Short Covering", "Long Unwinding"] + ["Neutral"] * 4
    out = A.classify_buildup(price, oi)
    assert isinstance(out, np.ndarray) and out.tolist() == expected
    assert A.classify_buildup(np.array(price, dtype=float), np.array(oi)).tolist() == expected
    series = A.classify_buildup(pd.Series(price, index=list("abcdefgh"), dtype="Float64"), np.array(oi))
    assert isinstance(series, pd.Series) and series.index.tolist() == list("abcdefgh")
    assert series.tolist() == expected
    assert A.classify_buildup(pd.Series([2.0]), 5).tolist() == ["Long Build-up"]  # scalar broadcasts
    assert set(A.BUILDUPS) == {"Long Build-up", "Short Build-up", "Short Covering", "Long Unwinding",
                               "Neutral"}


def test_classify_buildup_tolerances():
    assert A.classify_buildup(0.04, 1000, price_tol=0.05) == "Neutral"
    assert A.classify_buildup(0.06, 1000, price_tol=0.05) == "Long Build-up"
    assert A.classify_buildup([0.06, 1.0], [1000, 65], oi_tol=65).tolist() == ["Long Build-up", "Neutral"]


def test_buildup_table(snapshot, opening):
    table = A.buildup_table(snapshot, opening, "NIFTY", kinds=("FUT", "CE", "PE"))
    assert list(table.columns) == list(A.BUILDUP_COLUMNS)
    assert table["symbol"].tolist() == [
        "NIFTY27JAN26FUT", "NIFTY24FEB26FUT",
        "NIFTY06JAN2625900CE", "NIFTY06JAN2625900PE", "NIFTY06JAN2626000CE", "NIFTY06JAN2626000PE",
        "NIFTY06JAN2626100CE", "NIFTY06JAN2626100PE", "NIFTY06JAN2626200CE",
    ]
    by_symbol = table.set_index("symbol")
    assert by_symbol.loc["NIFTY27JAN26FUT", "buildup"] == "Long Build-up"
    assert by_symbol.loc["NIFTY06JAN2626100PE", "buildup"] == "Short Covering"
    assert by_symbol.loc["NIFTY06JAN2626100PE", "oi_change"] == -200_000
    assert by_symbol.loc["NIFTY06JAN2626000CE", "oi_change_pct"] == pytest.approx(100_000 / 1_900_000 * 100)
    assert by_symbol.loc["NIFTY06JAN2626000CE", "ltp_change_pct"] == pytest.approx(10 / 90 * 100)
    assert by_symbol.loc["NIFTY06JAN2626200CE", "buildup"] == "Neutral"  # nothing to compare with
    assert math.isnan(by_symbol.loc["NIFTY06JAN2626200CE", "oi_change"])
    assert table.attrs["expiry"] == date(2026, 1, 6) and table.attrs["base_ts"] == OPEN_TS
    options_only = A.buildup_table(snapshot, opening, "NIFTY")
    assert set(options_only["kind"]) == {"CE", "PE"} and len(options_only) == 7
    bank = A.buildup_table(snapshot, opening, "BANKNIFTY", "2026-01-27")
    assert bank["symbol"].tolist() == ["BANKNIFTY27JAN2659000PE"]


# ---------------------------------------------------------------- volatility

def test_atm_iv(snapshot):
    chain = A.chain_table(snapshot, "NIFTY")
    assert A.atm_iv(chain) == pytest.approx(11.25)
    one_side = chain.assign(pe_iv=np.nan)
    assert A.atm_iv(one_side) == 11.0


def test_smile_takes_the_out_of_the_money_side():
    chain = chain_of([25900, 26000, 26100, 26200], [1, 1, 1, 1], [1, 1, 1, 1],
                     ce_iv=[15, 12, 10, 9], pe_iv=[14, 13, 11, np.nan], ce_delta=[0.8, 0.55, 0.3, 0.1],
                     pe_delta=[-0.2, -0.45, -0.7, -0.9])
    chain.attrs.update(spot=26000.0, atm=26000.0)
    smile = A.smile(chain)
    assert list(smile.columns) == list(A.SMILE_COLUMNS)
    # 25,900 below spot: put; 26,000 at spot: mean of both; above: calls
    assert smile["otm_iv"].tolist() == [14.0, 12.5, 10.0, 9.0]
    assert smile["moneyness"].tolist() == pytest.approx([25900 / 26000, 1.0, 26100 / 26000, 26200 / 26000])
    assert smile.attrs["spot"] == 26000.0 and smile.attrs["atm"] == 26000.0
    shifted = A.smile(chain, spot=26150.0)
    assert shifted["otm_iv"].tolist()[:3] == [14.0, 13.0, 11.0] and shifted["otm_iv"].iloc[3] == 9.0
    no_put = chain.assign(pe_iv=[np.nan, 13, 11, np.nan])
    assert math.isnan(A.smile(no_put)["otm_iv"].iloc[0])  # the ITM call is not substituted


def test_smile_without_any_price_reference():
    chain = chain_of([100, 110], [1, 1], [1, 1], ce_iv=[10, 11], pe_iv=[12, 13], ce_delta=[0.6, 0.4],
                     pe_delta=[-0.4, -0.6])
    smile = A.smile(chain)
    assert smile["otm_iv"].isna().all() and smile["moneyness"].isna().all()


def skewed_chain(put_skew: bool) -> pd.DataFrame:
    """Strikes 25,500..26,500 around spot 26,000 with deltas and a linear skew."""
    strikes = np.arange(25500, 26501, 100, dtype=float)
    ce_delta = np.linspace(0.95, 0.05, len(strikes))
    slope = -0.004 if put_skew else 0.004  # IV points per strike point
    iv = 12 + slope * (strikes - 26000)
    chain = chain_of(strikes, np.ones(len(strikes)), np.ones(len(strikes)), ce_iv=iv, pe_iv=iv,
                     ce_delta=ce_delta, pe_delta=ce_delta - 1)
    chain.attrs.update(spot=26000.0, atm=26000.0)
    return chain


def test_25_delta_risk_reversal_is_negative_for_a_put_skew():
    metrics = A.skew_metrics(skewed_chain(put_skew=True))
    # call delta 0.25 at 26,277.8 (IV 10.889); put delta -0.25 at 25,722.2 (IV 13.111)
    assert metrics.call_25d_iv == pytest.approx(12 - 0.004 * 2500 / 9, rel=1e-9)
    assert metrics.put_25d_iv == pytest.approx(12 + 0.004 * 2500 / 9, rel=1e-9)
    assert metrics.risk_reversal_25d < 0
    assert metrics.risk_reversal_25d == pytest.approx(metrics.call_25d_iv - metrics.put_25d_iv)
    assert metrics.atm_iv == 12.0 and metrics.butterfly_25d == pytest.approx(0.0, abs=1e-9)
    assert A.skew_metrics(skewed_chain(put_skew=False)).risk_reversal_25d > 0
    smile = A.smile(skewed_chain(put_skew=True))
    assert A.skew_metrics(smile) == metrics  # a smile works as well as a chain


def test_iv_at_delta_outside_the_quoted_range_is_nan():
    assert A.iv_at_delta([0.9, 0.6, 0.4], [10, 11, 12], 0.5) == pytest.approx(11.5)
    assert math.isnan(A.iv_at_delta([0.9, 0.6, 0.4], [10, 11, 12], 0.25))
    assert math.isnan(A.iv_at_delta([np.nan], [np.nan], 0.25))
    chain = chain_of([100], [1], [1], ce_iv=[10], pe_iv=[10], ce_delta=[0.5], pe_delta=[-0.5])
    assert math.isnan(A.skew_metrics(chain).risk_reversal_25d)


def test_equidistant_skew():
    chain = skewed_chain(put_skew=True)
    table = A.equidistant_skew(chain)
    assert table["distance"].tolist() == [100.0, 200.0, 300.0, 400.0, 500.0]
    first = table.iloc[0]
    assert (first["put_strike"], first["call_strike"]) == (25900.0, 26100.0)
    assert first["put_iv"] == pytest.approx(12.4) and first["call_iv"] == pytest.approx(11.6)
    assert (table["put_minus_call"] > 0).all()
    assert A.equidistant_skew(chain_of([], [], [], ce_iv=[], pe_iv=[])).empty


def test_term_structure(snapshot):
    term = A.term_structure(snapshot, "NIFTY")
    assert term["expiry"].tolist() == [date(2026, 1, 6), date(2026, 1, 13)]
    assert term["atm_iv"].tolist() == pytest.approx([11.25, 12.7])
    assert term["atm_strike"].tolist() == [26000.0, 26000.0]
    assert term["days_to_expiry"].iloc[1] - term["days_to_expiry"].iloc[0] == pytest.approx(7.0)
    assert A.term_structure([], "NIFTY").empty


# ---------------------------------------------------------------- day series

def test_day_bounds_is_the_ist_calendar_day():
    assert A.day_bounds("2026-01-02T08:13:05+00:00") == ("2026-01-01T18:30:00+00:00",
                                                        "2026-01-02T18:29:59.999+00:00")
    # 20:00 UTC is already the 3rd in IST
    assert A.day_bounds("2026-01-02T20:00:00+00:00")[0] == "2026-01-02T18:30:00+00:00"
    assert A.day_bounds(date(2026, 1, 2))[0] == "2026-01-01T18:30:00+00:00"


STAMPS = [f"2026-01-02T03:{45 + i:02d}:00+00:00" for i in range(6)]


def series_snapshot(i: int) -> list[dict]:
    """Spot walks 26,010 -> 26,060 so ATM moves from 26,000 to 26,050 at i = 2 (26,030)."""
    spot = 26010.0 + 10 * i
    ts = STAMPS[i]
    return [
        tick("NIFTY 50", spot, ts), tick("NIFTY BANK", 59000.0 + i, ts),
        tick("NIFTY27JAN26FUT", spot + 100, ts, oi=13_000_000),
        tick("BANKNIFTY27JAN26FUT", 59200.0, ts, oi=900_000),
        option("NIFTY06JAN2626000CE", 100.0, 1_000_000 + 1000 * i, 11.0, ts),
        option("NIFTY06JAN2626000PE", 90.0, 2_000_000, 12.0, ts),
        option("NIFTY06JAN2626050CE", 80.0, 500_000, 10.0 + i, ts),
        option("NIFTY06JAN2626050PE", 110.0, 700_000, None, ts),
        option("NIFTY13JAN2626000CE", 150.0, 300_000, 13.0, ts),
        option("BANKNIFTY06JAN2626000CE", 1.0, 99_000_000, 99.0, ts),
        option("BANKNIFTY27JAN2659000PE", 500.0, 60_000, 14.0, ts),
    ]


def fill(store: TickStore) -> None:
    for i, ts in enumerate(STAMPS):
        store.write_snapshot(ts, series_snapshot(i))


def test_underlying_series(any_store):
    fill(any_store)
    start, end = A.day_bounds(STAMPS[0])
    rows = any_store.underlying_series("NIFTY", start, end)
    assert [r["ts"] for r in rows] == STAMPS
    first = rows[0]
    assert (first["spot"], first["future"], first["expiry"]) == (26010.0, 26110.0, "2026-01-06")
    assert first["ce_oi"] == 1_500_000 and first["pe_oi"] == 2_700_000  # no BANKNIFTY, no 13 Jan
    assert isinstance(first["ce_oi"], int)
    assert first["atm_strike"] == 26000.0 and first["atm_iv"] == pytest.approx(11.5)
    assert rows[4]["atm_strike"] == 26050.0 and rows[4]["atm_iv"] == pytest.approx(14.0)  # put IV missing
    assert [r["ce_oi"] for r in rows] == [1_500_000 + 1000 * i for i in range(6)]
    later = any_store.underlying_series("NIFTY 50", STAMPS[0], STAMPS[-1], expiry=date(2026, 1, 13))
    assert later[0]["ce_oi"] == 300_000 and later[0]["pe_oi"] is None and later[0]["atm_iv"] == 13.0
    bank = any_store.underlying_series("BANKNIFTY", start, end)
    assert bank[0]["spot"] == 59000.0 and bank[0]["future"] == 59200.0
    assert bank[0]["expiry"] == "2026-01-06" and bank[0]["ce_oi"] == 99_000_000


def test_underlying_series_downsamples_and_keeps_the_last(any_store):
    fill(any_store)
    every = any_store.underlying_series("NIFTY", every_n=4)
    assert [r["ts"] for r in every] == [STAMPS[0], STAMPS[4], STAMPS[5]]
    capped = any_store.underlying_series("NIFTY", max_points=3)
    assert [r["ts"] for r in capped] == [STAMPS[0], STAMPS[2], STAMPS[4], STAMPS[5]]
    assert capped[1]["ce_oi"] == 1_502_000 and capped[1]["atm_iv"] == 12.0  # 26,030: ATM 26,050
    assert any_store.underlying_series("NIFTY", STAMPS[2], STAMPS[3], max_points=None)[0]["ts"] == STAMPS[2]
    with pytest.raises(ValueError):
        any_store.underlying_series("NIFTY", every_n=0)


def test_underlying_series_on_an_empty_store(store):
    assert store.underlying_series("NIFTY") == []
    assert store.snapshot_times("NIFTY") == [] and store.first_snapshot(STAMPS[0]) == []


def test_store_snapshot_helpers(any_store):
    fill(any_store)
    assert any_store.snapshot_times("NIFTY 50", STAMPS[1], STAMPS[3]) == STAMPS[1:4]
    first = any_store.first_snapshot(STAMPS[1], underlying="NIFTY")
    assert {r["ts"] for r in first} == {STAMPS[1]}
    assert {r["symbol"] for r in first} == {t["symbol"] for t in series_snapshot(1)
                                            if not t["symbol"].startswith(("BANKNIFTY", "NIFTY BANK"))}
    assert any_store.first_snapshot("2026-01-02T03:50:01+00:00", "2026-01-03") == []
    assert any_store.option_expiries("NIFTY") == ["2026-01-06", "2026-01-13"]
    assert any_store.option_expiries("BANKNIFTY") == ["2026-01-06", "2026-01-27"]


def test_series_frame(store):
    fill(store)
    frame = A.series_frame(store.underlying_series("NIFTY"))
    assert list(frame.columns) == list(A.SERIES_COLUMNS)
    assert str(frame["time"].dt.tz) == "IST" and frame["time"].iloc[0].hour == 9  # 09:15 IST
    assert frame["pcr"].iloc[0] == pytest.approx(2_700_000 / 1_500_000)
    assert frame["basis"].tolist() == [100.0] * 6
    assert frame["ce_oi_change"].tolist() == [1000.0 * i for i in range(6)]
    assert frame.attrs["expiry"] == "2026-01-06"
    empty = A.series_frame([])
    assert empty.empty and list(empty.columns) == list(A.SERIES_COLUMNS)
    zero = A.series_frame([{"ts": STAMPS[0], "spot": 1.0, "future": None, "ce_oi": 0, "pe_oi": 5,
                            "atm_strike": None, "atm_iv": None, "expiry": None}])
    assert math.isnan(zero["pcr"].iloc[0]) and math.isnan(zero["basis"].iloc[0])


def test_series_frame_breaks_pauses():
    """A six-hour pause (the session, then the evening's live ticks) gets one empty row
    inside it, and ``attrs["gaps"]`` names it for the charts."""
    stamps = ["2026-01-02T03:45:00+00:00", "2026-01-02T03:46:00+00:00",  # 09:15, 09:16 IST
              "2026-01-02T09:46:00+00:00", "2026-01-02T09:47:00+00:00"]  # 15:16, 15:17 IST
    rows = [{"ts": ts, "spot": 26000.0 + i, "future": 26100.0 + i} for i, ts in enumerate(stamps)]
    frame = A.series_frame(rows)
    assert len(frame) == 5 and frame["time"].is_monotonic_increasing
    empty = frame[frame["spot"].isna()]
    assert len(empty) == 1 and empty["ts"].isna().all()
    assert empty["time"].iloc[0] == pd.Timestamp(stamps[2]) - pd.Timedelta(milliseconds=1)
    (gap,) = frame.attrs["gaps"]
    assert gap == (pd.Timestamp(stamps[1]), pd.Timestamp(stamps[2]))
    assert frame["ce_oi_change"].isna().all() and frame.attrs["expiry"] is None
    assert A.break_gaps(frame) is frame  # already broken: left alone
    # a pause up to SERIES_GAP is no gap
    steady = A.series_frame([{"ts": f"2026-01-02T03:{45 + 5 * i}:00+00:00", "spot": 1.0} for i in range(3)])
    assert len(steady) == 3 and steady.attrs["gaps"] == []


def test_series_frame_thins_to_max_points_keeping_the_newest():
    rows = [{"ts": f"2026-01-02T04:{i // 60:02d}:{i % 60:02d}+00:00", "spot": float(i)} for i in range(1000)]
    frame = A.series_frame(rows, max_points=100)
    assert len(frame) <= 101 and frame["spot"].iloc[0] == 0.0 and frame["spot"].iloc[-1] == 999.0


@pytest.mark.parametrize(("n", "max_points", "every_n", "kept"), [
    (6, 3, 1, [0, 2, 4, 5]),  # stride ceil(6 / 3) = 2, and the last
    (6, None, 4, [0, 4, 5]),
    (6, 3, 4, [0, 4, 5]),  # every_n wins when it is the larger stride
    (10, 3, 1, [0, 4, 8, 9]),  # max_points + 1 at the most
    (5, 5, 1, [0, 1, 2, 3, 4]),
    (5, None, 1, [0, 1, 2, 3, 4]),
    (1, 1, 3, [0]),
    (0, 2, 1, []),
])
def test_thin_keeps_every_stride_th_and_the_last(n, max_points, every_n, kept):
    assert A.thin(range(n), max_points, every_n=every_n) == kept


@pytest.mark.parametrize("bad", [{"max_points": 0}, {"max_points": None, "every_n": 0}])
def test_thin_refuses_a_stride_below_one(bad):
    with pytest.raises(ValueError, match="every_n"):
        A.thin(range(5), **{"max_points": 3, **bad})


def test_around_atm_keeps_strikes_either_side_and_the_attrs():
    strikes = np.arange(25500.0, 26550.0, 50.0)
    chain = pd.DataFrame({"strike": strikes})
    chain.attrs.update(atm=26000.0, spot=26010.0)
    window = A.around_atm(chain, 2)
    assert window["strike"].tolist() == [25900.0, 25950.0, 26000.0, 26050.0, 26100.0]
    assert window.attrs == chain.attrs
    assert A.around_atm(chain, 50)["strike"].tolist() == strikes.tolist()
    chain.attrs["atm"] = None
    assert A.around_atm(chain, 2) is chain


def test_biggest_oi_addition(snapshot, opening):
    chain = A.chain_table(snapshot, "NIFTY", previous=opening)
    assert A.biggest_oi_addition(chain, "ce") == (25900.0, 100_000.0)  # 26,200 CE is new: no change
    strike, change = A.biggest_oi_addition(chain, "pe")
    assert strike == 25900.0 and change == 100_000.0
    for unchanged in (A.chain_table(snapshot, "NIFTY"),  # no previous: NaN changes
                      A.chain_table(opening, "NIFTY", previous=snapshot)):  # call OI only fell
        strike, change = A.biggest_oi_addition(unchanged, "ce")
        assert strike is None and math.isnan(change)


# ---------------------------------------------------------------- a simulated session

@pytest.fixture(scope="module")
def session(tmp_path_factory) -> tuple[TickStore, int]:
    """A simulated session every minute in a SQLite store, and its number of snapshots."""
    simulator = pytest.importorskip("datacentre.sources.simulator")
    store = TickStore(f"sqlite:///{tmp_path_factory.mktemp('session') / 'day.db'}")
    count = 0
    for moment, ticks in simulator.MarketSimulator(seed=11).session(date(2026, 1, 2), 60.0):
        store.write_snapshot(moment, ticks)
        count += 1
    yield store, count
    store.close()


def test_simulated_session_chain(session):
    session_store, count = session
    times = session_store.snapshot_times("NIFTY")
    assert len(times) == count >= 375
    start, _ = A.day_bounds(times[0])
    ticks = session_store.snapshot_at(times[200])
    chain = A.chain_table(ticks, "NIFTY", previous=session_store.first_snapshot(start))
    spot = chain.attrs["spot"]
    assert len(chain) >= 21 and chain["strike"].diff().dropna().eq(50).all()  # ATM +/- 10 at least
    assert abs(chain.attrs["atm"] - spot) <= 25 and chain.attrs["expiry"] == date(2026, 1, 6)
    assert chain["ce_oi_change"].notna().any()
    assert chain["strike"].min() <= A.max_pain(chain) <= chain["strike"].max()
    assert 0.2 < A.pcr(chain) < 5
    assert 5 < A.atm_iv(chain) < 40
    assert A.skew_metrics(chain).risk_reversal_25d < 0  # the simulator's index skew: puts richer
    smile = A.smile(chain)
    below = smile[smile["strike"] < spot]
    assert (below["otm_iv"] == below["pe_iv"]).all()
    term = A.term_structure(ticks, "NIFTY")
    assert term["expiry"].tolist() == [date(2026, 1, 6), date(2026, 1, 13)] and term["atm_iv"].notna().all()


def test_simulated_series_agrees_with_the_chain(session):
    session_store, count = session
    rows = session_store.underlying_series("NIFTY", max_points=None)
    assert len(rows) == count
    for row in rows[::60]:
        chain = A.chain_table(session_store.snapshot_at(row["ts"]), "NIFTY", row["expiry"])
        assert row["spot"] == chain.attrs["spot"] and row["future"] == chain.attrs["future"]
        assert row["ce_oi"] == chain["ce_oi"].sum() and row["pe_oi"] == chain["pe_oi"].sum()
        if row["atm_strike"] == chain.attrs["atm"]:
            assert row["atm_iv"] == pytest.approx(A.atm_iv(chain))
    sampled = session_store.underlying_series("NIFTY", max_points=100)
    assert 90 <= len(sampled) <= 101 and sampled[-1]["ts"] == rows[-1]["ts"]


# ---------------------------------------------------------------- one OI summary


def test_oi_summary_is_the_figures_of_one_chain():
    snap = [tick("NIFTY 50", 26010.0),
            option("NIFTY06JAN2625900CE", 140.0, 100), option("NIFTY06JAN2625900PE", 30.0, 900),
            option("NIFTY06JAN2626000CE", 60.0, 500), option("NIFTY06JAN2626000PE", 50.0, 400),
            option("NIFTY06JAN2626100CE", 20.0, 700), option("NIFTY06JAN2626100PE", 110.0, 50),
            option("NIFTY13JAN2626000PE", 90.0, 9_000_000), option("BANKNIFTY06JAN2626000PE", 9.0, 9)]
    chain = A.chain_table(snap, "NIFTY", date(2026, 1, 6))
    summary = A.oi_summary(chain)
    assert (summary.call_oi, summary.put_oi) == (1300.0, 1350.0)
    assert summary.pcr == pytest.approx(1350 / 1300) == A.pcr(chain)
    assert summary.max_pain == A.max_pain(chain)
    assert (summary.support, summary.resistance) == A.support_resistance(chain) == (25900.0, 26100.0)
    assert (summary.strikes, summary.low, summary.high) == (3, 25900.0, 26100.0)
    # a window of the chain is a different set of strikes, so different figures: summarise the whole chain
    assert A.oi_summary(A.around_atm(chain, 0)).strikes == 1


def test_oi_summary_of_an_empty_chain():
    summary = A.oi_summary(A.chain_table([tick("NIFTY 50", 26010.0)], "NIFTY"))
    assert summary.strikes == 0 and math.isnan(summary.pcr) and math.isnan(summary.call_oi)
    assert summary.max_pain is None and summary.support is None and summary.low is None
