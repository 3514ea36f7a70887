"""RealtimeDataClient and its FeedConnection: a real SQLite file, a real broadcaster, real sockets."""
from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from conftest import make_tick, synthetic_snapshot
from support import isolate_config, on_port_again, refused_port, wait_until

from datacentre import RealtimeDataClient
from datacentre.clients.connection import (
    RECONNECT_MAX_DELAY,
    RECONNECT_MIN_DELAY,
    FeedConnection,
    backoff_delay,
    is_tick,
)
from datacentre.core.config import connectable_url, default_ws_url
from datacentre.core.errors import FeedError, ReadOnlyError, StoreError
from datacentre.core.ticks import TICK_FIELDS, format_ts
from datacentre.feed.broadcaster import BroadcasterThread
from datacentre.store.tickstore import TickStore

T0 = datetime(2026, 1, 2, 8, 13, 5, tzinfo=UTC)


def publish(store: TickStore, server: BroadcasterThread, n: int) -> list[dict]:
    """Write snapshot ``n`` (a synthetic market) and push it out; return its ticks."""
    moment = T0 + timedelta(seconds=5 * n)
    ticks = synthetic_snapshot(moment, nifty=26000 + n, step=n)
    store.write_snapshot(moment, ticks)
    server.notify()
    return ticks


@pytest.fixture(autouse=True)
def isolated_config(monkeypatch, tmp_path):
    isolate_config(monkeypatch, tmp_path)


@pytest.fixture
def db_url(any_db_url):
    """Every test with a store runs on both engines."""
    return any_db_url


@pytest.fixture
def no_store_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'missing' / 'nothing.db'}"


# ---------------------------------------------------------------- live ticks


def test_callback_sees_every_tick_and_nothing_else(store, live_broadcaster):
    received: list[dict] = []
    client = RealtimeDataClient(live_broadcaster.url, on_data_callback=received.append)
    try:
        assert client.connect() is True
        assert client.is_connected()
        sent = publish(store, live_broadcaster, 1) + publish(store, live_broadcaster, 2)
        assert wait_until(lambda: len(received) >= len(sent))
        # requests and their replies (pong, latest, errors) never reach the callback
        assert client._feed.request({"type": "ping"})["type"] == "pong"
        with pytest.raises(Exception, match="unknown_type"):
            client._feed.request({"type": "no_such_request"})
        # a last snapshot after the replies: once it is in, a reply that reached the
        # callback would be in ``received`` too
        sent += publish(store, live_broadcaster, 3)
        assert wait_until(lambda: len(received) >= len(sent))
    finally:
        client.close()
    assert [t["symbol"] for t in received] == [t["symbol"] for t in sent]
    assert all(list(t) == list(TICK_FIELDS) for t in received)
    assert received[-1] == sent[-1]


def test_callback_errors_are_logged_and_the_feed_goes_on(store, live_broadcaster, caplog):
    received: list[dict] = []

    def fragile(tick: dict) -> None:
        if not received:
            received.append({})
            raise ValueError("user bug")
        received.append(tick)

    client = RealtimeDataClient(live_broadcaster.url, on_data_callback=fragile)
    try:
        client.connect()
        with caplog.at_level(logging.ERROR, logger="datacentre.clients.realtime"):
            sent = publish(store, live_broadcaster, 1)
            assert wait_until(lambda: len(received) == len(sent))
        assert client.is_connected()
    finally:
        client.close()
    assert "on_data_callback failed" in caplog.text and "user bug" in caplog.text


def test_a_slow_callback_does_not_delay_requests(store, live_broadcaster):
    release = threading.Event()
    client = RealtimeDataClient(live_broadcaster.url, on_data_callback=lambda t: release.wait(10),
                                db_url="sqlite:///nowhere/none.db")
    try:
        client.connect()
        publish(store, live_broadcaster, 1)
        started = time.monotonic()
        assert client.get_latest("NIFTY 50")["ltp"] == 26001
        assert time.monotonic() - started < 2
    finally:
        release.set()
        client.close()


