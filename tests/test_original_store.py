"""A store written by the original data centre, opened in place on SQLite and PostgreSQL.

The fixture builds it with the original's own DDL and habits: ``id BIGSERIAL`` / INTEGER
autoincrement, ``ts TIMESTAMPTZ`` on PostgreSQL and text with or without ``+00:00`` (and
with microseconds) on SQLite, bid/ask stored as 0, ``iv DEFAULT 0.0``, ``source`` values
``api``/``ws``/``local_ws``, months of sessions whose contracts expired long ago, no
``instruments`` table, and its own ``ohlc_1min`` with a row its builder wrote.
"""
from __future__ import annotations

import math
import sqlite3

import pytest
import sqlalchemy as sa

from datacentre.__main__ import main
from datacentre.analytics.frame import ticks_frame
from datacentre.core.instruments import has_expired, parse_symbol
from datacentre.core.ticks import frozen_clock, parse_ts
from datacentre.store import TickStore, open_existing_store

NOW = "2026-01-02T09:00:00+00:00"  # Friday 2 January 2026, 14:30 IST
LIVE = ["NIFTY 50", "NIFTY27JAN26FUT"] + [f"NIFTY06JAN26{26000 + 50 * k}{r}" for k in range(-5, 6)
                                          for r in ("CE", "PE")]
EXPIRED = [f"BANKNIFTY25NOV25{57000 + 100 * k}{r}" for k in range(40) for r in ("CE", "PE")] + \
          [f"NIFTY02DEC25{25500 + 50 * k}{r}" for k in range(10) for r in ("CE", "PE")]

SQLITE_DDL = [
    """CREATE TABLE ltp_ticks (id INTEGER PRIMARY KEY AUTOINCREMENT, symbol TEXT NOT NULL, token TEXT,
       ts TEXT NOT NULL, ltp REAL, bid REAL DEFAULT 0, ask REAL DEFAULT 0, volume INTEGER DEFAULT 0,
       oi INTEGER DEFAULT 0, delta REAL, gamma REAL, theta REAL, vega REAL, iv REAL DEFAULT 0.0,
       source TEXT DEFAULT 'ws', UNIQUE (symbol, ts))""",
    "CREATE INDEX idx_ltp_ticks_ts ON ltp_ticks (ts)",
    """CREATE TABLE ohlc_1min (id INTEGER PRIMARY KEY AUTOINCREMENT, symbol TEXT NOT NULL, ts TEXT NOT NULL,
       open REAL, high REAL, low REAL, close REAL, volume INTEGER, oi INTEGER, delta REAL, iv REAL,
       gamma REAL, theta REAL, vega REAL, UNIQUE (symbol, ts))""",
]
POSTGRES_DDL = [
    """CREATE TABLE ltp_ticks (id BIGSERIAL PRIMARY KEY, symbol TEXT NOT NULL, token TEXT,
       ts TIMESTAMPTZ NOT NULL, ltp DOUBLE PRECISION, bid DOUBLE PRECISION DEFAULT 0,
       ask DOUBLE PRECISION DEFAULT 0, volume BIGINT DEFAULT 0, oi BIGINT DEFAULT 0,
       delta DOUBLE PRECISION, gamma DOUBLE PRECISION, theta DOUBLE PRECISION, vega DOUBLE PRECISION,
       iv DOUBLE PRECISION DEFAULT 0.0, source TEXT DEFAULT 'ws', UNIQUE (symbol, ts))""",
    "CREATE INDEX idx_ltp_ticks_ts ON ltp_ticks (ts)",
    """CREATE TABLE ohlc_1min (id SERIAL PRIMARY KEY, symbol TEXT NOT NULL, ts TIMESTAMPTZ NOT NULL,
       open DOUBLE PRECISION, high DOUBLE PRECISION, low DOUBLE PRECISION, close DOUBLE PRECISION,
       volume BIGINT, oi BIGINT, delta DOUBLE PRECISION, iv DOUBLE PRECISION, gamma DOUBLE PRECISION,
       theta DOUBLE PRECISION, vega DOUBLE PRECISION, UNIQUE (symbol, ts))""",
]
THEIR_BAR = ("NIFTY 50", "2026-01-02T03:45:00+00:00", 26000.0, 26010.0, 25990.0, 26005.0, 0)


