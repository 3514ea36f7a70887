"""Shared fixtures: real SQLite files in tmp_path, the PostgreSQL server, sample ticks."""
from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa

from datacentre.store import TickStore

PG_URL = os.environ.get("DATACENTRE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'ticks.db'}"


@pytest.fixture
def store(db_url) -> TickStore:
    s = TickStore(db_url)
    yield s
    s.close()


@pytest.fixture
def pg_store():
    """A TickStore in a fresh PostgreSQL schema (dropped afterwards)."""
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {exc.orig}")
    url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    s = TickStore(url)
    yield s
    s.close()
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def make_tick(symbol: str, ltp: float, **fields) -> dict:
    """A tick dict with all 14 fields (None where not given)."""
    from datacentre.instruments import token_for
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
