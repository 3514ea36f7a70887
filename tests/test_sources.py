"""Sources beyond the simulator: Angel One SmartAPI (against a stand-in for the broker's
servers), CSV playback (against a real simulator export), and the ``make_source`` factory.

The SmartAPI tests replace only what lies outside this project -- Angel One's servers as the
``SmartConnect`` methods return their replies, in the shapes SmartAPI documents -- and check
our side: which tokens are asked for and how, the mapping to ticks, Greeks, rate limiting and
errors. Nothing here contacts a broker.
"""
from __future__ import annotations

import csv
import math
import sys
import tracemalloc
import types
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from datacentre.core import pricing
from datacentre.core.config import Settings
from datacentre.core.errors import ConfigError, ImportFormatError, SourceError
from datacentre.core.instruments import (
    current_future_expiry,
    format_future,
    format_option,
    monthly_expiries,
    nearest_option_expiry,
    option_expiries,
    parse_symbol,
    strike_window,
    time_to_expiry,
    underlying,
)
from datacentre.core.ticks import TICK_FIELDS, format_ts
from datacentre.ops.collector import Collector
from datacentre.sources import (
    SOURCE_NAMES,
    CsvFileSource,
    MarketSimulator,
    SmartApiSource,
    Source,
    make_source,
)
from datacentre.sources.smartapi import ENV_VARS, MAX_TOKENS_PER_REQUEST
from datacentre.store.csvio import export_csv
from datacentre.store.tickstore import TickStore

MONDAY = datetime(2026, 1, 5, 5, 0, tzinfo=UTC)  # 10:30 IST; NIFTY weekly 06JAN26, BANKNIFTY 27JAN26
SPOTS = {"NIFTY": 26010.0, "BANKNIFTY": 59040.0}
VOL = 0.12  # the stand-in market prices every option at this volatility
BROKER_IV = 13.5  # ... while its optionGreek reports this one, so the two are told apart
RATE = 0.065
CREDENTIALS = {"client_code": "A123456", "api_key": "key", "pin": "9876", "totp_secret": "JBSWY3DPEHPK3PXP"}


# ---------------------------------------------------------------- a stand-in for Angel One

