"""Shared fixtures: real SQLite files in tmp_path, the PostgreSQL server, sample ticks."""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from datacentre.store.schema import temporary_schema
from datacentre.store.tickstore import TickStore

PG_ENV = "DATACENTRE_TEST_PG_URL"


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'ticks.db'}"


@contextmanager
def app_on_store(url: str, monkeypatch) -> Iterator[TickStore]:
    """The app (AppTest) on the store at ``url`` with no broadcaster answering and autostart
    off, so "live" is the store's last snapshot; the store, open for the test to read."""
    from support import refused_port

    monkeypatch.setenv("DATACENTRE_DB_URL", url)
    monkeypatch.setenv("DATACENTRE_WS_PORT", str(refused_port()))
    monkeypatch.setenv("DATACENTRE_AUTOSTART", "0")
    with TickStore(url) as store:
        yield store


@pytest.fixture
def app_env(sessions_db, monkeypatch):
    """The app on a module's prepared ``sessions_db`` (:func:`app_on_store`) and its sessions."""
    url, days = sessions_db
    with app_on_store(url, monkeypatch) as store:
        yield store, days


def backfilled_sessions(tmp_path_factory, name: str, sessions: int, *, interval: float,
                        seed: int) -> tuple[str, list]:
    """A SQLite file holding the last ``sessions`` complete simulated sessions: its URL and days."""
    from datacentre.ops.backfill import backfill, recent_sessions

    url = f"sqlite:///{tmp_path_factory.mktemp(name) / 'sessions.db'}"
    days = recent_sessions(sessions)
    with TickStore(url) as store:
        backfill(store, days, interval=interval, seed=seed)
    return url, days


@pytest.fixture
def store(db_url) -> TickStore:
    s = TickStore(db_url)
    yield s
    s.close()


# ---------------------------------------------------------------- PostgreSQL
# One database per test session (CREATE DATABASE dc_test_<random> on the server named by
# DATACENTRE_TEST_PG_URL, dropped at the end) and one schema per test inside it. Unset,
# the PostgreSQL tests skip; set but unreachable, they fail.

def pytest_collection_modifyitems(items) -> None:
    """Tests that need the PostgreSQL server carry the ``postgres`` mark (``-m "not postgres"``)."""
    for item in items:
        if "pg_database" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def pg_database() -> str:
    """The URL of this session's own PostgreSQL database."""
    server = os.environ.get(PG_ENV)
    if not server:
        pytest.skip(f"{PG_ENV} is not set (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)")
    name = f"dc_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.fail(f"PostgreSQL at {server} is unreachable ({exc.orig}); start it, or unset {PG_ENV} "
                    f"to skip the PostgreSQL tests", pytrace=False)
    yield sa.engine.make_url(server).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def fresh_schema(database_url: str):
    """A store URL on a new schema of the database at ``database_url``, dropped afterwards."""
    return temporary_schema(database_url, "t")


@pytest.fixture
def pg_url(pg_database) -> str:
    """A store URL on a fresh schema of the session's database."""
    with fresh_schema(pg_database) as url:
        yield url


@pytest.fixture
def pg_store(pg_url) -> TickStore:
    """A TickStore in a fresh PostgreSQL schema."""
    s = TickStore(pg_url)
    yield s
    s.close()