def test_snapshot_format_is_unpacked_into_ticks(store, live_broadcaster):
    received: list[dict] = []
    feed = FeedConnection(live_broadcaster.url, on_tick=received.append).start()
    try:
        assert feed.wait_connected(5)
        assert feed.request({"type": "set_format", "format": "snapshot"})["format"] == "snapshot"
        sent = publish(store, live_broadcaster, 1)
        assert wait_until(lambda: len(received) == len(sent))
    finally:
        feed.stop()
    assert [t["symbol"] for t in received] == [t["symbol"] for t in sent]


# ---------------------------------------------------------------- queries


def test_queries_read_the_store(store, db_url):
    for n in range(3):
        moment = T0 + timedelta(seconds=5 * n)
        store.write_snapshot(moment, synthetic_snapshot(moment, nifty=26000 + n))
    client = RealtimeDataClient("ws://127.0.0.1:9", db_url=db_url)  # no broadcaster needed
    try:
        assert client.get_latest("NIFTY 50")["ltp"] == 26002
        assert client.get_latest("NIFTY 99") is None
        assert len(client.get_latest_all(limit=5)) == 5
        assert client.get_symbols() == store.symbols()
        history = client.get_historical("NIFTY 50", "2026-01-02T08:00:00+00:00",
                                        "2026-01-02T09:00:00+00:00")
        assert [t["ltp"] for t in history] == [26000, 26001, 26002]
        rows = client.query("SELECT * FROM ltp_ticks WHERE symbol = ? ORDER BY ts DESC LIMIT 10",
                            ("NIFTY 50",))
        assert [r["ltp"] for r in rows] == [26002, 26001, 26000]
        with pytest.raises(ReadOnlyError):
            client.query("DELETE FROM ltp_ticks")
        with pytest.raises(ReadOnlyError):
            client.query("INSERT INTO ltp_ticks (symbol, ts) VALUES (?, ?)", ("X", "2026-01-02T08:00:00Z"))
        assert not client.is_connected()
    finally:
        client.close()
    assert store.count() == 3 * len(synthetic_snapshot(T0))


def test_without_a_store_queries_ask_the_broadcaster(store, live_broadcaster, no_store_url, tmp_path):
    for n in range(3):
        publish(store, live_broadcaster, n)
    client = RealtimeDataClient(live_broadcaster.url, db_url=no_store_url)
    try:
        client.connect()
        assert client.get_latest("NIFTY 50") == store.latest("NIFTY 50")
        assert client.get_latest("NIFTY06JAN2699000CE") is None  # well-formed, never stored
        assert client.get_latest_all(limit=7) == store.latest_all(7)
        assert client.get_symbols() == store.symbols()
        assert client.get_historical("NIFTY 50", "2026-01-02T08:13:05+00:00",
                                     "2026-01-02T08:13:10+00:00") == store.history(
            "NIFTY 50", "2026-01-02T08:13:05+00:00", "2026-01-02T08:13:10+00:00")
        assert len(client.get_historical("NIFTY 50")) == 3
        with pytest.raises(StoreError, match="no tick store found"):
            client.query("SELECT 1")
    finally:
        client.close()
    assert not (tmp_path / "missing").exists()  # nothing was created


def test_queries_connect_by_themselves(store, live_broadcaster, no_store_url):
    publish(store, live_broadcaster, 1)
    client = RealtimeDataClient(live_broadcaster.url, db_url=no_store_url)
    try:
        assert client.get_latest("NIFTY BANK")["ltp"] == 59000
    finally:
        client.close()


def test_the_default_store_is_used_only_if_it_exists(store, db_url, live_broadcaster, monkeypatch,
                                                     tmp_path):
    publish(store, live_broadcaster, 1)
    monkeypatch.setenv("DATACENTRE_DB_URL", no_store_url_for(tmp_path))
    client = RealtimeDataClient(live_broadcaster.url)
    try:
        assert client.get_latest("NIFTY 50")["ltp"] == 26001  # over the WebSocket
        with pytest.raises(StoreError):
            client.query("SELECT 1")
    finally:
        client.close()
    assert not (tmp_path / "data").exists()
    monkeypatch.setenv("DATACENTRE_DB_URL", db_url)
    with RealtimeDataClient(live_broadcaster.url) as client:
        assert client.query("SELECT COUNT(*) AS n FROM ltp_ticks")[0]["n"] == store.count()


