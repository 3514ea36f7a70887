"""Hostile input: arbitrary JSON, text and bytes into the protocol and the client's message sorter."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datacentre.clients.connection import FeedConnection
from datacentre.core.errors import ProtocolError
from datacentre.feed import protocol
from datacentre.feed.protocol import ClientState, Request, parse_request
from datacentre.feed.resume import parse_resume

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children,
                                                                      max_size=5),
    max_leaves=25)
symbols_values = json_values | st.sampled_from(["NIFTY 50", "*", "BANKNIFTY", ""]) | st.lists(
    st.sampled_from(["NIFTY 50", "NIFTY BANK", "NIFTY06JAN2626000CE", "GOLD", "", 7, None]), max_size=4)
requests = st.fixed_dictionaries(
    {"type": st.sampled_from(protocol.REQUEST_TYPES) | st.text(max_size=12)},
    optional={"id": json_values, "symbol": json_values, "symbols": symbols_values, "limit": json_values,
              "start_ts": json_values, "end_ts": json_values, "format": json_values, "ts": json_values,
              "speed": json_values})


def outcome(text: str | bytes) -> Request | ProtocolError:
    """What the server does with a message: a request, or the error it answers with."""
    try:
        return parse_request(text)
    except ProtocolError as exc:
        assert exc.code in protocol.ERROR_CODES
        reply = json.loads(protocol.error_reply(exc))
        assert reply["type"] == "error" and reply["code"] == exc.code and reply["message"]
        return exc


@FUZZ
@given(json_values)
def test_any_json_value_is_a_request_or_a_clear_error(value):
    result = outcome(json.dumps(value))
    if isinstance(result, Request):
        assert isinstance(value, dict) and value["type"] == result.type


@FUZZ
@given(requests)
def test_request_shaped_objects(data):
    result = outcome(json.dumps(data))
    if not isinstance(result, Request):
        return
    assert result.type in protocol.REQUEST_TYPES
    if result.type in ("subscribe", "unsubscribe"):
        value = data.get("symbols")
        everything = value == "*" or (isinstance(value, list) and "*" in value)
        # Only "*" itself means every symbol; anything else is a list of real symbols.
        assert (result.symbols is None) == everything
        if result.symbols is not None:
            assert result.symbols and all(isinstance(s, str) and s for s in result.symbols)
    if result.limit is not None:
        assert isinstance(result.limit, int) and 1 <= result.limit <= protocol.MAX_LIMIT


@FUZZ
@given(st.fixed_dictionaries({"type": st.just("subscribe"), "symbols": symbols_values}))
def test_a_subscription_never_widens_to_everything_by_mistake(data):
    state = ClientState()
    result = outcome(json.dumps(data))
    if isinstance(result, Request):
        ack = json.loads(state.apply(result))
        if result.symbols is not None:
            assert ack["symbols"] == sorted(result.symbols)
            assert not state.filter.everything


@FUZZ
@given(st.text(max_size=300))
def test_any_text(text):
    outcome(text)


@FUZZ
@given(st.binary(max_size=300))
def test_any_bytes(data):
    outcome(data)


@FUZZ
@given(st.text(max_size=30))
def test_resume_values(value):
    try:
        cursor = parse_resume(value)
    except ProtocolError as exc:
        assert exc.code == "bad_request"
        return
    assert cursor is None or (isinstance(cursor, int) and cursor >= 0)


@pytest.mark.parametrize("value, expected", [("now", None), ("0", 0), ("123", 123), (" 7 ", 7)])
def test_resume_values_accepted(value, expected):
    assert parse_resume(value) == expected


@pytest.mark.parametrize("value", ["", "-1", "1.5", "abc", "NOW", "٣", "9" * 20, "1e3"])
def test_resume_values_refused(value):
    with pytest.raises(ProtocolError, match="resume must be a cursor"):
        parse_resume(value)


@FUZZ
@given(json_values | st.text(max_size=200))
def test_the_client_sorts_any_message_without_failing(value):
    ticks = []
    feed = FeedConnection("ws://127.0.0.1:9", on_tick=ticks.append)
    text = value if isinstance(value, str) else json.dumps(value)
    feed.handle_message(text)
    assert all(isinstance(t, dict) and "symbol" in t for t in ticks)
