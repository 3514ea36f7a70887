"""The live broadcaster: a real store (a SQLite file, then a PostgreSQL schema), a real server on a
free loopback port, real clients."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import websocket
import websockets
from conftest import make_tick

from datacentre.core.errors import ConfigError, FeedError, StoreError
from datacentre.core.ticks import TICK_FIELDS, format_ts
from datacentre.feed.broadcaster import Broadcaster, BroadcasterThread
from datacentre.store.tickstore import TickStore

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 1, 2, 3, 45, tzinfo=UTC)
SYMBOLS = ["NIFTY 50", "NIFTY BANK", "NIFTY27JAN26FUT", "NIFTY06JAN2626000CE", "NIFTY06JAN2626000PE",
           "BANKNIFTY27JAN2659000CE"]


def snapshot(n: int, symbols=SYMBOLS) -> list[dict]:
    return [make_tick(s, 100.0 + n + i / 100, volume=n) for i, s in enumerate(symbols)]


def write(store, n: int, symbols=SYMBOLS) -> str:
    ts = format_ts(T0 + timedelta(seconds=5 * n))
    store.write_snapshot(ts, snapshot(n, symbols))
    return ts


def connect(url: str, **kwargs) -> websocket.WebSocket:
    ws = websocket.create_connection(url, timeout=5, **kwargs)
    welcome = json.loads(ws.recv())
    assert welcome["type"] == "welcome"
    return ws


def recv(ws: websocket.WebSocket) -> dict:
    return json.loads(ws.recv())


def reply(ws: websocket.WebSocket) -> dict:
    """The next message that is not a live tick."""
    while "type" not in (message := recv(ws)):
        pass
    return message


def request(ws: websocket.WebSocket, message: dict) -> dict:
    ws.send(json.dumps(message))
    return reply(ws)


def assert_silent(ws: websocket.WebSocket, seconds: float = 0.3) -> None:
    ws.settimeout(seconds)
    with pytest.raises(websocket.WebSocketTimeoutException):
        ws.recv()
    ws.settimeout(5)


@pytest.fixture
def db_url(any_db_url):
    """Every test here runs on both engines (PostgreSQL pushes commits by NOTIFY)."""
    return any_db_url


@pytest.fixture
def feed(store):
    server = BroadcasterThread(store, port=0, poll_interval=0.02).start()
    yield server
    server.stop()


# ------------------------------------------------------------------ connecting


def test_welcome(feed):
    first = websocket.create_connection(feed.url, timeout=5)
    welcome = recv(first)
    assert list(welcome)[:4] == ["type", "message", "timestamp", "subscribers"]
    assert welcome["message"] == "Connected to Real-Time Data Centre"
    assert welcome["subscribers"] == 1 and welcome["mode"] == "live"
    datetime.fromisoformat(welcome["timestamp"])
    second = websocket.create_connection(feed.url, timeout=5)
    assert recv(second)["subscribers"] == 2
    first.close()
    second.close()
    assert feed.url == f"ws://127.0.0.1:{feed.port}" and feed.port > 0


def test_new_clients_only_get_new_ticks(store):
    write(store, 0)
    with_old = BroadcasterThread(store, port=0, poll_interval=0.02).start()
    try:
        ws = connect(with_old.url)
        assert_silent(ws)
        write(store, 1)
        with_old.notify()
        got = [recv(ws) for _ in SYMBOLS]
        assert {t["ts"] for t in got} == {format_ts(T0 + timedelta(seconds=5))}
        ws.close()
    finally:
        with_old.stop()


# ------------------------------------------------------------------ the feed


def test_rows_committed_right_after_start_are_sent(store):
    server = BroadcasterThread(store, port=0, poll_interval=0.02).start()
    try:
        write(store, 0)  # before the feed's first poll: must not be taken for an old row
        deadline = time.monotonic() + 5
        while server.stats()["ticks_sent"] < len(SYMBOLS):
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        server.stop()


def test_every_row_once_and_in_order(feed, store):
    ws = connect(feed.url)
    for n in range(40):
        write(store, n)
        if n % 2:
            feed.notify()  # half pushed at once, half found by polling
    expected = [{f: r[f] for f in TICK_FIELDS} for r in store.after(0)]
    got = [recv(ws) for _ in expected]
    assert got == expected
    assert all(list(t) == list(TICK_FIELDS) for t in got)
    assert_silent(ws)
    stats = feed.stats()
    assert stats["ticks_sent"] == len(expected) and stats["last_tick_ts"] == expected[-1]["ts"]
    ws.close()


def test_rows_written_by_another_process(feed, store, db_url):
    writer = textwrap.dedent(f"""
        from datetime import datetime, timedelta, timezone
        from datacentre.store.tickstore import TickStore
        store = TickStore({db_url!r})
        t0 = datetime(2026, 1, 2, 4, 0, tzinfo=timezone.utc)
        for n in range(25):
            store.write_snapshot(t0 + timedelta(seconds=n), [
                {{"symbol": s, "token": "1", "ltp": 10.0 + n, "volume": n, "source": "api"}}
                for s in {SYMBOLS!r}])
    """)
    received: list[dict] = []

    async def listen(count: int) -> None:
        async with websockets.connect(feed.url) as ws:
            assert json.loads(await ws.recv())["type"] == "welcome"
            ready.set()
            while len(received) < count:
                received.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))

    ready = threading.Event()
    listener = threading.Thread(target=asyncio.run, args=(listen(25 * len(SYMBOLS)),))
    listener.start()
    assert ready.wait(5)
    subprocess.run([sys.executable, "-c", writer], check=True, timeout=60, cwd=ROOT)
    listener.join(15)
    assert not listener.is_alive()
    expected = [{f: r[f] for f in TICK_FIELDS} for r in store.after(0)]
    assert len(expected) == 25 * len(SYMBOLS)
    assert received == expected


def test_notify_wakes_the_feed_at_once(store):
    # listen=False: no commit probe (SQLite) and no LISTEN (PostgreSQL), so only notify() wakes it
    server = BroadcasterThread(store, port=0, poll_interval=30, listen=False).start()
    try:
        ws = connect(server.url)
        write(store, 0)
        started = time.monotonic()
        server.notify()
        assert recv(ws)["symbol"] == SYMBOLS[0]
        assert time.monotonic() - started < 2
        ws.close()
    finally:
        server.stop()


def test_another_writers_commit_is_seen_without_waiting_for_the_poll(store, db_url):
    """Polls 30 s apart: what arrives was seen by the commit probe (SQLite's data_version)
    or pushed by NOTIFY (PostgreSQL), from a writer with its own connections."""
    with TickStore(db_url) as writer:
        server = BroadcasterThread(store, port=0, poll_interval=30).start()
        blind = BroadcasterThread(store, port=0, poll_interval=30, listen=False).start()
        try:
            ws, ws_blind = connect(server.url), connect(blind.url)
            for n in range(3):
                write(writer, n)
                started = time.monotonic()
                assert [recv(ws)["volume"] for _ in SYMBOLS] == [n] * len(SYMBOLS)
                assert time.monotonic() - started < 2
            assert_silent(ws_blind, 0.5)  # without a probe or LISTEN, only the 30 s poll would read
            ws.close()
            ws_blind.close()
        finally:
            server.stop()
            blind.stop()


def test_the_commit_probe(store, tmp_path):
    probe = store.change_probe()
    if store.dialect != "sqlite":
        assert probe is None  # PostgreSQL pushes instead
        return
    assert probe.changed()  # the first look: nothing known yet
    assert not probe.changed()
    write(store, 0)
    assert probe.changed() and not probe.changed()
    probe.close()
    assert probe.changed()  # reopened: unknown again
    assert TickStore("sqlite://").change_probe() is None  # in memory: no other writer
    gone = TickStore(f"sqlite:///{tmp_path / 'gone.db'}").change_probe()
    (tmp_path / "gone.db").unlink()
    assert gone.changed() and gone.changed()  # cannot tell: says yes, so the reader reads


# ------------------------------------------------------------------ requests


def test_requests_and_errors_keep_the_connection_open(feed, store):
    write(store, 0)
    write(store, 1)
    ws = connect(feed.url)
    pong = request(ws, {"type": "ping", "id": "p1"})
    assert pong["type"] == "pong" and pong["id"] == "p1" and "timestamp" in pong
    latest = request(ws, {"type": "get_latest", "symbol": "NIFTY 50"})
    assert list(latest) == ["type", *TICK_FIELDS]
    assert latest["ltp"] == 101.0 and latest["ts"] == format_ts(T0 + timedelta(seconds=5))
    err = request(ws, {"type": "get_latest", "symbol": "NIFTY06JAN2630000CE", "id": 4})
    assert err == {"type": "error", "code": "unknown_symbol", "message": err["message"], "id": 4}
    assert request(ws, {"type": "get_latest", "symbol": "GOLD"})["code"] == "unknown_symbol"
    ws.send("this is not json")
    assert reply(ws)["code"] == "invalid_json"
    assert request(ws, {"type": "teleport"})["code"] == "unknown_type"
    assert request(ws, {"type": "pause"})["code"] == "unknown_type"  # replay only
    assert request(ws, {"type": "get_latest_all", "limit": -1})["code"] == "bad_request"
    ws.send(json.dumps({"type": "ping", "pad": "x" * 40_000}))
    assert reply(ws)["code"] == "too_large"
    symbols = request(ws, {"type": "get_symbols", "id": 1})
    assert symbols == {"type": "symbols", "symbols": sorted(SYMBOLS), "count": len(SYMBOLS), "id": 1}
    latest_all = request(ws, {"type": "get_latest_all", "limit": 3})
    assert latest_all["type"] == "latest_all" and latest_all["count"] == 3
    # the most recently updated first: indices, then futures, then options
    assert [t["symbol"] for t in latest_all["ticks"]] == ["NIFTY 50", "NIFTY BANK", "NIFTY27JAN26FUT"]
    history = request(ws, {"type": "get_history", "symbol": "NIFTY BANK", "id": "h"})
    assert history["type"] == "history" and history["id"] == "h" and history["truncated"] is False
    assert [t["ltp"] for t in history["ticks"]] == [100.01, 101.01]
    history = request(ws, {"type": "get_history", "symbol": "NIFTY BANK", "limit": 1,
                           "start_ts": format_ts(T0), "end_ts": format_ts(T0 + timedelta(hours=1))})
    assert history["count"] == 1 and history["truncated"] is True
    assert history["start_ts"] == format_ts(T0)
    assert request(ws, {"type": "get_history", "symbol": "NIFTY06JAN2630000CE"})["code"] == "unknown_symbol"
    assert request(ws, {"type": "ping"})["type"] == "pong"  # still open after every error
    ws.close()


def test_seed_sample_get_latest_with_websockets(feed, store):
    write(store, 0)
    feed.notify()
    deadline = time.monotonic() + 5
    while feed.stats()["ticks_sent"] < len(SYMBOLS):  # out before the client connects, so the
        assert time.monotonic() < deadline              # sample's first recv() is its reply
        time.sleep(0.01)

    async def request_latest():  # the client guide's "Request Latest Data for a Symbol", verbatim
        uri = feed.url
        async with websockets.connect(uri) as websocket:
            await websocket.recv()
            request = {"type": "get_latest", "symbol": "NIFTY 50"}
            await websocket.send(json.dumps(request))
            response = await websocket.recv()
            return json.loads(response)

    data = asyncio.run(request_latest())
    assert data["type"] == "latest" and data["symbol"] == "NIFTY 50"


def test_rate_limited_client_is_disconnected(store):
    server = BroadcasterThread(store, port=0, request_rate=2, request_burst=3, max_strikes=4,
                               close_timeout=0.5).start()
    try:
        ws = connect(server.url)
        for _ in range(10):
            ws.send(json.dumps({"type": "ping"}))
        replies = []
        while text := ws.recv():  # websocket-client returns "" for the close frame
            replies.append(json.loads(text))
        assert [r["type"] for r in replies[:3]] == ["pong"] * 3
        assert [r.get("code") for r in replies[3:]] == ["rate_limited"] * 4
        ws.close()
        other = connect(server.url)  # the server itself is fine
        assert request(other, {"type": "ping"})["type"] == "pong"
        other.close()
    finally:
        server.stop()


def test_big_replies_are_encoded_off_the_event_loop(feed, store, monkeypatch):
    """A 10,000-tick history takes ~50 ms to encode: on the loop, that would stall every feed."""
    from datacentre.feed import protocol

    encoded_in: list[str] = []
    history_message = protocol.history_message

    def recording(*args, **kwargs) -> str:
        encoded_in.append(threading.current_thread().name)
        return history_message(*args, **kwargs)

    monkeypatch.setattr(protocol, "history_message", recording)
    write(store, 0)
    ws = connect(feed.url)
    assert request(ws, {"type": "get_history", "symbol": "NIFTY 50"})["count"] == 1
    ws.close()
    assert encoded_in and "datacentre-live" not in encoded_in


def test_refused_requests_echo_their_id(store):
    server = BroadcasterThread(store, port=0, request_rate=1, request_burst=2).start()
    try:
        ws = connect(server.url)
        ws.send(json.dumps({"type": "ping", "id": "big", "pad": "x" * 40_000}))
        refused = reply(ws)
        assert (refused["code"], refused["id"]) == ("too_large", "big")
        assert request(ws, {"type": "ping", "id": 1})["id"] == 1
        refused = request(ws, {"type": "ping", "id": 2})
        assert (refused["code"], refused["id"]) == ("rate_limited", 2)
        ws.close()
    finally:
        server.stop()


def test_store_failures_answer_internal_error_with_the_id(feed, store, monkeypatch):
    def broken() -> list[str]:
        raise StoreError("database is locked")

    monkeypatch.setattr(store, "symbols", broken)
    ws = connect(feed.url)
    answer = request(ws, {"type": "get_symbols", "id": "s1"})
    assert (answer["type"], answer["code"], answer["id"]) == ("error", "internal_error", "s1")
    assert "database is locked" in answer["message"]
    assert request(ws, {"type": "ping", "id": 2})["id"] == 2  # still open
    ws.close()


def test_huge_frame_closes_the_connection(feed):
    async def main():
        async with websockets.connect(feed.url, max_size=None) as ws:
            await ws.recv()
            await ws.send("x" * 100_000)
            with pytest.raises(websockets.ConnectionClosedError) as info:
                await asyncio.wait_for(ws.recv(), 5)
            return info.value.rcvd.code

    assert asyncio.run(main()) == 1009
    ws = connect(feed.url)
    assert request(ws, {"type": "ping"})["type"] == "pong"
    ws.close()


# ------------------------------------------------------------------ per-client filter and format


def test_subscribe_filter(feed, store):
    only = connect(feed.url)
    ack = request(only, {"type": "unsubscribe", "symbols": "*"})
    assert ack == {"type": "unsubscribed", "symbols": []}
    ack = request(only, {"type": "subscribe", "symbols": ["NIFTY 50", "NIFTY06JAN2626000CE"], "id": 2})
    assert ack == {"type": "subscribed", "symbols": ["NIFTY 50", "NIFTY06JAN2626000CE"], "id": 2}
    but = connect(feed.url)
    ack = request(but, {"type": "unsubscribe", "symbols": ["NIFTY BANK"]})
    assert ack == {"type": "unsubscribed", "symbols": "*", "excluded": ["NIFTY BANK"]}
    everything = connect(feed.url)
    for n in range(3):
        write(store, n)
    feed.notify()
    got = [recv(only) for _ in range(6)]
    assert [t["symbol"] for t in got] == ["NIFTY 50", "NIFTY06JAN2626000CE"] * 3
    assert_silent(only)
    got = [recv(but) for _ in range(15)]
    assert "NIFTY BANK" not in {t["symbol"] for t in got}
    assert_silent(but)
    assert len([recv(everything) for _ in range(18)]) == 18
    for ws in (only, but, everything):
        ws.close()


def test_snapshot_format(feed, store):
    ws = connect(feed.url)
    ack = request(ws, {"type": "set_format", "format": "snapshot"})
    assert ack == {"type": "format", "format": "snapshot"}
    filtered = connect(feed.url)
    request(filtered, {"type": "set_format", "format": "snapshot"})
    request(filtered, {"type": "unsubscribe", "symbols": "*"})
    request(filtered, {"type": "subscribe", "symbols": ["NIFTY BANK"]})
    stamps = [write(store, n) for n in range(3)]
    feed.notify()
    for ts in stamps:
        snap = recv(ws)
        assert list(snap) == ["type", "ts", "ticks"]
        assert snap["type"] == "snapshot" and snap["ts"] == ts
        assert [t["symbol"] for t in snap["ticks"]] == SYMBOLS
        assert all(list(t) == list(TICK_FIELDS) and t["ts"] == ts for t in snap["ticks"])
        snap = recv(filtered)
        assert snap["ts"] == ts and [t["symbol"] for t in snap["ticks"]] == ["NIFTY BANK"]
    assert request(ws, {"type": "set_format", "format": "tick"})["format"] == "tick"
    write(store, 9)
    feed.notify()
    assert recv(ws)["symbol"] == SYMBOLS[0]
    ws.close()
    filtered.close()


# ------------------------------------------------------------------ health, slow clients, auth, ports


def test_health(feed, store):
    ws = connect(feed.url)
    ts = write(store, 0)
    feed.notify()
    for _ in SYMBOLS:
        recv(ws)
    with urllib.request.urlopen(f"http://127.0.0.1:{feed.port}/health", timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json"
        health = json.loads(response.read())
    assert health["status"] == "ok" and health["mode"] == "live"
    assert health["subscribers"] == 1 and health["ticks_sent"] == len(SYMBOLS)
    assert health["last_tick_ts"] == ts and health["uptime_s"] >= 0
    ws.close()


def test_welcome_and_health_say_whether_the_market_is_simulated(store):
    write(store, 0)  # the simulator's rows (source "sim"), stored before the broadcaster starts
    server = BroadcasterThread(store, port=0, poll_interval=0.02).start()
    try:
        ws = websocket.create_connection(server.url, timeout=5)
        welcome = recv(ws)
        assert (welcome["source"], welcome["simulated"]) == ("sim", True)
        ts = format_ts(T0 + timedelta(seconds=5))
        store.write_snapshot(ts, [{**t, "source": "csv"} for t in snapshot(1)])
        server.notify()
        assert all(recv(ws)["source"] == "csv" for _ in SYMBOLS)
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/health", timeout=5) as response:
            health = json.loads(response.read())
        assert (health["source"], health["simulated"]) == ("csv", False)
        ws.close()
    finally:
        server.stop()


def test_slow_client_is_disconnected_and_others_keep_receiving(store, stalled_client):
    server = BroadcasterThread(store, port=0, poll_interval=0.02, max_buffer_bytes=64 * 1024).start()
    stalled_client(server)
    symbols = [f"NIFTY06JAN26{26000 + 50 * i}CE" for i in range(100)]
    snapshots = 80
    received = []

    async def read_all():
        async with websockets.connect(server.url) as ws:
            await ws.recv()
            ready.set()
            while len(received) < snapshots * len(symbols):
                received.append(json.loads(await asyncio.wait_for(ws.recv(), 10))["symbol"])

    ready = threading.Event()
    reader = threading.Thread(target=asyncio.run, args=(read_all(),))
    reader.start()
    try:
        assert ready.wait(5)
        for n in range(snapshots):
            write(store, n, symbols)
            server.notify()
        reader.join(30)
        assert not reader.is_alive()
        assert len(received) == snapshots * len(symbols)
        deadline = time.monotonic() + 5
        while server.stats()["subscribers"] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.stats()["dropped_clients"] == 1
        assert server.stats()["subscribers"] == 0  # the reader has left too
    finally:
        server.stop()


def test_token_required_off_loopback(store, monkeypatch):
    monkeypatch.delenv("DATACENTRE_WS_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="DATACENTRE_WS_TOKEN"):
        Broadcaster(store, host="0.0.0.0")
    with pytest.raises(ConfigError):
        BroadcasterThread(store, host="0.0.0.0", port=0)
    monkeypatch.setenv("DATACENTRE_WS_TOKEN", "s3cret")
    server = BroadcasterThread(store, host="0.0.0.0", port=0).start()
    try:
        url = f"ws://127.0.0.1:{server.port}"
        with pytest.raises(websocket.WebSocketBadStatusException) as info:
            websocket.create_connection(url, timeout=5)
        assert info.value.status_code == 401
        with pytest.raises(websocket.WebSocketBadStatusException):
            websocket.create_connection(url + "/?token=wrong", timeout=5)
        connect(url + "/?token=s3cret").close()
        connect(url, header=["Authorization: Bearer s3cret"]).close()
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/health", timeout=5) as response:
            assert json.loads(response.read())["status"] == "ok"
    finally:
        server.stop()


def test_port_in_use(feed, store):
    with pytest.raises(FeedError, match="in use|another broadcaster"):
        BroadcasterThread(store, port=feed.port).start()
    ws = connect(feed.url)  # the first one is unaffected
    ws.close()


def test_stop_closes_clients_and_is_idempotent(store):
    server = BroadcasterThread(store, port=0, close_timeout=0.5).start()
    ws = connect(server.url)
    server.stop()
    server.stop()
    assert not server.is_running()
    assert ws.recv() == ""  # the close frame (1001 going away)
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
        ws.send("late")
        ws.recv()


def test_stop_is_prompt_with_a_client_that_never_answers(store):
    server = BroadcasterThread(store, port=0, close_timeout=10).start()
    ws = connect(server.url)  # connected, but never reads again while the server stops
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1
    assert not server.is_running()
    assert ws.recv() == ""  # the close frame still arrived


def test_stop_from_an_atexit_hook_is_quiet_and_prompt(db_url):
    """By the time atexit handlers run, thread pools refuse work: no tracebacks, no 2 s wait."""
    script = textwrap.dedent(f"""
        import atexit, json, logging, sys, time
        import websocket
        from datacentre.feed.broadcaster import BroadcasterThread
        from datacentre.store.tickstore import TickStore

        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        server = BroadcasterThread(TickStore({db_url!r}), port=0, poll_interval=0.02).start()
        ws = websocket.create_connection(server.url, timeout=5)
        ws.recv()

        def stop():
            time.sleep(0.2)  # other exit handlers run first; the feed keeps polling meanwhile
            try:
                ws.send(json.dumps({{"type": "get_symbols", "id": 1}}))
            except Exception:
                pass  # the server may already have said goodbye
            time.sleep(0.1)
            started = time.monotonic()
            server.stop()
            print(f"stopped in {{time.monotonic() - started:.3f}} s, running={{server.is_running()}}")

        atexit.register(stop)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    seconds = float(done.stdout.split("stopped in ")[1].split(" s")[0])
    assert seconds < 1 and "running=False" in done.stdout


def test_welcome_counts_concurrent_connections(feed):
    async def main(n: int) -> tuple[list[int], int]:
        sockets = await asyncio.gather(*(websockets.connect(feed.url) for _ in range(n)))
        counts = [json.loads(await ws.recv())["subscribers"] for ws in sockets]
        during = await asyncio.to_thread(health, feed.port)
        await asyncio.gather(*(ws.close() for ws in sockets))
        return counts, during["subscribers"]

    counts, during = asyncio.run(main(40))
    assert sorted(counts) == list(range(1, 41)) and during == 40
    deadline = time.monotonic() + 5
    while health(feed.port)["subscribers"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert health(feed.port)["subscribers"] == 0


def health(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
        return json.loads(response.read())


def test_serve_in_your_own_loop(store):
    async def main():
        server = Broadcaster(store, port=0, poll_interval=0.02)
        stop = asyncio.Event()
        task = asyncio.create_task(server.serve(stop))
        for _ in range(100):
            if server.port:
                break
            await asyncio.sleep(0.01)
        async with websockets.connect(server.url) as ws:
            await ws.recv()
            await asyncio.to_thread(write, store, 0)
            server.notify()
            tick = json.loads(await asyncio.wait_for(ws.recv(), 5))
        stop.set()
        await asyncio.wait_for(task, 5)
        return tick

    assert asyncio.run(main())["symbol"] == SYMBOLS[0]
