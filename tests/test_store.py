"""TickStore on a real SQLite file (and the same contract on PostgreSQL)."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from conftest import make_tick

from datacentre.core.errors import ReadOnlyError, StoreError
from datacentre.core.ticks import TICK_FIELDS
from datacentre.store.schema import sqlite_path
from datacentre.store.tickstore import TickStore

T1, T2, T3 = "2026-01-02T08:13:05+00:00", "2026-01-02T08:13:10+00:00", "2026-01-02T08:13:15+00:00"


def fill(store, sample_ticks, stamps=(T1, T2, T3)):
    for i, ts in enumerate(stamps):
        ticks = [{**t, "ltp": t["ltp"] + i} for t in sample_ticks]
        assert store.write_snapshot(ts, ticks) == len(ticks)


def test_schema_created_with_wal_and_folder(tmp_path):
    url = f"sqlite:///{tmp_path / 'deep' / 'folder' / 'x.db'}"
    s = TickStore(url)
    assert sqlite_path(url).exists()
    with sqlite3.connect(sqlite_path(url)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert {"ltp_ticks", "instruments", "ix_ltp_ticks_ts"} <= names
    s.close()


def test_snapshot_shares_ts_and_is_idempotent(any_store, sample_ticks):
    assert any_store.write_snapshot("2026-01-02T13:43:05+05:30", sample_ticks) == len(sample_ticks)
    assert any_store.write_snapshot(T1, sample_ticks) == 0  # same (symbol, ts): skipped
    rows = any_store.snapshot_at(T1)
    assert {r["ts"] for r in rows} == {T1}
    assert len(rows) == len(sample_ticks)


def test_snapshot_is_atomic(any_store, sample_ticks):
    bad = [*sample_ticks, {"symbol": None, "ltp": 1.0}]
    with pytest.raises(StoreError):
        any_store.write_snapshot(T1, bad)
    assert any_store.count() == 0


def test_latest_history_symbols(any_store, sample_ticks):
    fill(any_store, sample_ticks)
    latest = any_store.latest("NIFTY 50")
    assert list(latest) == list(TICK_FIELDS)
    assert latest["ts"] == T3 and latest["ltp"] == pytest.approx(26012.25)
    assert any_store.latest("NIFTY06JAN2699999CE") is None
    hist = any_store.history("NIFTY 50", T1, T2)
    assert [r["ts"] for r in hist] == [T1, T2]
    assert [r["ts"] for r in any_store.history("NIFTY 50", "2026-01-02T08:13:06Z")] == [T2, T3]
    assert set(any_store.symbols()) == {t["symbol"] for t in sample_ticks}
    all_latest = any_store.latest_all()
    assert len(all_latest) == len(sample_ticks) and {r["ts"] for r in all_latest} == {T3}
    assert len(any_store.latest_all(limit=2)) == 2


def test_snapshot_at_as_of_and_by_underlying(any_store, sample_ticks):
    fill(any_store, sample_ticks)
    assert any_store.snapshot_at("2026-01-02T08:13:00Z") == []
    rows = any_store.snapshot_at("2026-01-02T08:13:12Z", "NIFTY")
    assert {r["ts"] for r in rows} == {T2}
    # BANKNIFTY contains NIFTY as a substring; the underlying filter must not be fooled
    assert {r["symbol"] for r in rows} == {"NIFTY 50", "NIFTY27JAN26FUT", "NIFTY06JAN2626000CE",
                                           "NIFTY06JAN2626000PE"}
    bank = {r["symbol"] for r in any_store.snapshot_at(T3, "BANKNIFTY")}
    assert bank == {"NIFTY BANK", "BANKNIFTY27JAN2659000CE"}


def test_after_cursor_is_id_ordered(any_store, sample_ticks):
    fill(any_store, sample_ticks)
    rows = any_store.after(0)
    ids = [r["id"] for r in rows]
    assert ids == sorted(ids) and len(ids) == 3 * len(sample_ticks)
    tail = any_store.after(ids[5])
    assert [r["id"] for r in tail] == ids[6:]
    assert any_store.max_id() == ids[-1]
    assert any_store.timestamps() == [T1, T2, T3]
    assert any_store.timestamps(T2, T3) == [T2, T3]


def test_iter_ticks_and_count(any_store, sample_ticks):
    fill(any_store, sample_ticks)
    rows = list(any_store.iter_ticks(["NIFTY 50", "NIFTY BANK"], T2, None, batch=1))
    assert [(r["ts"], r["symbol"]) for r in rows] == [
        (T2, "NIFTY 50"), (T2, "NIFTY BANK"), (T3, "NIFTY 50"), (T3, "NIFTY BANK")]
    assert any_store.count(["NIFTY 50"]) == 3
    assert any_store.count(start_ts=T3) == len(sample_ticks)


def test_query_reads_with_placeholders(any_store, sample_ticks):
    fill(any_store, sample_ticks)
    sql = "SELECT * FROM ltp_ticks WHERE symbol = ? ORDER BY ts DESC LIMIT 10"
    rows = any_store.query(sql, ("NIFTY 50",))
    assert [r["ts"] for r in rows] == [T3, T2, T1]
    assert any_store.query("SELECT '?' AS q, 1 AS n WHERE 1 = ?", (1,)) == [{"q": "?", "n": 1}]


@pytest.mark.parametrize("sql", [
    "DELETE FROM ltp_ticks",
    "UPDATE ltp_ticks SET ltp = 0",
    "INSERT INTO ltp_ticks (symbol, ts) VALUES ('X', '2026-01-02T08:00:00+00:00')",
    "DROP TABLE ltp_ticks",
    "CREATE TABLE evil (x int)",
])
def test_query_refuses_writes(any_store, sample_ticks, sql):
    fill(any_store, sample_ticks)
    with pytest.raises(ReadOnlyError):
        any_store.query(sql)
    assert any_store.count() == 3 * len(sample_ticks)


def test_query_refuses_stacked_statements_and_bad_sql(store, sample_ticks):
    fill(store, sample_ticks)
    with pytest.raises(StoreError):
        store.query("SELECT 1; DROP TABLE ltp_ticks")
    with pytest.raises(StoreError, match="query failed"):
        store.query("SELECT * FROM nowhere")
    assert store.count() == 3 * len(sample_ticks)


def test_query_runaway_is_interrupted(store):
    with pytest.raises(StoreError, match="longer than"):
        store.query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                    "SELECT count(*) FROM c", timeout=0.2)


def test_seed_sqlite3_examples_run_unchanged(store, db_url, sample_ticks):
    fill(store, sample_ticks)
    conn = sqlite3.connect(str(sqlite_path(db_url)))
    conn.row_factory = sqlite3.Row
    cursor = conn.cursor()
    cursor.execute("""
    SELECT * FROM ltp_ticks
    WHERE symbol = ?
    ORDER BY ts DESC
    LIMIT 1
