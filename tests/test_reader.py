"""WebSocketDataReader: the cache, its questions, and a real broadcaster feeding it."""
from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from conftest import make_tick, synthetic_snapshot
from support import on_port_again, refused_port, wait_until

from datacentre import WebSocketDataReader
from datacentre.clients.reader import _has_data, _TickCache, _watchlist, nearest_future
from datacentre.core.errors import ConfigError, SymbolError
from datacentre.core.instruments import parse_symbol
from datacentre.core.ticks import TICK_FIELDS, format_ts, now_utc
from datacentre.feed.broadcaster import BroadcasterThread

T0 = datetime(2026, 1, 2, 8, 13, 5, tzinfo=UTC)


@pytest.fixture
def db_url(any_db_url):
    """Every test with a store runs on both engines."""
    return any_db_url


def chain(ts: str = "2026-01-02T08:13:05+00:00", spot: float = 26010.0) -> dict[str, dict]:
    """A cache: both indices, NIFTY futures of two expiries (BANKNIFTY's first), NIFTY options of
    two expiries (25500-26500 by 50) and BANKNIFTY options; BANKNIFTY inserted first."""
    ticks = [make_tick("BANKNIFTY27JAN26FUT", 59150.0), make_tick("NIFTY BANK", 59020.5),
             make_tick("BANKNIFTY27JAN2659000CE", 450.0, delta=0.5, gamma=0.0003, theta=-20.0,
                       vega=40.0, iv=13.0),
             make_tick("NIFTY 50", spot), make_tick("NIFTY24FEB26FUT", spot + 150),
             make_tick("NIFTY27JAN26FUT", spot + 90)]
    for expiry in ("06JAN26", "13JAN26"):
        for strike in range(25500, 26501, 50):
            for right, sign in (("CE", 1), ("PE", -1)):
                ticks.append(make_tick(f"NIFTY{expiry}{strike}{right}", 100.0, delta=0.5 * sign,
                                       gamma=0.001, theta=-10.0, vega=12.0, iv=12.5))
    return {t["symbol"]: {**t, "ts": ts} for t in ticks}


# ---------------------------------------------------------------- pure logic on a cache copy


def test_watchlist_is_index_future_and_atm_window_of_the_nearest_expiry():
    symbols = _watchlist(chain(spot=26010.0), 5, "NIFTY 50")
    assert symbols[:2] == ["NIFTY 50", "NIFTY27JAN26FUT"]  # nearest future, never BANKNIFTY's
    options = [parse_symbol(s) for s in symbols[2:]]
    assert len(symbols) == 2 + 22
    assert {o.expiry.isoformat() for o in options} == {"2026-01-06"}
    assert sorted({o.strike for o in options}) == [25750.0 + 50 * i for i in range(11)]  # ATM 26000
    assert [o.kind for o in options[:2]] == ["CE", "PE"]


def test_watchlist_is_cut_at_the_edge_of_the_strikes():
    symbols = _watchlist(chain(spot=26490.0), 5, "NIFTY 50")
    strikes = sorted({parse_symbol(s).strike for s in symbols[2:]})
    assert strikes == [26250.0 + 50 * i for i in range(6)]


def test_watchlist_for_banknifty_never_mixes_in_nifty():
    symbols = _watchlist(chain(), 5, "NIFTY BANK")
    assert symbols == ["NIFTY BANK", "BANKNIFTY27JAN26FUT", "BANKNIFTY27JAN2659000CE"]


def test_watchlist_skips_expired_contracts():
    snap = chain(ts="2026-01-07T04:00:00+00:00")  # the 06JAN26 options have expired
    options = [parse_symbol(s) for s in _watchlist(snap, 2, "NIFTY 50")[2:]]
    assert {o.expiry.isoformat() for o in options} == {"2026-01-13"}