def no_store_url_for(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'data' / 'nifty_local.db'}"


def test_requests_time_out_with_feed_error(no_store_url):
    client = RealtimeDataClient(f"ws://127.0.0.1:{refused_port()}", db_url=no_store_url,
                                request_timeout=0.5)
    try:
        assert client.connect(timeout=0.2) is False
        started = time.monotonic()
        with pytest.raises(FeedError, match="python -m datacentre start"):
            client.get_latest("NIFTY 50")
        assert time.monotonic() - started < 2
    finally:
        client.close()


def test_concurrent_requests_from_many_threads(store, live_broadcaster, no_store_url):
    publish(store, live_broadcaster, 1)
    client = RealtimeDataClient(live_broadcaster.url, db_url=no_store_url)
    client.connect()
    results, errors = [], []

    def work() -> None:
        try:
            for _ in range(8):  # 64 requests: more than the broadcaster's burst of 40
                results.append(client.get_latest("NIFTY 50")["ltp"])
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        client.close()
    assert errors == []
    assert results == [26001] * 64


# ---------------------------------------------------------------- reconnecting


def test_reconnects_after_the_broadcaster_restarts(store):
    first = BroadcasterThread(store, port=0, poll_interval=0.02).start()
    received: list[dict] = []
    client = RealtimeDataClient(first.url, on_data_callback=received.append)
    second = None
    try:
        assert client.connect()
        publish(store, first, 1)
        assert wait_until(lambda: len(received) > 0)
        first.stop()
        assert wait_until(lambda: not client.is_connected(), 5)
        second = on_port_again(first.port, lambda port: BroadcasterThread(store, port=port,
                                                                          poll_interval=0.02).start())
        assert wait_until(client.is_connected, 10)
        before = len(received)
        sent = publish(store, second, 2)
        assert wait_until(lambda: len(received) == before + len(sent))
        assert received[-1]["ts"] == format_ts(T0 + timedelta(seconds=10))
        assert client._feed.connections == 2
    finally:
        client.close()
        first.stop()
        if second is not None:
            second.stop()


def test_connects_once_the_broadcaster_comes_up(store):
    vacated = BroadcasterThread(store, port=0).start()
    vacated.stop()  # its port: nothing listens there until a broadcaster starts on it again
    port = vacated.port
    client = RealtimeDataClient(f"ws://127.0.0.1:{port}")
    server = None
    try:
        assert client.connect(timeout=0.3) is False
        server = on_port_again(port, lambda p: BroadcasterThread(store, port=p).start())
        assert wait_until(client.is_connected, 10)
    finally:
        client.close()
        if server is not None:
            server.stop()


def test_close_is_prompt_and_final(store, live_broadcaster):
    client = RealtimeDataClient(live_broadcaster.url, on_data_callback=lambda t: None)
    client.connect()
    started = time.monotonic()
    client.close()
    assert time.monotonic() - started < 2
    assert not client.is_connected()
    assert wait_until(lambda: live_broadcaster.stats()["subscribers"] == 0, 5)
    client.close()  # idempotent


class FlakyServer:
    """A broadcaster stand-in that welcomes each client, then hangs up after ``hold`` seconds."""

    def __init__(self, hold: float) -> None:
        import asyncio

        import websockets

        self.connections = 0
        ready = threading.Event()

        async def handler(ws) -> None:
            self.connections += 1
            await ws.send(json.dumps({"type": "welcome", "message": "hi", "timestamp": "t",
                                      "subscribers": 1}))
            await asyncio.sleep(hold)

        async def main() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            async with websockets.serve(handler, "127.0.0.1", 0, ) as server:
                self.url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
                ready.set()
                await self._stop.wait()

        self._thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
        self._thread.start()
        assert ready.wait(5)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)


