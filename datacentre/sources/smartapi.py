"""Angel One SmartAPI: the real-market source (tick ``source`` = ``"api"``).

One :meth:`SmartApiSource.snapshot` asks the broker's REST API, through the
``smartapi-python`` package's ``SmartConnect``, for:

* **Quotes** -- ``getMarketData("FULL", {"NSE": [index tokens], "NFO": [tokens]})`` in
  batches of at most :data:`MAX_TOKENS_PER_REQUEST` tokens. The first batches carry the
  indices, the current futures and the option tokens of the previous snapshot's window (the
  window rarely moves between two snapshots); once the index prices are known, the ATM +-
  window of each chain of the watch list (:mod:`datacentre.core.watchlist`; by default the
  nearest expiry at ATM +- ``atm_window``) is recomputed and only options that entered it
  are fetched in one more request. Steady state with both underlyings and ``atm_window=10``:
  88 tokens, two quote requests.
* **Greeks** -- ``optionGreek({"name": "NIFTY", "expirydate": "06JAN2026"})``, one request
  per underlying. A contract the broker gives all five values for (delta, gamma, theta,
  vega, impliedVolatility) takes them as they are (assumed, like ours: theta per calendar
  day, vega per vol point, IV in percent). Every other option -- ``broker_greeks=False``,
  optionGreek refused or failing, or silent about a strike -- gets them **computed** from its
  quote by :func:`datacentre.core.forward.chain_greeks`: Black-76 on the forward of the expiry
  (the current future when it expires with the options, else put-call parity over the window's
  strikes nearest the money), ``T`` to 15:30 IST on expiry and the configured rate. A price no
  volatility fits leaves the Greeks and IV NULL, never 0.

Field mapping: ``ltp`` -> ltp; best ``depth.buy``/``depth.sell`` price -> bid/ask (``None``
when the level is 0 or missing, never 0); ``tradeVolume`` -> volume; ``opnInterest`` -> oi.
Indices get volume 0 and no bid, ask, OI or Greeks. A future or option whose ``ltp`` is not
positive (no trade yet) is left out of the snapshot, as is a token the broker lists under
``unfetched``.

Instrument tokens: Angel's trading symbols have our format (``NIFTY06JAN2626000CE``,
``NIFTY27JAN26FUT``), so tokens come from ``searchScrip("NFO", text)``: one search per
underlying and expiry (``NIFTY06JAN26``) lists that expiry's contracts, every returned symbol
is parsed (never substring-matched) and cached. A contract the cache still lacks -- a strike
the window reached that the expiry search did not return -- is searched for by its own
symbol (at most :data:`MAX_SYMBOL_SEARCHES` per snapshot; the rest wait for the next one);
one that is not listed either is skipped and searched for again after
:data:`RELIST_SECONDS`. Cached contracts are dropped once they expire, so the cache follows
the window and the expiry roll. (The alternative, Angel's scrip master file, is a download of
tens of megabytes from a URL outside the API; it is not used.)

Rate limits: SmartAPI allows about one request per second on some endpoints, so every broker
call (login, search, quotes, Greeks) waits until ``min_request_interval`` seconds have passed
since the previous one (``None`` turns that off); ``clock`` and ``sleep`` are injectable. A
steady-state snapshot makes four requests (two quote batches, two optionGreek), about three
seconds: keep the collector interval at 5 s or more, or pass ``broker_greeks=False``.

Market hours: the source says ``market_hours = True``, so the collector asks it for
snapshots only during NSE sessions (:mod:`datacentre.core.calendar`) and idles otherwise.

Failures: any exception from the broker, a reply whose ``status`` is not true, or a reply
without the fields above raises :class:`SourceError` with the broker's message, and the
collector logs it and retries at its next interval. A session error (``errorcode``
``AG8001``-``AG8003`` or a ``TokenException``) also drops the session, so the next snapshot
logs in again. The login itself happens at the first snapshot, not in the constructor.

Credentials: :meth:`SmartApiSource.from_env` reads :data:`ENV_VARS`. The TOTP code comes
from ``pyotp.TOTP(totp_secret).now()``. The package is imported when the source is created
with the default ``connect``; in the smartapi-python source read for this module, that import
requests ``api.ipify.org`` and every ``SmartConnect`` creates a ``logs/`` folder in the working
directory -- the library's doing, not ours.
"""
from __future__ import annotations

