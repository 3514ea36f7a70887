"""RealtimeDataClient: the client guide's ``realtime_client``, and the original data centre's.

:class:`RealtimeDataClient` gives a callback for every live tick, plus queries that
read the tick store directly when it is reachable and ask the broadcaster otherwise.
Its connection is a :class:`~datacentre.clients.connection.FeedConnection`.

Its signature is a superset of both programs' habits: the original's positional
``(ws_url, db_path, on_data_callback)`` and ``disconnect()``, the guide's keywords, and
``db_url=`` for any store; arguments of the wrong kind are refused with a ``TypeError``
that says what was expected (a callback where the path goes is never taken as a path).
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Self

import sqlalchemy as sa

from datacentre.clients.connection import (
    DEFAULT_REQUEST_TIMEOUT,
    FeedConnection,
    TickHandler,
)
from datacentre.core.config import connectable_url, default_db_url, default_token, default_ws_url
from datacentre.core.errors import FeedError, ProtocolError, StoreError
from datacentre.core.ticks import normalize_ts, tick_dict
from datacentre.store import TickStore, open_existing_store

log = logging.getLogger(__name__)

#: Seconds :meth:`RealtimeDataClient.connect` waits for the welcome before returning.
CONNECT_WAIT = 2.0
#: Ticks waiting for a slow user callback before the oldest are dropped.
CALLBACK_QUEUE_SIZE = 100_000
#: Seconds :meth:`RealtimeDataClient.close` waits for a callback that is running (it then
#: finishes on its own; no other starts).
CALLBACK_WAIT = 1.0
#: Pause before repeating a request the broadcaster refused as ``rate_limited``.
RATE_LIMIT_PAUSE = 0.25
#: How long a missing store is remembered before looking for it again.
STORE_RETRY_S = 5.0


class _CallbackThread:
    """Hands ticks to a user callback on its own thread, one at a time, in arrival order.

    The queue is bounded: when the callback falls ``CALLBACK_QUEUE_SIZE`` ticks
    behind, the oldest are dropped. After :meth:`stop` no callback starts, and
    ticks still queued are dropped with the thread.
    """

    def __init__(self, deliver: TickHandler) -> None:
        self._deliver = deliver
        self._queue: queue.Queue[dict | None] = queue.Queue(CALLBACK_QUEUE_SIZE)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="datacentre-callbacks", daemon=True)
        self._thread.start()

    def put(self, tick: dict) -> bool:
        """Queue ``tick``; False if the oldest queued tick had to be dropped for it."""
        dropped = False
        while True:
            try:
                self._queue.put_nowait(tick)
                return not dropped
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    dropped = True
                except queue.Empty:
                    pass

    def stop(self, wait: float = CALLBACK_WAIT) -> None:
        self._stopped.set()
        try:
            self._queue.put_nowait(None)  # wakes the thread if it is waiting for a tick
        except queue.Full:
            pass  # it is busy, and looks at _stopped before the next tick
        if self._thread is not threading.current_thread():
            self._thread.join(wait)

    def _run(self) -> None:
        while True:
            tick = self._queue.get()
            if tick is None or self._stopped.is_set():
                return
            self._deliver(tick)


class RealtimeDataClient:
    """Live ticks by callback, plus store queries.

    >>> client = RealtimeDataClient(on_data_callback=print)
    >>> client.connect()
    >>> client.get_latest("NIFTY 50")

    ``ws_url`` defaults to the configured broadcaster (``DATACENTRE_WS_URL``, else
    ``ws://127.0.0.1:8765``). ``on_data_callback(tick)`` receives every live tick
    as a dict of the 14 tick fields, and nothing else (no welcome, pong or replies).
    It runs in its own thread, one tick at a time in arrival order, so a slow
    callback never stalls the connection; an exception in it is logged and the
    feed goes on.

    The query methods read the tick store when one is reachable: ``db_path`` (the
    SQLite file, as the original data centre's client took it) or ``db_url`` (any
    store URL), else ``DATACENTRE_DB_URL``, else the original's ``DATABASE_URL``, else
    ``data/nifty_local.db``, used only if it already exists; nothing is ever created.
    Without a store they ask the broadcaster over the WebSocket (connecting if needed),
    except :meth:`query`, which needs the store. Every method is safe to call from any
    thread.

    >>> RealtimeDataClient("ws://localhost:8765", "data/nifty_local.db", on_tick)  # the original's
    >>> RealtimeDataClient(ws_url="ws://localhost:8765", on_data_callback=on_tick)  # the guide's
    """

    def __init__(self, ws_url: str | None = None, db_path: str | os.PathLike | None = None,
                 on_data_callback: TickHandler | None = None, *, db_url: str | None = None,
                 token: str | None = None, request_timeout: float = DEFAULT_REQUEST_TIMEOUT) -> None:
        self.ws_url = connectable_url(_check_ws_url(ws_url)) if ws_url is not None else default_ws_url()
        if on_data_callback is not None and not callable(on_data_callback):
            raise TypeError(f"on_data_callback must be a function taking one tick dict, got "
                            f"{type(on_data_callback).__name__} {on_data_callback!r}")
        self.on_data_callback = on_data_callback
        self.db_url = _store_url(db_path, db_url)
        self.request_timeout = request_timeout
        self._token = token or default_token()
        self._lock = threading.Lock()
        self._feed: FeedConnection | None = None
        self._callbacks: _CallbackThread | None = None
        self._store: TickStore | None = None
        self._store_checked_at: float | None = None
        self._store_lock = threading.Lock()
        self.dropped_ticks = 0

    def __repr__(self) -> str:
        return f"RealtimeDataClient({self.ws_url!r}, connected={self.is_connected()})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the live feed

    def connect(self, timeout: float = CONNECT_WAIT) -> bool:
        """Start the live feed in the background and wait up to ``timeout`` s for the welcome.

        Returns whether the connection is up; if not, it keeps retrying by itself.
        """
        with self._lock:
            if self._feed is None:
                if self.on_data_callback is not None:
                    self._callbacks = _CallbackThread(self._deliver)
                self._feed = FeedConnection(self.ws_url, on_tick=self._on_tick, token=self._token,
                                            name="datacentre-client")
                self._feed.start()
            feed = self._feed
        return feed.wait_connected(timeout) if timeout else feed.connected

    def is_connected(self) -> bool:
        """True while the live feed is connected to the broadcaster."""
        feed = self._feed
        return feed is not None and feed.connected

    def close(self) -> None:
        """Stop the live feed and the callbacks, and release the store.

        Ticks not yet handed to ``on_data_callback`` are dropped. A callback that is
        running gets ``CALLBACK_WAIT`` seconds to finish before ``close()`` returns.
        """
        with self._lock:
            feed, self._feed = self._feed, None
            callbacks, self._callbacks = self._callbacks, None
        if feed is not None:
            feed.stop()
        if callbacks is not None:
            callbacks.stop()
        with self._store_lock:
            store, self._store, self._store_checked_at = self._store, None, None
        if store is not None:
            store.close()

    def disconnect(self) -> None:
        """The original data centre's name for :meth:`close`."""
        self.close()

    def _on_tick(self, tick: dict) -> None:
        callbacks = self._callbacks
        if callbacks is None or callbacks.put(tick_dict(tick)):
            return
        self.dropped_ticks += 1
        if self.dropped_ticks % 10_000 == 1:
            log.warning("the data callback is slower than the feed: dropped %d old ticks "
                        "so far (do heavy work in another thread)", self.dropped_ticks)

    def _deliver(self, tick: dict) -> None:
        callback = self.on_data_callback
        if callback is None:
            return
        try:
            callback(tick)
        except Exception:
            log.error("on_data_callback failed on %s; the feed goes on", tick.get("symbol"),
                      exc_info=True)

    # -- queries

    def _get_store(self) -> TickStore | None:
        with self._store_lock:
            if self._store is not None:
                return self._store
            now = time.monotonic()
            if self._store_checked_at is not None and now - self._store_checked_at < STORE_RETRY_S:
                return None
            self._store_checked_at = now
            self._store = open_existing_store(self.db_url)
            if self._store is not None:
                log.debug("queries read %r", self._store)
            return self._store

    def _request(self, message: dict) -> dict:
        with self._lock:
            feed = self._feed
        if feed is None:
            self.connect(timeout=0)
            feed = self._feed
        if feed is None:  # closed concurrently
            raise FeedError(f"the client for {self.ws_url} was closed")
        deadline = time.monotonic() + self.request_timeout
        while True:
            try:
                return feed.request(message, max(deadline - time.monotonic(), 0.1))
            except ProtocolError as exc:
                if exc.code != "rate_limited" or time.monotonic() + RATE_LIMIT_PAUSE > deadline:
                    raise
            time.sleep(RATE_LIMIT_PAUSE)

    def get_latest(self, symbol: str) -> dict | None:
        """The newest tick of ``symbol`` (14 fields), or None if it has none."""
        store = self._get_store()
        if store is not None:
            return store.latest(symbol)
        try:
            return tick_dict(self._request({"type": "get_latest", "symbol": symbol}))
        except ProtocolError as exc:
            if exc.code == "unknown_symbol":
                return None
            raise

    def get_latest_all(self, limit: int = 100) -> list[dict]:
        """The newest tick of the ``limit`` symbols updated most recently: live contracts
        first (indices, then futures, then options of the newest snapshot), expired ones
        only after every live one, from the store or the broadcaster alike."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise TypeError(f"limit must be a whole number of symbols, 1 or more; got {limit!r}")
        store = self._get_store()
        if store is not None:
            return store.latest_all(limit)
        reply = self._request({"type": "get_latest_all", "limit": limit})
        return [tick_dict(t) for t in reply.get("ticks") or ()]

    def get_historical(self, symbol: str, start_ts: str | datetime | None = None,
                       end_ts: str | datetime | None = None) -> list[dict]:
        """Ticks of ``symbol`` with ``start_ts <= ts <= end_ts`` (ISO 8601), oldest first.

        Over the WebSocket the broadcaster caps the answer (10,000 ticks); narrow the
        range for more.
        """
        store = self._get_store()
        if store is not None:
            return store.history(symbol, start_ts, end_ts)
        message: dict[str, Any] = {"type": "get_history", "symbol": symbol}
        if start_ts is not None:
            message["start_ts"] = normalize_ts(start_ts)
        if end_ts is not None:
            message["end_ts"] = normalize_ts(end_ts)
        try:
            reply = self._request(message)
        except ProtocolError as exc:
            if exc.code == "unknown_symbol":
                return []
            raise
        if reply.get("truncated"):
            log.warning("history of %s was truncated to %s ticks: narrow the time range",
                        symbol, reply.get("count"))
        return [tick_dict(t) for t in reply.get("ticks") or ()]

    def get_symbols(self) -> list[str]:
        """Every symbol that has ticks, sorted."""
        store = self._get_store()
        if store is not None:
            return store.symbols()
        return list(self._request({"type": "get_symbols"}).get("symbols") or ())

    def query(self, sql: str, params: Sequence[Any] | dict = ()) -> list[dict]:
        """Run one read-only SQL statement on the store; rows as dicts.

        Placeholders may be ``?`` (the guide's), ``%s`` (the original data centre's) or
        ``:name`` with a dict, on SQLite and PostgreSQL alike. Writes raise
        :class:`~datacentre.core.errors.ReadOnlyError`. Needs the store itself: the
        broadcaster does not run SQL.
        """
        store = self._get_store()
        if store is None:
            where = self.db_url or default_db_url()
            raise StoreError(f"no tick store found at {where}: pass db_path= (the SQLite file) or "
                             f"db_url=, or set DATACENTRE_DB_URL, to the database the collector writes")
        return store.query(sql, params)


def _check_ws_url(ws_url: Any) -> str:
    if not isinstance(ws_url, str) or not ws_url.strip().lower().startswith(("ws://", "wss://")):
        what = "a function" if callable(ws_url) else f"{type(ws_url).__name__} {ws_url!r}"
        raise TypeError(f"ws_url must be the broadcaster's URL, like 'ws://localhost:8765'; got {what}")
    return ws_url.strip()


def _store_url(db_path: Any, db_url: str | None) -> str | None:
    """The store URL from the original's ``db_path`` (a file) or our ``db_url``."""
    if db_path is not None and db_url is not None:
        raise TypeError("give db_path (a SQLite file) or db_url (any store URL), not both")
    if db_url is not None and not isinstance(db_url, str):
        raise TypeError(f"db_url must be a database URL such as 'sqlite:///data/nifty_local.db'; "
                        f"got {type(db_url).__name__} {db_url!r}")
    if db_path is None:
        return db_url
    if callable(db_path):
        raise TypeError("db_path must be the store's file path (str or Path), got a function: the "
                        "positional order is (ws_url, db_path, on_data_callback), so pass the "
                        "callback as on_data_callback=...")
    if not isinstance(db_path, (str, os.PathLike)) or not str(db_path).strip():
        raise TypeError(f"db_path must be the store's file path (str or Path), like "
                        f"'data/nifty_local.db'; got {type(db_path).__name__} {db_path!r}")
    text = os.fsdecode(db_path)
    if "://" in text:
        return text  # a URL where the path goes: unambiguous, so taken as one
    return sa.engine.URL.create("sqlite", database=str(Path(text).expanduser())).render_as_string()
