"""The WebSocket protocol (docs/architecture.md, "WebSocket protocol"), with no sockets and no asyncio.

Text in, requests out; ticks and replies in, text and frame bytes out. The
servers in :mod:`datacentre.feed.broadcaster` and :mod:`datacentre.feed.replay` only move
what this module produces, so everything here is tested by feeding it strings.

Client to server (every request may carry an ``"id"``, echoed in its reply)::

    {"type": "ping"}                                   -> {"type": "pong", "timestamp": ISO}
    {"type": "get_latest", "symbol": S}                -> {"type": "latest", <14 tick fields>}
    {"type": "get_symbols"}                            -> {"type": "symbols", "symbols": [..], "count": N}
    {"type": "get_latest_all", "limit": N}             -> {"type": "latest_all", "ticks": [..], "count": N}
    {"type": "get_history", "symbol": S, "start_ts": ISO, "end_ts": ISO, "limit": N}
        -> {"type": "history", "symbol": S, "start_ts": .., "end_ts": .., "ticks": [..],
            "count": N, "truncated": bool}
    {"type": "subscribe", "symbols": [..] | "*"}       -> {"type": "subscribed", "symbols": [..] | "*"}
    {"type": "unsubscribe", "symbols": [..] | "*"}     -> {"type": "unsubscribed", "symbols": [..] | "*"}
    {"type": "set_format", "format": "tick" | "snapshot"} -> {"type": "format", "format": F}
    replay only: pause, resume, seek ("ts"), speed ("speed") -> {"type": "replay_status", ...}

A connection starts with every symbol; its first ``subscribe`` to a list narrows it to
that list (``"symbols": "NIFTY 50"``, a string, is that one symbol, never everything),
later ones add to it. The subscription acks report the filter in force afterwards:
``"symbols"`` is ``"*"`` or the list of symbols received, and ``"excluded"`` lists the
symbols left out of ``"*"`` (after unsubscribing single symbols from everything).

Server to client, unprompted: the welcome message (with ``"cursor"``, a store id), then
one tick object per live row (exactly :data:`~datacentre.core.ticks.TICK_FIELDS`, in that
order, no ``id``, no ``type``), or with ``set_format`` ``snapshot`` one
``{"type": "snapshot", "ts": .., "ticks": [..]}`` per snapshot. Errors are
``{"type": "error", "code": C, "message": M}`` with a code of :data:`ERROR_CODES`, or
``internal_error`` when the server itself failed (e.g. the store was unreachable).
A client that connected with ``?resume=...`` also gets ``cursor``, ``resumed`` and
``resume_gap`` messages (:mod:`datacentre.feed.resume` says when and why).

JSON is compact (``separators=(",", ":")``) and ASCII-only, and non-finite
floats go out as ``null`` so that every client's JSON parser accepts them.
"""
from __future__ import annotations

import json
import math
import re
import struct
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from datacentre.core.errors import ConfigError, ProtocolError, SymbolError
from datacentre.core.instruments import parse_symbol
from datacentre.core.ticks import format_ts, normalize_ts, now_utc, tick_dict

WELCOME_TEXT = "Connected to Real-Time Data Centre"

ERROR_CODES = ("invalid_json", "bad_request", "unknown_type", "unknown_symbol", "too_large",
               "rate_limited")

LIVE_REQUESTS = ("ping", "get_latest", "get_symbols", "get_latest_all", "get_history",
                 "subscribe", "unsubscribe", "set_format")
REPLAY_REQUESTS = ("pause", "resume", "seek", "speed")
REQUEST_TYPES = LIVE_REQUESTS + REPLAY_REQUESTS

FORMATS = ("tick", "snapshot")

