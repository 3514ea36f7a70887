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
    client has a bounded buffer and a clock (:mod:`datacentre.feed.slow`): a
    client whose transport holds more than ``max_buffer_bytes`` unsent, or whose
    unsent data has not drained for ``stall_timeout`` seconds, is cut with close
    code 1008 and a reason (logged), its connection aborted a second later. One
    slow client never delays the others.

Connections: at most ``max_connections`` at once (more are refused with HTTP 503 and
a ``Retry-After``); one that has not finished its opening handshake within
``open_timeout`` seconds is dropped. The welcome is the first frame of every
connection, written in the same step that registers it for the feed.

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
from datacentre.core.errors import ConfigError, FeedError, ProtocolError
from datacentre.feed import fanout, protocol, slow
from datacentre.feed.requests import PoolClosed, RequestAnswers
from datacentre.feed.requests import in_thread as in_thread
from datacentre.store.tickstore import TickStore

log = logging.getLogger(__name__)

#: Unsent bytes a client's transport may hold before the client is disconnected.
DEFAULT_MAX_BUFFER_BYTES = 4 * 2**20
#: Open connections at once; more are refused politely (HTTP 503).
DEFAULT_MAX_CONNECTIONS = 1000
#: Seconds a connection gets to finish its opening handshake.
DEFAULT_OPEN_TIMEOUT = 10.0
#: Seconds a refused client is asked to wait before trying again.
RETRY_AFTER_S = 5
#: websockets' ``max_size``: a bigger incoming frame closes the connection (code 1009).
DEFAULT_MAX_FRAME_BYTES = 64 * 1024
#: Seconds clients get to answer the close frame when the server stops. A client that
#: answers at all does so within a round trip; one whose reader is blocked elsewhere
#: never does, and must not hold the stop up for ``close_timeout``.
STOP_GRACE = 0.25
POLICY_VIOLATION = 1008


class Client:
    """One open connection: its protocol state, and how it keeps up.

    ``resume`` is True for a client that asked for cursors; ``resume_from`` is the cursor
    it is catching up from (None once it is live, or if it never resumed).
    """

    __slots__ = ("ws", "state", "peer", "resume", "resume_from", "written", "drain", "dropped")

    def __init__(self, ws: ServerConnection, state: protocol.ClientState) -> None:
        self.ws = ws
        self.state = state
        self.peer = _peer(ws)
        self.resume = False
        self.resume_from: int | None = None
        self.written = 0  # bytes handed to the transport
        self.drain = slow.DrainWatch(time.monotonic())
        self.dropped = False


