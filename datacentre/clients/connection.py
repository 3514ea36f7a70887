"""The broadcaster connection shared by the Python clients.

:class:`FeedConnection` is the machinery behind
:class:`~datacentre.clients.realtime.RealtimeDataClient`,
:class:`~datacentre.clients.reader.WebSocketDataReader` and the app's live feed: one
``websocket-client`` connection kept open by a daemon thread, reconnecting with capped
exponential backoff and jitter, sorting what arrives into ticks (handed on) and replies
(matched to their request by ``id``). Welcome, pong, replies and error messages never
reach tick handlers.

Resuming: the connection asks for cursors (``?resume=now``) and remembers the latest
one; after a reconnection it asks for everything since (``?resume=CURSOR``), so tick
handlers see every live row once and in order across outages and broadcaster restarts
(:mod:`datacentre.feed.resume`). Ticks that arrived after the last cursor come again in
the catch-up: they are recognised by ``(symbol, ts)`` and dropped. A ``resume_gap``
(an outage longer than the broadcaster's resume window) is logged and kept in
:attr:`FeedConnection.last_gap`.
"""
from __future__ import annotations

import itertools
import json
import logging
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import websocket

from datacentre.core.errors import FeedError, ProtocolError
from datacentre.feed.protocol import DEFAULT_BURST, DEFAULT_RATE, RateLimiter

log = logging.getLogger(__name__)

#: Seconds a request waits for its reply (and for the connection, if it is down).
DEFAULT_REQUEST_TIMEOUT = 10.0

#: Reconnect delays: first retry after about this long, doubling up to the cap; each
#: delay is scaled by a random factor in [0.5, 1) so many clients do not retry in step.
RECONNECT_MIN_DELAY = 0.5
RECONNECT_MAX_DELAY = 30.0
#: Seconds a connection must last for the backoff to start again from the shortest delay.
#: A broadcaster that welcomes clients and then fails at once must see them back off,
#: not reconnect twice a second each.
STABLE_CONNECTION_S = 10.0
#: WebSocket pings from the client notice a dead connection that sends no close frame.
PING_INTERVAL = 20.0
PING_TIMEOUT = 10.0
#: Seconds :meth:`FeedConnection.stop` waits for the broadcaster's close reply.
CLOSE_WAIT = 1.0
#: Requests per second (and burst) a client allows itself: a little under the
#: broadcaster's per-connection budget (``protocol.DEFAULT_RATE`` / ``DEFAULT_BURST``).
REQUEST_RATE = 0.9 * DEFAULT_RATE
REQUEST_BURST = 0.9 * DEFAULT_BURST
#: Ticks remembered since the latest cursor, to recognise them when a resume sends them
#: again (the broadcaster sends a cursor after every batch of at most 10,000 rows).
MAX_UNCONFIRMED = 50_000

TickHandler = Callable[[dict], None]
ReplyHandler = Callable[[dict | None, Exception | None], None]


def backoff_delay(attempt: int, *, base: float = RECONNECT_MIN_DELAY,
                  cap: float = RECONNECT_MAX_DELAY) -> float:
    """Seconds to wait before reconnect ``attempt`` (0, 1, ...): capped doubling with jitter."""
    return min(cap, base * 2 ** min(attempt, 30)) * random.uniform(0.5, 1.0)


def is_tick(message: Any) -> bool:
    """True for a tick message: an object with a ``symbol`` and no ``type``."""
    return isinstance(message, dict) and "type" not in message and "symbol" in message