#: Requests above this size are answered with ``too_large`` (the connection stays open).
MAX_REQUEST_BYTES = 32 * 1024
MAX_SYMBOL_CHARS = 64
MAX_SUBSCRIBE_SYMBOLS = 2_000
DEFAULT_LATEST_ALL_LIMIT = 100
DEFAULT_HISTORY_LIMIT = 10_000
MAX_LIMIT = 10_000
MIN_SPEED = 0.1
MAX_SPEED = 100.0
SPEEDS_ALLOWED = f"0 (as fast as clients read) or from {MIN_SPEED:g} to {MAX_SPEED:g}"

#: Token bucket per client: this many requests per second on average, bursts up to ``burst``.
DEFAULT_RATE = 20.0
DEFAULT_BURST = 40.0
#: Consecutive rate-limited requests after which a client counts as abusive.
DEFAULT_MAX_STRIKES = 20

_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def encode(obj: Any) -> str:
    """Compact, ASCII-only JSON; NaN and infinities become ``null``."""
    try:
        return _encode(obj)
    except ValueError:  # only raised for non-finite floats: rare, so checked lazily
        return _encode(_finite(obj))


def text_frame(payload: bytes) -> bytes:
    """One unmasked, uncompressed, final WebSocket text frame (RFC 6455 section 5.2).

    Server-to-client frames are never masked, so without compression the bytes are
    the same for every client and one encoding can be written to all of them.
    """
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


# ------------------------------------------------------------------ ticks


def encode_tick(row: Mapping[str, Any]) -> str:
    """A store row as the live tick message (exactly the 14 fields, no ``id``, no ``type``)."""
    return encode(tick_dict(row))


def encode_snapshot(ts: str, encoded_ticks: Iterable[str]) -> str:
    """``{"type":"snapshot","ts":..,"ticks":[..]}`` from already-encoded tick messages."""
    return f'{{"type":"snapshot","ts":{encode(ts)},"ticks":[{",".join(encoded_ticks)}]}}'


# ------------------------------------------------------------------ replies


def _reply(kind: str, fields: Mapping[str, Any] | None = None, request_id: Any = None) -> str:
    message: dict[str, Any] = {"type": kind}
    if fields:
        message.update(fields)
    if request_id is not None:
        message["id"] = request_id
    return encode(message)


def timestamp_now() -> str:
    return format_ts(now_utc())


def welcome_message(subscribers: int, **extra: Any) -> str:
    """The first message of every connection; ``extra`` adds fields (e.g. ``mode``)."""
    return _reply("welcome", {"message": WELCOME_TEXT, "timestamp": timestamp_now(),
                              "subscribers": subscribers, **extra})


def pong_message(request_id: Any = None) -> str:
    return _reply("pong", {"timestamp": timestamp_now()}, request_id)


def latest_message(tick: Mapping[str, Any], request_id: Any = None) -> str:
    return _reply("latest", tick_dict(tick), request_id)


def error_message(code: str, message: str, request_id: Any = None) -> str:
    return _reply("error", {"code": code, "message": message}, request_id)


def error_reply(exc: ProtocolError) -> str:
    """The error message for a :class:`ProtocolError` (echoing the request's id, if it had one)."""
    return error_message(exc.code, exc.message, getattr(exc, "request_id", None))


def symbols_message(symbols: Sequence[str], request_id: Any = None) -> str:
    return _reply("symbols", {"symbols": list(symbols), "count": len(symbols)}, request_id)


def latest_all_message(ticks: Sequence[Mapping[str, Any]], request_id: Any = None) -> str:
    return _reply("latest_all", {"ticks": [tick_dict(t) for t in ticks], "count": len(ticks)},
                  request_id)


def history_message(symbol: str, ticks: Sequence[Mapping[str, Any]], *, start_ts: str | None,
                    end_ts: str | None, truncated: bool = False, request_id: Any = None) -> str:
    return _reply("history", {"symbol": symbol, "start_ts": start_ts, "end_ts": end_ts,
                              "ticks": [tick_dict(t) for t in ticks], "count": len(ticks),
                              "truncated": truncated}, request_id)