import functools
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import Any

from datacentre.core.config import DEFAULT_ATM_WINDOW, DEFAULT_RISK_FREE_RATE, Settings
from datacentre.core.errors import ConfigError, SourceError, SymbolError
from datacentre.core.forward import GREEK_DIGITS, chain_greeks
from datacentre.core.instruments import (
    CE,
    MONTHS,
    PE,
    YEAR_SECONDS,
    current_future_expiry,
    format_expiry,
    format_future,
    format_option,
    parse_symbol,
    strike_window,
    time_to_expiry,
    underlying,
)
from datacentre.core.numbers import finite_or_none
from datacentre.core.ticks import format_ts, parse_ts, trading_day
from datacentre.core.watchlist import WatchList, nearest_chains
from datacentre.store.tickstore import batched

log = logging.getLogger(__name__)

SOURCE = "api"
ENV_VARS = {
    "client_code": "DATACENTRE_SMARTAPI_CLIENT_CODE",
    "api_key": "DATACENTRE_SMARTAPI_API_KEY",
    "pin": "DATACENTRE_SMARTAPI_PIN",
    "totp_secret": "DATACENTRE_SMARTAPI_TOTP_SECRET",
}
INSTALL_HINT = "pip install smartapi-python pyotp"
INDEX_EXCHANGE, DERIVATIVES_EXCHANGE = "NSE", "NFO"
MAX_TOKENS_PER_REQUEST = 50
DEFAULT_MIN_REQUEST_INTERVAL = 1.0
RELIST_SECONDS = 600.0  # how long a contract the broker does not list is skipped before the next search
MAX_SYMBOL_SEARCHES = 4  # per snapshot: the rest wait for the next one, so a snapshot stays short
SESSION_ERROR_CODES = frozenset({"AG8001", "AG8002", "AG8003"})  # invalid, expired, missing token
MIN_PRICING_T = 1.0 / YEAR_SECONDS  # one second: T never reaches 0 while a contract trades
BROKER_GREEKS = {"delta": "delta", "gamma": "gamma", "theta": "theta", "vega": "vega",
                 "iv": "impliedVolatility"}


def _import_smartconnect() -> type:
    try:
        from SmartApi import SmartConnect
    except ImportError:
        raise ConfigError(f"the smartapi source needs the smartapi-python package: {INSTALL_HINT}") from None
    return SmartConnect


def _import_pyotp():
    try:
        import pyotp
    except ImportError:
        raise ConfigError(f"the smartapi source needs pyotp for the login code: {INSTALL_HINT}") from None
    return pyotp


def _count(value: Any) -> int | None:
    number = finite_or_none(value)
    return None if number is None or number < 0 else int(number)


def _best_price(depth: Any, side: str) -> float | None:
    """Best price of one side of a FULL-mode depth; ``None`` when there is none (0 or missing)."""
    levels = depth.get(side) if isinstance(depth, dict) else None
    if not isinstance(levels, list) or not levels or not isinstance(levels[0], dict):
        return None
    price = finite_or_none(levels[0].get("price"))
    return price if price is not None and price > 0 else None


def parse_quote(entry: Any) -> tuple[str, dict]:
    """One ``data.fetched`` entry of a FULL-mode getMarketData reply -> ``(token, quote)``.

    ``quote`` has ``ltp``, ``bid``, ``ask``, ``volume`` and ``oi``; ``symbolToken`` and a
    numeric ``ltp`` are required (else :class:`SourceError`), the rest may be ``None``.
    """
    if not isinstance(entry, dict):
        raise SourceError(f"smartapi getMarketData: a fetched entry is {type(entry).__name__}, not an object")
    token = entry.get("symbolToken")
    if token in (None, ""):
        raise SourceError(f"smartapi getMarketData: an entry lacks symbolToken "
                          f"({entry.get('tradingSymbol')!r})")
    ltp = finite_or_none(entry.get("ltp"))
    if ltp is None:
        raise SourceError(f"smartapi getMarketData: {entry.get('tradingSymbol') or token} lacks a numeric "
                          f"ltp (got {entry.get('ltp')!r})")
    depth = entry.get("depth")
    return str(token), {"ltp": ltp, "bid": _best_price(depth, "buy"), "ask": _best_price(depth, "sell"),
                        "volume": _count(entry.get("tradeVolume")), "oi": _count(entry.get("opnInterest"))}