ENGINES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=ENGINES)
def any_db_url(request, tmp_path) -> str:
    """A fresh store URL on each engine: a SQLite file, then a PostgreSQL schema.

    A test module whose every store runs on both engines overrides ``db_url`` with it
    (``def db_url(any_db_url): return any_db_url``), and every fixture built on
    ``db_url`` (``store``, ``live_broadcaster``, ``live_market``) follows."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ticks.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def any_store(any_db_url) -> TickStore:
    s = TickStore(any_db_url)
    yield s
    s.close()


def make_tick(symbol: str, ltp: float, **fields) -> dict:
    """A tick dict with all 14 fields (None where not given)."""
    from datacentre.core.instruments import token_for
    tick = {"symbol": symbol, "token": token_for(symbol), "ts": None, "ltp": ltp, "bid": None,
            "ask": None, "volume": 0, "oi": None, "delta": None, "gamma": None, "theta": None,
            "vega": None, "iv": None, "source": "sim"}
    tick.update(fields)
    return tick


@pytest.fixture
def sample_ticks() -> list[dict]:
    """A tiny snapshot: both indices, a future, two NIFTY options and one BANKNIFTY option."""
    return [
        make_tick("NIFTY 50", 26010.25),
        make_tick("NIFTY BANK", 59020.5),
        make_tick("NIFTY27JAN26FUT", 26120.0, volume=1300, oi=13000000, bid=26119.95, ask=26120.05),
        make_tick("NIFTY06JAN2626000CE", 120.5, bid=120.45, ask=120.55, volume=65000, oi=5200000,
                  delta=0.52, gamma=0.0011, theta=-12.3, vega=14.2, iv=11.25),
        make_tick("NIFTY06JAN2626000PE", 110.0, bid=109.95, ask=110.05, volume=70000, oi=6100000,
                  delta=-0.48, gamma=0.0011, theta=-11.9, vega=14.2, iv=11.75),
        make_tick("BANKNIFTY27JAN2659000CE", 450.0, bid=449.9, ask=450.1, volume=3000, oi=90000,
                  delta=0.5, gamma=0.0003, theta=-20.0, vega=40.0, iv=13.0),
    ]


# ---------------------------------------------------------------- a small synthetic market
# (the app, live-feed and browser tests; deterministic and independent of the simulator)

def synthetic_snapshot(moment, *, nifty: float = 26000.0, bank: float = 59000.0,
                       strikes: int = 6, step: int = 0) -> list[dict]:
    """One snapshot of both underlyings: index, nearest future, ATM +/- ``strikes`` CE and PE
    of the nearest expiry, with plausible prices, OI, volume, IV and delta."""
    import math

    from datacentre.core.instruments import (
        atm_strike,
        current_future_expiry,
        format_future,
        format_option,
        nearest_option_expiry,
        time_to_expiry,
        underlying,
    )
    from datacentre.core.ticks import format_ts

    ticks = []
    for base, spot in (("NIFTY", nifty), ("BANKNIFTY", bank)):
        u = underlying(base)
        ticks.append(make_tick(u.index_symbol, round(spot, 2)))
        fut_expiry = current_future_expiry(moment)
        fut = round(spot * 1.004, 1)
        ticks.append(make_tick(format_future(base, fut_expiry), fut, bid=fut - 0.5, ask=fut + 0.5,
                               volume=1000 + 10 * step, oi=12_000_000 + 1000 * step))
        expiry = nearest_option_expiry(base, moment)
        t = max(time_to_expiry(expiry, moment), 1 / 365)
        atm = atm_strike(spot, u.strike_step)
        for i in range(-strikes, strikes + 1):
            k = atm + i * u.strike_step
            iv = 12.0 + 0.02 * abs(i) ** 2 + (0.3 if i < 0 else 0.0)
            sd = spot * iv / 100 * math.sqrt(t)
            z = (spot - k) / sd
            call_delta = 0.5 * (1 + math.erf(z / math.sqrt(2)))
            time_value = sd * 0.4 * math.exp(-z * z / 2)
            for right, intrinsic, delta in (("CE", max(spot - k, 0), call_delta),
                                            ("PE", max(k - spot, 0), call_delta - 1)):
                ltp = round(max(intrinsic + time_value, 0.05), 2)
                oi = int((4_000_000 if right == "PE" and i < 0 or right == "CE" and i > 0 else 2_000_000)
                         / (1 + 0.15 * abs(i)) + 5000 * step)
                ticks.append(make_tick(format_option(base, expiry, k, right), ltp,
                                       bid=round(ltp - 0.05, 2), ask=round(ltp + 0.05, 2),
                                       volume=50_000 + 300 * step + 1000 * abs(i), oi=oi,
                                       delta=round(delta, 4), gamma=0.001, theta=-10.0, vega=12.0,
                                       iv=round(iv, 2)))
    stamp = format_ts(moment)
    return [{**t, "ts": stamp} for t in ticks]


def fill_market(store, start, count: int, *, every_s: float = 60.0) -> list[str]:
    """Write ``count`` synthetic snapshots from ``start`` (a datetime) on; return their ts."""
    import math
    from datetime import timedelta

    from datacentre.core.ticks import format_ts

    stamps = []
    for n in range(count):
        moment = start + timedelta(seconds=n * every_s)
        drift = 40 * math.sin(n / 7)
        store.write_snapshot(moment, synthetic_snapshot(moment, nifty=26000 + drift + n,
                                                        bank=59000 + 2.2 * drift, step=n))
        stamps.append(format_ts(moment))
    return stamps


def _last_session_market(url: str) -> str:
    """Fill the store at ``url`` with 60 one-minute snapshots of the last complete session."""
    from datacentre.core.instruments import last_complete_session, session_bounds
    from datacentre.core.ticks import now_utc

    with TickStore(url) as s:
        open_, _ = session_bounds(last_complete_session(now_utc()))
        fill_market(s, open_, 60)
    return url


@pytest.fixture
def market_db(tmp_path) -> str:
    """A SQLite store with 60 one-minute snapshots of the last complete session."""
    return _last_session_market(f"sqlite:///{tmp_path / 'market.db'}")


@pytest.fixture(params=ENGINES)
def any_market_db(request, tmp_path) -> str:
    """``market_db`` on each engine: a SQLite file, then a PostgreSQL schema."""
    if request.param == "sqlite":
        return _last_session_market(f"sqlite:///{tmp_path / 'market.db'}")
    return _last_session_market(request.getfixturevalue("pg_url"))


# ---------------------------------------------------------------- a live data centre
# (client, reader and seed-sample tests: real broadcaster, real collector, real sockets)

@pytest.fixture
def live_broadcaster(store):
    """A real BroadcasterThread over ``store`` on a free loopback port (stopped afterwards)."""
    from datacentre.feed.broadcaster import BroadcasterThread

    server = BroadcasterThread(store, port=0, poll_interval=0.02).start()
    yield server
    server.stop()


@pytest.fixture
def live_market(store, live_broadcaster):
    """The simulator (seed 1) collected every 0.2 s into ``store`` and pushed out at once."""
    from datacentre.ops.collector import Collector, CollectorThread
    from datacentre.sources import MarketSimulator

    collector = Collector(store, MarketSimulator(seed=1), interval=0.2,
                          on_commit=lambda ts, rows: live_broadcaster.notify())
    thread = CollectorThread(collector).start()
    yield collector
    thread.stop()


# ---------------------------------------------------------------- WebSocket servers (broadcaster, replay)

@pytest.fixture
def stalled_client():
    """Connect a WebSocket client that completes the handshake, then never reads.

    ``stalled_client(server_thread)`` returns the socket. Its receive buffer and the
    server's send buffer for it are shrunk (the kernel's default can absorb megabytes), so
    the backlog lands in the server transport's buffer after a few kilobytes.
    """
    import socket
    import time

    opened = []

    def connect(server) -> socket.socket:
        sock = socket.socket()
        opened.append(sock)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 101")
        peer = sock.getsockname()[:2]
        deadline = time.monotonic() + 5
        while True:
            mine = [c for c in list(server.server._clients) if c.ws.remote_address[:2] == peer]
            if mine:
                break
            assert time.monotonic() < deadline, "the server never registered the stalled client"
            time.sleep(0.005)
        mine[0].ws.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        return sock

    yield connect
    for sock in opened:
        sock.close()


# ---------------------------------------------------------------- the Streamlit app
# (the app, page, live-feed and browser tests)

APP_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "app.py")
APP_TIMEOUT_S = 60


def app_test():
    """The app's first run in Streamlit's AppTest, checked to have raised nothing."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP_PATH, default_timeout=APP_TIMEOUT_S).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def check(at) -> None:
    """An AppTest run raised nothing and showed no error."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def metric(at, label: str):
    """The card labelled ``label`` (or starting with it and a space: a badge may follow)."""
    found = [m for m in at.metric if m.label == label or m.label.startswith(label + " ")]
    assert found, (label, [m.label for m in at.metric])
    return found[0]


@pytest.fixture
def release_app_resources():
    """After the test, drop the app's cached store and feed and stop every feed and
    embedded data centre, so the next test starts its own (``on_release`` stops feeds)."""
    yield
    import streamlit as st

    from datacentre.app import launcher, livefeed

    st.cache_resource.clear()
    st.cache_data.clear()
    for feed in livefeed.running_feeds():
        feed.stop()
    launcher.stop_data_centres()