def resume_url(url: str, cursor: int | None) -> str:
    """``url`` asking to resume after ``cursor`` (None: from now, with cursors)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "resume"]
    query.append(("resume", "now" if cursor is None else str(cursor)))
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", urlencode(query), parts.fragment))


# ---------------------------------------------------------------- the connection

@dataclass
class _Pending:
    event: threading.Event = field(default_factory=threading.Event)
    reply: dict | None = None
    error: Exception | None = None
    handler: ReplyHandler | None = None


class FeedConnection:
    """One broadcaster connection, kept open by a daemon thread until :meth:`stop`.

    ``on_tick(tick)`` runs in the connection's thread for every live tick (snapshot
    messages are unpacked into ticks, unless ``on_snapshot(ticks)`` takes each
    snapshot whole); ``on_welcome()`` runs there after each (re)connection. None
    may block for long: replies to requests are read by the same thread. An
    exception in any is logged and the feed goes on.

    Reconnects wait ``reconnect_delay(attempt)`` (default :func:`backoff_delay`); the
    attempt count starts again after every connection that lasted
    ``STABLE_CONNECTION_S`` from its welcome. ``last_error`` says why the latest
    attempt failed or the latest connection ended.
    """

    def __init__(self, url: str, *, on_tick: TickHandler, on_welcome: Callable[[], None] | None = None,
                 on_snapshot: Callable[[list[dict]], None] | None = None,
                 reconnect_delay: Callable[[int], float] | None = None,
                 token: str | None = None, name: str = "datacentre-feed", resume: bool = True) -> None:
        self.url = url
        self.name = name
        self._on_tick = on_tick
        self._on_welcome = on_welcome
        self._on_snapshot = on_snapshot
        self._reconnect_delay = reconnect_delay
        self._token = token
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._limiter = RateLimiter(REQUEST_RATE, REQUEST_BURST)
        self._pace_lock = threading.Lock()
        self._app: websocket.WebSocketApp | None = None
        self._socket: websocket.WebSocket | None = None  # the open connection's, for _run to close
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._welcomed_at: float | None = None  # monotonic time of this connection's welcome
        self._outage_logged = False
        self.welcome: dict | None = None
        self.connections = 0
        self.last_error: str | None = None
        self.resume = resume
        self.cursor: int | None = None  # every live row up to this store id has been handed on
        self._unconfirmed: deque[tuple[Any, Any]] = deque(maxlen=MAX_UNCONFIRMED)
        self._resent: set[tuple[Any, Any]] = set()
        self.resent_dropped = 0
        self.last_gap: dict | None = None

    def __repr__(self) -> str:
        state = "connected" if self.connected else "disconnected"
        return f"FeedConnection({self.url!r}, {state})"

    # -- lifecycle

    def start(self) -> Self:
        """Start the connection thread (once); returns at once."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close the connection, stop reconnecting and fail any waiting request."""
        self._stop.set()
        with self._lock:
            app, thread = self._app, self._thread
        own_thread = thread is threading.current_thread()
        if app is not None:
            # Not app.close(): that waits for the close reply while the feed thread sits in
            # select() for up to the ping timeout. Say goodbye, then let the reply (or, from
            # a silent server, a socket shutdown) wake the feed thread, which tears down.
            app.keep_running = False
            ws = app.sock
            if ws is not None and ws.connected:
                try:
                    ws.send_close(reason=b"client closing")
                except (websocket.WebSocketException, OSError):
                    log.debug("could not send a close frame to %s", self.url, exc_info=True)
            if thread is not None and not own_thread:
                thread.join(min(timeout, CLOSE_WAIT))
            raw = ws.sock if ws is not None else None
            if raw is not None:
                try:
                    raw.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        if thread is not None and not own_thread:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("feed thread for %s did not stop within %g s", self.url, timeout)
        self._connection_lost()

    @property
    def connected(self) -> bool:
        """True between the broadcaster's welcome and the end of that connection."""
        return self._connected.is_set()

    @property
    def thread(self) -> threading.Thread | None:
        """The connection thread (None before :meth:`start`)."""
        return self._thread

    def wait_connected(self, timeout: float | None) -> bool:
        return self._connected.wait(timeout)

    def _headers(self) -> list[str]:
        return [f"Authorization: Bearer {self._token}"] if self._token else []

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            url = resume_url(self.url, self.cursor) if self.resume else self.url
            app = websocket.WebSocketApp(url, header=self._headers(), on_open=self._opened,
                                         on_message=self._message, on_error=self._error,
                                         on_close=self._closed)
            with self._lock:
                if self._stop.is_set():  # stop() ran since the loop's check: it saw no app to close
                    break
                self._app = app
            self._welcomed_at = None
            try:
                app.run_forever(ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT)
            except Exception:
                log.warning("feed connection to %s failed", self.url, exc_info=True)
            finally:
                self._close_socket()
                self._connection_lost()
            if self._stop.is_set():
                break
            welcomed_at = self._welcomed_at
            stable = welcomed_at is not None and time.monotonic() - welcomed_at >= STABLE_CONNECTION_S
            attempt = 0 if stable else attempt + 1
            delay = self._reconnect_delay(attempt) if self._reconnect_delay else backoff_delay(attempt)
            if not self._outage_logged:
                log.warning("no connection to the broadcaster at %s; retrying with growing pauses "
                            "(start it with `python -m datacentre start`)", self.url)
                self._outage_logged = True
            log.debug("reconnecting to %s in %.2f s", self.url, delay)
            self._stop.wait(delay)
        log.debug("feed thread for %s stopped", self.url)

    # -- websocket-client callbacks (all in the connection thread)

    def _opened(self, app: websocket.WebSocketApp) -> None:
        self._socket = app.sock
        if self._stop.is_set():  # stop() ran while this connection was being made
            app.close()

    def _close_socket(self) -> None:
        """Close the finished connection's socket.

        websocket-client answers a broadcaster's close frame, then skips closing its
        socket; left open, it holds the broadcaster's shutdown up for its close
        timeout, and a broadcaster that keeps dropping clients leaks one per reconnect.
        """
        ws, self._socket = self._socket, None
        if ws is not None:
            ws.shutdown()

    def _error(self, _app: websocket.WebSocketApp, error: Exception) -> None:
        if not self._stop.is_set():
            lost = "lost the connection to" if self._welcomed_at is not None else "cannot reach"
            self.last_error = f"{lost} the broadcaster at {self.url}: {error}"
        if self._outage_logged or isinstance(error, ConnectionRefusedError):
            log.debug("feed %s: %s", self.url, error)
        else:
            log.info("feed %s: %s", self.url, error)

    def _closed(self, _app: websocket.WebSocketApp, code: Any, reason: Any) -> None:
        if self._welcomed_at is not None and not self._stop.is_set():
            self.last_error = f"the broadcaster at {self.url} closed the connection (code {code})"
            log.info("connection to %s closed (%s %s); reconnecting", self.url, code or "", reason or "")
        self._connection_lost()

    def _message(self, _app: websocket.WebSocketApp, text: str | bytes) -> None:
        self.handle_message(text)

    def handle_message(self, text: str | bytes) -> None:
        """Sort one message from the broadcaster (public so tests can feed text directly)."""
        try:
            data = json.loads(text)
        except (TypeError, ValueError):
            log.warning("ignored a message from %s that is not JSON: %.80r", self.url, text)
            return
        if not isinstance(data, dict):
            log.debug("ignored a non-object message from %s", self.url)
            return
        request_id = data.get("id")
        if request_id is not None and self._resolve(request_id, data):
            return
        if request_id is None and data.get("type") == "error" and self._resolve_oldest(data):
            return
        kind = data.get("type")
        if kind is None:
            if "symbol" in data and self._fresh(data):
                self._tick(data)
        elif kind == "cursor":
            self._confirm(data.get("cursor"))
        elif kind == "snapshot":
            ticks = [tick for tick in data.get("ticks") or () if is_tick(tick) and self._fresh(tick)]
            if self._on_snapshot is None:
                for tick in ticks:
                    self._tick(tick)
            elif ticks:
                try:
                    self._on_snapshot(ticks)
                except Exception:
                    log.exception("snapshot handler failed")
        elif kind == "welcome":
            self._welcome(data)
        elif kind == "error":
            log.warning("broadcaster at %s reported %s: %s", self.url, data.get("code"), data.get("message"))
        elif kind == "resume_gap":
            self.last_gap = data
            log.warning("the broadcaster at %s cannot resend everything missed: %s", self.url,
                        data.get("message"))
        elif kind == "resumed":
            log.info("resumed at %s: %s live rows missed were sent again", self.url, data.get("rows"))
        else:
            log.debug("ignored %r message from %s", kind, self.url)

    def _welcome(self, data: dict) -> None:
        self.welcome = data
        self.connections += 1
        cursor = data.get("cursor")
        if self.resume and isinstance(cursor, int) and not isinstance(cursor, bool):
            if self.cursor is None:  # a first connection (or a server that sent no cursor before)
                self._confirm(cursor)
            else:  # resuming: what came after our cursor will come again
                self._resent = set(self._unconfirmed)
        self._welcomed_at = time.monotonic()
        if self._outage_logged:
            log.warning("connected to the broadcaster at %s again", self.url)
            self._outage_logged = False
        else:
            log.info("connected to the broadcaster at %s", self.url)
        self._connected.set()
        if self._on_welcome is not None:
            try:
                self._on_welcome()
            except Exception:
                log.exception("welcome handler failed")

    def _fresh(self, tick: dict) -> bool:
        """False for a tick a resume sent again (it was handed on before the outage)."""
        key = (tick.get("symbol"), tick.get("ts"))
        if self._resent and key in self._resent:
            self._resent.discard(key)
            self.resent_dropped += 1
            return False
        if self.resume:
            self._unconfirmed.append(key)
        return True

    def _confirm(self, cursor: Any) -> None:
        """A cursor from the broadcaster: everything before it is accounted for."""
        if isinstance(cursor, int) and not isinstance(cursor, bool):
            self.cursor = cursor
            self._unconfirmed.clear()
            self._resent.clear()

    def _tick(self, tick: dict) -> None:
        try:
            self._on_tick(tick)
        except Exception:
            log.exception("tick handler failed on %s", tick.get("symbol"))

    def _connection_lost(self) -> None:
        self._connected.clear()
        with self._lock:
            pending, self._pending = self._pending, {}
        for entry in pending.values():
            self._finish(entry, None, FeedError(f"lost the connection to {self.url} before the reply "
                                                f"arrived; retry once it is back"))

    # -- requests

    def send(self, message: Mapping[str, Any]) -> None:
        """Send one JSON message; raise :class:`FeedError` when not connected."""
        with self._lock:
            app = self._app
        if app is None or not self.connected:
            raise FeedError(f"not connected to the broadcaster at {self.url}")
        try:
            app.send(json.dumps(message))
        except (websocket.WebSocketException, OSError) as exc:
            raise FeedError(f"sending to {self.url} failed: {exc}") from exc

    def request_async(self, message: Mapping[str, Any], handler: ReplyHandler) -> None:
        """Send a request now; ``handler(reply, error)`` runs in the connection thread."""
        entry = _Pending(handler=handler)
        request_id = self._register(entry)
        try:
            self.send({**message, "id": request_id})
        except FeedError as exc:
            self._forget(request_id)
            self._finish(entry, None, exc)

    def request(self, message: Mapping[str, Any], timeout: float = DEFAULT_REQUEST_TIMEOUT) -> dict:
        """Send a request and wait for its reply (waiting for the connection first, if down).

        Raises :class:`FeedError` on timeout or a lost connection and
        :class:`~datacentre.core.errors.ProtocolError` when the broadcaster answers with an error.
        """
        if threading.current_thread() is self._thread:
            raise RuntimeError("request() would wait for itself in the feed thread: use request_async()")
        self.start()
        deadline = time.monotonic() + timeout
        if not self.wait_connected(timeout):
            raise FeedError(f"no connection to the broadcaster at {self.url} within {timeout:g} s: "
                            f"start it with `python -m datacentre start` or check the URL")
        self._pace(deadline)
        entry = _Pending()
        request_id = self._register(entry)
        try:
            self.send({**message, "id": request_id})
            if not entry.event.wait(max(deadline - time.monotonic(), 0.0)):
                raise FeedError(f"no reply to {message.get('type')!r} from {self.url} within "
                                f"{timeout:g} s; the broadcaster may be overloaded, try again")
        finally:
            self._forget(request_id)
        if entry.error is not None:
            raise entry.error
        reply = entry.reply or {}
        if reply.get("type") == "error":
            raise ProtocolError(str(reply.get("code")), str(reply.get("message")))
        return reply

    def _pace(self, deadline: float) -> None:
        """Stay inside the broadcaster's request budget instead of being refused."""
        with self._pace_lock:
            while not self._limiter.allow():
                if time.monotonic() >= deadline:
                    raise FeedError(f"too many requests to {self.url}: more than {REQUEST_RATE:g} "
                                    f"per second are queued; slow down")
                time.sleep(0.5 / REQUEST_RATE)

    def _register(self, entry: _Pending) -> int:
        with self._lock:
            request_id = next(self._ids)
            self._pending[request_id] = entry
        return request_id

    def _forget(self, request_id: int) -> None:
        with self._lock:
            self._pending.pop(request_id, None)

    def _resolve(self, request_id: Any, reply: dict) -> bool:
        with self._lock:
            entry = self._pending.pop(request_id, None) if isinstance(request_id, int) else None
        if entry is None:
            return False
        self._finish(entry, reply, None)
        return True

    def _resolve_oldest(self, reply: dict) -> bool:
        # An error without an id: the server could not read the request's id (ours
        # echoes every id it can read; this keeps servers that do not working). A
        # connection's requests are answered in order, so it is the oldest one's.
        with self._lock:
            if not self._pending:
                return False
            entry = self._pending.pop(next(iter(self._pending)))
        self._finish(entry, reply, None)
        return True

    @staticmethod
    def _finish(entry: _Pending, reply: dict | None, error: Exception | None) -> None:
        entry.reply, entry.error = reply, error
        entry.event.set()
        if entry.handler is not None:
            try:
                entry.handler(reply, error)
            except Exception:
                log.exception("reply handler failed")