def parse_option_greeks(data: Any, expiry: date) -> dict[tuple[float, str], dict]:
    """An optionGreek reply's ``data`` -> ``{(strike, "CE"|"PE"): {delta, gamma, theta, vega, iv}}``.

    Rows of another expiry, or missing any value, or with an IV that is not positive, are
    left out (those contracts get computed Greeks).
    """
    out: dict[tuple[float, str], dict] = {}
    for row in data if isinstance(data, list) else ():
        if not isinstance(row, dict):
            continue
        if row.get("expiry") and str(row["expiry"]).upper() != greek_expiry_text(expiry):
            continue
        strike, right = finite_or_none(row.get("strikePrice")), str(row.get("optionType", "")).upper()
        values = {ours: finite_or_none(row.get(theirs)) for ours, theirs in BROKER_GREEKS.items()}
        if strike is None or right not in (CE, PE) or None in values.values() or values["iv"] <= 0:
            continue
        out[(strike, right)] = {k: round(v, GREEK_DIGITS[k]) + 0.0 for k, v in values.items()}
    return out


def greek_expiry_text(expiry: date) -> str:
    """optionGreek's expiry format: ``06JAN2026``."""
    return f"{expiry.day:02d}{MONTHS[expiry.month - 1]}{expiry.year}"


def computed_greeks(ltp: Sequence[float], rights: Sequence[str], spot: float, strikes: Sequence[float],
                    t: float, r: float, *, bids: Sequence[float | None] | None = None,
                    asks: Sequence[float | None] | None = None, future: float | None = None) -> list[dict]:
    """IV and Greeks of one expiry's options from their quotes, on that expiry's forward
    (:func:`datacentre.core.forward.chain_greeks`); ``None`` where nothing fits."""
    values, _forward = chain_greeks(rights, strikes, ltp, t, r, bids=bids, asks=asks, spot=spot,
                                    future=future)
    return values


def _tick(symbol: str, token: str, ts: str, quote: dict, **greeks) -> dict:
    return {"symbol": symbol, "token": token, "ts": ts, "ltp": quote["ltp"], "bid": quote["bid"],
            "ask": quote["ask"], "volume": quote["volume"], "oi": quote["oi"],
            "delta": greeks.get("delta"), "gamma": greeks.get("gamma"), "theta": greeks.get("theta"),
            "vega": greeks.get("vega"), "iv": greeks.get("iv"), "source": SOURCE}


