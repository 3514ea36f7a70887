"""The app's live feed: a cache of the broadcaster's ticks; no Streamlit in here.

:class:`LiveFeed` is a :class:`~datacentre.clients.connection.FeedConnection` (one daemon
thread on ``websocket-client``, reconnecting with capped backoff) that asks the
broadcaster for one message per snapshot and keeps, under one lock:

* the latest tick of every symbol and the latest complete snapshot;
* the day's spot and future per underlying, one point per snapshot, in a deque
  with a ``maxlen`` (a 1 s interval fills 22,500 points per session), cleared when
  the IST date of the ticks changes.

Readers get copies, so a page can never see a half-applied snapshot. The thread
never calls Streamlit; the app creates it through ``st.cache_resource`` (see
:mod:`datacentre.app.ui`) and reads it from the script thread.

Duplicate threads are the classic failure of a background thread under
Streamlit: editing the cached function's source (or clearing the cache) creates
a second cache entry, and a reload of this module forgets its registry. So
:func:`start_feed` stops every running feed for the same URL first, finding them
both in the module registry and, by a marker attribute, among the live threads.

The embedded data centre the app starts when no broadcaster answers is
:mod:`datacentre.app.launcher`'s.
"""
from __future__ import annotations

import logging
import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import partial
from typing import TYPE_CHECKING, Any

from datacentre.clients.connection import FeedConnection, backoff_delay
from datacentre.core.errors import SymbolError
from datacentre.core.instruments import INDEX, UNDERLYINGS, nearest_future, parse_symbol
from datacentre.core.ticks import format_ts, now_utc, parse_ts, tick_dict, trading_day, trading_day_start

if TYPE_CHECKING:
    from datacentre.store.tickstore import TickStore

log = logging.getLogger(__name__)

DEFAULT_HISTORY_LEN = 30_000
BACKOFF_INITIAL_S = 0.5
BACKOFF_MAX_S = 10.0
RATE_WINDOW_S = 30.0
LATEST_ALL_LIMIT = 10_000

CONNECTING = "connecting"
CONNECTED = "connected"
RECONNECTING = "reconnecting"
EMBEDDED = "embedded"
STOPPED = "stopped"

THREAD_NAME = "datacentre-livefeed"
_FEED_MARKER = "datacentre_livefeed"


@dataclass(frozen=True)
class Point:
    """One snapshot of an underlying: the index (spot) and its nearest future."""

    ts: str
    spot: float
    future: float | None = None


