"""Small helpers shared by the tests that run real servers and clients."""
from __future__ import annotations

import errno
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")

#: The settings through which a client test could reach a developer's own store or broadcaster.
CONNECTION_ENV = ("DATACENTRE_DB_URL", "DATABASE_URL", "DATACENTRE_WS_URL", "DATACENTRE_WS_HOST",
                  "DATACENTRE_WS_PORT", "DATACENTRE_WS_TOKEN")

IN_USE_ATTEMPTS = 5
_REFUSING: list[socket.socket] = []  # held until the test run ends


def wait_until(condition: Callable[[], object], timeout: float = 10.0) -> bool:
    """Poll ``condition`` until it is true (True) or ``timeout`` seconds pass (its last value)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


def free_port() -> int:
    """A loopback TCP port nobody listened on when asked.

    Someone else may bind it before the caller does: servers in this process listen on
    port 0 and report the port they got; a server in another process is started through
    :func:`on_free_port`, which tries another port when this one was taken.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def refused_port() -> int:
    """A loopback port where every connection is refused for the rest of the test run:
    bound by this process, so no server can take it, and never listening."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    _REFUSING.append(s)
    return s.getsockname()[1]


class PortInUse(Exception):
    """A server could not listen on the port it was given: another one holds it."""


def in_use(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or what caused it) says the address is already in use."""
    while exc is not None:
        if isinstance(exc, PortInUse) or (isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE):
            return True
        if "already in use" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def on_free_port(start: Callable[[int], T], attempts: int = IN_USE_ATTEMPTS) -> T:
    """``start(port)`` on a free port, again on another one while the port was taken in
    between (``start`` raises an error for which :func:`in_use` is true)."""
    for _ in range(attempts - 1):
        try:
            return start(free_port())
        except Exception as exc:
            if not in_use(exc):
                raise
    return start(free_port())


def on_port_again(port: int, start: Callable[[int], T], timeout: float = 10.0) -> T:
    """``start(port)`` on the port a server just stopped listening on (a restart), retrying
    while the address is still in use for up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return start(port)
        except Exception as exc:
            if not in_use(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(0.05)


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