@pytest.mark.parametrize(("hold", "stable_after", "backs_off"), [(0.0, 0.5, True), (0.3, 0.1, False)])
def test_backoff_resets_only_after_a_stable_connection(monkeypatch, hold, stable_after, backs_off):
    import datacentre.clients.connection as connection_module

    attempts: list[int] = []

    def recording_delay(attempt: int) -> float:
        attempts.append(attempt)
        return 0.01

    monkeypatch.setattr(connection_module, "backoff_delay", recording_delay)
    monkeypatch.setattr(connection_module, "STABLE_CONNECTION_S", stable_after)
    server = FlakyServer(hold)
    feed = FeedConnection(server.url, on_tick=lambda tick: None).start()
    try:
        assert wait_until(lambda: len(attempts) >= 4, 10)
    finally:
        feed.stop()
        server.stop()
    if backs_off:  # welcomed, then dropped at once: a server in trouble, so wait longer each time
        assert attempts[:4] == [1, 2, 3, 4]
    else:  # every connection lasted: each outage starts again from the shortest delay
        assert attempts[:4] == [0, 0, 0, 0]


def test_the_socket_is_closed_when_the_broadcaster_closes(store, monkeypatch):
    """websocket-client answers a server's close frame but leaves its socket open: the server
    then waits out its close timeout (and a flapping server leaked a socket per reconnect)."""
    import datacentre.feed.server

    monkeypatch.setattr(datacentre.feed.server, "STOP_GRACE", 5.0)
    server = BroadcasterThread(store, port=0, close_timeout=5).start()
    feed = FeedConnection(server.url, on_tick=lambda tick: None).start()
    try:
        assert feed.wait_connected(5)
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 2
    finally:
        feed.stop()
        server.stop()


def new_threads(before: set[threading.Thread]) -> list[str]:
    """Threads started since ``before``, but not the broadcaster's store-read workers: its
    event loop's executor adds one whenever two reads overlap, and they live until it stops."""
    return [t.name for t in threading.enumerate()
            if t not in before and t.is_alive() and not t.name.startswith("asyncio_")]


def test_close_leaves_no_threads(store, live_broadcaster):
    from datacentre import WebSocketDataReader

    before = set(threading.enumerate())
    client = RealtimeDataClient(live_broadcaster.url, on_data_callback=lambda tick: None)
    reader = WebSocketDataReader(live_broadcaster.url)
    assert client.connect() and wait_until(reader.is_connected, 5)
    publish(store, live_broadcaster, 1)
    client.close()
    reader.close()
    assert wait_until(lambda: not new_threads(before), 2), new_threads(before)


@pytest.mark.parametrize("queue_size", [100_000, 5])  # 5: the queue is full when close() is called
def test_close_is_prompt_while_the_callback_is_blocked(store, live_broadcaster, monkeypatch, queue_size):
    import datacentre.clients.realtime as client_module

    monkeypatch.setattr(client_module, "CALLBACK_QUEUE_SIZE", queue_size)
    release = threading.Event()
    calls: list[dict] = []

    def blocked(tick: dict) -> None:
        calls.append(tick)
        release.wait(30)

    before = set(threading.enumerate())
    client = RealtimeDataClient(live_broadcaster.url, on_data_callback=blocked)
    client.connect()
    sent = publish(store, live_broadcaster, 1)  # the first tick blocks the callback; the rest queue up
    # the rest of the snapshot has arrived: queued, or dropped from a full queue
    assert wait_until(lambda: calls and client._callbacks._queue.qsize() + client.dropped_ticks
                      == len(sent) - 1, 5)
    closer = threading.Thread(target=client.close)
    closer.start()
    closer.join(3)
    closed_in_time = not closer.is_alive()
    release.set()
    closer.join(10)
    assert closed_in_time
    assert wait_until(lambda: not new_threads(before), 2), new_threads(before)
    assert len(calls) == 1  # ticks still queued at close() are dropped, not delivered later


@pytest.mark.parametrize("attempt", [0, 1, 2, 5, 10, 100])
def test_backoff_doubles_with_jitter_up_to_the_cap(attempt):
    ceiling = min(RECONNECT_MAX_DELAY, RECONNECT_MIN_DELAY * 2 ** attempt)
    delays = [backoff_delay(attempt) for _ in range(200)]
    assert all(0.5 * ceiling <= d <= ceiling for d in delays)
    assert len(set(delays)) > 1