class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class FakeAngel:
    """Angel One's servers as ``SmartConnect`` methods return their JSON replies.

    Lists both underlyings' futures and options (three expiries, a wide strike range) with
    tokens of its own; prices options by Black-Scholes at ``VOL``. ``fail[method]`` is a
    queue of replies or exceptions served before the normal answer; ``hidden`` symbols are
    left out of expiry-wide searches (found only when searched for by name); ``no_depth``
    symbols have an empty order book; ``no_greeks`` are missing from optionGreek.
    """

    def __init__(self, clock: FakeClock | None = None, *, moment: datetime = MONDAY, latency: float = 0.25):
        self.moment = moment
        self.spots = dict(SPOTS)
        self.clock = clock
        self.latency = latency
        self.calls: list[tuple[str, tuple, float | None]] = []
        self.fail: dict[str, list] = {}
        self.hidden: set[str] = set()
        self.no_depth: set[str] = set()
        self.no_greeks: set[str] = set()
        self.listing: dict[str, str] = {}
        for base in SPOTS:
            u = underlying(base)
            for expiry in monthly_expiries(moment, 3):
                self._list(format_future(base, expiry))
            low, high = (20_000, 32_000) if base == "NIFTY" else (45_000, 70_000)
            for expiry in option_expiries(base, moment, 3):
                for k in range(low, high + 1, u.strike_step):
                    for right in ("CE", "PE"):
                        self._list(format_option(base, expiry, k, right))
        self.by_token = {tok: sym for sym, tok in self.listing.items()}
        # other products whose names start alike, as a real search returns them
        self.noise = [{"exchange": "NFO", "tradingsymbol": "NIFTYNXT5027JAN26FUT", "symboltoken": "1"},
                      {"exchange": "NFO", "tradingsymbol": "FINNIFTY27JAN2626000CE", "symboltoken": "2"}]

    def _list(self, symbol: str) -> None:
        self.listing[symbol] = str(40_000 + len(self.listing))

    def _record(self, method: str, *args):
        self.calls.append((method, args, self.clock() if self.clock else None))
        if self.clock:
            self.clock.now += self.latency
        queue = self.fail.get(method)
        if queue:
            outcome = queue.pop(0)
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome
        return None

    def called(self, method: str) -> list[tuple]:
        return [args for name, args, _ in self.calls if name == method]

    # -- SmartConnect methods

    def generateSession(self, client_code, password, totp):
        return self._record("generateSession", client_code, password, totp) or {
            "status": True, "message": "SUCCESS", "errorcode": "",
            "data": {"clientcode": client_code, "name": "TEST", "jwtToken": "Bearer x", "refreshToken": "y",
                     "feedToken": "z"}}

    def searchScrip(self, exchange, searchscrip):
        failed = self._record("searchScrip", exchange, searchscrip)
        if failed:
            return failed
        found = [{"exchange": "NFO", "tradingsymbol": s, "symboltoken": t} for s, t in self.listing.items()
                 if searchscrip in s and (s == searchscrip or s not in self.hidden)]
        return {"status": True, "message": "SUCCESS", "errorcode": "", "data": found + self.noise}

    def price(self, symbol: str) -> float:
        ins = parse_symbol(symbol)
        spot = self.spots[ins.underlying]
        t = time_to_expiry(ins.expiry, self.moment)
        if ins.kind == "FUT":
            return round(spot * math.exp(RATE * t) / 0.05) * 0.05
        return max(round(float(pricing.bs_price(ins.kind, spot, ins.strike, t, RATE, VOL)), 2), 0.05)

    def getMarketData(self, mode, exchangeTokens):
        failed = self._record("getMarketData", mode, exchangeTokens)
        if failed:
            return failed
        fetched, unfetched = [], []
        for exchange, tokens in exchangeTokens.items():
            for token in tokens:
                entry = self._quote(exchange, token)
                if entry is None:
                    unfetched.append({"exchange": exchange, "symbolToken": token, "message": "Invalid token",
                                      "errorCode": "AB4010"})
                else:
                    fetched.append(entry)
        return {"status": True, "message": "SUCCESS", "errorcode": "",
                "data": {"fetched": fetched, "unfetched": unfetched}}

    def _quote(self, exchange: str, token: str) -> dict | None:
        empty = [{"price": 0, "quantity": 0, "orders": 0}] * 5
        if exchange == "NSE":
            index = {u.index_token: u for u in map(underlying, SPOTS)}.get(token)
            if index is None:
                return None
            return {"exchange": "NSE", "tradingSymbol": index.index_symbol.replace(" ", "-"),
                    "symbolToken": token, "ltp": self.spots[index.base], "open": 0, "high": 0, "low": 0,
                    "close": 0, "tradeVolume": 0, "opnInterest": 0, "depth": {"buy": empty, "sell": empty}}
        symbol = self.by_token.get(token)
        if symbol is None:
            return None
        ltp = self.price(symbol)
        n = int(token) - 40_000
        depth = {"buy": empty, "sell": empty} if symbol in self.no_depth else {
            "buy": [{"price": round(ltp - 0.05, 2), "quantity": 650, "orders": 3}] + empty[1:],
            "sell": [{"price": round(ltp + 0.05, 2), "quantity": 975, "orders": 4}] + empty[1:]}
        return {"exchange": "NFO", "tradingSymbol": symbol, "symbolToken": token, "ltp": ltp,
                "open": ltp, "high": ltp, "low": ltp, "close": ltp, "lastTradeQty": 65,
                "exchFeedTime": "05-Jan-2026 10:30:00", "exchTradeTime": "05-Jan-2026 10:29:59",
                "netChange": 0.0, "percentChange": 0.0, "avgPrice": ltp, "tradeVolume": 1_000 + 65 * n,
                "opnInterest": 50_000 + 650 * n, "lowerCircuit": 0.05, "upperCircuit": ltp * 2,
                "totBuyQuan": 650, "totSellQuan": 975, "52WeekLow": 0.05, "52WeekHigh": ltp * 3,
                "depth": depth}

    def broker_greeks(self, symbol: str) -> dict[str, float]:
        ins = parse_symbol(symbol)
        g = pricing.greeks(ins.kind, self.spots[ins.underlying], ins.strike,
                           time_to_expiry(ins.expiry, self.moment), RATE, BROKER_IV / 100)
        return {k: round(float(g[k]), 6) for k in ("delta", "gamma", "theta", "vega")}

    def optionGreek(self, params):
        failed = self._record("optionGreek", params)
        if failed:
            return failed
        rows = []
        for symbol in self.listing:
            ins = parse_symbol(symbol)
            if ins.kind not in ("CE", "PE") or ins.underlying != params["name"] or symbol in self.no_greeks:
                continue
            expiry = f"{ins.expiry:%d}{ins.expiry:%b}{ins.expiry:%Y}".upper()
            if expiry != params["expirydate"]:
                continue
            g = self.broker_greeks(symbol)
            rows.append({"name": ins.underlying, "expiry": expiry, "strikePrice": f"{ins.strike:.6f}",
                         "optionType": ins.kind, **{k: f"{v:.6f}" for k, v in g.items()},
                         "impliedVolatility": f"{BROKER_IV:.6f}", "tradeVolume": "1234.00"})
        if not rows:
            return {"status": False, "message": "No Data Available", "errorcode": "AB9019", "data": None}
        return {"status": True, "message": "SUCCESS", "errorcode": "", "data": rows}


def make_api(broker: FakeAngel, **options) -> SmartApiSource:
    options.setdefault("min_request_interval", None)
    return SmartApiSource(**CREDENTIALS, connect=lambda: broker, totp=lambda: "123456", **options)


def window_symbols(moment: datetime, spots: dict[str, float], n: int) -> set[str]:
    out = set()
    for base, spot in spots.items():
        expiry = nearest_option_expiry(base, moment)
        for k in strike_window(spot, underlying(base).strike_step, n):
            out |= {format_option(base, expiry, k, "CE"), format_option(base, expiry, k, "PE")}
    return out


