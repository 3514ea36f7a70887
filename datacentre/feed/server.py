"""The feed server both feeds build on: connections, requests, fan-out, ``/health``, auth.

A thin asyncio shell around :mod:`datacentre.feed.protocol` (what to say) and
:class:`~datacentre.store.tickstore.TickStore` (what happened). :class:`FeedServer`
holds everything a feed needs; :class:`~datacentre.feed.broadcaster.Broadcaster`
feeds it from the store's id cursor and :class:`~datacentre.feed.replay.Replayer`
from a stored time range. :class:`~datacentre.feed.thread.ServerThread` runs either
on a daemon thread.

How ticks reach clients (the latency trade-off)
    Each batch of rows is encoded once per distinct (format, filter) pair
    (:mod:`datacentre.feed.fanout`) and handed to each open connection's transport
    in a single ``transport.write()``, bypassing websockets' ``send()`` path.

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
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request as HttpRequest
from websockets.http11 import Response
from websockets.protocol import State

from datacentre.core.config import (
    DEFAULT_WS_HOST,
    DEFAULT_WS_PORT,
    TOKEN_ENV,
    default_token,
    is_loopback,
    make_ws_url,
)
from datacentre.core.errors import ConfigError, FeedError, ProtocolError, StoreError
from datacentre.feed import fanout, protocol
from datacentre.store.tickstore import TickStore

log = logging.getLogger(__name__)

#: Unsent bytes a client's transport may hold before the client is disconnected.
DEFAULT_MAX_BUFFER_BYTES = 8 * 2**20
#: websockets' ``max_size``: a bigger incoming frame closes the connection (code 1009).
DEFAULT_MAX_FRAME_BYTES = 64 * 1024
#: Seconds clients get to answer the close frame when the server stops. A client that
#: answers at all does so within a round trip; one whose reader is blocked elsewhere
#: never does, and must not hold the stop up for ``close_timeout``.
STOP_GRACE = 0.25
POLICY_VIOLATION = 1008


class Client:
    """One open connection and its protocol state."""

    __slots__ = ("ws", "state", "peer")

    def __init__(self, ws: ServerConnection, state: protocol.ClientState) -> None:
        self.ws = ws
        self.state = state
        self.peer = _peer(ws)


class PoolClosed(Exception):
    """The worker threads take no more work: the interpreter is exiting."""


async def in_thread(func, /, *args):
    """``func(*args)`` in the loop's worker threads, so blocking store I/O never stalls the loop.

    Raises :class:`PoolClosed`, not the pool's ``RuntimeError``, when the pool
    refuses the work: ``concurrent.futures`` does that from the start of
    interpreter exit (before ``atexit`` handlers run), and it is no store failure.
    """
    loop = asyncio.get_running_loop()
    try:
        future = loop.run_in_executor(None, functools.partial(func, *args))
    except RuntimeError as exc:
        raise PoolClosed(str(exc)) from exc
    return await future



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
            token = default_token()
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
        self._clients: dict[Client, None] = {}  # insertion-ordered set
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
        return make_ws_url(self.host, self.port)

    # ------------------------------------------------------------------ lifecycle

    async def serve(self, stop: asyncio.Event | None = None, *,
                    listening: Callable[[], None] | None = None) -> None:
        """Listen, feed clients until ``stop`` is set (forever if None) or the interpreter
        exits, then close. ``listening()`` is called once the port is open."""
        await self._listen()
        try:
            if listening is not None:
                listening()
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
            if isinstance(error, PoolClosed):
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

    def _on_join(self, client: Client) -> None:
        """Called once a client has its welcome and is receiving the feed."""

    async def _handler(self, ws: ServerConnection) -> None:
        client = Client(ws, protocol.ClientState(**self._client_options))
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

    async def _answer(self, client: Client, message: str | bytes) -> str | None:
        rid = None
        try:
            client.state.admit(message)
            request = protocol.parse_request(message)
            rid = request.id
            return await self._dispatch(client, request)
        except ProtocolError as exc:
            return protocol.error_reply(exc)
        except PoolClosed:
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

    async def _dispatch(self, client: Client, request: protocol.Request) -> str:
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
            return protocol.symbols_message(await in_thread(self.store.symbols), rid)
        if kind == "get_latest_all":
            return protocol.latest_all_message(await self._latest_all(request.limit), rid)
        if kind == "get_history":
            return await self._history(request)
        return protocol.error_message("unknown_type", f"{kind!r} is only available in replay mode "
                                                      f"(python -m datacentre replay)", rid)

    async def _latest(self, symbol: str) -> Mapping[str, Any] | None:
        return await in_thread(self.store.latest, symbol)

    async def _latest_all(self, limit: int | None) -> Sequence[Mapping[str, Any]]:
        return await in_thread(self.store.latest_all, limit)

    async def _history(self, request: protocol.Request) -> str:
        # Encoded in the worker thread too: 10,000 ticks take ~50 ms to encode, which on the
        # loop would hold up every other client's ticks.
        return await in_thread(self._history_reply, request)

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
        clients = list(self._clients)
        blobs = fanout.blobs_for(rows, [client.state.key for client in clients])
        for client in clients:
            blob = blobs[client.state.key]
            if blob[1]:
                self._write(client, *blob)

    def _publish_text(self, text: str) -> None:
        """Send one message to every client, whatever its filter or format."""
        blob = protocol.text_frame(text.encode())
        for client in list(self._clients):
            self._write(client, blob, 1)

    def _write(self, client: Client, blob: bytes, count: int) -> None:
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

    def _drop(self, client: Client, reason: str) -> None:
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