""", ("NIFTY 50",))
    assert dict(cursor.fetchone())["ts"] == T3
    cursor.execute("""
    SELECT * FROM ltp_ticks
    WHERE symbol = ? AND ts >= ? AND ts <= ?
    ORDER BY ts
""", ("NIFTY 50", "2026-01-02T08:00:00+00:00", "2026-01-02T09:00:00+00:00"))
    assert len(cursor.fetchall()) == 3
    cursor.execute("SELECT MAX(ts) FROM ltp_ticks")
    assert cursor.fetchone()[0] == T3
    conn.close()


def test_millisecond_timestamps_sort_as_text(any_store, sample_ticks):
    stamps = ["2026-01-02T08:13:05+00:00", "2026-01-02T08:13:05.500+00:00", "2026-01-02T08:13:06+00:00"]
    for ts in reversed(stamps):
        any_store.write_snapshot(ts, sample_ticks[:1])
    assert [r["ts"] for r in any_store.history("NIFTY 50")] == stamps


def test_rows_from_another_process_are_seen(any_store, sample_ticks):
    code = (
        "from datacentre.store.tickstore import TickStore;"
        f"s = TickStore({any_store.url!r});"
        "s.write_snapshot('2026-01-02T09:00:00Z', [{'symbol': 'NIFTY 50', 'ltp': 1.0, 'source': 'csv'}])"
    )
    before = any_store.max_id()
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    rows = any_store.after(before)
    assert [(r["symbol"], r["ts"]) for r in rows] == [("NIFTY 50", "2026-01-02T09:00:00+00:00")]


def test_bulk_writer_all_or_nothing(any_store, sample_ticks):
    with pytest.raises(RuntimeError), any_store.bulk_writer() as write:
        write([(T1, sample_ticks)])
        raise RuntimeError("interrupted")
    assert any_store.count() == 0
    with any_store.bulk_writer() as write:
        assert write([(T1, sample_ticks), (T2, sample_ticks)]) == 2 * len(sample_ticks)
        # Rows already stored in the same transaction are skipped, not an error (COPY's
        # conflict path on PostgreSQL).
        assert write([(T2, sample_ticks), (T3, sample_ticks)]) == len(sample_ticks)
    assert any_store.timestamps() == [T1, T2, T3]


def test_stats(any_store, sample_ticks):
    fill(any_store, sample_ticks)
    stats = any_store.stats()
    assert stats["rows"] == 3 * len(sample_ticks)
    assert stats["last_ts"] == T3 and stats["first_ts"] == T1
    assert stats["bytes"] > 0


@pytest.mark.parametrize("url", ["mysql://x/y", "not a url"])
def test_bad_urls(url):
    with pytest.raises(StoreError):
        TickStore(url)


def test_postgres_ts_is_timestamptz(pg_store, sample_ticks):
    import sqlalchemy as sa
    pg_store.write_snapshot(T1, sample_ticks)
    with pg_store.engine.connect() as conn:
        kind = conn.execute(sa.text(
            "SELECT data_type FROM information_schema.columns WHERE table_name = 'ltp_ticks' "
            "AND column_name = 'ts' AND table_schema = current_schema()")).scalar()
    assert kind == "timestamp with time zone"
    assert pg_store.latest("NIFTY 50")["ts"] == T1


# ---------------------------------------------------------------- hostile read-only queries

@pytest.mark.parametrize("sql", [
    "COMMIT; DELETE FROM ltp_ticks",
    "ROLLBACK; DELETE FROM ltp_ticks",
    "SET TRANSACTION READ WRITE; DELETE FROM ltp_ticks",
    "SELECT 1; DELETE FROM ltp_ticks",
])
def test_postgres_query_refuses_stacked_statements(pg_store, sample_ticks, sql):
    fill(pg_store, sample_ticks)
    with pytest.raises(StoreError):
        pg_store.query(sql)
    assert pg_store.count() == 3 * len(sample_ticks)


def test_postgres_query_session_state_never_reaches_writers(pg_store, sample_ticks):
    from datacentre.store.tickstore import WRITER_LOCK_KEY
    # A session-level advisory lock on the writers' key would block every later snapshot.
    pg_store.query(f"SELECT pg_advisory_lock({WRITER_LOCK_KEY})")
    done = []
    with TickStore(pg_store.url) as other:  # another process's writer, on its own connections
        writer = threading.Thread(target=lambda: done.append(other.write_snapshot(T1, sample_ticks)),
                                  daemon=True)
        writer.start()
        writer.join(10)
    assert done == [len(sample_ticks)]


def test_postgres_query_percent_signs(pg_store, sample_ticks):
    fill(pg_store, sample_ticks)
    assert pg_store.query("SELECT 7 % 3 AS m") == [{"m": 1}]
    rows = pg_store.query("SELECT DISTINCT symbol FROM ltp_ticks WHERE symbol LIKE 'BANK%' "
                          "AND ts >= ? ORDER BY symbol", (T1,))
    assert rows == [{"symbol": "BANKNIFTY27JAN2659000CE"}]


def test_postgres_query_stops_reading_at_max_rows(pg_store):
    started = time.monotonic()
    endless = "WITH RECURSIVE c(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM c) SELECT g FROM c"
    rows = pg_store.query(endless, max_rows=5, timeout=20)
    assert [r["g"] for r in rows] == [1, 2, 3, 4, 5]
    assert time.monotonic() - started < 5  # not the whole series, not the timeout


@pytest.mark.parametrize("sql", [
    "ATTACH DATABASE '{other}' AS o",
    "VACUUM INTO '{other}'",
    "PRAGMA query_only=OFF",
    "PRAGMA journal_mode=DELETE",
    "PRAGMA wal_checkpoint(TRUNCATE)",
    "SELECT load_extension('/nonexistent')",
])
def test_sqlite_query_refuses_attach_pragma_writes_and_extensions(store, sample_ticks, tmp_path, sql):
    fill(store, sample_ticks)
    other = tmp_path / "other.db"
    with pytest.raises(ReadOnlyError):
        store.query(sql.format(other=other))
    assert not other.exists()
    assert store.count() == 3 * len(sample_ticks)


def test_sqlite_query_allows_schema_reads(store, sample_ticks):
    fill(store, sample_ticks)
    names = [r["name"] for r in store.query("PRAGMA table_info(ltp_ticks)")]
    assert names[:4] == ["id", "symbol", "token", "ts"]
    assert store.query("SELECT count(*) AS n FROM pragma_table_info('ltp_ticks')") == [{"n": 15}]


def test_sqlite_query_in_a_folder_with_uri_characters(tmp_path, sample_ticks):
    folder = tmp_path / "C# ticks?100%"
    with TickStore(f"sqlite:///{folder / 'ticks.db'}") as s:
        s.write_snapshot(T1, sample_ticks)
        assert s.query("SELECT count(*) AS n FROM ltp_ticks") == [{"n": len(sample_ticks)}]


def test_timestamps_have_one_text_form_per_instant(any_store, sample_ticks):
    from datacentre.core.ticks import normalize_ts
    # under a millisecond: the same instant as whole seconds, so the same text
    assert normalize_ts("2026-01-02T08:13:05.000400+00:00") == T1
    any_store.write_snapshot(T1, sample_ticks)
    assert any_store.write_snapshot("2026-01-02T08:13:05.0004+00:00", sample_ticks) == 0
    assert any_store.timestamps() == [T1]


def test_oi_at_reads_the_given_symbols_at_the_given_times(any_store, sample_ticks):
    fill(any_store, sample_ticks)
    legs = ["NIFTY06JAN2626000CE", "NIFTY06JAN2626000PE", "NIFTY06JAN2699999CE"]
    rows = sorted(any_store.oi_at(legs, [T1, T3]))
    assert rows == [(T1, legs[0], 5200000), (T1, legs[1], 6100000), (T3, legs[0], 5200000),
                    (T3, legs[1], 6100000)]
    assert any_store.oi_at(legs, []) == [] and any_store.oi_at([], [T1]) == []
    assert any_store.oi_at(legs, ["2026-01-02T08:13:06+00:00"]) == []  # exact times only


def test_underlying_series_future_rolls_at_1530_ist_on_expiry_day(any_store):
    # 27 Jan 2026 is the last Tuesday: the January future trades until 15:30 IST (10:00 UTC).
    before, after = "2026-01-27T09:59:55+00:00", "2026-01-27T10:00:00+00:00"
    for ts, jan, feb in ((before, 25010.0, 25100.0), (after, 25011.0, 25101.0)):
        any_store.write_snapshot(ts, [make_tick("NIFTY 50", 25000.0),
                                      make_tick("NIFTY27JAN26FUT", jan),
                                      make_tick("NIFTY24FEB26FUT", feb)])
    assert [r["future"] for r in any_store.underlying_series("NIFTY", before)] == [25010.0, 25011.0]
    assert [r["future"] for r in any_store.underlying_series("NIFTY", after)] == [25101.0]