def by_symbol(ticks: list[dict]) -> dict[str, dict]:
    return {t["symbol"]: t for t in ticks}


def quote_sizes(broker: FakeAngel, since: int = 0) -> list[int]:
    return [sum(len(v) for v in args[1].values()) for name, args, _ in broker.calls[since:]
            if name == "getMarketData"]


# ---------------------------------------------------------------- SmartAPI: mapping

def test_smartapi_snapshot_maps_quotes_to_ticks():
    broker = FakeAngel()
    source = make_api(broker, atm_window=3)
    assert isinstance(source, Source) and source.name == "api"
    broker.no_depth.add("NIFTY06JAN2626150CE")
    ticks = source.snapshot(MONDAY)

    futures = {format_future(b, current_future_expiry(MONDAY)) for b in SPOTS}
    expected = {"NIFTY 50", "NIFTY BANK"} | futures | window_symbols(MONDAY, SPOTS, 3)
    assert [t["symbol"] for t in ticks].count("NIFTY 50") == 1
    assert set(by_symbol(ticks)) == expected and len(ticks) == len(expected) == 2 + 2 + 2 * 14
    assert all(tuple(t) == TICK_FIELDS for t in ticks)
    assert {t["ts"] for t in ticks} == {"2026-01-05T05:00:00+00:00"}
    assert {t["source"] for t in ticks} == {"api"}

    rows = by_symbol(ticks)
    index = rows["NIFTY 50"]
    assert (index["token"], index["ltp"], index["volume"], index["oi"]) == ("99926000", 26010.0, 0, None)
    assert index["bid"] is index["ask"] is index["delta"] is index["iv"] is None
    assert rows["NIFTY BANK"]["token"] == "99926009"

    fut = rows["NIFTY27JAN26FUT"]
    n = int(broker.listing["NIFTY27JAN26FUT"]) - 40_000
    assert fut["token"] == broker.listing["NIFTY27JAN26FUT"]
    assert fut["ltp"] == broker.price("NIFTY27JAN26FUT") > 26010
    assert (fut["bid"], fut["ask"]) == (round(fut["ltp"] - 0.05, 2), round(fut["ltp"] + 0.05, 2))
    assert (fut["volume"], fut["oi"]) == (1_000 + 65 * n, 50_000 + 650 * n)
    assert fut["delta"] is None and fut["iv"] is None

    call = rows["NIFTY06JAN2626000CE"]
    n = int(broker.listing["NIFTY06JAN2626000CE"]) - 40_000
    assert call["token"] == broker.listing["NIFTY06JAN2626000CE"]
    assert call["ltp"] == broker.price("NIFTY06JAN2626000CE")
    assert call["bid"] == round(call["ltp"] - 0.05, 2) and call["ask"] == round(call["ltp"] + 0.05, 2)
    assert (call["volume"], call["oi"]) == (1_000 + 65 * n, 50_000 + 650 * n)
    # an empty order book is "no quote", never 0
    assert rows["NIFTY06JAN2626150CE"]["bid"] is None and rows["NIFTY06JAN2626150CE"]["ask"] is None
    # BANKNIFTY... contains NIFTY: each underlying gets its own expiry and strikes
    assert {parse_symbol(s).expiry for s in rows if s.startswith("BANKNIFTY") and s.endswith("CE")} == {
        date(2026, 1, 27)}


def test_smartapi_writes_through_the_collector(store):
    broker = FakeAngel()
    written = Collector(store, make_api(broker, atm_window=2)).collect_once(MONDAY)
    assert written == 2 + 2 + 2 * 10
    latest = store.latest("NIFTY06JAN2626000PE")
    assert latest["source"] == "api" and latest["ts"] == "2026-01-05T05:00:00+00:00"
    assert latest["iv"] == BROKER_IV


# ---------------------------------------------------------------- SmartAPI: requests

def test_smartapi_quotes_in_batches_of_at_most_50():
    broker = FakeAngel()
    source = make_api(broker)  # ATM +- 10: 2 indices + 2 futures + 84 options = 88 tokens
    first = source.snapshot(MONDAY)
    assert len(first) == 88
    # first snapshot: indices and futures, then the options once spot is known
    assert quote_sizes(broker) == [4, 50, 34]
    assert all(args[0] == "FULL" for args in broker.called("getMarketData"))
    nse = broker.called("getMarketData")[0][1]["NSE"]
    assert nse == ["99926000", "99926009"]

    mark = len(broker.calls)
    second = source.snapshot(MONDAY + timedelta(seconds=5))
    assert len(second) == 88
    # steady state: everything in ceil(88/50) requests, no searches, one optionGreek per underlying
    assert quote_sizes(broker, mark) == [50, 38]
    assert max(quote_sizes(broker)) <= MAX_TOKENS_PER_REQUEST
    assert [name for name, _, _ in broker.calls[mark:]].count("searchScrip") == 0
    assert [args[0] for args in broker.called("optionGreek")][-2:] == [
        {"name": "NIFTY", "expirydate": "06JAN2026"}, {"name": "BANKNIFTY", "expirydate": "27JAN2026"}]
    asked = {tok for args in broker.called("getMarketData")[-2:] for toks in args[1].values() for tok in toks}
    assert asked == {t["token"] for t in second}