class LiveFeed:
    """Latest ticks and the day's spot history, fed by one background thread.

    >>> feed = LiveFeed("ws://127.0.0.1:8765").start()
    >>> feed.latest()["NIFTY 50"]["ltp"]
    >>> feed.stop()

    ``embedded`` is only a label: :attr:`state` says ``embedded`` instead of
    ``connected`` when the broadcaster is the one this process started.
    """

    def __init__(self, ws_url: str, *, token: str | None = None, embedded: bool = False,
                 history_len: int = DEFAULT_HISTORY_LEN, backoff_initial: float = BACKOFF_INITIAL_S,
                 backoff_max: float = BACKOFF_MAX_S) -> None:
        if history_len < 1:
            raise ValueError(f"history_len must be at least 1, got {history_len}")
        self.ws_url = ws_url
        self.embedded = embedded
        self._history_len = history_len
        self._conn = FeedConnection(ws_url, on_tick=lambda tick: self.apply([tick]),
                                    on_snapshot=self.apply, on_welcome=self._on_welcome,
                                    reconnect_delay=partial(backoff_delay, base=backoff_initial,
                                                            cap=backoff_max),
                                    token=token, name=f"{THREAD_NAME} {ws_url}")
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._latest: dict[str, dict] = {}
        self._snapshot_ts: str | None = None
        self._snapshot: dict[str, dict] = {}
        self._history: dict[str, deque[Point]] = {}
        self._history_day: dict[str, date] = {}
        self._rate: deque[tuple[float, int]] = deque(maxlen=4096)
        self._last_message_at: float | None = None
        self.ticks_received = 0
        self.messages = 0

    def __repr__(self) -> str:
        return f"LiveFeed({self.ws_url!r}, state={self.state!r})"

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> LiveFeed:
        thread = self._conn.start().thread
        setattr(thread, _FEED_MARKER, self)  # found by running_feeds() after a module reload
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and close the connection; safe to call twice or from any thread."""
        self._stopped.set()
        self._conn.stop(timeout)

    @property
    def alive(self) -> bool:
        """True while the thread runs and has not been asked to stop."""
        thread = self._conn.thread
        return thread is not None and thread.is_alive() and not self._stopped.is_set()

    @property
    def state(self) -> str:
        """``connecting``, ``connected`` (or ``embedded``), ``reconnecting`` or ``stopped``."""
        thread = self._conn.thread
        if self._stopped.is_set() or (thread is not None and not thread.is_alive()):
            return STOPPED
        if self._conn.connected:
            return EMBEDDED if self.embedded else CONNECTED
        return RECONNECTING if self.connects else CONNECTING

    @property
    def connected(self) -> bool:
        return self._conn.connected and not self._stopped.is_set()

    @property
    def connects(self) -> int:
        """Connections made so far (each welcome of the broadcaster)."""
        return self._conn.connections

    @property
    def last_error(self) -> str | None:
        return self._conn.last_error

    def wait_connected(self, timeout: float) -> bool:
        return self._conn.wait_connected(timeout) and not self._stopped.is_set()

    def wait_for_ticks(self, timeout: float, *, after: int = 0) -> bool:
        """Wait until more than ``after`` ticks have been received in total."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ticks_received > after:
                return True
            time.sleep(0.02)
        return self.ticks_received > after

    # ------------------------------------------------------------------ the connection's thread

    def _on_welcome(self) -> None:
        # Whole snapshots from now on, and the latest tick of every symbol now rather
        # than only from the next snapshot on.
        self._conn.request_async({"type": "set_format", "format": "snapshot"}, self._on_reply)
        self._conn.request_async({"type": "get_latest_all", "limit": LATEST_ALL_LIMIT}, self._on_reply)

    def _on_reply(self, reply: dict | None, error: Exception | None) -> None:
        if error is not None or reply is None or reply.get("type") == "error":
            log.info("live feed: a request to %s failed: %s", self.ws_url,
                     error or (reply or {}).get("message"))
        elif reply.get("type") == "latest_all" and isinstance(reply.get("ticks"), list):
            self.apply(reply["ticks"], live=False)

    # ------------------------------------------------------------------ messages

    def handle_message(self, text: str | bytes) -> None:
        """Apply one message from the broadcaster (public so tests can feed text directly)."""
        self._conn.handle_message(text)

    def apply(self, ticks: Sequence[dict], *, live: bool = True) -> None:
        """Take ticks into the latest table, the current snapshot and the day's history.

        ``live=False`` (the catch-up reply on connect) leaves the tick counters alone.
        """
        ticks = [tick_dict(t) for t in ticks if isinstance(t, dict) and t.get("symbol")]
        if not ticks:
            return
        with self._lock:
            for tick in ticks:
                ts = tick["ts"]
                if ts is None:
                    continue
                current = self._latest.get(tick["symbol"])
                if current is None or (current["ts"] or "") <= ts:
                    self._latest[tick["symbol"]] = tick
                if self._snapshot_ts is None or ts > self._snapshot_ts:
                    self._snapshot_ts, self._snapshot = ts, {}
                if ts == self._snapshot_ts:
                    self._snapshot[tick["symbol"]] = tick
            for tick in ticks:
                self._record_point(tick)
            if live:
                self.messages += 1
                self.ticks_received += len(ticks)
                self._last_message_at = time.monotonic()
                self._rate.append((self._last_message_at, len(ticks)))

    def _record_point(self, tick: dict) -> None:
        try:
            ins = parse_symbol(tick["symbol"])
        except SymbolError:
            return
        if ins.kind != INDEX or tick["ltp"] is None or tick["ts"] is None:
            return
        future = self._nearest_future(ins.underlying, tick["ts"])
        self._append_point(ins.underlying, Point(tick["ts"], float(tick["ltp"]), future))

    def _nearest_future(self, base: str, ts: str) -> float | None:
        """The price of ``base``'s nearest future at ``ts`` among the latest priced ticks."""
        priced = (symbol for symbol, tick in self._latest.items() if tick["ltp"] is not None)
        future = nearest_future(priced, ts, base)
        return None if future is None else float(self._latest[future.symbol]["ltp"])

    def _append_point(self, base: str, point: Point) -> None:
        day = trading_day(point.ts)
        series = self._history.get(base)
        if series is None or self._history_day.get(base) != day:
            if series is not None and self._history_day.get(base, day) > day:
                return  # a late point of an earlier day
            series = self._history[base] = deque(maxlen=self._history_len)
            self._history_day[base] = day
        if not series or series[-1].ts < point.ts:
            series.append(point)
            return
        # Older than the newest point: the catch-up reply on connect can carry a snapshot
        # newer than pushes still on their way. Put it in its place, not leave a hole.
        i = bisect_left([p.ts for p in series], point.ts)
        if series[i].ts == point.ts:
            series[i] = point
            return
        if len(series) == series.maxlen:
            if i == 0:
                return  # older than everything the bounded history keeps
            series.popleft()
            i -= 1
        series.insert(i, point)

    # ------------------------------------------------------------------ priming

    def prime(self, ticks: Sequence[dict], history: dict[str, Iterable[Point]] | None = None) -> None:
        """Fill in from the store before the first live message: a snapshot and the day's points.

        Newer live data always wins: old ticks never replace newer ones, and stored
        points are merged with the live ones by timestamp.
        """
        with self._lock:
            for tick in ticks:
                current = self._latest.get(tick["symbol"])
                if current is None or (current["ts"] or "") < tick["ts"]:
                    self._latest[tick["symbol"]] = tick_dict(tick)
            if ticks and not self._snapshot:
                self._snapshot_ts = max(t["ts"] for t in ticks)
                self._snapshot = {t["symbol"]: dict(self._latest[t["symbol"]]) for t in ticks
                                  if t["ts"] == self._snapshot_ts}
            for base, points in (history or {}).items():
                merged = {p.ts: p for p in points}
                merged.update({p.ts: p for p in self._history.get(base, ())})
                if not merged:
                    continue
                day = max(trading_day(ts) for ts in merged)
                ordered = [merged[ts] for ts in sorted(merged) if trading_day(ts) == day]
                self._history[base] = deque(ordered, maxlen=self._history_len)
                self._history_day[base] = day

    def prime_from_store(self, store: TickStore) -> None:
        """:meth:`prime` from the store's latest snapshot and that day's spot and futures."""
        last = store.last_ts()
        if last is None:
            return
        ticks = store.snapshot_at(last)
        day = trading_day(last)
        start = day_start(last)
        history: dict[str, list[Point]] = {}
        for u in UNDERLYINGS.values():
            future = nearest_future((t["symbol"] for t in ticks), last, u.base)
            future_by_ts = ({t["ts"]: t["ltp"] for t in store.history(future.symbol, start)}
                            if future else {})
            history[u.base] = [Point(t["ts"], float(t["ltp"]), future_by_ts.get(t["ts"]))
                               for t in store.history(u.index_symbol, start)
                               if t["ltp"] is not None and trading_day(t["ts"]) == day]
        self.prime(ticks, history)

    # ------------------------------------------------------------------ reading (copies)

    def latest(self, symbols: Iterable[str] | None = None) -> dict[str, dict]:
        """Symbol -> a copy of its newest tick (only ``symbols``, if given)."""
        with self._lock:
            if symbols is None:
                return {s: dict(t) for s, t in self._latest.items()}
            return {s: dict(self._latest[s]) for s in symbols if s in self._latest}

    def snapshot(self) -> dict[str, Any] | None:
        """The newest snapshot as ``{"ts": ts, "ticks": [tick, ...]}`` (copies), or None."""
        with self._lock:
            if self._snapshot_ts is None:
                return None
            return {"ts": self._snapshot_ts,
                    "ticks": [dict(t) for _, t in sorted(self._snapshot.items())]}

    def history(self, underlying: str) -> list[Point]:
        """Today's points of ``underlying`` (``NIFTY`` or ``BANKNIFTY``), oldest first."""
        with self._lock:
            return list(self._history.get(underlying, ()))

    def last_ts(self) -> str | None:
        with self._lock:
            return self._snapshot_ts

    def last_tick_age(self) -> float | None:
        """Seconds from the newest tick's timestamp to now (None before any tick)."""
        ts = self.last_ts()
        if ts is None:
            return None
        return max((now_utc() - parse_ts(ts)).total_seconds(), 0.0)

    def ticks_per_second(self, window: float = RATE_WINDOW_S) -> float:
        """Ticks received per second over the last ``window`` seconds (0 until two messages)."""
        now = time.monotonic()
        with self._lock:
            recent = [(at, n) for at, n in self._rate if now - at <= window]
        if len(recent) < 2 or recent[-1][0] <= recent[0][0]:
            return 0.0
        return sum(n for _, n in recent[1:]) / (recent[-1][0] - recent[0][0])

    def stats(self) -> dict[str, Any]:
        last_message = self._last_message_at
        return {
            "state": self.state,
            "ws_url": self.ws_url,
            "connects": self.connects,
            "messages": self.messages,
            "ticks_received": self.ticks_received,
            "ticks_per_s": round(self.ticks_per_second(), 2),
            "symbols": len(self._latest),
            "last_ts": self.last_ts(),
            "last_tick_age_s": self.last_tick_age(),
            "last_message_age_s": None if last_message is None else time.monotonic() - last_message,
            "last_error": self.last_error,
        }