def their_rows() -> list[tuple]:
    """(symbol, token, ts, ltp, bid, ask, volume, oi, delta, gamma, theta, vega, iv, source)."""
    rows = []
    # Expired contracts: collected weeks ago (written with the bare form of the time).
    for n, symbol in enumerate(EXPIRED):
        ts = f"2025-11-2{n % 5}T09:{n % 60:02d}:05"
        rows.append((symbol, str(40000 + n), ts, 100.0 + n, 0.0, 0.0, 650 * n, 1300 * n,
                     0.5, 0.001, -5.0, 10.0, 0.0 if n % 7 == 0 else 14.5, "api"))
    # Today: three snapshots written three ways.
    for k, ts in enumerate(["2026-01-02T08:59:50+00:00", "2026-01-02T08:59:55",
                            "2026-01-02T09:00:00.250000+00:00"]):
        for n, symbol in enumerate(LIVE):
            kind = parse_symbol(symbol).kind
            source = ("api", "ws", "local_ws")[k]
            if kind == "INDEX":
                rows.append((symbol, "99926000", ts, 26000.0 + k, 0.0, 0.0, 0, 0, None, None, None, None,
                             0.0, source))
            elif kind == "FUT":
                rows.append((symbol, "35001", ts, 26100.0 + k, 0.0, 0.0, 1000 + k, 9_000_000, None, None,
                             None, None, 0.0, source))
            else:
                quoted = n % 2 == 0  # half the options have a real quote, half were stored as 0
                ltp = 80.0 + n + k
                rows.append((symbol, str(36000 + n), ts, ltp, ltp - 0.5 if quoted else 0.0,
                             ltp + 0.5 if quoted else 0.0, 6500 * (k + 1), 65000 + n, 0.5, 0.001, -9.0, 12.0,
                             0.0 if n % 3 == 0 else 12.0 + n / 10, source))
    return rows


INSERT = ("INSERT INTO ltp_ticks (symbol, token, ts, ltp, bid, ask, volume, oi, delta, gamma, theta, vega, "
          "iv, source) VALUES ({})")
BAR = "INSERT INTO ohlc_1min (symbol, ts, open, high, low, close, volume) VALUES ({})"


def build_sqlite(path) -> str:
    with sqlite3.connect(path) as conn:
        for ddl in SQLITE_DDL:
            conn.execute(ddl)
        conn.executemany(INSERT.format(", ".join("?" * 14)), their_rows())
        conn.execute(BAR.format(", ".join("?" * 7)), THEIR_BAR)
    conn.close()
    return f"sqlite:///{path}"


def build_postgres(url: str) -> str:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("SET TIME ZONE 'Asia/Kolkata'")  # how the original's sessions ran
        for ddl in POSTGRES_DDL:
            conn.exec_driver_sql(ddl)
        # a bare time is UTC in the original's data: say so, or the session's zone would apply
        rows = [r[:2] + (r[2] if "+" in r[2] else r[2] + "+00:00",) + r[3:] for r in their_rows()]
        conn.exec_driver_sql(INSERT.format(", ".join(["%s"] * 14)), rows)
        conn.exec_driver_sql(BAR.format(", ".join(["%s"] * 7)), THEIR_BAR)
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def original_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return build_sqlite(tmp_path / "nifty_local.db")
    return build_postgres(request.getfixturevalue("pg_url"))


def their_tables(url: str) -> tuple[list, list]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        ticks = conn.exec_driver_sql("SELECT * FROM ltp_ticks ORDER BY id").all()
        bars = conn.exec_driver_sql("SELECT * FROM ohlc_1min WHERE id = 1").all()
    engine.dispose()
    return ticks, bars


def test_opened_in_place_their_rows_are_never_rewritten(original_url):
    ticks, bars = their_tables(original_url)
    with TickStore(original_url) as store, frozen_clock(NOW):
        # our tables beside theirs, and their symbols known to the chain queries
        assert {"instruments", "oi_snapshots"} <= set(sa.inspect(store.engine).get_table_names())
        assert len(store.instruments("NIFTY")) == len(LIVE) + 20
        store.update_minutes("2026-01-02T09:01:00+00:00")
        store.write_snapshot("2026-01-02T09:00:05+00:00", [
            {"symbol": "NIFTY 50", "token": "99926000", "ltp": 26003.0, "volume": 0, "source": "api"}])
        assert store.latest("NIFTY 50")["ltp"] == 26003.0
        assert store.max_id() == len(ticks) + 1  # ids go on after theirs
    after_ticks, after_bars = their_tables(original_url)
    assert after_ticks[:len(ticks)] == ticks
    assert after_bars == bars