class SmartApiSource:
    """Live NIFTY / BANKNIFTY data from an Angel One account (see the module docstring).

    ``connect`` is a factory returning a logged-out ``SmartConnect``-like object (default:
    ``SmartConnect(api_key=api_key)``, which needs ``smartapi-python``); ``totp`` returns the
    current login code (default: ``pyotp``). Both are injectable so the mapping can be tested
    against a stand-in broker. Missing packages raise :class:`ConfigError` here, not at the
    first snapshot, when the defaults are used.
    """

    name = SOURCE
    market_hours = True  # a broker has nothing to say outside NSE sessions

    def __init__(self, *, client_code: str, api_key: str, pin: str, totp_secret: str,
                 underlyings: Sequence[str] = ("NIFTY", "BANKNIFTY"), atm_window: int = DEFAULT_ATM_WINDOW,
                 risk_free_rate: float = DEFAULT_RISK_FREE_RATE, connect: Callable[[], Any] | None = None,
                 totp: Callable[[], str] | None = None, broker_greeks: bool = True,
                 min_request_interval: float | None = DEFAULT_MIN_REQUEST_INTERVAL,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 watchlist: WatchList | None = None) -> None:
        empty = [ENV_VARS[k] for k, v in (("client_code", client_code), ("api_key", api_key), ("pin", pin),
                                          ("totp_secret", totp_secret)) if not str(v or "").strip()]
        if empty:
            raise ConfigError(f"smartapi credentials missing: {', '.join(empty)}")
        if int(atm_window) < 1:
            raise ConfigError(f"ATM window must be at least 1 strike, got {atm_window}")
        if min_request_interval is not None and min_request_interval < 0:
            raise ConfigError(f"min_request_interval must be >= 0 seconds or None, "
                              f"got {min_request_interval}")
        try:
            self.underlyings = tuple(dict.fromkeys(underlying(u).base for u in underlyings))
        except SymbolError as exc:
            raise ConfigError(str(exc)) from None
        if not self.underlyings:
            raise ConfigError("the smartapi source needs at least one underlying")
        self.client_code = str(client_code).strip()
        self.atm_window = int(atm_window)
        self.watchlist = watchlist or nearest_chains(self.underlyings, self.atm_window)
        self.underlyings = self.watchlist.bases
        self.risk_free_rate = float(risk_free_rate)
        self.broker_greeks = bool(broker_greeks)
        self.min_request_interval = min_request_interval
        self._api_key = str(api_key).strip()
        self._pin = str(pin).strip()
        self._totp_secret = str(totp_secret).strip().replace(" ", "")
        if connect is None:
            smart_connect = _import_smartconnect()
            if totp is None:
                _import_pyotp()
            connect = functools.partial(smart_connect, api_key=self._api_key)
        self._connect = connect
        self._totp = totp or self._pyotp_code
        self._clock = clock
        self._sleep = sleep
        self._last_call: float | None = None
        self._broker: Any = None
        self._tokens: dict[str, str] = {}  # NFO symbol -> token
        self._searched: dict[str, date] = {}  # search text -> expiry it covers
        self._unlisted: dict[str, float] = {}  # symbol -> clock() when a search missed it
        self._window: list[str] = []  # option symbols of the previous snapshot

    @classmethod
    def from_env(cls, settings: Settings | None = None, **options) -> SmartApiSource:
        """Credentials from :data:`ENV_VARS`, window and rate from ``settings``; ``options`` are
        passed on (``underlyings``, ``broker_greeks``, ``min_request_interval``, ``connect``...)."""
        settings = settings or Settings.from_env()
        values = {key: os.environ.get(var, "").strip() for key, var in ENV_VARS.items()}
        missing = [ENV_VARS[key] for key, value in values.items() if not value]
        if missing:
            raise ConfigError(f"the smartapi source needs the environment variable(s) {', '.join(missing)} "
                              f"(Angel One client code, SmartAPI key, login PIN, TOTP secret)")
        options.setdefault("atm_window", settings.atm_window)
        options.setdefault("risk_free_rate", settings.risk_free_rate)
        return cls(**values, **options)

    def __repr__(self) -> str:
        return (f"SmartApiSource(client_code={self.client_code!r}, underlyings={self.underlyings}, "
                f"atm_window={self.atm_window})")

    # ------------------------------------------------------------ snapshot

    def snapshot(self, moment: datetime) -> list[dict]:
        """Quotes (and Greeks) of indices, current futures and ATM +- window options at ``moment``."""
        moment = parse_ts(moment)
        ts = format_ts(moment)
        if self._broker is None:
            self._login()
        self._forget_expired(trading_day(moment))
        futures = {base: format_future(base, current_future_expiry(moment)) for base in self.underlyings}
        future_tokens = self._resolve(futures.values())
        indices = [(INDEX_EXCHANGE, underlying(base).index_token) for base in self.underlyings]
        known = [(DERIVATIVES_EXCHANGE, tok) for tok in future_tokens.values()]
        known += [(DERIVATIVES_EXCHANGE, self._tokens[s]) for s in self._window if s in self._tokens]
        quotes = self._quotes(indices + known)

        spots = {base: self._spot(base, quotes) for base in self.underlyings}
        chains = self.watchlist.chains(moment)
        wanted = [format_option(c.base, c.expiry, k, right) for c in chains
                  for k in strike_window(spots[c.base], underlying(c.base).strike_step, c.window)
                  for right in (CE, PE)]
        option_tokens = self._resolve(wanted)
        quotes.update(self._quotes([(DERIVATIVES_EXCHANGE, tok) for tok in option_tokens.values()
                                    if tok not in quotes]))
        self._window = list(option_tokens)

        ticks = []
        for base in self.underlyings:
            u = underlying(base)
            ticks.append(_tick(u.index_symbol, u.index_token, ts,
                               {**quotes[u.index_token], "bid": None, "ask": None, "volume": 0, "oi": None}))
            fut_token = future_tokens.get(futures[base])
            if fut_token in quotes and quotes[fut_token]["ltp"] > 0:
                ticks.append(_tick(futures[base], fut_token, ts, quotes[fut_token]))
            for chain in (c for c in chains if c.base == base):
                options = [(s, tok) for s, tok in option_tokens.items()
                           if (parse_symbol(s).underlying, parse_symbol(s).expiry) == (base, chain.expiry)
                           and tok in quotes and quotes[tok]["ltp"] > 0]
                fut_price = (quotes[fut_token]["ltp"] if fut_token in quotes
                             and parse_symbol(futures[base]).expiry == chain.expiry else None)
                ticks += self._option_ticks(base, chain.expiry, spots[base], moment, ts, options, quotes,
                                            fut_price)
        return ticks

    def _spot(self, base: str, quotes: dict[str, dict]) -> float:
        u = underlying(base)
        quote = quotes.get(u.index_token)
        if quote is None or quote["ltp"] <= 0:
            raise SourceError(f"smartapi returned no price for {u.index_symbol} (NSE token {u.index_token})")
        return quote["ltp"]

    def _option_ticks(self, base: str, expiry: date, spot: float, moment: datetime, ts: str,
                      options: list[tuple[str, str]], quotes: dict[str, dict],
                      future: float | None = None) -> list[dict]:
        if not options:
            return []
        instruments = [parse_symbol(s) for s, _ in options]
        given = self._broker_greeks(base, expiry) if self.broker_greeks else {}
        greeks: list[dict | None] = [given.get((ins.strike, ins.kind)) for ins in instruments]
        todo = [i for i, g in enumerate(greeks) if g is None]
        if todo:
            # the whole window's quotes give the forward; only the contracts without broker Greeks take them
            t = max(time_to_expiry(expiry, moment), MIN_PRICING_T)
            own = [quotes[token] for _, token in options]
            computed = computed_greeks([q["ltp"] for q in own], [ins.kind for ins in instruments], spot,
                                       [ins.strike for ins in instruments], t, self.risk_free_rate,
                                       bids=[q["bid"] for q in own], asks=[q["ask"] for q in own],
                                       future=future)
            for i in todo:
                greeks[i] = computed[i]
        return [_tick(symbol, token, ts, quotes[token], **g) for (symbol, token), g in zip(options, greeks)]

    # ------------------------------------------------------------ broker calls

    def _pyotp_code(self) -> str:
        pyotp = _import_pyotp()
        try:
            return pyotp.TOTP(self._totp_secret).now()
        except Exception:
            raise ConfigError(f"{ENV_VARS['totp_secret']} is not a valid base32 TOTP secret (the text "
                              f"shown under the QR code when enabling TOTP in Angel One)") from None

    def _call(self, what: str, method: Callable, *args) -> Any:
        """One rate-limited broker call; the reply's ``data``, or :class:`SourceError`."""
        if self.min_request_interval and self._last_call is not None:
            wait = self._last_call + self.min_request_interval - self._clock()
            if wait > 0:
                self._sleep(wait)
        self._last_call = self._clock()
        try:
            reply = method(*args)
        except Exception as exc:
            if "token" in type(exc).__name__.lower():
                self._broker = None
            raise SourceError(f"smartapi {what} failed: {type(exc).__name__}: {exc}") from exc
        if not isinstance(reply, dict):
            raise SourceError(f"smartapi {what}: expected a JSON object, got {type(reply).__name__}")
        if reply.get("status") is not True:
            code = reply.get("errorcode") or reply.get("errorCode")
            if code in SESSION_ERROR_CODES:
                self._broker = None
            raise SourceError(f"smartapi {what} refused: {reply.get('message') or 'no message'} "
                              f"(errorcode {code or 'none'})")
        return reply.get("data")

    def _login(self) -> None:
        try:
            broker = self._connect()
        except Exception as exc:
            raise SourceError(f"smartapi connection could not be created: "
                              f"{type(exc).__name__}: {exc}") from exc
        self._call(f"login of {self.client_code}", broker.generateSession, self.client_code, self._pin,
                   self._totp())
        self._broker = broker
        log.info("smartapi: logged in as %s", self.client_code)

    def _quotes(self, pairs: Iterable[tuple[str, str]]) -> dict[str, dict]:
        """FULL quotes of ``(exchange, token)`` pairs, at most MAX_TOKENS_PER_REQUEST per request."""
        out: dict[str, dict] = {}
        for batch in batched(dict.fromkeys(pairs), MAX_TOKENS_PER_REQUEST):
            request: dict[str, list[str]] = {}
            for exchange, token in batch:
                request.setdefault(exchange, []).append(token)
            data = self._call("getMarketData", self._broker.getMarketData, "FULL", request)
            if not isinstance(data, dict) or not isinstance(data.get("fetched"), list):
                raise SourceError("smartapi getMarketData: the reply has no data.fetched list")
            for entry in data["fetched"]:
                token, quote = parse_quote(entry)
                out[token] = quote
            unfetched = data.get("unfetched") or []
            if unfetched:
                log.warning("smartapi could not quote %d token(s): %s", len(unfetched), unfetched[:5])
        return out

    def _broker_greeks(self, base: str, expiry: date) -> dict[tuple[float, str], dict]:
        try:
            data = self._call(f"optionGreek {base} {greek_expiry_text(expiry)}", self._broker.optionGreek,
                              {"name": base, "expirydate": greek_expiry_text(expiry)})
        except SourceError as exc:
            if self._broker is None:  # the session is gone: nothing else will work either
                raise
            log.warning("%s; computing Greeks from prices instead", exc)
            return {}
        return parse_option_greeks(data, expiry)

    # ------------------------------------------------------------ tokens

    def _resolve(self, symbols: Iterable[str]) -> dict[str, str]:
        """Tokens of the listed ``symbols`` (derivatives), searching the broker for unknown ones."""
        symbols = list(symbols)
        now = self._clock()
        missing = [s for s in symbols if s not in self._tokens
                   and now - self._unlisted.get(s, -math.inf) >= RELIST_SECONDS]
        searches = 0
        for symbol in missing:
            ins = parse_symbol(symbol)
            prefix = f"{ins.underlying}{format_expiry(ins.expiry)}"
            if prefix not in self._searched:
                self._search(prefix, ins.expiry)
            if symbol in self._tokens or searches >= MAX_SYMBOL_SEARCHES:
                continue
            self._search(symbol, ins.expiry)
            searches += 1
            if symbol not in self._tokens:
                self._unlisted[symbol] = now
                log.warning("smartapi does not list %s; leaving it out for %.0f s", symbol, RELIST_SECONDS)
        return {s: self._tokens[s] for s in symbols if s in self._tokens}

    def _search(self, text: str, expiry: date) -> None:
        data = self._call(f"searchScrip {text}", self._broker.searchScrip, DERIVATIVES_EXCHANGE, text)
        self._searched[text] = expiry
        for item in data if isinstance(data, list) else ():
            if not isinstance(item, dict) or not item.get("symboltoken"):
                continue
            try:
                ins = parse_symbol(str(item.get("tradingsymbol", "")).strip())
            except SymbolError:
                continue  # another product whose name starts alike (e.g. NIFTYNXT50)
            if ins.underlying in self.underlyings and ins.expiry is not None:
                self._tokens[ins.symbol] = str(item["symboltoken"])
                self._unlisted.pop(ins.symbol, None)

    def _forget_expired(self, today: date) -> None:
        for symbol in [s for s in self._tokens if parse_symbol(s).expiry < today]:
            del self._tokens[symbol]
        for text in [t for t, expiry in self._searched.items() if expiry < today]:
            del self._searched[text]
        for symbol in [s for s in self._unlisted if parse_symbol(s).expiry < today]:
            del self._unlisted[symbol]
        self._window = [s for s in self._window if s in self._tokens]