def test_smartapi_searches_each_expiry_once_and_parses_results():
    broker = FakeAngel()
    source = make_api(broker, atm_window=2)
    source.snapshot(MONDAY)
    searches = broker.called("searchScrip")
    # futures share NIFTY's and BANKNIFTY's monthly expiry text; NIFTY's weekly is separate
    assert sorted(searches) == [("NFO", "BANKNIFTY27JAN26"), ("NFO", "NIFTY06JAN26"), ("NFO", "NIFTY27JAN26")]
    # "NIFTY27JAN26" also matches BANKNIFTY27JAN26... and the noise rows; tokens still map exactly
    ticks = by_symbol(source.snapshot(MONDAY + timedelta(seconds=5)))
    for symbol, tick in ticks.items():
        if parse_symbol(symbol).kind != "INDEX":
            assert tick["token"] == broker.listing[symbol]
    assert len(broker.called("searchScrip")) == 3


def test_smartapi_rate_limit_spaces_every_call():
    clock = FakeClock()
    broker = FakeAngel(clock, latency=0.25)
    source = make_api(broker, atm_window=10, min_request_interval=1.0, clock=clock, sleep=clock.sleep)
    source.snapshot(MONDAY)
    source.snapshot(MONDAY + timedelta(seconds=5))
    starts = [at for _, _, at in broker.calls]
    assert len(starts) >= 10
    gaps = np.diff(starts)
    assert gaps.min() >= 1.0 - 1e-9
    assert clock.slept and all(s > 0 for s in clock.slept)
    assert sum(clock.slept) == pytest.approx(len(starts) - 1 - 0.25 * (len(starts) - 1))

    free_clock = FakeClock()
    free = FakeAngel(free_clock)
    make_api(free, min_request_interval=None, clock=free_clock, sleep=free_clock.sleep).snapshot(MONDAY)
    assert free_clock.slept == []


# ---------------------------------------------------------------- SmartAPI: tokens follow the market

def test_smartapi_window_follows_spot():
    broker = FakeAngel()
    source = make_api(broker, atm_window=3)
    source.snapshot(MONDAY)
    broker.spots["NIFTY"] = 26_410.0  # eight strikes up
    mark = len(broker.calls)
    ticks = by_symbol(source.snapshot(MONDAY + timedelta(minutes=5)))
    expected = window_symbols(MONDAY, {"NIFTY": 26_410.0, "BANKNIFTY": SPOTS["BANKNIFTY"]}, 3)
    assert {s for s in ticks if parse_symbol(s).kind in ("CE", "PE")} == expected
    assert "NIFTY06JAN2626400CE" in ticks and "NIFTY06JAN2626000CE" not in ticks
    assert all(ticks[s]["token"] == broker.listing[s] for s in expected)
    # the expiry was searched already: the new strikes cost one more quote request, no search
    assert [name for name, _, _ in broker.calls[mark:]].count("searchScrip") == 0
    assert quote_sizes(broker, mark) == [2 + 2 + 28, 14]


def test_smartapi_searches_a_contract_the_expiry_search_missed():
    broker = FakeAngel()
    broker.hidden = {"NIFTY06JAN2626300CE", "NIFTY06JAN2626300PE"}
    source = make_api(broker, atm_window=3)
    ticks = by_symbol(source.snapshot(MONDAY + timedelta(seconds=0)))
    assert "NIFTY06JAN2626150CE" in ticks  # 26010 -> ATM 26000, window up to 26150
    broker.spots["NIFTY"] = 26_160.0  # window now reaches 26300
    ticks = by_symbol(source.snapshot(MONDAY + timedelta(seconds=5)))
    assert ticks["NIFTY06JAN2626300CE"]["token"] == broker.listing["NIFTY06JAN2626300CE"]
    assert ("NFO", "NIFTY06JAN2626300CE") in broker.called("searchScrip")
    assert ("NFO", "NIFTY06JAN2626300PE") in broker.called("searchScrip")


def test_smartapi_skips_unlisted_contracts_without_searching_every_snapshot():
    broker = FakeAngel()
    gone = "NIFTY06JAN2626150PE"
    del broker.listing[gone]
    broker.by_token = {tok: sym for sym, tok in broker.listing.items()}
    source = make_api(broker, atm_window=3)
    assert gone not in by_symbol(source.snapshot(MONDAY))
    searches = len(broker.called("searchScrip"))
    assert ("NFO", gone) in broker.called("searchScrip")
    assert gone not in by_symbol(source.snapshot(MONDAY + timedelta(seconds=5)))
    assert len(broker.called("searchScrip")) == searches