@pytest.mark.parametrize("ts, expected", [
    ("2026-01-27T09:59:59+00:00", "NIFTY27JAN26FUT"),  # 15:29:59 IST on the last Tuesday
    ("2026-01-27T10:00:00+00:00", "NIFTY24FEB26FUT"),  # 15:30 IST: January has expired
])
def test_future_rolls_at_1530_ist_on_expiry_day(ts, expected):
    snap = chain(ts=ts)
    found, tick = nearest_future(snap, "NIFTY")
    assert found.symbol == expected and tick is snap[expected]
    assert _watchlist(snap, 1, "NIFTY 50")[1] == expected


def test_no_future_once_all_have_expired():
    assert nearest_future(chain(ts="2026-02-24T10:00:00+00:00"), "NIFTY") is None


def test_watchlist_before_any_data_is_empty():
    assert _watchlist({}, 5, "NIFTY 50") == []


@pytest.mark.parametrize("window", [-1, 1.5, "5", True])
def test_watchlist_rejects_a_bad_window(window):
    with pytest.raises(ConfigError, match="atm_window"):
        _watchlist(chain(), window, "NIFTY 50")


def test_has_data_needs_spot_and_options_of_the_same_index():
    snap = chain()
    assert _has_data(snap, None) and _has_data(snap, "NIFTY 50") and _has_data(snap, "NIFTY BANK")
    no_nifty_options = {s: t for s, t in snap.items() if not s.startswith("NIFTY0")
                        and not s.startswith("NIFTY1")}
    assert not _has_data(no_nifty_options, "NIFTY 50")
    assert _has_data(no_nifty_options, None)  # BANKNIFTY is complete
    assert not _has_data({"NIFTY 50": snap["NIFTY 50"]}, None)


def test_cache_views_are_copies_in_instrument_order():
    lock = threading.RLock()
    cache = _TickCache(lock)
    for symbol, tick in chain().items():
        cache[symbol] = tick
    keys = cache.keys()
    assert keys[:3] == ["NIFTY 50", "NIFTY27JAN26FUT", "NIFTY24FEB26FUT"]
    assert keys.index("NIFTY06JAN2625500CE") < keys.index("NIFTY13JAN2625500CE") < keys.index(
        "NIFTY BANK")
    assert keys[-3:] == ["NIFTY BANK", "BANKNIFTY27JAN26FUT", "BANKNIFTY27JAN2659000CE"]
    assert list(cache) == keys and [k for k, _ in cache.items()] == keys
    assert cache.values()[0]["symbol"] == "NIFTY 50"
    copy = cache.copy()
    assert type(copy) is dict and copy == dict(cache.items())


# ---------------------------------------------------------------- a real feed


@pytest.fixture
def reader(live_broadcaster):
    r = WebSocketDataReader(live_broadcaster.url)
    yield r
    r.close()


def test_the_cache_is_primed_on_connect(store, live_broadcaster):
    moment = now_utc().replace(microsecond=0)
    stale = moment - timedelta(days=40)
    store.write_snapshot(stale, synthetic_snapshot(stale))  # contracts long gone
    store.write_snapshot(moment, synthetic_snapshot(moment))
    reader = WebSocketDataReader(live_broadcaster.url)
    try:
        assert wait_until(reader.is_connected, 5)
        assert reader.wait_for_data(0.1)  # no live tick needed
        cached = reader._data_cache.copy()
    finally:
        reader.close()
    latest = {t["symbol"]: t for t in store.snapshot_at(moment)}
    assert cached == latest
    assert all(list(t) == list(TICK_FIELDS) for t in cached.values())


def test_wait_for_data_until_spot_and_options_arrive(store, live_broadcaster, reader):
    assert wait_until(reader.is_connected, 5)
    assert reader.wait_for_data(0.2) is False
    assert reader.get_spot_ltp("NIFTY 50") is None
    assert reader.pick_watchlist() == []
    moment = now_utc().replace(microsecond=0)
    store.write_snapshot(moment, synthetic_snapshot(moment, nifty=26010.0))
    live_broadcaster.notify()
    started = time.monotonic()
    assert reader.wait_for_data(10, "NIFTY 50") is True
    assert time.monotonic() - started < 5
    assert len(reader._data_cache) == len(synthetic_snapshot(moment))
    assert reader.get_spot_ltp("NIFTY 50") == 26010.0