def format_message(fmt: str, request_id: Any = None) -> str:
    return _reply("format", {"format": fmt}, request_id)


def replay_status_message(status: Mapping[str, Any], request_id: Any = None) -> str:
    return _reply("replay_status", status, request_id)


def replay_end_message(**fields: Any) -> str:
    return _reply("replay_end", fields)


RESUME_MESSAGES = ("cursor", "resumed", "resume_gap")


def resume_message(kind: str, **fields: Any) -> str:
    """One of :data:`RESUME_MESSAGES`, for resuming clients (:mod:`datacentre.feed.resume`)."""
    return _reply(kind, fields)


# ------------------------------------------------------------------ requests


@dataclass(frozen=True, slots=True)
class Request:
    """A validated client request. Only the fields of its ``type`` are set."""

    type: str
    id: Any = None
    symbol: str | None = None
    symbols: tuple[str, ...] | None = None  # None means "*" (every symbol)
    start_ts: str | None = None
    end_ts: str | None = None
    limit: int | None = None
    format: str | None = None
    ts: str | None = None
    speed: float | None = None


#: ``"id": value`` in a request too large to parse; ids longer than 256 characters are not echoed.
_ID_PATTERN = re.compile(r'"id"\s*:\s*("(?:[^"\\]|\\.){0,256}"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false)')


def peek_request_id(text: str | bytes) -> Any:
    """The ``"id"`` of a request refused before it is handled (``rate_limited``, ``too_large``).

    A request within :data:`MAX_REQUEST_BYTES` is parsed; a larger one is only
    scanned for its first ``"id": value`` (one linear pass; a nested object's ``"id"``
    can be taken for the request's, a price paid for not parsing it). None when
    no id can be read.
    """
    if isinstance(text, bytes | bytearray | memoryview):
        text = bytes(text).decode(errors="replace")
    try:
        if len(text) <= MAX_REQUEST_BYTES:
            data = json.loads(text)
            rid = data.get("id") if isinstance(data, dict) else None
        else:
            match = _ID_PATTERN.search(text)
            rid = json.loads(match.group(1)) if match else None
    except (ValueError, RecursionError):
        return None
    return None if isinstance(rid, dict | list) else rid


def _fail(code: str, message: str, request_id: Any = None) -> ProtocolError:
    exc = ProtocolError(code, message)
    exc.request_id = request_id  # so the error reply can echo it
    return exc


