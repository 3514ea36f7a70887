"""Replay: stored snapshots served over the live protocol, at a chosen speed, with controls."""
from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import websocket
import websockets
from conftest import make_tick

from datacentre.core.errors import ConfigError
from datacentre.core.ticks import TICK_FIELDS, format_ts
from datacentre.feed.replay import Replayer, ReplayThread

T0 = datetime(2026, 1, 2, 3, 45, tzinfo=UTC)
SYMBOLS = ["NIFTY 50", "NIFTY BANK", "NIFTY27JAN26FUT", "NIFTY06JAN2626000CE"]
COUNT = 12


def ts(n: int) -> str:
    return format_ts(T0 + timedelta(seconds=n))


@pytest.fixture
def db_url(any_db_url):
    """Every replay reads a store on both engines."""
    return any_db_url


@pytest.fixture
def stamps(store) -> list[str]:
    """COUNT snapshots one second apart, plus one before and one after the replayed range."""
    for n in range(-1, COUNT + 1):
        store.write_snapshot(ts(n), [make_tick(s, 100.0 + n, volume=n, source="api") for s in SYMBOLS])
    return [ts(n) for n in range(COUNT)]


@pytest.fixture
def replay_factory(store):
    started = []

    def start(speed: float = 100.0, **options) -> ReplayThread:
        server = ReplayThread(store, ts(0), ts(COUNT - 1), speed=speed, port=0, **options).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def connect(url: str) -> tuple[websocket.WebSocket, dict]:
    ws = websocket.create_connection(url, timeout=5)
    welcome = json.loads(ws.recv())
    assert welcome["type"] == "welcome"
    return ws, welcome


def recv(ws) -> dict:
    return json.loads(ws.recv())


def request(ws, message: dict) -> dict:
    """Send a request; return its reply, skipping the ticks that arrive in between."""
    ws.send(json.dumps(message))
    while True:
        reply = recv(ws)
        if reply.get("type") not in (None, "replay_end"):
            return reply


def ticks_until_end(ws) -> list[dict]:
    got = []
    while (message := recv(ws)).get("type") != "replay_end":
        got.append(message)
    return got


def test_replays_the_range_in_order_with_historical_ts(replay_factory, store, stamps):
    server = replay_factory(speed=100)
    ws, welcome = connect(server.url)
    assert welcome["message"] == "Connected to Real-Time Data Centre" and welcome["subscribers"] == 1
    assert welcome["mode"] == "replay"
    assert (welcome["start_ts"], welcome["end_ts"], welcome["speed"]) == (stamps[0], stamps[-1], 100.0)
    assert (welcome["state"], welcome["snapshots"], welcome["position"]) == ("playing", COUNT, None)
    got = ticks_until_end(ws)
    expected = [{**{f: row[f] for f in TICK_FIELDS}, "source": "replay"}
                for row in store.iter_ticks(start_ts=stamps[0], end_ts=stamps[-1])]
    assert len(expected) == COUNT * len(SYMBOLS)
    assert got == expected
    assert all(list(t) == list(TICK_FIELDS) for t in got)
    assert [t["ts"] for t in got[::len(SYMBOLS)]] == stamps  # historical, in time order
    assert server.wait_ended(1)
    stats = server.stats()
    assert stats["mode"] == "replay" and stats["snapshots_sent"] == COUNT
    assert stats["replay"]["state"] == "ended"
    ws.close()


def test_replay_end_message(replay_factory, stamps):
    server = replay_factory(speed=0)
    ws, _ = connect(server.url)
    while (message := recv(ws)).get("type") != "replay_end":
        pass
    assert message == {"type": "replay_end", "start_ts": stamps[0], "end_ts": stamps[-1],
                       "position": stamps[-1], "snapshots": COUNT, "ticks": COUNT * len(SYMBOLS)}
    ws.close()


def test_playback_starts_with_the_first_client(replay_factory, stamps):
    server = replay_factory(speed=100)
    control = replay_factory(speed=100)  # the same replay with a client, to the end
    watcher, _ = connect(control.url)
    assert control.wait_ended(10)
    watcher.close()
    # a whole replay's time has passed, and nothing was played to nobody
    assert server.stats()["snapshots_sent"] == 0 and server.status()["state"] == "waiting"
    ws, welcome = connect(server.url)
    first = recv(ws)
    assert first["ts"] == stamps[0] and first["source"] == "replay"
    ws.close()


def test_pace_follows_speed(replay_factory, stamps):
    server = replay_factory(speed=10)  # 1 s gaps -> 0.1 s
    ws, _ = connect(server.url)
    started = time.monotonic()
    got = ticks_until_end(ws)
    elapsed = time.monotonic() - started
    assert len(got) == COUNT * len(SYMBOLS)
    assert 0.9 <= elapsed < 3.0  # 11 gaps of 0.1 s
    ws.close()


def test_pause_resume(replay_factory, stamps):
    server = replay_factory(speed=10)
    ws, _ = connect(server.url)
    assert recv(ws)["ts"] == stamps[0]
    status = request(ws, {"type": "pause", "id": "p"})
    assert status["type"] == "replay_status" and status["id"] == "p"
    assert status["state"] == "paused"
    position = status["position"]
    ws.settimeout(0.4)
    with pytest.raises(websocket.WebSocketTimeoutException):
        ws.recv()
    ws.settimeout(5)
    status = request(ws, {"type": "resume"})
    assert status["state"] == "playing"
    nxt = recv(ws)
    assert nxt["ts"] == format_ts(datetime.fromisoformat(position) + timedelta(seconds=1))
    ws.close()