def test_questions_answered_from_the_live_cache(store, live_broadcaster, reader):
    moment = now_utc().replace(microsecond=0)
    ticks = synthetic_snapshot(moment, nifty=26010.0, bank=59020.0, strikes=8)
    store.write_snapshot(moment, ticks)
    live_broadcaster.notify()
    assert reader.wait_for_data(10)
    by_symbol = {t["symbol"]: t for t in ticks}
    assert reader.get_spot_ltp() == 26010.0
    assert reader.get_spot_ltp("NIFTY BANK") == 59020.0
    assert reader.get_spot_ltp("BANKNIFTY") == 59020.0
    nifty_future = next(s for s in by_symbol if s.startswith("NIFTY") and s.endswith("FUT"))
    assert reader.get_future_ltp("NIFTY 50") == by_symbol[nifty_future]["ltp"]
    bank_future = next(s for s in by_symbol if s.startswith("BANKNIFTY") and s.endswith("FUT"))
    assert reader.get_future_ltp("NIFTY BANK") == by_symbol[bank_future]["ltp"]

    symbols = reader.pick_watchlist(atm_window=5, index_symbol="NIFTY 50")
    assert len(symbols) == 24 and symbols[:2] == ["NIFTY 50", nifty_future]
    market = reader.fetch_market_data(symbols + ["NIFTY06JAN2699000CE"])
    assert list(market) == symbols
    assert market["NIFTY 50"] == by_symbol["NIFTY 50"]
    assert {"ltp", "bid", "ask", "volume", "oi", "ts"} <= set(market[symbols[5]])

    greeks = reader.fetch_greeks_data("NIFTY 50")
    nifty_options = [s for s in by_symbol if parse_symbol(s).underlying == "NIFTY"
                     and parse_symbol(s).is_option]
    assert sorted(greeks) == sorted(nifty_options)
    sample = greeks[symbols[2]]
    assert sample["option_type"] == "CE" and sample["strike"] == parse_symbol(symbols[2]).strike
    assert sample["delta"] == by_symbol[symbols[2]]["delta"] and sample["iv"] is not None
    assert {"delta", "gamma", "theta", "vega", "iv", "strike", "option_type", "expiry"} <= set(sample)

    symbols2, market2, greeks2 = reader.collect_complete_data(atm_window=5, index_symbol="NIFTY 50")
    assert symbols2 == symbols and market2 == market_without(market, "NIFTY06JAN2699000CE")
    assert sorted(greeks2) == sorted(symbols[2:])

    with pytest.raises(SymbolError):
        reader.get_spot_ltp("SENSEX")


def market_without(market: dict, symbol: str) -> dict:
    return {k: v for k, v in market.items() if k != symbol}


def test_newer_ticks_replace_older_ones_never_the_reverse(store, live_broadcaster, reader):
    assert wait_until(reader.is_connected, 5)
    newer = format_ts(T0 + timedelta(seconds=5))
    store.insert_ticks([{**make_tick("NIFTY 50", 2.0), "ts": newer}])
    live_broadcaster.notify()
    assert wait_until(lambda: reader.get_spot_ltp() == 2.0)
    store.insert_ticks([{**make_tick("NIFTY 50", 1.0), "ts": format_ts(T0)}])  # a late import
    old = format_ts(T0 - timedelta(days=1))
    store.insert_ticks([{**make_tick("NIFTY01JAN2626000CE", 5.0), "ts": old}])  # a backfill
    live_broadcaster.notify()
    # older than the newest snapshot sent: stored, never broadcast
    assert wait_until(lambda: live_broadcaster.stats()["past_rows"] == 2)
    assert live_broadcaster.stats()["ticks_sent"] == 1
    # a newer tick pushed after them: once the reader has it, it has seen the late ones too
    store.insert_ticks([{**make_tick("NIFTY BANK", 3.0), "ts": format_ts(T0 + timedelta(seconds=10))}])
    live_broadcaster.notify()
    assert wait_until(lambda: "NIFTY BANK" in reader._data_cache)
    assert reader.get_spot_ltp() == 2.0
    assert list(reader._data_cache) == ["NIFTY 50", "NIFTY BANK"]


