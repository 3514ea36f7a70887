"""The WebSocket broadcaster: every new row of the tick store, live, to every client.

A thin asyncio shell around :mod:`datacentre.feed.protocol` (what to say) and
:class:`~datacentre.store.tickstore.TickStore` (what happened). :class:`FeedServer` holds
everything a feed needs (connections, requests, fan-out, ``/health``, auth);
:class:`Broadcaster` feeds it from the store's id cursor and
:class:`datacentre.feed.replay.Replayer` from a stored time range.

How the live feed follows the store
    By id (``store.after(cursor)``), never by timestamp, so every committed row
    goes out exactly once and in order, whichever process wrote it. It starts at
    the current ``max_id()`` (new clients get only new ticks), reads every
    ``poll_interval`` seconds and at once when :meth:`Broadcaster.notify` is
    called (an in-process collector calls it right after each commit). Store
    reads run in a worker thread, so a slow database never stalls pings.

How ticks reach clients (the latency trade-off)
    The fan-out bypasses websockets' ``send()`` path. Each batch of rows is
    encoded once per distinct (format, filter) pair: all clients receiving every
    tick share one ``bytes`` blob of ready-made WebSocket frames, all
    snapshot-format clients share another, and filtered clients get a blob per
    distinct filter. The blob is handed to each open connection's transport
    in a single ``transport.write()``. ``websockets.broadcast()`` once per tick
    instead frames every message for every client and writes each frame
    separately: with 300 clients and 90-row snapshots (``bench/bench_broadcast.py``,
    2 CPUs shared with the clients) the last byte of a snapshot left the server
    p99 ~20 ms after the commit, against ~820 ms with ``broadcast()`` per tick.

    It is safe because server frames are unmasked and the server runs without
    compression (``compression=None``), so a frame's bytes are the same for
    every client; asyncio transports queue whole writes in order and
    websockets itself writes whole frames, so frames never interleave; and a
    blob is only written while the connection is OPEN (once websockets starts
    its closing handshake, nothing more is written). What is given up: no
    per-message compression, and no ``await send()`` backpressure. Instead each
    client has a bounded buffer: when its transport holds more than
    ``max_buffer_bytes`` unsent (on top of what the kernel's socket buffers
    hold), that client is disconnected at once (the transport is aborted: a
    close frame would sit behind megabytes of stale ticks) and a warning is
    logged. One slow client never delays the others.

Requests (``ping``, ``get_latest``, ...) are answered through the ordinary
``await ws.send()``: they are rare. A bad request gets an error message and the
connection stays open; a client that keeps exceeding its request rate, or sends
a frame larger than ``max_frame_bytes``, is disconnected.

``GET /health`` on the same port answers JSON (no token needed):
``{"status", "mode", "subscribers", "last_tick_ts", "ticks_sent", "uptime_s", ...}``.

Binding to anything but loopback needs a token (``token=`` or
``DATACENTRE_WS_TOKEN``); clients send it as ``?token=...`` or
``Authorization: Bearer ...``. A configured token is enforced on loopback too.
"""
from __future__ import annotations

import asyncio
import errno
import functools
import hmac
import http
import itertools
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request as HttpRequest
from websockets.http11 import Response
from websockets.protocol import State

from datacentre.core.config import DEFAULT_WS_HOST, DEFAULT_WS_PORT, is_loopback
from datacentre.core.errors import ConfigError, FeedError, ProtocolError, StoreError
from datacentre.feed import protocol
from datacentre.store.tickstore import TickStore

log = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL = 0.05
DEFAULT_MAX_BUFFER_BYTES = 8 * 2**20
#: websockets' ``max_size``: a bigger incoming frame closes the connection (code 1009).
DEFAULT_MAX_FRAME_BYTES = 64 * 1024
READ_BATCH = 10_000
MAX_READ_BACKOFF = 2.0
#: Seconds clients get to answer the close frame when the server stops. A client that
#: answers at all does so within a round trip; one whose reader is blocked elsewhere
#: never does, and must not hold the stop up for ``close_timeout``.
STOP_GRACE = 0.25
POLICY_VIOLATION = 1008
TOKEN_ENV = "DATACENTRE_WS_TOKEN"


