"""Candles computed in SQL on both engines: OHLC, volume traded in the candle (the store's is
cumulative), VWAP, the last OI and Greeks, 1- and 5-minute buckets on the IST session grid."""
from __future__ import annotations

import sqlite3

import pytest
from conftest import make_tick

from datacentre.core.errors import ConfigError
from datacentre.store.candles import CANDLE_FIELDS, interval_seconds

OPT = "NIFTY06JAN2626000CE"
LATE = "NIFTY06JAN2626100PE"  # first collected mid-session

# Friday 2 January 2026: 03:45 UTC is 09:15 IST, the open.
TICKS = [  # (ts, symbol, ltp, cumulative volume, oi, iv)
    ("2026-01-02T03:45:00+00:00", OPT, 100.0, 650, 1000, 12.0),
    ("2026-01-02T03:45:30+00:00", OPT, 102.0, 1300, 1100, 12.5),
    ("2026-01-02T03:46:00+00:00", OPT, 101.0, 1300, 1200, 12.4),
    ("2026-01-02T03:46:20+00:00", OPT, 99.0, 1950, 1250, 12.6),
    ("2026-01-02T03:46:40+00:00", OPT, 104.0, 3250, 1300, 0.0),  # IV 0: unknown
    ("2026-01-02T03:50:10+00:00", OPT, 105.0, 3900, 1400, 12.2),
    ("2026-01-02T03:51:00+00:00", OPT, 106.0, 3800, 1400, 12.2),  # a correction: volume fell
    ("2026-01-02T04:00:05+00:00", LATE, 50.0, 5000, 700, 13.0),
    ("2026-01-02T04:00:10+00:00", LATE, 51.0, 5650, 710, 13.1),
    ("2026-01-05T03:45:05+00:00", OPT, 90.0, 650, 1500, 14.0),  # Monday: a new day's volume
]


def write(store, ticks=TICKS):
    store.insert_ticks([make_tick(symbol, ltp, ts=ts, volume=volume, oi=oi, iv=iv, delta=0.5 + n / 100)
                        for n, (ts, symbol, ltp, volume, oi, iv) in enumerate(ticks)])


def ohlcv(candles):
    return [(c["ts"][11:16], c["open"], c["high"], c["low"], c["close"], c["volume"]) for c in candles]


def test_one_minute_candles(any_store):
    write(any_store)
    candles = any_store.candles(OPT, 1)
    assert all(list(c) == list(CANDLE_FIELDS) for c in candles)
    assert ohlcv(candles) == [
        ("03:45", 100.0, 102.0, 100.0, 102.0, 1300),  # the opening minute counts from 0
        ("03:46", 101.0, 104.0, 99.0, 104.0, 1950),
        ("03:50", 105.0, 105.0, 105.0, 105.0, 650),
        ("03:51", 106.0, 106.0, 106.0, 106.0, 0),
        ("03:45", 90.0, 90.0, 90.0, 90.0, 650),  # 5 January, not 650 - 3800
    ]
    first, second = candles[0], candles[1]
    assert first["vwap"] == pytest.approx(101.0) and first["ticks"] == 2
    assert second["vwap"] == pytest.approx((99 * 650 + 104 * 1300) / 1950)
    assert (first["oi"], first["iv"], first["delta"]) == (1100, 12.5, pytest.approx(0.51))
    assert second["oi"] == 1300 and second["iv"] is None  # the last tick's IV was 0
    assert [c["ts"][:10] for c in candles] == ["2026-01-02"] * 4 + ["2026-01-05"]


def test_five_minute_candles_and_the_session_vwap_from_them(any_store):
    write(any_store)
    candles = any_store.candles(OPT, "5min", end="2026-01-03T00:00:00+00:00")
    assert ohlcv(candles) == [("03:45", 100.0, 104.0, 99.0, 104.0, 3250),
                              ("03:50", 105.0, 106.0, 105.0, 106.0, 650)]
    traded = [(100, 650), (102, 650), (99, 650), (104, 1300), (105, 650)]
    session_vwap = sum(p * v for p, v in traded) / sum(v for _, v in traded)
    total = sum(c["vwap"] * c["volume"] for c in candles) / sum(c["volume"] for c in candles)
    assert total == pytest.approx(session_vwap)


def test_a_range_that_starts_mid_day_still_counts_from_the_tick_before_it(any_store):
    write(any_store)
    candles = any_store.candles(OPT, 1, "2026-01-02T03:46:00+00:00", "2026-01-02T03:47:00+00:00")
    assert ohlcv(candles) == [("03:46", 101.0, 104.0, 99.0, 104.0, 1950)]
    # the end is exclusive, the start inclusive
    cut = any_store.candles(OPT, 1, "2026-01-02T03:45:30+00:00", "2026-01-02T03:46:20+00:00")
    assert ohlcv(cut) == [("03:45", 102.0, 102.0, 102.0, 102.0, 650),
                          ("03:46", 101.0, 101.0, 101.0, 101.0, 0)]


def test_a_symbol_first_seen_mid_session_counts_only_what_trades_after(any_store):
    write(any_store)
    assert ohlcv(any_store.candles(LATE, 1)) == [("04:00", 50.0, 51.0, 50.0, 51.0, 650)]


def test_indices_have_no_volume_and_no_vwap(any_store):
    any_store.insert_ticks([make_tick("NIFTY 50", 26000.0 + n, ts=f"2026-01-02T03:45:{5 * n:02d}+00:00")
                            for n in range(3)])
    [candle] = any_store.candles("NIFTY 50", 1)
    assert (candle["open"], candle["close"], candle["volume"], candle["vwap"], candle["oi"]) == \
        (26000.0, 26002.0, 0, None, None)
    assert any_store.candles("NIFTY 50", 1, end="2026-01-02T03:45:00+00:00") == []


@pytest.mark.parametrize("interval, seconds", [(1, 60), (5, 300), ("5min", 300), ("1m", 60), ("15 min", 900)])
def test_interval_forms(interval, seconds):
    assert interval_seconds(interval) == seconds


@pytest.mark.parametrize("interval", [0, 2, 60, "hour", True, None, 1.5])
def test_other_intervals_are_refused(store, interval):
    with pytest.raises(ConfigError, match="candle interval"):
        store.candles(OPT, interval)


def test_timestamps_written_without_an_offset_are_bucketed_exactly(store, db_url):
    """Stores of the original data centre mix '...+00:00', bare and microsecond texts."""
    write(store, TICKS[:2])
    path = db_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        conn.executemany("INSERT INTO ltp_ticks (symbol, ts, ltp, volume) VALUES (?, ?, ?, ?)", [
            (OPT, "2026-01-02T03:46:00", 101.0, 1300),  # bare: sorts before '03:46:00+00:00'
            (OPT, "2026-01-02T03:46:59.750000", 99.0, 1950),
            (OPT, "2026-01-02T03:47:00.250000+00:00", 104.0, 3250)])
    assert ohlcv(store.candles(OPT, 1, "2026-01-02T03:46:00Z", "2026-01-02T03:47:00Z")) == [
        ("03:46", 101.0, 101.0, 99.0, 99.0, 650)]
    assert ohlcv(store.candles(OPT, 1, "2026-01-02T03:47:00Z")) == [
        ("03:47", 104.0, 104.0, 104.0, 104.0, 1300)]
    assert [c["ts"] for c in store.candles(OPT, 1)] == [
        "2026-01-02T03:45:00+00:00", "2026-01-02T03:46:00+00:00", "2026-01-02T03:47:00+00:00"]
