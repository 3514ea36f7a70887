"""The broadcaster's /health probe (``status``, ``start`` and the app share it): real sockets."""
from __future__ import annotations

import socket
import threading

import pytest
from support import refused_port

from datacentre.clients.health import broadcaster_health, fetch_health, health_url
from datacentre.core.config import make_ws_url
from datacentre.feed.broadcaster import BroadcasterThread


@pytest.mark.parametrize(("ws_url", "expected"), [
    ("ws://127.0.0.1:8765", "http://127.0.0.1:8765/health"),
    ("ws://0.0.0.0:8765/?token=x", "http://127.0.0.1:8765/health"),  # a wildcard bind via loopback
    ("ws://[::]:8765", "http://[::1]:8765/health"),
    ("wss://feed.example.org/ws", "https://feed.example.org/health"),
    (make_ws_url("::", 9001), "http://[::1]:9001/health"),
    (make_ws_url("fe80::1", 9001), "http://[fe80::1]:9001/health"),
])
def test_health_url(ws_url, expected):
    assert health_url(ws_url) == expected


def test_the_probe_reads_a_running_broadcaster(store):
    server = BroadcasterThread(store, port=0, token="s3cret").start()  # /health needs no token
    try:
        health = fetch_health(server.url)
        assert health["status"] == "ok" and health["mode"] == "live" and health["subscribers"] == 0
        assert broadcaster_health(server.url)["pid"] == health["pid"]
    finally:
        server.stop()


def test_the_probe_of_a_port_where_nothing_listens():
    url = f"ws://127.0.0.1:{refused_port()}"
    with pytest.raises(OSError):
        fetch_health(url)
    assert broadcaster_health(url) is None


def test_an_answer_that_is_not_a_json_object_is_no_health():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def answer() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                         b"Connection: close\r\n\r\n[]")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        with pytest.raises(ValueError, match="not a JSON object"):
            fetch_health(f"ws://127.0.0.1:{port}", timeout=5)
    finally:
        thread.join(5)
        listener.close()