def _symbol(value: Any, field: str, rid: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail("bad_request", f'"{field}" must be a symbol such as "NIFTY 50"', rid)
    if len(value) > MAX_SYMBOL_CHARS:
        raise _fail("unknown_symbol", f"symbol longer than {MAX_SYMBOL_CHARS} characters", rid)
    try:
        parse_symbol(value)
    except SymbolError as exc:
        raise _fail("unknown_symbol", str(exc), rid) from None
    return value


def _limit(data: Mapping[str, Any], default: int, rid: Any) -> int:
    value = data.get("limit")
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise _fail("bad_request", f'"limit" must be a whole number from 1 to {MAX_LIMIT}', rid)
    return value


def _time(data: Mapping[str, Any], field: str, rid: Any, *, required: bool = False) -> str | None:
    value = data.get(field)
    if value is None:
        if required:
            raise _fail("bad_request", f'"{field}" is required (ISO 8601, e.g. '
                                       f'2026-01-02T08:13:05+00:00)', rid)
        return None
    if not isinstance(value, str):
        raise _fail("bad_request", f'"{field}" must be an ISO 8601 time string', rid)
    try:
        return normalize_ts(value)
    except ConfigError as exc:
        raise _fail("bad_request", f'"{field}": {exc}', rid) from None


def _symbol_list(data: Mapping[str, Any], rid: Any) -> tuple[str, ...] | None:
    value = data.get("symbols")
    if value == "*":
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise _fail("bad_request", '"symbols" must be "*" or a non-empty list of symbols', rid)
    if len(value) > MAX_SUBSCRIBE_SYMBOLS:
        raise _fail("bad_request", f'"symbols" takes at most {MAX_SUBSCRIBE_SYMBOLS} symbols: '
                                   f'subscribe in several requests', rid)
    if "*" in value:
        return None
    return tuple(dict.fromkeys(_symbol(s, "symbols", rid) for s in value))


def valid_speed(value: Any) -> bool:
    """True for a replay speed of :data:`SPEEDS_ALLOWED` (a number, not a bool)."""
    return (not isinstance(value, bool) and isinstance(value, int | float)
            and (value == 0 or MIN_SPEED <= value <= MAX_SPEED))


def _speed(data: Mapping[str, Any], rid: Any) -> float:
    value = data.get("speed")
    if not valid_speed(value):
        raise _fail("bad_request", f'"speed" must be {SPEEDS_ALLOWED}', rid)
    return float(value)


def parse_request(text: str | bytes) -> Request:
    """Validate one client message; raise :class:`ProtocolError` with the matching code.

    The error carries ``request_id`` (the request's ``"id"``, when it could be read),
    so :func:`error_reply` can echo it. A well-formed but unstored symbol is not
    checked here: that needs the store.
    """
    if len(text) > MAX_REQUEST_BYTES:
        raise _fail("too_large", f"requests are limited to {MAX_REQUEST_BYTES} bytes: ask for less "
                                 f"at a time (e.g. subscribe in several requests)", peek_request_id(text))
    if isinstance(text, bytes | bytearray | memoryview):
        try:
            text = bytes(text).decode()
        except UnicodeDecodeError:
            raise _fail("invalid_json", "requests must be UTF-8 JSON text") from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise _fail("invalid_json", 'not valid JSON: send an object such as {"type": "ping"}') from None
    if not isinstance(data, dict):
        raise _fail("bad_request", 'a request is a JSON object such as {"type": "ping"}')
    rid = data.get("id")
    if isinstance(rid, dict | list):
        raise _fail("bad_request", '"id" must be a string or a number')
    kind = data.get("type")
    if not isinstance(kind, str) or not kind:
        raise _fail("bad_request", 'a request needs a "type", e.g. {"type": "ping"}', rid)
    if kind not in REQUEST_TYPES:
        raise _fail("unknown_type", f"unknown request type {kind[:40]!r}; known: "
                                    f"{', '.join(REQUEST_TYPES)}", rid)
    if kind == "get_latest":
        return Request(kind, rid, symbol=_symbol(data.get("symbol"), "symbol", rid))
    if kind == "get_latest_all":
        return Request(kind, rid, limit=_limit(data, DEFAULT_LATEST_ALL_LIMIT, rid))
    if kind == "get_history":
        symbol = _symbol(data.get("symbol"), "symbol", rid)
        start, end = _time(data, "start_ts", rid), _time(data, "end_ts", rid)
        if start is not None and end is not None and start > end:
            raise _fail("bad_request", '"start_ts" is after "end_ts": swap them', rid)
        return Request(kind, rid, symbol=symbol, start_ts=start, end_ts=end,
                       limit=_limit(data, DEFAULT_HISTORY_LIMIT, rid))
    if kind in ("subscribe", "unsubscribe"):
        return Request(kind, rid, symbols=_symbol_list(data, rid))
    if kind == "set_format":
        fmt = data.get("format")
        if fmt not in FORMATS:
            raise _fail("bad_request", f'"format" must be one of {", ".join(FORMATS)}', rid)
        return Request(kind, rid, format=fmt)
    if kind == "seek":
        return Request(kind, rid, ts=_time(data, "ts", rid, required=True))
    if kind == "speed":
        return Request(kind, rid, speed=_speed(data, rid))
    return Request(kind, rid)  # ping, get_symbols, pause, resume


# ------------------------------------------------------------------ per-client state


class RateLimiter:
    """Token bucket: ``rate`` requests per second on average, bursts of up to ``burst``.

    ``clock`` (seconds, monotonic) is injectable so tests need no sleeping.
    """

    def __init__(self, rate: float = DEFAULT_RATE, burst: float = DEFAULT_BURST, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = float(rate)
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()

    def allow(self, cost: float = 1.0) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= cost:
            self._tokens -= cost
            return True
        return False


@dataclass(frozen=True, slots=True)
class SymbolFilter:
    """Which ticks a client receives: everything but ``symbols``, or only ``symbols``."""

    everything: bool = True
    symbols: frozenset[str] = frozenset()

    def wants(self, symbol: str) -> bool:
        return (symbol not in self.symbols) if self.everything else (symbol in self.symbols)

    @property
    def is_all(self) -> bool:
        return self.everything and not self.symbols

    def subscribe(self, symbols: tuple[str, ...] | None) -> SymbolFilter:
        if symbols is None:
            return SymbolFilter()
        if self.is_all:
            # A connection starts with everything: its first subscribe says what it wants.
            return SymbolFilter(False, frozenset(symbols))
        if self.everything:
            return SymbolFilter(True, self.symbols - set(symbols))
        return SymbolFilter(False, self.symbols | set(symbols))

    def unsubscribe(self, symbols: tuple[str, ...] | None) -> SymbolFilter:
        if symbols is None:
            return SymbolFilter(False, frozenset())
        if self.everything:
            return SymbolFilter(True, self.symbols | set(symbols))
        return SymbolFilter(False, self.symbols - set(symbols))

    def describe(self) -> dict[str, Any]:
        if self.everything:
            out: dict[str, Any] = {"symbols": "*"}
            if self.symbols:
                out["excluded"] = sorted(self.symbols)
            return out
        return {"symbols": sorted(self.symbols)}


class ClientState:
    """What the server remembers about one connection: filter, format, request budget.

    ``key`` is equal for clients that must receive the same bytes, so the server
    encodes each snapshot once per distinct key, not once per client.
    """

    def __init__(self, *, rate: float = DEFAULT_RATE, burst: float = DEFAULT_BURST,
                 max_strikes: int = DEFAULT_MAX_STRIKES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.filter = SymbolFilter()
        self.format = "tick"
        self.limiter = RateLimiter(rate, burst, clock=clock)
        self.max_strikes = max_strikes
        self.strikes = 0
        self.key: tuple[str, SymbolFilter] = (self.format, self.filter)

    @property
    def abusive(self) -> bool:
        """True once the client kept sending after ``max_strikes`` rate-limited requests."""
        return self.strikes >= self.max_strikes

    def admit(self, text: str | bytes | None = None) -> None:
        """Spend one request from the budget or raise ``rate_limited`` (echoing ``text``'s id)."""
        if self.limiter.allow():
            self.strikes = 0
            return
        self.strikes += 1
        raise _fail("rate_limited", f"more than {self.limiter.rate:g} requests per second; "
                                    f"slow down or you will be disconnected",
                    None if text is None else peek_request_id(text))

    def wants(self, symbol: str) -> bool:
        return self.filter.wants(symbol)

    def apply(self, request: Request) -> str:
        """Handle ``subscribe``, ``unsubscribe`` and ``set_format``; return the ack."""
        if request.type == "subscribe":
            self.filter = self.filter.subscribe(request.symbols)
            reply = _reply("subscribed", self.filter.describe(), request.id)
        elif request.type == "unsubscribe":
            self.filter = self.filter.unsubscribe(request.symbols)
            reply = _reply("unsubscribed", self.filter.describe(), request.id)
        elif request.type == "set_format":
            self.format = request.format or "tick"
            reply = format_message(self.format, request.id)
        else:
            raise ValueError(f"ClientState does not handle {request.type!r}")
        self.key = (self.format, self.filter)
        return reply
