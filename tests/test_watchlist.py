"""Watch lists: presets, the text form, expiry rules resolved at a moment, and the simulator
collecting exactly what a watch list names."""
from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from datacentre.core.errors import ConfigError
from datacentre.core.instruments import parse_symbol
from datacentre.core.watchlist import (
    MONTHLY,
    WEEKLY,
    configured_watchlist,
    default_watchlist,
    original_watchlist,
    parse_watchlist,
)
from datacentre.sources import MarketSimulator

# A Tuesday that is NIFTY's weekly and the monthly expiry at once (last Tuesday of December),
# before and after its 15:30 IST close.
EXPIRY_DAY_MORNING = datetime(2026, 12, 29, 5, 0, tzinfo=UTC)
EXPIRY_DAY_EVENING = datetime(2026, 12, 29, 11, 0, tzinfo=UTC)
SPOTS = {"NIFTY": 26010.0, "NIFTY BANK": 59040.0}


def spots_of(ticks: list[dict]) -> dict[str, float]:
    return {t["symbol"]: t["ltp"] for t in ticks if parse_symbol(t["symbol"]).kind == "INDEX"}


def test_the_default_is_our_110_symbols_and_the_simulator_collects_them():
    moment = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)
    watch = default_watchlist(10)
    symbols = watch.symbols(moment, SPOTS)
    assert len(symbols) == len(set(symbols)) == 110
    sim = MarketSimulator(seed=3)
    ticks = sim.snapshot(moment)
    collected = {t["symbol"] for t in ticks}
    assert sim.watchlist == watch
    # the watch list's windows are the simulator's minimum (it may publish wider wings)
    assert set(watch.symbols(moment, spots_of(ticks))) <= collected
    assert {(parse_symbol(s).underlying, parse_symbol(s).expiry) for s in collected
            if parse_symbol(s).is_option} == {(c.base, c.expiry) for c in watch.chains(moment)}


def test_the_original_preset_is_nifty_its_future_and_the_nearest_weekly_at_atm_5():
    moment = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)
    watch = parse_watchlist("original")
    assert watch == original_watchlist() and watch.bases == ("NIFTY",)
    symbols = watch.symbols(moment, SPOTS)
    assert symbols[:2] == ["NIFTY 50", "NIFTY29DEC26FUT"]
    options = [parse_symbol(s) for s in symbols[2:]]
    assert len(options) == 22 and {o.expiry for o in options} == {date(2026, 12, 8)}
    assert sorted({o.strike for o in options}) == [25750.0 + 50 * i for i in range(11)]
    ticks = MarketSimulator(seed=3, watchlist=watch).snapshot(moment)
    assert {parse_symbol(t["symbol"]).underlying for t in ticks} == {"NIFTY"}
    assert [t["symbol"] for t in ticks if not parse_symbol(t["symbol"]).is_option] == \
        ["NIFTY 50", "NIFTY29DEC26FUT"]
    assert {parse_symbol(t["symbol"]).expiry for t in ticks[2:]} == {date(2026, 12, 8)}
    assert set(watch.symbols(moment, spots_of(ticks))) <= {t["symbol"] for t in ticks}


def test_the_text_form_reads_back_to_the_same_watch_list():
    watch = parse_watchlist("nifty:weekly=8, next_weekly=4 ; BANKNIFTY:monthly=6")
    assert watch.spec == "NIFTY:weekly=8,next-weekly=4;BANKNIFTY:monthly=6"
    assert parse_watchlist(watch.spec) == watch
    assert parse_watchlist(default_watchlist(7).spec) == default_watchlist(7)
    assert parse_watchlist("NIFTY;BANKNIFTY", atm_window=3).spec == "NIFTY:weekly=3;BANKNIFTY:monthly=3"


@pytest.mark.parametrize("moment, expiries", [
    (EXPIRY_DAY_MORNING, [date(2026, 12, 29)]),  # the weekly is the monthly: one chain
    (EXPIRY_DAY_EVENING, [date(2027, 1, 5), date(2027, 1, 26)]),  # both rolled at 15:30 IST
])
def test_rules_that_name_the_same_expiry_are_one_chain_with_the_wider_window(moment, expiries):
    chains = parse_watchlist("NIFTY:weekly=3,monthly=7").chains(moment)
    assert [c.expiry for c in chains] == expiries
    if len(chains) == 1:
        assert (chains[0].window, chains[0].rule) == (7, WEEKLY)
    else:
        assert [(c.window, c.rule) for c in chains] == [(3, WEEKLY), (7, MONTHLY)]


@pytest.mark.parametrize("text, message", [
    ("SENSEX", "unknown underlying"),
    ("BANKNIFTY:weekly=3", "monthly options only"),
    ("NIFTY:weekly=0", "1 or more"),
    ("NIFTY:weekly=2.5", "whole number"),
    ("NIFTY:daily=3", "unknown expiry 'daily'"),
    ("NIFTY:weekly=3,weekly=4", "given twice"),
    ("NIFTY;NIFTY 50", "given twice"),
])
def test_a_bad_watch_list_says_what_is_wrong(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_watchlist(text)


def test_the_environment_chooses_unless_a_value_is_given(monkeypatch):
    monkeypatch.setenv("DATACENTRE_WATCHLIST", "original")
    assert configured_watchlist(10) == original_watchlist()
    assert configured_watchlist(10, "NIFTY:weekly=2").spec == "NIFTY:weekly=2"
    monkeypatch.delenv("DATACENTRE_WATCHLIST")
    assert configured_watchlist(6) == default_watchlist(6)



def test_the_original_watch_list_keeps_their_like_filters_to_one_expiry(store):
    from datacentre.core.config import Settings
    from datacentre.ops.collector import Collector
    from datacentre.sources import make_source

    settings = Settings.from_env(watchlist="original")
    source = make_source("sim", settings)
    assert source.watchlist == original_watchlist()
    collector = Collector(store, source, interval=5)
    for n in range(3):
        collector.collect_once(datetime(2026, 12, 2, 5, 0, 5 * n, tzinfo=UTC))
    calls = store.query("SELECT DISTINCT symbol FROM ltp_ticks WHERE symbol LIKE %s", ("NIFTY%CE",))
    assert calls and {parse_symbol(r["symbol"]).expiry for r in calls} == {date(2026, 12, 8)}
    bank = store.query("SELECT count(*) AS n FROM ltp_ticks WHERE symbol LIKE %s", ("%BANKNIFTY%",))
    assert bank == [{"n": 0}]
    with pytest.raises(ConfigError, match="watch list"):
        Settings.from_env(watchlist="NIFTY:daily=5")