# ---------------------------------------------------------------------- one feed per URL

_FEEDS: dict[str, LiveFeed] = {}
_FEEDS_LOCK = threading.Lock()


def running_feeds(ws_url: str | None = None) -> list[LiveFeed]:
    """Feeds whose thread is alive, for ``ws_url`` or all; also those of an earlier import."""
    found: dict[int, LiveFeed] = {id(f): f for f in _FEEDS.values()}
    for thread in threading.enumerate():
        feed = getattr(thread, _FEED_MARKER, None)
        if feed is not None:
            found[id(feed)] = feed
    return [f for f in found.values() if f.alive and (ws_url is None or f.ws_url == ws_url)]


def start_feed(ws_url: str, *, token: str | None = None, **options) -> LiveFeed:
    """Start the feed for ``ws_url``, stopping any other feed of this process on that URL."""
    with _FEEDS_LOCK:
        for old in running_feeds(ws_url):
            log.info("stopping a previous live feed on %s", ws_url)
            old.stop()
        feed = LiveFeed(ws_url, token=token, **options).start()
        _FEEDS[ws_url] = feed
        return feed


def stop_feed(feed: LiveFeed) -> None:
    """Stop ``feed`` and forget it (the ``on_release`` of the app's cache)."""
    feed.stop()
    with _FEEDS_LOCK:
        if _FEEDS.get(feed.ws_url) is feed:
            del _FEEDS[feed.ws_url]


def day_start(ts: str) -> str:
    """The start of ``ts``'s trading day (midnight IST), as canonical UTC text."""
    return format_ts(trading_day_start(trading_day(ts)))