def test_seek(replay_factory, stamps):
    server = replay_factory(speed=5)
    ws, _ = connect(server.url)
    assert recv(ws)["ts"] == stamps[0]
    status = request(ws, {"type": "seek", "ts": stamps[8]})
    assert status["state"] == "playing" and status["index"] == 8
    assert recv(ws)["ts"] == stamps[8]
    # between snapshots: the next one at or after
    status = request(ws, {"type": "seek", "ts": format_ts(T0 + timedelta(seconds=2.5))})
    assert status["index"] == 3
    assert recv(ws)["ts"] == stamps[3]
    ws.close()


def test_seek_after_the_end_plays_again(replay_factory, stamps):
    server = replay_factory(speed=0)
    ws, _ = connect(server.url)
    ticks_until_end(ws)
    assert server.wait_ended(1)
    status = request(ws, {"type": "seek", "ts": stamps[-2]})
    assert status["state"] == "playing"
    got = ticks_until_end(ws)
    assert [t["ts"] for t in got] == [stamps[-2]] * len(SYMBOLS) + [stamps[-1]] * len(SYMBOLS)
    ws.close()


def test_speed_change(replay_factory, stamps):
    server = replay_factory(speed=0.5)  # 2 s per snapshot
    ws, _ = connect(server.url)
    assert recv(ws)["ts"] == stamps[0]
    status = request(ws, {"type": "speed", "speed": 100})
    assert status["speed"] == 100.0 and status["state"] == "playing"
    started = time.monotonic()
    ticks_until_end(ws)
    assert time.monotonic() - started < 1.5
    assert request(ws, {"type": "speed", "speed": 500})["code"] == "bad_request"
    ws.close()


def test_as_fast_as_clients_read_with_websockets(replay_factory, stamps):
    server = replay_factory(speed=0)

    async def main():
        async with websockets.connect(server.url) as ws:
            assert json.loads(await ws.recv())["mode"] == "replay"
            await ws.send(json.dumps({"type": "set_format", "format": "snapshot"}))
            messages = []
            while (m := json.loads(await asyncio.wait_for(ws.recv(), 5))).get("type") != "replay_end":
                messages.append(m)
            return messages

    messages = asyncio.run(main())
    snaps = [m for m in messages if m.get("type") == "snapshot"]  # ticks came before set_format
    assert [s["ts"] for s in snaps] == stamps[len(stamps) - len(snaps):]
    assert all(t["source"] == "replay" for s in snaps for t in s["ticks"])


def test_requests_in_replay(replay_factory, stamps):
    server = replay_factory(speed=0.5)
    ws, _ = connect(server.url)
    first = recv(ws)
    assert first["ts"] == stamps[0]
    latest = request(ws, {"type": "get_latest", "symbol": "NIFTY 50"})
    assert latest["type"] == "latest" and latest["ts"] == stamps[0] and latest["source"] == "replay"
    assert request(ws, {"type": "get_latest", "symbol": "NIFTY BANK"})["ts"] == stamps[0]
    everything = request(ws, {"type": "get_latest_all"})
    assert everything["count"] == len(SYMBOLS) and {t["ts"] for t in everything["ticks"]} == {stamps[0]}
    assert request(ws, {"type": "get_symbols"})["symbols"] == sorted(SYMBOLS)
    assert request(ws, {"type": "ping"})["type"] == "pong"
    assert request(ws, {"type": "nonsense"})["code"] == "unknown_type"
    ws.close()


def test_invalid_settings(store):
    with pytest.raises(ConfigError, match="speed"):
        Replayer(store, ts(0), ts(1), speed=1000)
    with pytest.raises(ConfigError, match="after"):
        Replayer(store, ts(5), ts(1))
    with pytest.raises(ConfigError):
        Replayer(store, "yesterday", ts(1))


def test_empty_range_ends_at_once(store):
    server = ReplayThread(store, ts(100), ts(200), speed=1, port=0).start()
    try:
        ws, welcome = connect(server.url)
        assert welcome["snapshots"] == 0
        assert recv(ws)["type"] == "replay_end"
        ws.close()
    finally:
        server.stop()


def test_as_fast_as_clients_read_drops_a_client_that_stops(store, stalled_client):
    symbols = [f"NIFTY06JAN26{26000 + 50 * i}CE" for i in range(50)]
    stamps = []
    for n in range(40):
        stamps.append(ts(n))
        store.write_snapshot(ts(n), [make_tick(s, 1.0 + n) for s in symbols])
    server = ReplayThread(store, ts(0), ts(39), speed=0, port=0, drain_timeout=0.5, drain_below=1).start()
    try:
        stalled_client(server)  # starts the playback, then stops reading
        ws, _ = connect(server.url)
        status = request(ws, {"type": "seek", "ts": stamps[0]})
        assert status["index"] == 0
        started = time.monotonic()
        got = ticks_until_end(ws)
        assert [t["ts"] for t in got[::len(symbols)]] == stamps
        assert len(got) == len(stamps) * len(symbols)
        assert time.monotonic() - started < 5
        assert server.stats()["dropped_clients"] == 1
        ws.close()
    finally:
        server.stop()