def test_seed_style_iteration_is_safe_while_ticks_arrive(live_broadcaster, live_market):
    """The client guide loops over ``reader._data_cache.keys()`` and indexes it while the feed writes."""
    reader = WebSocketDataReader(live_broadcaster.url)
    errors: list[Exception] = []
    try:
        assert reader.wait_for_data(10)
        deadline = time.monotonic() + 1.5
        loops = 0
        while time.monotonic() < deadline:
            try:
                for symbol in reader._data_cache.keys():  # noqa: SIM118 (the client guide's code)
                    if "FUT" in symbol and "NIFTY" in symbol:
                        fut_data = reader._data_cache[symbol]
                        break
                for symbol in reader._data_cache:
                    reader._data_cache[symbol]
                loops += 1
            except RuntimeError as exc:  # "dictionary changed size during iteration"
                errors.append(exc)
        assert loops > 10
        assert fut_data["symbol"].startswith("NIFTY") and not fut_data["symbol"].startswith("BANK")
    finally:
        reader.close()
    assert errors == []


def test_the_reader_reconnects_and_reprimes(store):
    moment = now_utc().replace(microsecond=0)
    store.write_snapshot(moment, synthetic_snapshot(moment, nifty=26010.0))
    first = BroadcasterThread(store, port=0, poll_interval=0.02).start()
    reader = WebSocketDataReader(first.url)
    second = None
    try:
        assert reader.wait_for_data(5)
        first.stop()
        assert wait_until(lambda: not reader.is_connected(), 5)
        assert reader.get_spot_ltp() == 26010.0  # the cache survives the outage
        later = moment + timedelta(seconds=5)
        store.write_snapshot(later, synthetic_snapshot(later, nifty=26020.0))  # missed while down
        second = on_port_again(first.port, lambda port: BroadcasterThread(store, port=port,
                                                                          poll_interval=0.02).start())
        assert wait_until(reader.is_connected, 10)
        assert reader.get_spot_ltp() == 26020.0  # filled in by the priming request
    finally:
        reader.close()
        first.stop()
        if second is not None:
            second.stop()


def test_connected_means_primed_even_without_data(live_broadcaster, reader):
    assert wait_until(reader.is_connected, 5)
    assert reader._primed.is_set()
    assert len(reader._data_cache) == 0


def test_live_ticks_wait_for_the_priming_snapshot():
    """Old rows pushed live (a backfill) before the latest snapshot arrives are not cached."""
    reader = WebSocketDataReader(f"ws://127.0.0.1:{refused_port()}")  # never connects: drive it by hand
    try:
        now = now_utc().replace(microsecond=0)
        old, current = synthetic_snapshot(now - timedelta(days=3)), synthetic_snapshot(now)
        reader._held, reader._welcomed_at = [], time.monotonic()
        for tick in old:
            reader._on_tick(tick)
        assert len(reader._data_cache) == 0
        reader._on_prime({"type": "latest_all", "ticks": current}, None)
        assert reader._data_cache.copy() == {t["symbol"]: t for t in current}
        assert reader._primed.is_set()

        reader._held, reader._welcomed_at = [], time.monotonic() - 60  # the reply never came
        later = synthetic_snapshot(now + timedelta(seconds=5), nifty=26100.0)
        reader._on_tick(later[0])
        assert reader.get_spot_ltp() == 26100.0
    finally:
        reader.close()
