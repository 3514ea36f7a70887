"""NSE market hours: the holiday calendar, a real source idling outside sessions (and saying so
in ``status``), waking at the open; the simulator collecting at any hour; SmartAPI's watch list."""
from __future__ import annotations

import json
import logging
import threading
from datetime import date, datetime

import pytest
from support import wait_until
from test_sources import MONDAY, FakeAngel, make_api

from datacentre.core.calendar import holiday, is_trading_day, market_state, next_open, read_holidays
from datacentre.core.errors import ConfigError
from datacentre.core.ticks import format_ts, frozen_clock, parse_ts, set_clock
from datacentre.core.watchlist import default_watchlist, parse_watchlist
from datacentre.ops.collector import Collector
from datacentre.ops.services import ServiceFiles, _collector_state, format_status
from datacentre.sources import MarketSimulator
from datacentre.sources.smartapi import SmartApiSource


@pytest.mark.parametrize("moment, is_open, reason, opens", [
    ("2026-03-03T05:00:00Z", False, "holiday: Holi", "2026-03-04T03:45:00+00:00"),  # a Tuesday
    ("2026-03-04T03:44:59Z", False, "before the open", "2026-03-04T03:45:00+00:00"),
    ("2026-03-04T03:45:00Z", True, "open", "2026-03-04T03:45:00+00:00"),
    ("2026-03-04T10:00:00Z", True, "open", "2026-03-04T03:45:00+00:00"),  # 15:30 IST is in
    ("2026-03-04T10:00:01Z", False, "after the close", "2026-03-05T03:45:00+00:00"),
    ("2026-03-04T19:00:00Z", False, "before the open", "2026-03-05T03:45:00+00:00"),  # 00:30 IST
    ("2026-12-05T04:00:00Z", False, "weekend", "2026-12-07T03:45:00+00:00"),
    ("2026-12-24T20:00:00Z", False, "holiday: Christmas", "2026-12-28T03:45:00+00:00"),  # Friday, IST
    ("2026-01-14T11:00:00Z", False, "after the close", "2026-01-16T03:45:00+00:00"),  # 15 Jan: an election
])
def test_market_state(moment, is_open, reason, opens):
    state = market_state(moment)
    assert (state.open, state.reason, format_ts(state.next_open)) == (is_open, reason, opens)
    assert next_open(moment) == state.next_open


def test_the_calendar_is_dated_and_a_year_can_be_added(tmp_path, monkeypatch, caplog):
    assert holiday(date(2025, 10, 21)) == "Diwali Laxmi Pujan" and not is_trading_day(date(2025, 10, 21))
    assert is_trading_day(date(2026, 3, 4)) and not is_trading_day(date(2026, 3, 7))
    with caplog.at_level(logging.WARNING, "datacentre.core.calendar"), frozen_clock("2030-12-20T05:00:00Z"):
        assert is_trading_day(date(2031, 1, 27))
        assert is_trading_day(date(2099, 1, 27))  # far from now: no warning
    assert "no NSE holiday list for 2031" in caplog.text and "2099" not in caplog.text
    extra = tmp_path / "holidays_2031.csv"
    extra.write_text("# from NSE's circular for 2031\ndate,description\n2031-01-27,Republic Day (observed)\n")
    monkeypatch.setenv("DATACENTRE_HOLIDAYS", str(extra))
    assert holiday(date(2031, 1, 27)) == "Republic Day (observed)"
    assert market_state("2031-01-27T05:00:00Z").reason == "holiday: Republic Day (observed)"
    assert holiday(date(2026, 3, 3)) == "Holi"  # the package's file still counts
    extra.write_text("date,description\n27/01/2031,Republic Day\n")
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        read_holidays(extra)


class ClosedMarketSource:
    """A real source's contract with the collector: it keeps market hours."""

    name = "api"
    market_hours = True

    def __init__(self) -> None:
        self.moments: list[datetime] = []

    def snapshot(self, moment: datetime) -> list[dict]:
        self.moments.append(moment)
        return [{"symbol": "NIFTY 50", "token": "99926000", "ltp": 26000.0, "volume": 0, "source": "api"}]


def state_of(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def test_a_real_source_idles_on_a_holiday_and_wakes_at_the_open(store, tmp_path):
    source = ClosedMarketSource()
    state_file = tmp_path / "collector.state.json"
    collector = Collector(store, source, interval=1, state_file=state_file, idle_check_s=0.05)
    stop = threading.Event()
    previous = set_clock(lambda: parse_ts("2026-03-03T05:00:00Z"))  # Holi, 10:30 IST
    thread = threading.Thread(target=collector.run, args=(stop,), daemon=True)
    try:
        assert collector.collect_if_open() is None
        thread.start()
        assert wait_until(lambda: state_of(state_file).get("state") == "idle")
        state = state_of(state_file)
        assert (state["reason"], state["next_open"]) == ("holiday: Holi", "2026-03-04T03:45:00+00:00")
        assert "closed (holiday: Holi) until Wed 04 Mar 2026 09:15 IST" in state["detail"]
        assert source.moments == []
        # the status line of a running collector says so
        files = ServiceFiles("collector", tmp_path / "c.pid", tmp_path / "l", tmp_path / "o", state_file)
        row = {"name": "collector", "state": "running", "pid": state["pid"], "log": "collector.log",
               "collector_state": _collector_state(files, state["pid"])}
        assert "idle: market closed (holiday: Holi) until Wed 04 Mar 2026 09:15 IST" in format_status([row])
        # the next morning, half a second before the open
        with frozen_clock("2026-03-04T03:44:59.500Z", tick=True):
            assert wait_until(lambda: source.moments, timeout=10)
            assert wait_until(lambda: state_of(state_file).get("state") == "collecting")
        assert format_ts(source.moments[0]) == "2026-03-04T03:45:00+00:00"
    finally:
        stop.set()
        thread.join(5)
        set_clock(previous)
    assert store.latest("NIFTY 50")["ts"] == "2026-03-04T03:45:00+00:00"


def test_the_simulator_collects_at_any_hour(store):
    with frozen_clock("2026-03-03T21:30:00Z"):  # Holi, 03:00 IST the next night
        collector = Collector(store, MarketSimulator(seed=2), interval=5)
        assert not collector.keeps_market_hours
        assert collector.collect_if_open() > 100


def test_smartapi_keeps_market_hours_and_collects_its_watch_list():
    assert SmartApiSource.market_hours is True
    broker = FakeAngel()
    original = parse_watchlist("original")
    ticks = make_api(broker, watchlist=original).snapshot(MONDAY)
    spots = {"NIFTY": next(t["ltp"] for t in ticks if t["symbol"] == "NIFTY 50")}
    assert sorted(t["symbol"] for t in ticks) == sorted(original.symbols(MONDAY, spots))
    assert len(ticks) == 24
    ours = make_api(FakeAngel(), watchlist=default_watchlist(10)).snapshot(MONDAY)
    assert len(ours) == 110
    assert {t["symbol"][5:12] for t in ours if t["symbol"].startswith("NIFTY1")} == {"13JAN26"}  # next weekly
