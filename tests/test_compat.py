"""The original data centre's tables and view on both engines, queried the way its programs do
(``%s`` placeholders, IST dates), kept current by the collector and rebuilt by the CLI."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import make_tick

from datacentre.__main__ import main
from datacentre.core.instruments import parse_symbol
from datacentre.ops.collector import Collector
from datacentre.sources import MarketSimulator
from datacentre.store import TickStore

OPEN = datetime(2026, 1, 2, 3, 45, tzinfo=UTC)  # Friday 2 January 2026, 09:15 IST


@pytest.fixture
def db_url(any_db_url):
    return any_db_url


def collect(store: TickStore, seconds: int, start: datetime = OPEN, every: int = 5) -> Collector:
    collector = Collector(store, MarketSimulator(seed=7), interval=every)
    for n in range(seconds // every):
        collector.collect_once(start + timedelta(seconds=n * every))
    return collector


def minutes(store: TickStore) -> list[str]:
    return [r["ts"] for r in store.query("SELECT DISTINCT ts FROM ohlc_1min ORDER BY ts")]


def test_the_collector_writes_each_minute_once_it_is_complete(store):
    collector = collect(store, 60)  # 09:15:00 .. 09:15:55: the minute is not over yet
    assert minutes(store) == []
    collector.collect_once(OPEN + timedelta(seconds=60))  # the first snapshot of 09:16
    assert minutes(store) == ["2026-01-02T03:45:00+00:00"]
    for n in range(1, 12):  # .. 09:16:55
        collector.collect_once(OPEN + timedelta(seconds=60 + 5 * n))
    assert minutes(store) == ["2026-01-02T03:45:00+00:00"]
    collector.collect_once(OPEN + timedelta(seconds=120))
    assert minutes(store) == ["2026-01-02T03:45:00+00:00", "2026-01-02T03:46:00+00:00"]
    symbols = store.symbols()
    rows = store.query("SELECT symbol, ts, open, high, low, close, volume, oi, delta, iv, gamma, theta, vega "
                       "FROM ohlc_1min ORDER BY symbol, ts")
    assert len(rows) >= 220  # 110 symbols a minute; the strike window may move
    expected = [{"symbol": s, **{k: c[k] for k in ("ts", "open", "high", "low", "close", "volume", "oi",
                                                   "delta", "iv", "gamma", "theta", "vega")}}
                for s in sorted(symbols) for c in store.candles(s, 1, end=OPEN + timedelta(minutes=2))]
    assert rows == expected


def test_the_originals_queries_on_ohlc_1min(store):
    collect(store, 185)  # through 09:18:00, which completes 09:17
    future = next(s for s in store.symbols() if parse_symbol(s).kind == "FUT")
    # their backtests: %s placeholders, one symbol's minutes in time order
    bars = store.query("SELECT ts, open, high, low, close, volume FROM ohlc_1min WHERE symbol = %s "
                       "AND ts >= %s ORDER BY ts", (future, "2026-01-02T03:45:00+00:00"))
    assert [b["ts"][11:16] for b in bars] == ["03:45", "03:46", "03:47"]
    assert all(b["low"] <= min(b["open"], b["close"]) <= max(b["open"], b["close"]) <= b["high"]
               for b in bars)
    # minute volumes add up to the day's cumulative volume at the last tick of those minutes
    last = store.history(future, end_ts="2026-01-02T03:47:59+00:00")[-1]
    assert sum(b["volume"] for b in bars) == last["volume"] > 0
    assert store.query("SELECT symbol, ts, count(*) AS n FROM ohlc_1min GROUP BY symbol, ts "
                       "HAVING count(*) > 1") == []
    # their status script's question: is the last complete minute there for every symbol?
    in_minute = store.query("SELECT count(DISTINCT symbol) AS n FROM ltp_ticks WHERE ts >= %s AND ts < %s",
                            ("2026-01-02T03:47:00+00:00", "2026-01-02T03:48:00+00:00"))
    written = store.query("SELECT count(*) AS n FROM ohlc_1min WHERE ts = %s", ("2026-01-02T03:47:00+00:00",))
    assert written == in_minute


def test_oi_snapshots_hold_each_contracts_last_tick_of_the_minute(store):
    collect(store, 65)
    latest_in_minute = {t["symbol"]: t for t in store.snapshot_at("2026-01-02T03:45:55+00:00")}
    rows = store.query("SELECT symbol, token, ts, oi, volume, delta, gamma, theta, vega, iv "
                       "FROM oi_snapshots WHERE ts = (SELECT max(ts) FROM oi_snapshots) ORDER BY symbol")
    contracts = sorted(s for s, t in latest_in_minute.items() if t["oi"] is not None)
    assert [r["symbol"] for r in rows] == contracts and len(contracts) >= 108  # no indices
    for row in rows:
        tick = latest_in_minute[row["symbol"]]
        assert row == {k: tick[k] for k in row}


def test_the_backtest_view_dates_and_times_rows_in_ist(store):
    store.insert_ticks([
        make_tick("NIFTY 50", 26000.0, ts="2026-01-02T03:45:00+00:00", source="api"),
        make_tick("NIFTY 50", 26010.0, ts="2026-01-02T19:30:05+00:00", source="api"),  # 01:00 IST, 3 Jan
    ])
    rows = store.query("SELECT date_ist, time_ist, symbol, ltp, volume, oi, delta, gamma, theta, vega, iv, "
                       "ts, token, bid, ask, source FROM v_ltp_ticks_backtest WHERE symbol = %s ORDER BY ts",
                       ("NIFTY 50",))
    assert [(str(r["date_ist"]), str(r["time_ist"]), r["ltp"]) for r in rows] == [
        ("2026-01-02", "09:15:00", 26000.0), ("2026-01-03", "01:00:05", 26010.0)]
    assert rows[0]["ts"] == "2026-01-02T03:45:00+00:00" and rows[0]["source"] == "api"
    day = store.query("SELECT count(*) AS n FROM v_ltp_ticks_backtest WHERE date_ist = %s", ("2026-01-03",))
    assert day == [{"n": 1}]


def test_rebuild_rewrites_a_day_from_the_ticks(store, db_url, capsys):
    collect(store, 120)  # 09:15:00 .. 09:16:55: the collector wrote 09:15
    before = store.query("SELECT * FROM ohlc_1min ORDER BY symbol, ts")
    assert {r["ts"] for r in before} == {"2026-01-02T03:45:00+00:00"} and len(before) >= 110
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE ohlc_1min SET close = -1")
        conn.exec_driver_sql("DELETE FROM oi_snapshots")
    assert main(["candles", "--rebuild", "--date", "2026-01-02", "--db", db_url, "--no-progress"]) == 0
    after = store.query("SELECT * FROM ohlc_1min ORDER BY symbol, ts")
    # a past day is complete by the wall clock: its last minute is written too
    assert f"rebuilt {len(after)} candles over 1 day(s)" in capsys.readouterr().out
    assert [r for r in after if r["ts"] < "2026-01-02T03:46"] == before
    assert {r["ts"] for r in after} == {"2026-01-02T03:45:00+00:00", "2026-01-02T03:46:00+00:00"}
    assert store.query("SELECT count(*) AS n FROM oi_snapshots")[0]["n"] == \
        sum(r["oi"] is not None for r in after)
    assert main(["candles", "--date", "2026-01-02", "--db", db_url]) == 2


def test_a_collector_started_late_catches_up_a_few_minutes_a_snapshot(store):
    start = OPEN + timedelta(minutes=40)
    collect(store, 5, start=OPEN)  # the day's first snapshot, 09:15
    collector = Collector(store, MarketSimulator(seed=7), interval=5)
    collector.collect_once(start)  # 09:55: 40 minutes are complete, one has ticks
    assert minutes(store) == ["2026-01-02T03:45:00+00:00"]
    assert store._minutes_done == OPEN + timedelta(minutes=15)  # one step of 15 minutes
    collector.collect_once(start + timedelta(seconds=5))  # the rest: no ticks, one step
    assert store._minutes_done == start
    assert store.update_minutes(start + timedelta(minutes=1)) > 100  # and 09:55 itself
    assert minutes(store) == ["2026-01-02T03:45:00+00:00", "2026-01-02T04:25:00+00:00"]