def test_smartapi_expiry_roll_switches_contracts():
    tuesday = datetime(2026, 1, 6, 9, 0, tzinfo=UTC)  # 14:30 IST on NIFTY's expiry day
    broker = FakeAngel(moment=tuesday)
    source = make_api(broker, atm_window=1)
    before = by_symbol(source.snapshot(tuesday))
    assert "NIFTY06JAN2626000CE" in before
    after_close = tuesday + timedelta(hours=1, minutes=5)  # 15:35 IST: the weekly has expired
    broker.moment = after_close
    after = by_symbol(source.snapshot(after_close))
    options = {s for s in after if s.startswith("NIFTY") and parse_symbol(s).kind in ("CE", "PE")}
    assert options == {f"NIFTY13JAN26{k}{r}" for k in (25950, 26000, 26050) for r in ("CE", "PE")}
    assert ("NFO", "NIFTY13JAN26") in broker.called("searchScrip")
    assert all(after[s]["token"] == broker.listing[s] for s in options)


# ---------------------------------------------------------------- SmartAPI: Greeks

def test_smartapi_takes_greeks_from_option_greek():
    broker = FakeAngel()
    broker.no_greeks = {"NIFTY06JAN2626000PE"}
    ticks = by_symbol(make_api(broker, atm_window=3).snapshot(MONDAY))
    call = ticks["NIFTY06JAN2626050CE"]
    given = broker.broker_greeks("NIFTY06JAN2626050CE")
    assert call["iv"] == BROKER_IV
    assert call["delta"] == round(given["delta"], 4) and call["gamma"] == round(given["gamma"], 6)
    assert call["theta"] == round(given["theta"], 4) and call["vega"] == round(given["vega"], 4)
    # a contract optionGreek is silent about gets Greeks computed from its price
    put = ticks["NIFTY06JAN2626000PE"]
    assert put["iv"] == pytest.approx(VOL * 100, abs=0.01)
    assert put["delta"] < 0 and put["gamma"] > 0 and put["theta"] < 0 and put["vega"] > 0


def test_smartapi_computes_greeks_from_prices_when_asked_to():
    broker = FakeAngel()
    ticks = make_api(broker, atm_window=4, broker_greeks=False).snapshot(MONDAY)
    assert broker.called("optionGreek") == []
    options = [t for t in ticks if parse_symbol(t["symbol"]).kind in ("CE", "PE")]
    assert len(options) == 2 * 2 * 9
    for tick in options:
        ins = parse_symbol(tick["symbol"])
        spot = SPOTS[ins.underlying]
        assert tick["iv"] == pytest.approx(VOL * 100, abs=0.01), tick["symbol"]
        t = time_to_expiry(ins.expiry, MONDAY)
        expected = pricing.greeks(ins.kind, spot, ins.strike, t, RATE, tick["iv"] / 100)
        for name in ("delta", "gamma", "theta", "vega"):
            assert tick[name] == pytest.approx(float(expected[name]), rel=1e-3, abs=1e-4), \
                (tick["symbol"], name)


def test_smartapi_price_no_volatility_fits_leaves_greeks_null():
    broker = FakeAngel()
    below_intrinsic = "NIFTY06JAN2625850CE"  # intrinsic about 160
    original = broker.price
    broker.price = lambda s: 100.0 if s == below_intrinsic else original(s)
    ticks = by_symbol(make_api(broker, atm_window=3, broker_greeks=False).snapshot(MONDAY))
    assert ticks[below_intrinsic]["ltp"] == 100.0
    assert all(ticks[below_intrinsic][k] is None for k in ("delta", "gamma", "theta", "vega", "iv"))


def test_smartapi_option_greek_refusal_falls_back_to_computed():
    broker = FakeAngel()
    broker.fail["optionGreek"] = [{"status": False, "message": "No Data Available", "errorcode": "AB9019",
                                   "data": None}]
    ticks = by_symbol(make_api(broker, atm_window=2).snapshot(MONDAY))
    assert ticks["NIFTY06JAN2626000CE"]["iv"] == pytest.approx(VOL * 100, abs=0.01)  # computed
    assert ticks["BANKNIFTY27JAN2659000CE"]["iv"] == BROKER_IV  # the second call answered


# ---------------------------------------------------------------- SmartAPI: errors

@pytest.mark.parametrize("reply, message", [
    ({"status": False, "message": "Access denied because of exceeding access rate", "errorcode": "AB1019",
      "data": None}, "exceeding access rate"),
    (ConnectionError("Max retries exceeded with url: /rest/secure/angelbroking/market/v1/quote"),
     "ConnectionError: Max retries"),
    ({"status": True, "message": "SUCCESS", "errorcode": "", "data": None}, "no data.fetched"),
    ({"status": True, "data": {"fetched": [{"tradingSymbol": "NIFTY-INDEX", "symbolToken": "99926000"}],
                               "unfetched": []}}, "lacks a numeric ltp"),
    ("<html>502 Bad Gateway</html>", "expected a JSON object"),
])
def test_smartapi_quote_errors_raise_source_error(reply, message):
    broker = FakeAngel()
    source = make_api(broker, atm_window=2)
    broker.fail["getMarketData"] = [reply]
    with pytest.raises(SourceError, match=message):
        source.snapshot(MONDAY)
    assert len(source.snapshot(MONDAY + timedelta(seconds=5))) == 2 + 2 + 2 * 10  # the retry works
    assert len(broker.called("generateSession")) == 1  # ... on the same session


