"""The pure protocol: raw strings in, requests or ProtocolErrors out; ticks in, exact text out."""
from __future__ import annotations

import json
import struct

import pytest

from datacentre.core.errors import ProtocolError
from datacentre.core.ticks import TICK_FIELDS
from datacentre.feed import protocol
from datacentre.feed.protocol import ClientState, RateLimiter, SymbolFilter, parse_request

ROW = {"id": 41, "symbol": "NIFTY06JAN2626500CE", "token": "49873", "ts": "2026-01-02T08:13:05+00:00",
       "ltp": 12.0, "bid": 11.95, "ask": 12.05, "volume": 161816655, "oi": 12911015, "delta": 0.4115,
       "gamma": 0.0005, "theta": -35.21, "vega": 10.64, "iv": 5.66, "source": "api"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def error_of(text) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        parse_request(text)
    return info.value


# ------------------------------------------------------------------ parsing: errors


@pytest.mark.parametrize("text", ["nonsense", "{", "", "{'type': 'ping'}", '{"type": "ping",}',
                                  b"\xff\xfe"])
def test_invalid_json(text):
    assert error_of(text).code == "invalid_json"


@pytest.mark.parametrize("text", [
    "[1, 2]", '"ping"', "42", "null",
    "{}", '{"type": ""}', '{"type": 5}', '{"type": null}',
    '{"type": "ping", "id": [1]}',
    '{"type": "get_latest"}', '{"type": "get_latest", "symbol": 5}', '{"type": "get_latest", "symbol": ""}',
    '{"type": "get_latest_all", "limit": 0}', '{"type": "get_latest_all", "limit": 10001}',
    '{"type": "get_latest_all", "limit": "5"}', '{"type": "get_latest_all", "limit": true}',
    '{"type": "get_latest_all", "limit": 2.5}',
    '{"type": "get_history", "symbol": "NIFTY 50", "start_ts": "yesterday"}',
    '{"type": "get_history", "symbol": "NIFTY 50", "start_ts": 5}',
    '{"type": "get_history", "symbol": "NIFTY 50", "start_ts": "2026-01-02T09:00:00+00:00",'
    ' "end_ts": "2026-01-02T08:00:00+00:00"}',
    '{"type": "subscribe"}', '{"type": "subscribe", "symbols": []}', '{"type": "subscribe", "symbols": 3}',
    '{"type": "subscribe", "symbols": [3]}',
    '{"type": "set_format"}', '{"type": "set_format", "format": "xml"}',
    '{"type": "seek"}', '{"type": "seek", "ts": "soon"}',
    '{"type": "speed"}', '{"type": "speed", "speed": 1000}', '{"type": "speed", "speed": 0.01}',
    '{"type": "speed", "speed": "fast"}',
])
def test_bad_request(text):
    assert error_of(text).code == "bad_request"


@pytest.mark.parametrize("kind", ["get_everything", "PING", "latest", "welcome"])
def test_unknown_type(kind):
    exc = error_of(json.dumps({"type": kind, "id": "r1"}))
    assert exc.code == "unknown_type"
    assert "ping" in exc.message  # lists the known types
    assert exc.request_id == "r1"


@pytest.mark.parametrize("symbol", ["NIFTY", "NIFTY50", "FOO", "NIFTY06JAN26FUTX", "NIFTY99JAN2626500CE",
                                    "BANKNIFTY06JAN2626500XX", "x" * 100])
def test_malformed_symbol_is_unknown_symbol(symbol):
    assert error_of(json.dumps({"type": "get_latest", "symbol": symbol})).code == "unknown_symbol"
    assert error_of(json.dumps({"type": "get_history", "symbol": symbol})).code == "unknown_symbol"
    subscribe = {"type": "subscribe", "symbols": ["NIFTY 50", symbol]}
    assert error_of(json.dumps(subscribe)).code == "unknown_symbol"


def test_too_large():
    text = json.dumps({"type": "ping", "pad": "x" * protocol.MAX_REQUEST_BYTES})
    assert error_of(text).code == "too_large"
    assert error_of(text.encode()).code == "too_large"


@pytest.mark.parametrize(("request_id", "where"), [("big-1", "first"), (7, "last"), (-2.5e3, "last")])
def test_too_large_echoes_a_readable_id(request_id, where):
    pad = "x" * protocol.MAX_REQUEST_BYTES
    message = ({"id": request_id, "type": "ping", "pad": pad} if where == "first"
               else {"type": "ping", "pad": pad, "id": request_id})
    text = json.dumps(message)
    assert error_of(text).request_id == request_id
    assert error_of(text.encode()).request_id == request_id
    assert json.loads(protocol.error_reply(error_of(text)))["id"] == request_id


@pytest.mark.parametrize("text", [
    json.dumps({"type": "ping", "pad": "x" * 40_000}),  # no id at all
    json.dumps({"type": "ping", "pad": "x" * 40_000, "id": {"nested": 1}}),  # not a valid id
    json.dumps({"type": "ping", "pad": 'say "id": 5 inside a string ' * 2000}),
])
def test_too_large_without_a_readable_id(text):
    exc = error_of(text)
    assert exc.code == "too_large" and exc.request_id is None


def test_rate_limited_echoes_the_id():
    clock = FakeClock()
    state = ClientState(rate=1, burst=1, clock=clock)
    state.admit('{"type": "ping", "id": 1}')
    for text, expected in [('{"type": "ping", "id": "r2"}', "r2"), ('{"id": 3, "type": "ping"}', 3),
                           ("nonsense", None), ('{"type": "ping", "id": [1]}', None),
                           ('["ping"]', None), (b'{"type": "ping", "id": 4}', 4),
                           (json.dumps({"type": "ping", "pad": "x" * 40_000, "id": 5}), 5)]:
        with pytest.raises(ProtocolError) as info:
            state.admit(text)
        assert info.value.code == "rate_limited"
        assert info.value.request_id == expected, text[:40]


def test_every_error_code_is_reachable():
    assert set(protocol.ERROR_CODES) == {"invalid_json", "bad_request", "unknown_type", "unknown_symbol",
                                         "too_large", "rate_limited"}


def test_error_message_shape_and_id_echo():
    exc = error_of('{"type": "get_latest", "id": 9}')
    assert json.loads(protocol.error_reply(exc)) == {
        "type": "error", "code": "bad_request", "message": exc.message, "id": 9}
    exc = error_of("nonsense")
    assert json.loads(protocol.error_reply(exc)) == {"type": "error", "code": "invalid_json",
                                                     "message": exc.message}


# ------------------------------------------------------------------ parsing: valid requests


def test_parse_valid_requests():
    assert parse_request('{"type":"ping"}') == protocol.Request("ping")
    assert parse_request(b'{"type":"ping","id":"a"}').id == "a"
    r = parse_request('{"type": "get_latest", "symbol": "BANKNIFTY27JAN2659000CE", "id": 3}')
    assert (r.type, r.symbol, r.id) == ("get_latest", "BANKNIFTY27JAN2659000CE", 3)
    assert parse_request('{"type":"get_latest_all"}').limit == protocol.DEFAULT_LATEST_ALL_LIMIT
    assert parse_request('{"type":"get_latest_all","limit":5}').limit == 5
    r = parse_request('{"type":"get_history","symbol":"NIFTY 50","start_ts":"2026-01-02T13:30:00+05:30",'
                      '"end_ts":"2026-01-02T09:00:00Z"}')
    assert (r.start_ts, r.end_ts) == ("2026-01-02T08:00:00+00:00", "2026-01-02T09:00:00+00:00")
    assert r.limit == protocol.DEFAULT_HISTORY_LIMIT
    assert parse_request('{"type":"get_history","symbol":"NIFTY 50"}').start_ts is None
    assert parse_request('{"type":"subscribe","symbols":"*"}').symbols is None
    assert parse_request('{"type":"subscribe","symbols":["NIFTY 50","*"]}').symbols is None
    assert parse_request('{"type":"subscribe","symbols":["NIFTY 50","NIFTY 50","NIFTY BANK"]}').symbols == (
        "NIFTY 50", "NIFTY BANK")
    assert parse_request('{"type":"unsubscribe","symbols":"NIFTY 50"}').symbols == ("NIFTY 50",)
    assert parse_request('{"type":"set_format","format":"snapshot"}').format == "snapshot"
    assert parse_request('{"type":"seek","ts":"2026-01-02T08:00:00"}').ts == "2026-01-02T08:00:00+00:00"
    assert parse_request('{"type":"speed","speed":0}').speed == 0.0
    assert parse_request('{"type":"speed","speed":100}').speed == 100.0
    for kind in ("get_symbols", "pause", "resume"):
        assert parse_request(json.dumps({"type": kind})).type == kind


# ------------------------------------------------------------------ encoding


def test_tick_message_has_exactly_the_14_fields_in_order():
    text = protocol.encode_tick(ROW)
    assert list(json.loads(text)) == list(TICK_FIELDS)
    assert json.loads(text) == {k: v for k, v in ROW.items() if k != "id"}
    assert " " not in text.replace("NIFTY 50", "")  # compact
    assert text.startswith('{"symbol":"NIFTY06JAN2626500CE","token":"49873","ts":')


def test_tick_message_fills_missing_fields_and_nulls_nan():
    text = protocol.encode_tick({"symbol": "NIFTY 50", "ltp": 1.0, "iv": float("nan"),
                                 "delta": float("inf")})
    data = json.loads(text)
    assert list(data) == list(TICK_FIELDS)
    assert data["iv"] is None and data["delta"] is None and data["token"] is None
    assert "NaN" not in text and "Infinity" not in text


def test_welcome_and_pong():
    w = json.loads(protocol.welcome_message(3, mode="live"))
    assert list(w)[:5] == ["type", "message", "timestamp", "subscribers", "mode"]
    assert (w["type"], w["message"], w["subscribers"], w["mode"]) == (
        "welcome", "Connected to Real-Time Data Centre", 3, "live")
    assert w["timestamp"].endswith("+00:00")
    p = json.loads(protocol.pong_message())
    assert set(p) == {"type", "timestamp"} and p["type"] == "pong"
    assert json.loads(protocol.pong_message("x"))["id"] == "x"


def test_reply_shapes():
    latest = json.loads(protocol.latest_message(ROW, request_id=5))
    assert list(latest) == ["type", *TICK_FIELDS, "id"] and latest["type"] == "latest"
    assert json.loads(protocol.symbols_message(["NIFTY 50"])) == {"type": "symbols", "symbols": ["NIFTY 50"],
                                                                  "count": 1}
    la = json.loads(protocol.latest_all_message([ROW, ROW], "q"))
    assert (la["type"], la["count"], la["id"]) == ("latest_all", 2, "q")
    assert list(la["ticks"][0]) == list(TICK_FIELDS)
    h = json.loads(protocol.history_message("NIFTY 50", [ROW], start_ts="a", end_ts=None, truncated=True))
    assert {k: h[k] for k in ("type", "symbol", "start_ts", "end_ts", "count", "truncated")} == {
        "type": "history", "symbol": "NIFTY 50", "start_ts": "a", "end_ts": None, "count": 1,
        "truncated": True}
    assert "id" not in h


def test_snapshot_message():
    text = protocol.encode_snapshot(ROW["ts"], [protocol.encode_tick(ROW), protocol.encode_tick(ROW)])
    data = json.loads(text)
    assert list(data) == ["type", "ts", "ticks"]
    assert data["type"] == "snapshot" and data["ts"] == ROW["ts"] and len(data["ticks"]) == 2
    assert list(data["ticks"][0]) == list(TICK_FIELDS)


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_text_frame(size):
    payload = b"a" * size
    frame = protocol.text_frame(payload)
    assert frame[0] == 0x81  # FIN + text opcode, no RSV bits
    assert frame[1] & 0x80 == 0  # unmasked
    if size < 126:
        assert frame[1] == size and frame[2:] == payload
    elif size < 65536:
        assert frame[1] == 126 and struct.unpack("!H", frame[2:4])[0] == size and frame[4:] == payload
    else:
        assert frame[1] == 127 and struct.unpack("!Q", frame[2:10])[0] == size and frame[10:] == payload


def test_frame_parses_with_websockets():
    from websockets.frames import Frame, Opcode
    from websockets.streams import StreamReader

    reader = StreamReader()
    reader.feed_data(protocol.text_frame(protocol.encode_tick(ROW).encode()))
    gen = Frame.parse(reader.read_exact, mask=False)
    try:
        next(gen)
    except StopIteration as done:
        frame = done.value
    assert frame.opcode is Opcode.TEXT and frame.fin
    assert json.loads(frame.data) == {k: v for k, v in ROW.items() if k != "id"}


# ------------------------------------------------------------------ client state


def test_symbol_filter():
    f = SymbolFilter()
    assert f.is_all and f.wants("NIFTY 50")
    only = f.unsubscribe(None).subscribe(("NIFTY 50",))
    assert only.wants("NIFTY 50") and not only.wants("NIFTY BANK")
    assert only.describe() == {"symbols": ["NIFTY 50"]}
    both = only.subscribe(("NIFTY BANK",))
    assert both.describe() == {"symbols": ["NIFTY 50", "NIFTY BANK"]}
    assert both.unsubscribe(("NIFTY 50",)).describe() == {"symbols": ["NIFTY BANK"]}
    assert both.unsubscribe(None).describe() == {"symbols": []}
    all_but = f.unsubscribe(("NIFTY 50",))
    assert not all_but.wants("NIFTY 50") and all_but.wants("NIFTY BANK")
    assert all_but.describe() == {"symbols": "*", "excluded": ["NIFTY 50"]}
    assert all_but.subscribe(("NIFTY 50",)).is_all
    assert f.subscribe(("NIFTY 50",)).describe() == {"symbols": ["NIFTY 50"]}  # the first narrows
    assert both.subscribe(None).is_all
    # BANKNIFTY contains NIFTY: the filter matches whole symbols only
    nifty = f.unsubscribe(None).subscribe(("NIFTY06JAN2626500CE",))
    assert not nifty.wants("BANKNIFTY06JAN2626500CE")


def test_client_state_subscribe_and_format():
    state = ClientState()
    assert state.format == "tick" and state.wants("NIFTY BANK")
    key_all = state.key
    # A string where the list belongs is that one symbol, and a connection's first subscribe
    # narrows the feed to what it names: never "*", which would send everything.
    ack = json.loads(state.apply(parse_request('{"type":"subscribe","symbols":"NIFTY 50","id":1}')))
    assert ack == {"type": "subscribed", "symbols": ["NIFTY 50"], "id": 1}
    assert state.wants("NIFTY 50") and not state.wants("NIFTY BANK")
    ack = json.loads(state.apply(parse_request('{"type":"unsubscribe","symbols":"*"}')))
    assert ack == {"type": "unsubscribed", "symbols": []}
    assert not state.wants("NIFTY 50")
    ack = json.loads(state.apply(parse_request('{"type":"subscribe","symbols":["NIFTY 50"]}')))
    assert ack == {"type": "subscribed", "symbols": ["NIFTY 50"]}
    assert state.wants("NIFTY 50") and not state.wants("NIFTY BANK")
    assert state.key != key_all
    ack = json.loads(state.apply(parse_request('{"type":"set_format","format":"snapshot","id":"f"}')))
    assert ack == {"type": "format", "format": "snapshot", "id": "f"}
    assert state.key == ("snapshot", SymbolFilter(False, frozenset({"NIFTY 50"})))
    # equal settings give equal keys, so such clients share one encoding
    other = ClientState()
    other.apply(parse_request('{"type":"unsubscribe","symbols":"*"}'))
    other.apply(parse_request('{"type":"subscribe","symbols":["NIFTY 50"]}'))
    other.apply(parse_request('{"type":"set_format","format":"snapshot"}'))
    assert other.key == state.key and hash(other.key) == hash(state.key)


def test_rate_limiter_token_bucket():
    clock = FakeClock()
    limiter = RateLimiter(rate=2, burst=3, clock=clock)
    assert [limiter.allow() for _ in range(4)] == [True, True, True, False]
    clock.now += 0.5  # one token back
    assert limiter.allow() and not limiter.allow()
    clock.now += 100  # refills to the burst, no further
    assert sum(limiter.allow() for _ in range(10)) == 3
    with pytest.raises(ValueError):
        RateLimiter(rate=0)


def test_client_state_rate_limit_and_abuse():
    clock = FakeClock()
    state = ClientState(rate=1, burst=2, max_strikes=3, clock=clock)
    state.admit()
    state.admit()
    for strike in range(1, 4):
        with pytest.raises(ProtocolError) as info:
            state.admit()
        assert info.value.code == "rate_limited"
        assert state.strikes == strike
    assert state.abusive
    clock.now += 1
    state.admit()  # a request within the budget forgives past strikes
    assert not state.abusive and state.strikes == 0
