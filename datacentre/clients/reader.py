"""WebSocketDataReader: the client guide's drop-in for ``OIDataCollector``, fed by the broadcaster.

The reader keeps the newest tick of every symbol in ``_data_cache`` and answers
the trading system's questions (spot, future, ATM watchlist, market data, Greeks)
from it, without any broker login. Right after each (re)connection it asks the
broadcaster for the latest snapshot (``get_latest_all``), so the cache is full
within milliseconds instead of at the next collection cycle;
:meth:`WebSocketDataReader.is_connected` turns true once that has arrived.

The cache holds the current market: a tick more than a minute older than the newest
one seen is ignored (the store also remembers long-expired contracts, and imports or
backfills publish old rows), as is a tick older than the one cached for its symbol.

Symbols are always parsed (:func:`~datacentre.core.instruments.parse_symbol`), never
matched by substring: ``BANKNIFTY...`` contains ``NIFTY``.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import date, timedelta
from functools import lru_cache
from typing import Any, Self

from datacentre.clients.connection import FeedConnection
from datacentre.core.config import connectable_url, default_token, default_ws_url
from datacentre.core.errors import ConfigError, SymbolError
from datacentre.core.instruments import (
    CE,
    FUT,
    INDEX,
    PE,
    UNDERLYINGS,
    Instrument,
    has_expired,
    parse_symbol,
    underlying,
)
from datacentre.core.instruments import nearest_future as find_nearest_future
from datacentre.core.ticks import format_ts, parse_ts, tick_dict

log = logging.getLogger(__name__)

#: Symbols asked for when priming the cache (the protocol's largest ``limit``).
PRIME_LIMIT = 10_000
#: Seconds :meth:`WebSocketDataReader.is_connected` waits for the priming reply after the welcome.
PRIME_WAIT = 3.0
#: A tick this much older than the newest one seen is not cached: the store remembers contracts
#: that expired or left the strike window long ago, and imports or backfills publish old rows.
STALE_AGE = timedelta(seconds=60)
#: A live snapshot counts as complete once no tick arrived for this long (the broadcaster
#: writes a snapshot's ticks in one go), or once the next snapshot has begun.
SNAPSHOT_QUIET_S = 0.1

_UNDERLYING_RANK = {base: i for i, base in enumerate(UNDERLYINGS)}
_KIND_RANK = {INDEX: 0, FUT: 1, CE: 2, PE: 2}


@lru_cache(maxsize=65536)
def _order_key(symbol: str) -> tuple:
    """Instrument order: NIFTY before BANKNIFTY; index, futures, then options by expiry and strike."""
    try:
        ins = parse_symbol(symbol)
    except SymbolError:
        return (len(_UNDERLYING_RANK), 9, date.min, 0.0, symbol)
    return (_UNDERLYING_RANK.get(ins.underlying, len(_UNDERLYING_RANK)), _KIND_RANK[ins.kind],
            ins.expiry or date.min, ins.strike or 0.0, symbol)


class _TickCache(dict):
    """symbol -> newest tick, written by the feed thread under ``lock``.

    ``keys()``, ``values()``, ``items()`` and iteration return lists copied under the
    lock, in instrument order (NIFTY first, then BANKNIFTY; index, futures, options),
    so a caller can loop over them while ticks keep arriving.
    """

    def __init__(self, lock: threading.RLock) -> None:
        super().__init__()
        self._lock = lock

    def keys(self) -> list[str]:  # type: ignore[override]
        with self._lock:
            return sorted(dict.keys(self), key=_order_key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def values(self) -> list[dict]:  # type: ignore[override]
        with self._lock:
            return [dict.__getitem__(self, k) for k in sorted(dict.keys(self), key=_order_key)]

    def items(self) -> list[tuple[str, dict]]:  # type: ignore[override]
        with self._lock:
            return [(k, dict.__getitem__(self, k)) for k in sorted(dict.keys(self), key=_order_key)]

    def copy(self) -> dict[str, dict]:
        with self._lock:
            return dict(dict.items(self))

    def __repr__(self) -> str:
        return repr(self.copy())


# ---------------------------------------------------------------- pure helpers on a cache copy

def _ltp(tick: dict | None) -> float | None:
    return None if tick is None else tick.get("ltp")


def _newest_ts(snap: dict[str, dict]) -> str | None:
    return max((t.get("ts") or "" for t in snap.values()), default="") or None


def live_instruments(snap: dict[str, dict], base: str) -> list[tuple[Instrument, dict]]:
    """Parsed instruments of ``base`` in ``snap`` that had not expired at its newest tick."""
    newest = _newest_ts(snap)
    now = parse_ts(newest) if newest else None
    found = []
    for symbol, tick in snap.items():
        try:
            ins = parse_symbol(symbol)
        except SymbolError:
            continue
        if ins.underlying != base:
            continue
        if now is not None and ins.expiry is not None and has_expired(ins.expiry, now):
            continue
        found.append((ins, tick))
    return found


def nearest_future(snap: dict[str, dict], base: str) -> tuple[Instrument, dict] | None:
    """``base``'s nearest future in ``snap`` at its newest tick, and that future's tick."""
    newest = _newest_ts(snap)
    found = find_nearest_future(snap, newest, base) if newest else None
    return (found, snap[found.symbol]) if found else None


def _spot(snap: dict[str, dict], index_symbol: str) -> float | None:
    return _ltp(snap.get(underlying(index_symbol).index_symbol))


def _has_data(snap: dict[str, dict], index_symbol: str | None) -> bool:
    """Index spot and at least one option of the same underlying are present."""
    bases = [underlying(index_symbol)] if index_symbol else list(UNDERLYINGS.values())
    for u in bases:
        if _ltp(snap.get(u.index_symbol)) is None:
            continue
        if any(ins.is_option for ins, _ in live_instruments(snap, u.base)):
            return True
    return False


def _watchlist(snap: dict[str, dict], atm_window: int, index_symbol: str) -> list[str]:
    if isinstance(atm_window, bool) or not isinstance(atm_window, int) or atm_window < 0:
        raise ConfigError(f"atm_window must be a whole number of strikes, 0 or more; got {atm_window!r}")
    u = underlying(index_symbol)
    instruments = live_instruments(snap, u.base)
    future = nearest_future(snap, u.base)
    spot = _spot(snap, index_symbol)
    if spot is None and future is not None:
        spot = _ltp(future[1])
    if spot is None:
        log.warning("no price for %s yet: call wait_for_data() before pick_watchlist()", u.index_symbol)
        return []
    symbols = [u.index_symbol] if u.index_symbol in snap else []
    if future is not None:
        symbols.append(future[0].symbol)
    options = [ins for ins, _ in instruments if ins.is_option]
    if not options:
        return symbols
    nearest = min(ins.expiry for ins in options)
    by_strike: dict[float, dict[str, str]] = {}
    for ins in options:
        if ins.expiry == nearest:
            by_strike.setdefault(ins.strike, {})[ins.kind] = ins.symbol
    strikes = sorted(by_strike)
    atm = min(range(len(strikes)), key=lambda i: (abs(strikes[i] - spot), strikes[i]))
    for strike in strikes[max(atm - atm_window, 0):atm + atm_window + 1]:
        symbols.extend(by_strike[strike][right] for right in (CE, PE) if right in by_strike[strike])
    return symbols


def _market_data(snap: dict[str, dict], symbols: Iterable[str]) -> dict[str, dict]:
    return {s: dict(snap[s]) for s in symbols if s in snap}


def _greeks(snap: dict[str, dict], index_symbol: str, only: set[str] | None = None) -> dict[str, dict]:
    out = {}
    for ins, tick in sorted(live_instruments(snap, underlying(index_symbol).base),
                            key=lambda it: _order_key(it[0].symbol)):
        if not ins.is_option or (only is not None and ins.symbol not in only):
            continue
        out[ins.symbol] = {"delta": tick.get("delta"), "gamma": tick.get("gamma"),
                           "theta": tick.get("theta"), "vega": tick.get("vega"), "iv": tick.get("iv"),
                           "strike": ins.strike, "option_type": ins.kind,
                           "expiry": ins.expiry.isoformat(), "ltp": tick.get("ltp"), "ts": tick.get("ts")}
    return out


# ---------------------------------------------------------------- the reader

class WebSocketDataReader:
    """The newest tick of every symbol, kept current by the broadcaster's live feed.

    >>> reader = WebSocketDataReader()
    >>> reader.wait_for_data()
    >>> symbols, market_data, greeks = reader.collect_complete_data(atm_window=5)

    Connects on construction, in a background thread, and reconnects by itself.
    ``ws_url`` defaults to the configured broadcaster (``DATACENTRE_WS_URL``, else
    ``ws://127.0.0.1:8765``). All methods are thread-safe; answers come from one
    consistent copy of the cache.
    """

    def __init__(self, ws_url: str | None = None, *, token: str | None = None) -> None:
        self.ws_url = connectable_url(ws_url) if ws_url else default_ws_url()
        self._cache_lock = threading.RLock()
        self._data_cache: _TickCache = _TickCache(self._cache_lock)
        self._changed = threading.Condition(self._cache_lock)
        self._primed = threading.Event()
        self._welcomed_at = 0.0
        self._last_live_put = 0.0
        self._newest_ts = ""
        self._stale_before = ""
        self._held: list[dict] | None = None
        self._snapshot_times: deque[tuple[str, float]] = deque(maxlen=1000)
        self._feed = FeedConnection(self.ws_url, on_tick=self._on_tick, on_welcome=self._on_welcome,
                                    token=token or default_token(), name="datacentre-reader")
        self._feed.start()

    def __repr__(self) -> str:
        return (f"WebSocketDataReader({self.ws_url!r}, connected={self.is_connected()}, "
                f"symbols={len(self._data_cache)})")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- feed

    def _on_welcome(self) -> None:
        with self._changed:
            self._primed.clear()
            self._welcomed_at = time.monotonic()
            # Live ticks wait until the latest snapshot is in: it tells which ticks are stale.
            self._held = []
        self._feed.request_async({"type": "get_latest_all", "limit": PRIME_LIMIT}, self._on_prime)

    def _on_prime(self, reply: dict | None, error: Exception | None) -> None:
        ticks: list[dict] = []
        if error is not None:
            log.info("no latest snapshot from %s (%s); waiting for live ticks", self.ws_url, error)
        elif reply.get("type") == "error":
            log.info("broadcaster at %s cannot send the latest snapshot (%s); waiting for live ticks",
                     self.ws_url, reply.get("message"))
        else:
            ticks = [tick_dict(t) for t in reply.get("ticks") or () if isinstance(t, dict) and t.get("ts")]
        with self._changed:
            for tick in sorted(ticks, key=lambda t: t["ts"], reverse=True):  # the newest sets the cutoff
                self._put(tick)
            self._release_held()
            self._primed.set()
            self._changed.notify_all()
        log.debug("primed the cache with %d symbols", len(ticks))

    def _release_held(self) -> None:
        """Cache the live ticks held back while priming (caller holds the lock)."""
        held, self._held = self._held, None
        for tick in held or ():
            self._put(tick)
        if held:
            self._last_live_put = time.monotonic()

    def _on_tick(self, message: dict) -> None:
        tick = tick_dict(message)
        ts = tick.get("ts")
        if ts and (not self._snapshot_times or self._snapshot_times[-1][0] != ts):
            self._snapshot_times.append((ts, time.monotonic()))
        with self._changed:
            if self._held is not None:
                if time.monotonic() - self._welcomed_at < PRIME_WAIT:
                    self._held.append(tick)
                    return
                self._release_held()  # no snapshot is coming: go on without it
            self._put(tick)
            self._last_live_put = time.monotonic()
            self._changed.notify_all()

    def _put(self, tick: dict) -> None:
        """Cache ``tick`` unless it is stale or older than the cached one (caller holds the lock).

        Canonical timestamps compare correctly as text, so no parsing per tick.
        """
        symbol, ts = tick.get("symbol"), tick.get("ts") or ""
        if not symbol:
            return
        if ts > self._newest_ts:
            self._newest_ts = ts
            self._stale_before = format_ts(parse_ts(ts) - STALE_AGE)
        if ts < self._stale_before:
            return
        old = dict.get(self._data_cache, symbol)
        if old is None or ts >= (old.get("ts") or ""):
            dict.__setitem__(self._data_cache, symbol, tick)

    def is_connected(self) -> bool:
        """True once connected and the cache holds the broadcaster's latest snapshot.

        (If the broadcaster cannot send a snapshot, true a few seconds after connecting.)
        """
        if not self._feed.connected:
            return False
        return self._primed.is_set() or time.monotonic() - self._welcomed_at >= PRIME_WAIT

    def wait_for_data(self, timeout: float = 10.0, index_symbol: str | None = None) -> bool:
        """Wait until an index spot and its options are cached; False after ``timeout`` s.

        ``index_symbol`` (e.g. ``"NIFTY 50"``) waits for that index; None for either.
        Use it instead of sleeping after construction.
        """
        if index_symbol is not None:
            underlying(index_symbol)  # an unknown index fails now, not after the timeout
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                now = time.monotonic()
                if _has_data(dict(dict.items(self._data_cache)), index_symbol):
                    # Complete unless live ticks of a first snapshot may still be coming in.
                    quiet = now - self._last_live_put
                    if quiet >= SNAPSHOT_QUIET_S or len(self._snapshot_times) >= 2:
                        return True
                    wait = min(SNAPSHOT_QUIET_S - quiet, deadline - now)
                else:
                    wait = deadline - now
                if wait <= 0:
                    return _has_data(dict(dict.items(self._data_cache)), index_symbol)
                self._changed.wait(wait)

    def close(self) -> None:
        """Disconnect and stop reconnecting. The cache keeps its last contents."""
        self._feed.stop()

    # -- questions

    def _snapshot(self) -> dict[str, dict]:
        return self._data_cache.copy()

    def get_spot_ltp(self, index_symbol: str = "NIFTY 50") -> float | None:
        """Last price of the index (``"NIFTY 50"``, ``"NIFTY BANK"``, or ``"NIFTY"``...)."""
        return _spot(self._snapshot(), index_symbol)

    def get_future_ltp(self, index_symbol: str = "NIFTY 50") -> float | None:
        """Last price of the index's nearest-expiry future, whatever its expiry."""
        future = nearest_future(self._snapshot(), underlying(index_symbol).base)
        return None if future is None else _ltp(future[1])

    def pick_watchlist(self, atm_window: int = 5, index_symbol: str = "NIFTY 50") -> list[str]:
        """Index, nearest future, and CE/PE of ``atm_window`` strikes each side of ATM.

        Options are those of the nearest expiry in the cache; the window is centred on
        the cached strike nearest to the spot (the future's price if no spot yet).
        Returns [] before any price has arrived.
        """
        return _watchlist(self._snapshot(), atm_window, index_symbol)

    def fetch_market_data(self, symbols: Iterable[str]) -> dict[str, dict[str, Any]]:
        """``{symbol: tick}`` (all 14 fields: ltp, bid, ask, volume, oi, ts, ...) for cached symbols.

        Symbols without data are left out.
        """
        return _market_data(self._snapshot(), symbols)

    def fetch_greeks_data(self, index_symbol: str = "NIFTY 50") -> dict[str, dict[str, Any]]:
        """``{symbol: {delta, gamma, theta, vega, iv, strike, option_type, expiry, ltp, ts}}``.

        Every unexpired cached option of the index; ``expiry`` is an ISO date and
        ``option_type`` is ``"CE"`` or ``"PE"``.
        """
        return _greeks(self._snapshot(), index_symbol)

    def collect_complete_data(self, atm_window: int = 5, index_symbol: str = "NIFTY 50"
                              ) -> tuple[list[str], dict[str, dict], dict[str, dict]]:
        """``(symbols, market_data, greeks_data)`` for the ATM watchlist, from one cache copy.

        ``greeks_data`` covers the watchlist's options.
        """
        snap = self._snapshot()
        symbols = _watchlist(snap, atm_window, index_symbol)
        return symbols, _market_data(snap, symbols), _greeks(snap, index_symbol, set(symbols))
