"""Small helpers shared by the tests that run real servers and clients."""
from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

#: The settings through which a client test could reach a developer's own store or broadcaster.
CONNECTION_ENV = ("DATACENTRE_DB_URL", "DATACENTRE_WS_URL", "DATACENTRE_WS_HOST", "DATACENTRE_WS_PORT",
                  "DATACENTRE_WS_TOKEN")


def wait_until(condition: Callable[[], object], timeout: float = 10.0) -> bool:
    """Poll ``condition`` until it is true (True) or ``timeout`` seconds pass (its last value)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


def free_port() -> int:
    """A loopback TCP port nobody listens on (free when asked; tests start a server on it at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def isolate_config(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Run in ``folder`` with none of :data:`CONNECTION_ENV` set, so no test finds a developer's
    data/nifty_local.db or a broadcaster on 8765."""
    monkeypatch.chdir(folder)
    for name in CONNECTION_ENV:
        monkeypatch.delenv(name, raising=False)


def plain_ltp_ticks(url: str, key: str = "id BIGSERIAL PRIMARY KEY", constraints: str = "") -> None:
    """Create ``ltp_ticks`` in the PostgreSQL store at ``url`` as another program would: a plain
    table, written by hand, with ``key`` as its id column and ``constraints`` after the columns."""
    import sqlalchemy as sa

    tail = f", {constraints}" if constraints else ""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(
            f"CREATE TABLE ltp_ticks ({key}, symbol TEXT NOT NULL, token TEXT, ts TIMESTAMPTZ NOT NULL, "
            f"ltp FLOAT, bid FLOAT, ask FLOAT, volume BIGINT, oi BIGINT, delta FLOAT, gamma FLOAT, "
            f"theta FLOAT, vega FLOAT, iv FLOAT, source TEXT{tail})"))
    engine.dispose()