def test_their_rows_read_correctly(original_url):
    with TickStore(original_url) as store:
        latest = store.latest("NIFTY06JAN2626000CE")
        assert parse_ts(latest["ts"]) == parse_ts("2026-01-02T09:00:00.250+00:00")
        assert latest["source"] == "local_ws"
        history = store.history("NIFTY 50", "2026-01-02T08:59:50+00:00", "2026-01-02T09:00:00+00:00")
        assert [h["ltp"] for h in history] == [26000.0, 26001.0]  # the bare 08:59:55 is inside
        assert set(store.symbols()) == set(LIVE) | set(EXPIRED)
        # analytics read their 0 bid/ask and 0 IV as unknown
        frame = ticks_frame(store.snapshot_at("2026-01-02T08:59:50+00:00", "NIFTY"))
        index = frame[frame["symbol"] == "NIFTY 50"].iloc[0]
        assert math.isnan(index["bid"]) and math.isnan(index["ask"]) and math.isnan(index["iv"])
        options = frame[frame["kind"].isin(["CE", "PE"])]
        assert options["bid"].isna().sum() == 11 and options["iv"].isna().sum() == 7
        assert (options["iv"].dropna() > 0).all()
        # the minute candles of their day
        [candle] = store.candles("NIFTY27JAN26FUT", 1, "2026-01-02T08:59:00Z", "2026-01-02T09:00:00Z")
        assert (candle["open"], candle["close"], candle["ticks"], candle["iv"]) == (26100.0, 26101.0, 2, None)


def test_latest_all_puts_live_contracts_first_newest_first(original_url):
    with TickStore(original_url) as store, frozen_clock(NOW):
        latest = store.latest_all(limit=100)
        symbols = [t["symbol"] for t in latest]
        assert symbols[:2] == ["NIFTY 50", "NIFTY27JAN26FUT"]
        assert set(symbols[:len(LIVE)]) == set(LIVE)
        assert all(parse_ts(t["ts"]) == parse_ts("2026-01-02T09:00:00.250+00:00") for t in latest[:len(LIVE)])
        expired = [parse_symbol(s) for s in symbols[len(LIVE):]]
        assert len(expired) == 100 - len(LIVE) and all(has_expired(i.expiry, NOW) for i in expired)
        times = [parse_ts(t["ts"]) for t in latest[len(LIVE):]]
        assert times == sorted(times, reverse=True)
        assert len(store.latest_all(limit=None)) == len(LIVE) + len(EXPIRED)


def test_the_command_line_and_a_read_only_opener_work_on_their_store(original_url, capsys):
    assert main(["candles", "--db", original_url]) == 0
    assert "new candles" in capsys.readouterr().out
    found = open_existing_store(original_url)
    try:
        with frozen_clock(NOW):
            assert found.latest_all(limit=1)[0]["symbol"] == "NIFTY 50"
        assert found.query("SELECT count(*) AS n FROM ltp_ticks WHERE source IN (%s, %s, %s)",
                           ("api", "ws", "local_ws")) == [{"n": len(their_rows())}]
    finally:
        found.close()


def test_a_read_only_client_of_their_untouched_store(tmp_path):
    """Before any of our processes ran: no instruments table, no view, nothing created."""
    url = build_sqlite(tmp_path / "theirs.db")
    found = open_existing_store(url)
    try:
        assert set(found.symbols()) == set(LIVE) | set(EXPIRED)
        with frozen_clock(NOW):
            assert found.latest_all(limit=3)[0]["symbol"] == "NIFTY 50"
    finally:
        found.close()
    with sqlite3.connect(tmp_path / "theirs.db") as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master "
                                             "WHERE type IN ('table', 'view')")}
    conn.close()
    assert tables == {"ltp_ticks", "ohlc_1min", "sqlite_sequence"}