@pytest.mark.parametrize(("message", "expected"), [
    ({"symbol": "NIFTY 50", "ltp": 1.0}, True),
    ({"type": "welcome", "message": "hi"}, False),
    ({"type": "pong", "timestamp": "x"}, False),
    ({"type": "latest", "symbol": "NIFTY 50"}, False),
    ({"type": "error", "code": "bad_request", "message": "m"}, False),
    (["NIFTY 50"], False),
])
def test_is_tick(message, expected):
    assert is_tick(message) is expected


def test_only_ticks_reach_the_tick_handler():
    ticks: list[dict] = []
    feed = FeedConnection("ws://127.0.0.1:9", on_tick=ticks.append)  # never started: fed by hand
    tick = {"symbol": "NIFTY 50", "ltp": 1.0}
    for message in [
        {"type": "welcome", "message": "hi", "subscribers": 1},
        {"type": "latest", "symbol": "NIFTY 50", "ltp": 2.0, "id": 99},  # a reply that came too late
        {"type": "error", "code": "rate_limited", "message": "slow down"},
        {"type": "replay_status", "state": "paused"}, {"type": "replay_end", "snapshots": 3},
        {"type": "snapshot", "ts": "t", "ticks": [tick, "junk", {"type": "latest", "symbol": "X"}]},
        [tick], "not json", tick,
    ]:
        feed._message(None, message if isinstance(message, str) else json.dumps(message))
    assert ticks == [tick, tick]


def test_default_url_follows_the_configuration(monkeypatch):
    assert default_ws_url() == "ws://127.0.0.1:8765"
    monkeypatch.setenv("DATACENTRE_WS_PORT", "9001")
    assert default_ws_url() == "ws://127.0.0.1:9001"
    monkeypatch.setenv("DATACENTRE_WS_HOST", "0.0.0.0")
    assert default_ws_url() == "ws://127.0.0.1:9001"  # a wildcard bind is reached via loopback
    monkeypatch.setenv("DATACENTRE_WS_URL", "ws://example.org:1234")
    assert default_ws_url() == "ws://example.org:1234"
    assert RealtimeDataClient().ws_url == "ws://example.org:1234"


@pytest.mark.parametrize(("url", "expected"), [
    ("ws://0.0.0.0:8765", "ws://127.0.0.1:8765"),
    ("ws://[::]:8765/?token=x", "ws://[::1]:8765/?token=x"),  # an IPv6 wildcard listens on IPv6 only
    ("ws://127.0.0.1:8765", "ws://127.0.0.1:8765"),
    ("ws://example.org:1234/feed", "ws://example.org:1234/feed"),
])
def test_connectable_url(url, expected):
    assert connectable_url(url) == expected


def test_a_broadcaster_on_every_ipv6_interface_is_reached(store, monkeypatch):
    monkeypatch.setenv("DATACENTRE_WS_TOKEN", "s3cret")
    server = BroadcasterThread(store, host="::", port=0).start()
    try:
        with RealtimeDataClient(f"ws://[::]:{server.port}") as client:  # the address it listens on
            assert client.connect(timeout=5)
    finally:
        server.stop()


def test_token_is_sent_as_a_bearer_header(store, monkeypatch):
    server = BroadcasterThread(store, port=0, token="s3cret").start()
    try:
        refused = RealtimeDataClient(server.url)
        assert refused.connect(timeout=0.5) is False
        refused.close()
        monkeypatch.setenv("DATACENTRE_WS_TOKEN", "s3cret")
        with RealtimeDataClient(server.url) as client:
            assert client.connect()
    finally:
        server.stop()


def test_ticks_from_the_store_match_the_messages(store, live_broadcaster):
    """What the callback gets is exactly what a raw client gets (14 fields, same values)."""
    import websocket

    raw = websocket.create_connection(live_broadcaster.url, timeout=5)
    received: list[dict] = []
    client = RealtimeDataClient(live_broadcaster.url, on_data_callback=received.append)
    try:
        assert json.loads(raw.recv())["type"] == "welcome"
        client.connect()
        store.write_snapshot(T0, [make_tick("NIFTY 50", 26000.5)])
        live_broadcaster.notify()
        assert wait_until(lambda: len(received) == 1)
        assert json.loads(raw.recv()) == received[0]
    finally:
        raw.close()
        client.close()