class _Client:
    """One open connection and its protocol state."""

    __slots__ = ("ws", "state", "peer")

    def __init__(self, ws: ServerConnection, state: protocol.ClientState) -> None:
        self.ws = ws
        self.state = state
        self.peer = _peer(ws)


class _PoolClosed(Exception):
    """The worker threads take no more work: the interpreter is exiting."""


async def _in_thread(func, /, *args):
    """``func(*args)`` in the loop's worker threads, so blocking store I/O never stalls the loop.

    Raises :class:`_PoolClosed`, not the pool's ``RuntimeError``, when the pool
    refuses the work: ``concurrent.futures`` does that from the start of
    interpreter exit (before ``atexit`` handlers run), and it is no store failure.
    """
    loop = asyncio.get_running_loop()
    try:
        future = loop.run_in_executor(None, functools.partial(func, *args))
    except RuntimeError as exc:
        raise _PoolClosed(str(exc)) from exc
    return await future


def _ws_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"ws://{shown}:{port}"


class FeedServer:
    """A websockets server that fans rows out to clients and answers their requests.

    Subclasses provide :meth:`_feed` (the coroutine that produces rows and calls
    :meth:`_publish`) and may extend :meth:`_dispatch` and :meth:`_welcome_fields`.
    """

    mode = "live"

    def __init__(self, store: TickStore, *, host: str = DEFAULT_WS_HOST, port: int = DEFAULT_WS_PORT,
                 token: str | None = None, max_buffer_bytes: int = DEFAULT_MAX_BUFFER_BYTES,
                 max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
                 request_rate: float = protocol.DEFAULT_RATE,
                 request_burst: float = protocol.DEFAULT_BURST,
                 max_strikes: int = protocol.DEFAULT_MAX_STRIKES,
                 ping_interval: float | None = 20, ping_timeout: float | None = 20,
                 close_timeout: float = 2.0) -> None:
        if token is None:
            token = os.environ.get(TOKEN_ENV) or None
        if not is_loopback(host) and not token:
            raise ConfigError(
                f"refusing to serve on {host!r} without a token: anyone on the network could "
                f"connect. Set {TOKEN_ENV} (or pass token=...) and give clients "
                f"ws://HOST:PORT/?token=..., or bind to 127.0.0.1")
        if max_buffer_bytes < 1:
            raise ConfigError(f"max_buffer_bytes must be positive, got {max_buffer_bytes}")
        self.store = store
        self.host = host
        self.port = port
        self.token = token
        self.max_buffer_bytes = int(max_buffer_bytes)
        self.max_frame_bytes = int(max_frame_bytes)
        self._client_options = {"rate": request_rate, "burst": request_burst,
                                "max_strikes": max_strikes}
        self._ws_options = {"ping_interval": ping_interval, "ping_timeout": ping_timeout,
                            "close_timeout": close_timeout}
        self._clients: dict[_Client, None] = {}  # insertion-ordered set
        self._server: Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = time.monotonic()
        self.ticks_sent = 0  # rows fanned out (each row once, however many clients)
        self.messages_sent = 0  # frames written to clients, summed over clients
        self.bytes_sent = 0
        self.last_tick_ts: str | None = None
        self.connections_total = 0
        self.dropped_clients = 0
        self.store_error: str | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r}, subscribers={len(self._clients)})"

    @property
    def url(self) -> str:
        return _ws_url(self.host, self.port)

    # ------------------------------------------------------------------ lifecycle

    async def serve(self, stop: asyncio.Event | None = None) -> None:
        """Listen, feed clients until ``stop`` is set (forever if None) or the interpreter
        exits, then close."""
        await self._listen()
        try:
            await self._run(stop or asyncio.Event())
        finally:
            await self._close()

    async def _listen(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._started = time.monotonic()
        try:
            self._server = await serve(
                self._handler, self.host, self.port, compression=None,
                max_size=self.max_frame_bytes, process_request=self._process_request,
                **self._ws_options)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                hint = ("the port is already in use: is another broadcaster running there? Stop it "
                        "(python -m datacentre stop) or pick another port with --port / "
                        "DATACENTRE_WS_PORT")
            else:
                hint = f"{exc.strerror or exc}: check --host / DATACENTRE_WS_HOST"
            raise FeedError(f"cannot listen on {self.url}: {hint}") from exc
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("%s listening on %s", self.mode, self.url)

    async def _run(self, stop: asyncio.Event) -> None:
        feed = asyncio.create_task(self._feed(), name=f"{self.mode}-feed")
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({feed, stopped}, return_when=asyncio.FIRST_COMPLETED)
            error = feed.exception() if feed.done() and not feed.cancelled() else None
            if isinstance(error, _PoolClosed):
                # Clients get a proper "going away" now rather than a dead socket at exit.
                log.info("the interpreter is exiting: closing the %s server", self.mode)
            elif error is not None:
                raise error
        finally:
            for task in (feed, stopped):
                task.cancel()
            await asyncio.gather(feed, stopped, return_exceptions=True)

    async def _close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()  # stops listening and sends every client a 1001 close frame
            try:
                async with asyncio.timeout(STOP_GRACE):
                    await server.wait_closed()
            except TimeoutError:
                for client in list(self._clients):
                    client.ws.transport.abort()
                await server.wait_closed()
        self._clients.clear()
        log.info("%s on %s stopped", self.mode, self.url)

    async def _feed(self) -> None:
        raise NotImplementedError

    def stats(self) -> dict[str, Any]:
        """Counters for ``/health``, status pages and tests (safe from any thread)."""
        return {
            "status": "ok" if self.store_error is None else "store_error",
            "mode": self.mode,
            "pid": os.getpid(),  # tells `start` whether the answer is from the process it started
            "url": self.url,
            "subscribers": len(self._clients),
            "ticks_sent": self.ticks_sent,
            "messages_sent": self.messages_sent,
            "bytes_sent": self.bytes_sent,
            "last_tick_ts": self.last_tick_ts,
            "uptime_s": round(time.monotonic() - self._started, 3),
            "connections_total": self.connections_total,
            "dropped_clients": self.dropped_clients,
            "store_error": self.store_error,
        }

    # ------------------------------------------------------------------ HTTP side

    def _process_request(self, connection: ServerConnection, request: HttpRequest) -> Response | None:
        url = urlsplit(request.path)
        if url.path.rstrip("/") == "/health":
            body = protocol.encode(self.stats()).encode()
            headers = Headers([("Content-Type", "application/json"),
                               ("Content-Length", str(len(body))), ("Connection", "close"),
                               ("Cache-Control", "no-store")])
            return Response(200, "OK", headers, body)
        if self.token and not self._authorized(request, url.query):
            log.warning("refused %s: missing or wrong token", _peer(connection))
            return connection.respond(http.HTTPStatus.UNAUTHORIZED,
                                      "a token is required: connect to ws://HOST:PORT/?token=... "
                                      "or send 'Authorization: Bearer ...'\n")
        return None

    def _authorized(self, request: HttpRequest, query: str) -> bool:
        expected = (self.token or "").encode()
        offered = parse_qs(query).get("token", [])
        header = request.headers.get("Authorization", "")
        if header[:7].lower() == "bearer ":
            offered.append(header[7:].strip())
        return any(hmac.compare_digest(value.encode(), expected) for value in offered)

    # ------------------------------------------------------------------ connections

    def _welcome_fields(self) -> dict[str, Any]:
        return {"mode": self.mode}

    def _on_join(self, client: _Client) -> None:
        """Called once a client has its welcome and is receiving the feed."""

    async def _handler(self, ws: ServerConnection) -> None:
        client = _Client(ws, protocol.ClientState(**self._client_options))
        self.connections_total += 1
        try:
            await ws.send(protocol.welcome_message(len(self._clients) + 1, **self._welcome_fields()))
            # Registered only after the welcome is written, so it always comes first.
            self._clients[client] = None
            self._on_join(client)
            log.info("client %s connected (%d subscribers)", client.peer, len(self._clients))
            async for message in ws:
                reply = await self._answer(client, message)
                if reply is not None:
                    await ws.send(reply)
                if client.state.abusive:
                    log.warning("client %s: too many requests; disconnecting it", client.peer)
                    await ws.close(POLICY_VIOLATION, "too many requests")
                    break
        except ConnectionClosed as exc:
            log.info("client %s closed the connection (%s)", client.peer, exc)
        except Exception:
            log.error("client %s: connection handler failed", client.peer, exc_info=True)
        finally:
            self._clients.pop(client, None)
            log.info("client %s disconnected (%d subscribers)", client.peer, len(self._clients))

    async def _answer(self, client: _Client, message: str | bytes) -> str | None:
        rid = None
        try:
            client.state.admit(message)
            request = protocol.parse_request(message)
            rid = request.id
            return await self._dispatch(client, request)
        except ProtocolError as exc:
            return protocol.error_reply(exc)
        except _PoolClosed:
            return protocol.error_message("internal_error", "the server is shutting down; "
                                                            "reconnect in a moment", rid)
        except StoreError as exc:
            log.warning("client %s: store failed answering a request", client.peer, exc_info=True)
            return protocol.error_message("internal_error", f"the store failed: {exc}; try again",
                                          rid)
        except Exception:
            log.error("client %s: request %.200r failed", client.peer, message, exc_info=True)
            return protocol.error_message("internal_error", "the server failed to answer; see its log",
                                          rid)

    async def _dispatch(self, client: _Client, request: protocol.Request) -> str:
        kind, rid = request.type, request.id
        if kind == "ping":
            return protocol.pong_message(rid)
        if kind in ("subscribe", "unsubscribe", "set_format"):
            return client.state.apply(request)
        if kind == "get_latest":
            tick = await self._latest(request.symbol)
            if tick is None:
                return protocol.error_message("unknown_symbol", f"no ticks stored for {request.symbol!r}",
                                              rid)
            return protocol.latest_message(tick, rid)
        if kind == "get_symbols":
            return protocol.symbols_message(await _in_thread(self.store.symbols), rid)
        if kind == "get_latest_all":
            return protocol.latest_all_message(await self._latest_all(request.limit), rid)
        if kind == "get_history":
            return await self._history(request)
        return protocol.error_message("unknown_type", f"{kind!r} is only available in replay mode "
                                                      f"(python -m datacentre replay)", rid)

    async def _latest(self, symbol: str) -> Mapping[str, Any] | None:
        return await _in_thread(self.store.latest, symbol)

    async def _latest_all(self, limit: int | None) -> Sequence[Mapping[str, Any]]:
        return await _in_thread(self.store.latest_all, limit)

    async def _history(self, request: protocol.Request) -> str:
        # Encoded in the worker thread too: 10,000 ticks take ~50 ms to encode, which on the
        # loop would hold up every other client's ticks.
        return await _in_thread(self._history_reply, request)

    def _history_reply(self, request: protocol.Request) -> str:
        limit = request.limit or protocol.DEFAULT_HISTORY_LIMIT
        rows = self.store.history(request.symbol, request.start_ts, request.end_ts, limit + 1)
        if not rows and not self.store.has_symbol(request.symbol):
            return protocol.error_message("unknown_symbol", f"no ticks stored for {request.symbol!r}",
                                          request.id)
        return protocol.history_message(request.symbol, rows[:limit], start_ts=request.start_ts,
                                        end_ts=request.end_ts, truncated=len(rows) > limit,
                                        request_id=request.id)

    # ------------------------------------------------------------------ fan-out

    def _publish(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Send ``rows`` (in order) to every client, encoding once per distinct (format, filter)."""
        if not rows:
            return
        self.ticks_sent += len(rows)
        self.last_tick_ts = rows[-1]["ts"]
        if not self._clients:
            return
        encoded = [protocol.encode_tick(row) for row in rows]
        frames: list[bytes] = []
        blobs: dict[tuple, tuple[bytes, int]] = {}
        for client in list(self._clients):
            key = client.state.key
            blob = blobs.get(key)
            if blob is None:
                if not frames and key[0] == "tick":
                    frames = [protocol.text_frame(text.encode()) for text in encoded]
                blob = blobs[key] = _build_blob(key, rows, encoded, frames)
            if blob[1]:
                self._write(client, *blob)

    def _publish_text(self, text: str) -> None:
        """Send one message to every client, whatever its filter or format."""
        blob = protocol.text_frame(text.encode())
        for client in list(self._clients):
            self._write(client, blob, 1)

    def _write(self, client: _Client, blob: bytes, count: int) -> None:
        ws = client.ws
        try:
            if ws.state is not State.OPEN:
                return
            transport = ws.transport
            if transport.is_closing():
                return
            buffered = transport.get_write_buffer_size()
            if buffered > self.max_buffer_bytes:
                self._drop(client, f"too slow: {buffered} bytes unsent (limit {self.max_buffer_bytes})")
                return
            transport.write(blob)
        except Exception:
            log.warning("client %s: write failed", client.peer, exc_info=True)
            self._drop(client, "write failed")
            return
        self.messages_sent += count
        self.bytes_sent += len(blob)

    def _drop(self, client: _Client, reason: str) -> None:
        """Disconnect a client at once (its unsent data is discarded)."""
        if client in self._clients:
            del self._clients[client]
            self.dropped_clients += 1
            log.warning("disconnecting client %s: %s", client.peer, reason)
        try:
            client.ws.transport.abort()
        except Exception:
            log.debug("abort failed for %s", client.peer, exc_info=True)


def _peer(connection: ServerConnection) -> str:
    """``host:port`` of the client, for logs ("?" once the socket is gone)."""
    try:
        host, port = connection.remote_address[:2]
        return f"{host}:{port}"
    except Exception:
        return "?"


def _build_blob(key: tuple, rows: Sequence[Mapping[str, Any]], encoded: list[str],
                frames: list[bytes]) -> tuple[bytes, int]:
    """The bytes (and message count) that clients with ``key`` receive for ``rows``."""
    fmt, symbol_filter = key
    if symbol_filter.is_all:
        picked = range(len(rows))
    else:
        picked = [i for i, row in enumerate(rows) if symbol_filter.wants(row["symbol"])]
    if fmt == "tick":
        return b"".join([frames[i] for i in picked]), len(picked)
    parts = []
    for ts, group in itertools.groupby(picked, key=lambda i: rows[i]["ts"]):
        text = protocol.encode_snapshot(ts, [encoded[i] for i in group])
        parts.append(protocol.text_frame(text.encode()))
    return b"".join(parts), len(parts)


class Broadcaster(FeedServer):
    """The live feed: follows the store's id cursor and fans new rows out at once.

    >>> asyncio.run(Broadcaster(TickStore()).serve())
    """

    mode = "live"

    def __init__(self, store: TickStore, *, host: str = DEFAULT_WS_HOST, port: int = DEFAULT_WS_PORT,
                 token: str | None = None, poll_interval: float = DEFAULT_POLL_INTERVAL,
                 max_buffer_bytes: int = DEFAULT_MAX_BUFFER_BYTES, read_batch: int = READ_BATCH,
                 **options: Any) -> None:
        super().__init__(store, host=host, port=port, token=token,
                         max_buffer_bytes=max_buffer_bytes, **options)
        if not poll_interval > 0:
            raise ConfigError(f"poll_interval must be positive, got {poll_interval}")
        self.poll_interval = float(poll_interval)
        self.read_batch = int(read_batch)
        self.cursor: int | None = None
        self._wake: asyncio.Event | None = None

    def notify(self) -> None:
        """Read the store now instead of at the next poll. Safe from any thread."""
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(wake.set)
        except RuntimeError:  # the loop closed in between: nothing left to wake
            pass

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), "cursor": self.cursor}

    async def _listen(self) -> None:
        self._wake = asyncio.Event()
        # The starting point is fixed before anyone can connect or start() returns, so a row
        # committed right after start() is never mistaken for an old one.
        self.cursor = await self._read(self.store.max_id)
        await super()._listen()

    async def _feed(self) -> None:
        wake = self._wake
        assert wake is not None  # set by _listen()
        while self.cursor is None:
            await self._pause(wake)
            self.cursor = await self._read(self.store.max_id)
        log.info("following the store from id %d", self.cursor)
        while True:
            # Cleared before reading: a notify() during the read makes the next wait return at once.
            wake.clear()
            rows = await self._read(self.store.after, self.cursor, self.read_batch)
            if rows:
                self.cursor = rows[-1]["id"]
                self._publish(rows)
                if len(rows) >= self.read_batch:
                    await asyncio.sleep(0)  # let pings and requests through between big batches
                    continue
            if rows is None:
                await self._pause(wake)
                continue
            try:
                async with asyncio.timeout(self.poll_interval):
                    await wake.wait()
            except TimeoutError:
                pass

    async def _read(self, func, *args):
        """Run a store read in a worker thread; None (logged once per outage) if it fails."""
        try:
            result = await _in_thread(func, *args)
        except _PoolClosed:
            raise
        except Exception as exc:
            if self.store_error is None:
                log.warning("store read failed; retrying until it works", exc_info=True)
            self.store_error = str(exc) or type(exc).__name__
            return None
        if self.store_error is not None:
            log.info("store readable again")
            self.store_error = None
        return result

    async def _pause(self, wake: asyncio.Event) -> None:
        """Back off after a failed read (a notify() does not cut it short)."""
        await asyncio.sleep(min(MAX_READ_BACKOFF, max(self.poll_interval * 10, 0.5)))
        wake.clear()


class ServerThread:
    """Runs a :class:`FeedServer` in its own event loop on a daemon thread."""

    def __init__(self, server: FeedServer) -> None:
        self.server = server
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r}, running={self.is_running()})"

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def url(self) -> str:
        return self.server.url

    def stats(self) -> dict[str, Any]:
        return self.server.stats()

    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 10) -> ServerThread:
        """Start serving; return once listening. Raise :class:`FeedError` if it cannot listen."""
        if self.is_running():
            return self
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._main, name=f"datacentre-{self.server.mode}",
                                        daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise FeedError(f"the {self.server.mode} server did not start within {timeout:g} s")
        if self._error is not None:
            self._thread.join(timeout)
            error = self._error
            if isinstance(error, FeedError | ConfigError):
                raise error
            raise FeedError(f"the {self.server.mode} server failed to start: {error}") from error
        return self

    def stop(self, timeout: float = 5) -> None:
        """Close every connection and stop the thread (idempotent).

        Clients get a close frame and ``STOP_GRACE`` seconds to answer it, then their
        connections are cut; ``timeout`` bounds the wait for the thread.
        """
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:
                pass
        thread.join(timeout)
        if thread.is_alive():
            log.warning("%r did not stop within %g s", self, timeout)
        else:
            self._thread = None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server thread ends (True) or ``timeout`` passes (False)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _main(self) -> None:
        try:
            asyncio.run(self._amain())
        except BaseException as exc:
            if self._ready.is_set():
                log.error("%s server stopped by an error", self.server.mode, exc_info=True)
            else:
                self._error = exc
        finally:
            self._ready.set()
            self._loop = None

    async def _amain(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        await self.server._listen()
        try:
            self._ready.set()
            await self.server._run(self._stop)
        finally:
            await self.server._close()


class BroadcasterThread(ServerThread):
    """A :class:`Broadcaster` on a daemon thread (the CLI, the Streamlit app, tests).

    >>> feed = BroadcasterThread(store, port=0).start()
    >>> feed.url, feed.notify(), feed.stop()
    """

    server: Broadcaster

    def __init__(self, store: TickStore, *, host: str = DEFAULT_WS_HOST, port: int = DEFAULT_WS_PORT,
                 token: str | None = None, **options: Any) -> None:
        super().__init__(Broadcaster(store, host=host, port=port, token=token, **options))

    def start(self, timeout: float = 10) -> BroadcasterThread:
        super().start(timeout)
        return self

    def notify(self) -> None:
        """Push newly committed rows now (thread-safe; call it right after a commit)."""
        self.server.notify()