def test_smartapi_missing_index_quote_is_an_error():
    broker = FakeAngel()
    broker.fail["getMarketData"] = [{"status": True, "data": {"fetched": [], "unfetched": [
        {"exchange": "NSE", "symbolToken": "99926000", "message": "Invalid token", "errorCode": "AB4010"}]}}]
    with pytest.raises(SourceError, match="no price for NIFTY 50"):
        make_api(broker, atm_window=2).snapshot(MONDAY)


def test_smartapi_session_error_logs_in_again():
    broker = FakeAngel()
    source = make_api(broker, atm_window=2)
    source.snapshot(MONDAY)
    broker.fail["getMarketData"] = [{"status": False, "message": "Invalid Token", "errorcode": "AG8001",
                                     "data": ""}]
    with pytest.raises(SourceError, match="Invalid Token"):
        source.snapshot(MONDAY + timedelta(seconds=5))
    source.snapshot(MONDAY + timedelta(seconds=10))
    assert broker.called("generateSession") == [("A123456", "9876", "123456")] * 2


def test_smartapi_login_refused():
    broker = FakeAngel()
    broker.fail["generateSession"] = [{"status": False, "message": "Invalid totp", "errorcode": "AB1050",
                                       "data": None}]
    source = make_api(broker)
    with pytest.raises(SourceError, match="login of A123456 refused: Invalid totp"):
        source.snapshot(MONDAY)
    assert broker.called("getMarketData") == []
    assert len(source.snapshot(MONDAY + timedelta(seconds=5))) == 88


# ---------------------------------------------------------------- SmartAPI: packages and settings

def test_smartapi_missing_package_is_a_config_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "SmartApi", None)  # import fails as when it is not installed
    with pytest.raises(ConfigError, match="pip install smartapi-python pyotp"):
        SmartApiSource(**CREDENTIALS)


def test_smartapi_missing_pyotp_is_a_config_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyotp", None)
    fake = types.ModuleType("SmartApi")
    fake.SmartConnect = lambda api_key: FakeAngel()
    monkeypatch.setitem(sys.modules, "SmartApi", fake)
    with pytest.raises(ConfigError, match="pyotp"):
        SmartApiSource(**CREDENTIALS)
    source = SmartApiSource(**CREDENTIALS, connect=FakeAngel)  # found at login instead
    with pytest.raises(ConfigError, match="pip install smartapi-python pyotp"):
        source.snapshot(MONDAY)


def test_smartapi_default_connection_and_totp(monkeypatch):
    made = []

    class Connect(FakeAngel):
        def __init__(self, api_key):
            super().__init__()
            made.append(api_key)

    class TOTP:
        def __init__(self, secret):
            self.secret = secret

        def now(self):
            if self.secret != "JBSWY3DPEHPK3PXP":
                raise ValueError("Non-base32 digit found")
            return "654321"

    monkeypatch.setitem(sys.modules, "SmartApi", types.SimpleNamespace(SmartConnect=Connect))
    monkeypatch.setitem(sys.modules, "pyotp", types.SimpleNamespace(TOTP=TOTP))
    source = SmartApiSource(**CREDENTIALS, atm_window=1, min_request_interval=None)
    assert len(source.snapshot(MONDAY)) == 2 + 2 + 2 * 6
    assert made == ["key"]
    assert "9876" not in repr(source) and "JBSWY" not in repr(source)

    bad = SmartApiSource(**{**CREDENTIALS, "totp_secret": "not a secret!"}, min_request_interval=None)
    with pytest.raises(ConfigError, match="DATACENTRE_SMARTAPI_TOTP_SECRET is not a valid base32"):
        bad.snapshot(MONDAY)


def test_smartapi_from_env_names_missing_variables(monkeypatch):
    for var in ENV_VARS.values():
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError) as info:
        SmartApiSource.from_env(Settings())
    assert all(var in str(info.value) for var in ENV_VARS.values())

    monkeypatch.setenv("DATACENTRE_SMARTAPI_CLIENT_CODE", "A123456")
    monkeypatch.setenv("DATACENTRE_SMARTAPI_PIN", "  ")
    with pytest.raises(ConfigError) as info:
        SmartApiSource.from_env(Settings())
    text = str(info.value)
    assert "DATACENTRE_SMARTAPI_CLIENT_CODE" not in text
    assert all(v in text for v in ("DATACENTRE_SMARTAPI_API_KEY", "DATACENTRE_SMARTAPI_PIN",
                                   "DATACENTRE_SMARTAPI_TOTP_SECRET"))


def set_credentials(monkeypatch) -> None:
    for key, var in ENV_VARS.items():
        monkeypatch.setenv(var, CREDENTIALS[key])


def test_smartapi_from_env_uses_settings(monkeypatch):
    set_credentials(monkeypatch)
    broker = FakeAngel()
    source = SmartApiSource.from_env(Settings(atm_window=2, risk_free_rate=0.07), connect=lambda: broker,
                                     totp=lambda: "111111", min_request_interval=None)
    assert (source.atm_window, source.risk_free_rate, source.client_code) == (2, 0.07, "A123456")
    assert len(source.snapshot(MONDAY)) == 2 + 2 + 2 * 10
    assert broker.called("generateSession") == [("A123456", "9876", "111111")]