class FeedServer(RequestAnswers):
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
                 close_timeout: float = 2.0, stall_timeout: float = slow.DEFAULT_STALL_TIMEOUT,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 open_timeout: float = DEFAULT_OPEN_TIMEOUT) -> None:
        if token is None:
            token = default_token()
        if not is_loopback(host) and not token:
            raise ConfigError(
                f"refusing to serve on {host!r} without a token: anyone on the network could "
                f"connect. Set {TOKEN_ENV} (or pass token=...) and give clients "
                f"ws://HOST:PORT/?token=..., or bind to 127.0.0.1")
        if max_buffer_bytes < 1:
            raise ConfigError(f"max_buffer_bytes must be positive, got {max_buffer_bytes}")
        if not stall_timeout > 0 or max_connections < 1 or not open_timeout > 0:
            raise ConfigError(f"stall_timeout and open_timeout must be positive and max_connections at "
                              f"least 1; got {stall_timeout}, {open_timeout}, {max_connections}")
        self.store = store
        self.host = host
        self.port = port
        self.token = token
        self.max_buffer_bytes = int(max_buffer_bytes)
        self.max_frame_bytes = int(max_frame_bytes)
        self.stall_timeout = float(stall_timeout)
        self.max_connections = int(max_connections)
        self._client_options = {"rate": request_rate, "burst": request_burst,
                                "max_strikes": max_strikes}
        self._ws_options = {"ping_interval": ping_interval, "ping_timeout": ping_timeout,
                            "close_timeout": close_timeout, "open_timeout": open_timeout}
        self._connections: dict[Client, None] = {}  # every welcomed connection (ordered set)
        self._clients: dict[Client, None] = {}  # those receiving the feed
        self._server: Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = time.monotonic()
        self.ticks_sent = 0  # rows fanned out (each row once, however many clients)
        self.messages_sent = 0  # frames written to clients, summed over clients
        self.bytes_sent = 0
        self.last_tick_ts: str | None = None
        self.last_source: str | None = None  # the newest row's source: "sim" is the simulator
        self.connections_total = 0
        self.dropped_clients = 0
        self.refused_connections = 0
        self.store_error: str | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r}, subscribers={len(self._connections)})"

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
        watch = asyncio.create_task(self._watch(), name=f"{self.mode}-slow-clients")
        try:
            await asyncio.wait({feed, stopped, watch}, return_when=asyncio.FIRST_COMPLETED)
            error = feed.exception() if feed.done() and not feed.cancelled() else None
            if isinstance(error, PoolClosed):
                # Clients get a proper "going away" now rather than a dead socket at exit.
                log.info("the interpreter is exiting: closing the %s server", self.mode)
            elif error is not None:
                raise error
        finally:
            for task in (feed, stopped, watch):
                task.cancel()
            await asyncio.gather(feed, stopped, watch, return_exceptions=True)

    async def _close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()  # stops listening and sends every client a 1001 close frame
            try:
                async with asyncio.timeout(STOP_GRACE):
                    await server.wait_closed()
            except TimeoutError:
                for client in list(self._connections):
                    client.ws.transport.abort()
                await server.wait_closed()
        self._clients.clear()
        self._connections.clear()
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
            "subscribers": len(self._connections),
            "ticks_sent": self.ticks_sent,
            "messages_sent": self.messages_sent,
            "bytes_sent": self.bytes_sent,
            "last_tick_ts": self.last_tick_ts,
            **self._source_fields(),
            "uptime_s": round(time.monotonic() - self._started, 3),
            "connections_total": self.connections_total,
            "dropped_clients": self.dropped_clients,
            "refused_connections": self.refused_connections,
            "max_connections": self.max_connections,
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
        if len(self._connections) >= self.max_connections:
            self.refused_connections += 1
            if self.refused_connections % 100 == 1:
                log.warning("refused %s: %d connections open, the limit", _peer(connection),
                            len(self._connections))
            response = connection.respond(
                http.HTTPStatus.SERVICE_UNAVAILABLE,
                f"this broadcaster serves {self.max_connections} connections at most and has them "
                f"all; try again in a few seconds or use another broadcaster\n")
            response.headers["Retry-After"] = str(RETRY_AFTER_S)
            return response
        if self.token and not self._authorized(request, url.query):
            log.warning("refused %s: missing or wrong token", _peer(connection))
            return connection.respond(http.HTTPStatus.UNAUTHORIZED,
                                      "a token is required: connect to ws://HOST:PORT/?token=... "
                                      "or send 'Authorization: Bearer ...'\n")
        try:
            self._accept(parse_qs(url.query))
        except ProtocolError as exc:
            return connection.respond(http.HTTPStatus.BAD_REQUEST, f"{exc.message}\n")
        return None

    def _accept(self, query: dict[str, list[str]]) -> None:
        """Check the connection's query parameters; raise :class:`ProtocolError` to refuse it."""

    def _authorized(self, request: HttpRequest, query: str) -> bool:
        expected = (self.token or "").encode()
        offered = parse_qs(query).get("token", [])
        header = request.headers.get("Authorization", "")
        if header[:7].lower() == "bearer ":
            offered.append(header[7:].strip())
        return any(hmac.compare_digest(value.encode(), expected) for value in offered)

    # ------------------------------------------------------------------ connections

    def _welcome_fields(self) -> dict[str, Any]:
        return {"mode": self.mode, **self._source_fields()}

    def _source_fields(self) -> dict[str, Any]:
        """``source`` of the newest row sent and ``simulated`` (True for the market simulator),
        so a client can tell a simulated market from the exchange's; None before any row."""
        source = self.last_source
        return {"source": source, "simulated": None if source is None else source == "sim"}

    def _prepare(self, client: Client) -> dict[str, Any]:
        """Set ``client`` up from its request (``client.ws.request``); return its own welcome fields."""
        return {}

    def _on_join(self, client: Client) -> None:
        """Called once a client has its welcome and is receiving the feed."""

    def _admit(self, client: Client) -> None:
        """Start feeding a welcomed client (in the step that wrote its welcome: nothing between)."""
        self._clients[client] = None
        self._on_join(client)

    async def _handler(self, ws: ServerConnection) -> None:
        client = Client(ws, protocol.ClientState(**self._client_options))
        self.connections_total += 1
        self._connections[client] = None
        try:
            welcome = protocol.welcome_message(len(self._connections), **self._welcome_fields(),
                                               **self._prepare(client))
            # Written straight to the transport and registered in the same step, so the
            # welcome comes first and its cursor is exactly where this client's feed begins.
            self._send_text(client, welcome)
            self._admit(client)
            log.info("client %s connected (%d subscribers)", client.peer, len(self._connections))
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
            self._connections.pop(client, None)
            log.info("client %s disconnected (%d subscribers)", client.peer, len(self._connections))

    # ------------------------------------------------------------------ fan-out

    def _publish(self, rows: Sequence[Mapping[str, Any]], cursor: int | None = None) -> None:
        """Send ``rows`` (in order) to every client, encoding once per distinct (format, filter).

        With ``cursor`` (the id the batch ends at), clients that asked for cursors also get
        a cursor message after their rows, even when none of the rows is theirs.
        """
        if rows:
            self.ticks_sent += len(rows)
            self.last_tick_ts = rows[-1]["ts"]
            self.last_source = rows[-1].get("source")
        if not self._clients or not (rows or cursor is not None):
            return
        clients = list(self._clients)
        blobs = fanout.blobs_for(rows, [client.state.key for client in clients])
        marker = b""
        if cursor is not None:
            marker = protocol.text_frame(protocol.resume_message("cursor", cursor=cursor).encode())
        marked: dict[tuple, fanout.Blob] = {}
        for client in clients:
            blob = blobs[client.state.key]
            if client.resume and marker:
                if client.state.key not in marked:
                    marked[client.state.key] = (blob[0] + marker, blob[1] + 1)
                blob = marked[client.state.key]
            if blob[1]:
                self._write(client, *blob)

    def _send_text(self, client: Client, text: str) -> None:
        """Send one message to one client now, in order with the feed."""
        self._write(client, protocol.text_frame(text.encode()), 1)

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
            reason = slow.verdict(0.0, transport.get_write_buffer_size(), stall_timeout=self.stall_timeout,
                                  max_buffer_bytes=self.max_buffer_bytes)
            if reason is not None:
                self._drop(client, reason)
                return
            transport.write(blob)
        except Exception:
            log.warning("client %s: write failed", client.peer, exc_info=True)
            self._drop(client, "write failed")
            return
        client.written += len(blob)
        self.messages_sent += count
        self.bytes_sent += len(blob)

    def _drop(self, client: Client, reason: str, code: int = slow.SLOW_CLOSE_CODE) -> None:
        """Cut a client: no more writes, a close frame behind its backlog, then abort."""
        self._clients.pop(client, None)
        if client.dropped:
            return
        client.dropped = True
        self.dropped_clients += 1
        log.warning("disconnecting client %s (close code %d): %s", client.peer, code, reason)
        slow.close_behind_backlog(client.ws, code, reason)

    async def _watch(self) -> None:
        """Cut the clients that fell too far behind or stopped draining (:mod:`~datacentre.feed.slow`)."""
        while True:
            await asyncio.sleep(min(slow.WATCH_PERIOD, self.stall_timeout / 4))
            now = time.monotonic()
            for client in list(self._connections):
                transport = client.ws.transport
                if client.dropped or client.ws.state is not State.OPEN or transport.is_closing():
                    continue
                pacing = client.resume_from is not None  # a catch-up writes only what was read
                unsent = slow.unsent_bytes(transport)
                undrained = client.drain.look(now, client.written, unsent, pacing=pacing)
                reason = slow.verdict(undrained, 0 if pacing else transport.get_write_buffer_size(),
                                      stall_timeout=self.stall_timeout,
                                      max_buffer_bytes=self.max_buffer_bytes, unsent=unsent)
                if reason is not None:
                    self._drop(client, reason)


def _peer(connection: ServerConnection) -> str:
    """``host:port`` of the client, for logs ("?" once the socket is gone)."""
    try:
        host, port = connection.remote_address[:2]
        return f"{host}:{port}"
    except Exception:
        return "?"