@pytest.mark.parametrize("options, message", [
    ({"atm_window": 0}, "ATM window"),
    ({"underlyings": ("FINNIFTY",)}, "unknown underlying"),
    ({"min_request_interval": -1}, "min_request_interval"),
])
def test_smartapi_rejects_bad_options(options, message):
    with pytest.raises(ConfigError, match=message):
        SmartApiSource(**CREDENTIALS, connect=FakeAngel, **options)


# ---------------------------------------------------------------- CSV playback

SESSION_DAY = date(2026, 1, 5)


@pytest.fixture(scope="module")
def sim_export(tmp_path_factory):
    """A simulator session (seed 1, every 300 s) stored, then exported to CSV.

    Returns the path and the stored snapshots (lists of tick dicts, in ts order).
    """
    folder = tmp_path_factory.mktemp("export")
    with TickStore(f"sqlite:///{folder / 'sim.db'}") as store:
        with store.bulk_writer() as write:
            write((moment, ticks) for moment, ticks in MarketSimulator(seed=1).session(SESSION_DAY, 300))
        path = folder / "session.csv"
        with path.open("w", newline="") as out:
            rows = export_csv(store, out)
        snapshots: list[list[dict]] = []
        for tick in store.iter_ticks():
            if not snapshots or snapshots[-1][0]["ts"] != tick["ts"]:
                snapshots.append([])
            snapshots[-1].append(tick)
    assert rows == sum(map(len, snapshots)) and len(snapshots) == 76
    return path, snapshots


def without(tick: dict, *fields: str) -> dict:
    return {k: v for k, v in tick.items() if k not in fields}


def test_csv_plays_every_snapshot_in_order(sim_export):
    path, stored = sim_export
    with CsvFileSource(path) as source:
        assert isinstance(source, Source) and source.name == "csv" and source.snapshots == 76
        start = datetime(2026, 2, 2, 4, 0, tzinfo=UTC)
        for i, expected in enumerate(stored):
            moment = start + timedelta(seconds=5 * i)
            got = source.snapshot(moment)
            assert [without(t, "ts", "source") for t in got] == [without(t, "ts", "source") for t in expected]
            assert {t["ts"] for t in got} == {format_ts(moment)} and {t["source"] for t in got} == {"csv"}
            assert all(tuple(t) == TICK_FIELDS for t in got)
        with pytest.raises(SourceError, match="end of file"):
            source.snapshot(start + timedelta(hours=1))
        with pytest.raises(SourceError, match="end of file"):  # and stays there
            source.snapshot(start + timedelta(hours=2))
        assert source.played == 76


def test_csv_loops_back_to_the_first_snapshot(sim_export):
    path, stored = sim_export
    with CsvFileSource(path, loop=True) as source:
        start = datetime(2026, 2, 2, 4, 0, tzinfo=UTC)
        for i in range(len(stored)):
            source.snapshot(start + timedelta(seconds=i))
        again = source.snapshot(start + timedelta(minutes=10))
        assert [without(t, "ts", "source") for t in again] == [without(t, "ts", "source") for t in stored[0]]
        assert source.passes == 1 and source.played == 77
        second = source.snapshot(start + timedelta(minutes=11))
        assert [t["ltp"] for t in second] == [t["ltp"] for t in stored[1]]


def test_csv_source_drives_the_collector(sim_export, store):
    path, stored = sim_export
    with CsvFileSource(path) as source:
        collector = Collector(store, source, interval=5)
        moment = datetime(2026, 2, 2, 4, 0, 5, tzinfo=UTC)
        assert collector.collect_once(moment) == len(stored[0])
        assert collector.collect_once(moment + timedelta(seconds=5)) == len(stored[1])
    row = store.latest("NIFTY 50")
    assert row["ts"] == "2026-02-02T04:00:10+00:00" and row["source"] == "csv"
    assert row["ltp"] == next(t["ltp"] for t in stored[1] if t["symbol"] == "NIFTY 50")


def test_csv_playback_streams(sim_export, tmp_path):
    path, stored = sim_export
    size = path.stat().st_size
    assert size > 1_000_000
    tracemalloc.start()
    try:
        with CsvFileSource(path) as source:
            for i in range(len(stored)):
                source.snapshot(datetime(2026, 2, 2, 4, 0, tzinfo=UTC) + timedelta(seconds=i))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # holding the file's ticks as dicts would take several times the file size
    assert peak < size / 2, (peak, size)


def write_csv(path, rows: list[list]) -> None:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(TICK_FIELDS)
        writer.writerows(rows)


def row(symbol="NIFTY 50", ts="2026-01-05T04:00:00+00:00", ltp="26000.5", **fields) -> list:
    values = {"symbol": symbol, "token": "99926000", "ts": ts, "ltp": ltp, "bid": "", "ask": "",
              "volume": "0", "oi": "", "delta": "", "gamma": "", "theta": "", "vega": "", "iv": "",
              "source": "sim", **fields}
    return [values[f] for f in TICK_FIELDS]


def test_csv_bad_lines_are_reported_by_number(tmp_path):
    path = tmp_path / "bad.csv"
    write_csv(path, [
        row(),                                                  # line 2
        row(ltp="abc"),                                         # line 3
        row(symbol="NIFTYX"),                                   # line 4
        row(ts="2026-01-05T04:00:05+00:00"),                    # line 5
        row(ts="2026-01-05T04:00:01+00:00"),                    # line 6: goes back in time
        row(ts="2026-01-05T04:00:05+00:00", source="bloomberg"),  # line 7
    ])
    with pytest.raises(ImportFormatError) as info:
        CsvFileSource(path)
    assert [line for line, _ in info.value.problems] == [3, 4, 6, 7]
    assert "ts order" in dict(info.value.problems)[6]


@pytest.mark.parametrize("content, message", [
    ("symbol,ts,ltp\r\nNIFTY 50,2026-01-05T04:00:00+00:00,1\r\n", "header lacks"),
    (",".join(TICK_FIELDS) + "\r\n", "no ticks"),
])
def test_csv_unusable_files(tmp_path, content, message):
    path = tmp_path / "file.csv"
    path.write_text(content)
    with pytest.raises(ImportFormatError, match=message):
        CsvFileSource(path)


def test_csv_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the CSV file"):
        CsvFileSource(tmp_path / "nope.csv")


def test_csv_groups_equal_timestamps_written_differently(tmp_path):
    path = tmp_path / "mixed.csv"
    write_csv(path, [row(ts="2026-01-05T04:00:00Z"), row(symbol="NIFTY BANK", token="99926009",
                                                           ts="2026-01-05T09:30:00+05:30"),
                     row(ts="2026-01-05T04:00:05+00:00", ltp="26001")])
    with CsvFileSource(path) as source:
        assert source.snapshots == 2
        assert [t["symbol"] for t in source.snapshot(MONDAY)] == ["NIFTY 50", "NIFTY BANK"]
        assert [t["ltp"] for t in source.snapshot(MONDAY)] == [26001.0]



def test_csv_file_changed_after_the_check_is_a_source_error(tmp_path):
    path = tmp_path / "session.csv"
    write_csv(path, [row(), row(ts="2026-01-05T04:00:05+00:00")])
    with CsvFileSource(path) as source:
        write_csv(path, [row(), row(ltp="abc")])  # line 3 turns bad while playing
        with pytest.raises(SourceError, match="changed during playback: line 3: ltp must be a number"):
            source.snapshot(MONDAY)


# ---------------------------------------------------------------- make_source

def test_make_source_sim_uses_settings():
    settings = Settings(seed=7, atm_window=3, risk_free_rate=0.05)
    source = make_source("sim", settings)
    assert isinstance(source, MarketSimulator)
    assert (source.seed, source.atm_window, source.risk_free_rate) == (7, 3, 0.05)
    reference = MarketSimulator(seed=7, atm_window=3, risk_free_rate=0.05)
    assert source.snapshot(MONDAY) == reference.snapshot(MONDAY)


def test_make_source_sim_resumes():
    resume = [{"symbol": "NIFTY 50", "ltp": 21_000.0, "ts": "2026-01-05T04:59:55+00:00"},
              {"symbol": "NIFTY BANK", "ltp": 50_000.0, "ts": "2026-01-05T04:59:55+00:00"}]
    source = make_source("sim", Settings(seed=1), resume_from=resume)
    spot = by_symbol(source.snapshot(MONDAY))["NIFTY 50"]["ltp"]
    assert spot == pytest.approx(21_000, rel=0.01)


def test_make_source_csv(sim_export):
    path, _ = sim_export
    source = make_source("csv", Settings(), path=str(path), loop=True)
    assert isinstance(source, CsvFileSource) and source.loop and source.path == path
    assert make_source("csv", Settings(), path=path, loop=None).loop is False
    with pytest.raises(ConfigError, match="needs the path"):
        make_source("csv", Settings())


def test_make_source_smartapi(monkeypatch):
    for var in ENV_VARS.values():
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError, match="DATACENTRE_SMARTAPI_CLIENT_CODE"):
        make_source("smartapi", Settings())
    set_credentials(monkeypatch)
    broker = FakeAngel()
    source = make_source("smartapi", Settings(atm_window=4), connect=lambda: broker, totp=lambda: "1",
                         broker_greeks=False, min_request_interval=None)
    assert isinstance(source, SmartApiSource) and source.atm_window == 4 and not source.broker_greeks
    assert len(source.snapshot(MONDAY)) == 2 + 2 + 2 * 18


@pytest.mark.parametrize("name, options, message", [
    ("kite", {}, "unknown source 'kite': choose one of sim, smartapi, csv"),
    ("sim", {"path": "x.csv"}, "the sim source does not take path"),
    ("csv", {"path": "x.csv", "connect": object()}, "does not take connect"),
])
def test_make_source_rejects(name, options, message):
    with pytest.raises(ConfigError, match=message):
        make_source(name, Settings(), **options)
    assert SOURCE_NAMES == ("sim", "smartapi", "csv")
