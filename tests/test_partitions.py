"""A schema fit for years: 64-bit ids, monthly partitions on PostgreSQL, the migration of
older stores, and indexes behind the hot queries on both engines."""
from __future__ import annotations

import uuid
from datetime import timedelta
from unittest import mock

import pytest
import sqlalchemy as sa
from conftest import make_tick
from support import plain_ltp_ticks

from datacentre.core.ticks import parse_ts
from datacentre.store import feedreads, partitions
from datacentre.store.schema import ltp_ticks
from datacentre.store.tickstore import TickStore

JAN = parse_ts("2026-01-20T04:00:00Z")
FEB = parse_ts("2026-02-03T04:00:00Z")


def snapshot(ltp: float = 100.0) -> list[dict]:
    return [make_tick("NIFTY 50", 26000 + ltp), make_tick("NIFTY BANK", 59000 + ltp),
            make_tick("NIFTY27JAN26FUT", 26100 + ltp, volume=10, oi=1000),
            make_tick("NIFTY06JAN2626000CE", ltp, volume=5, oi=500, iv=12.0)]


def scalar(store: TickStore, sql: str, **params):
    with store.engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def test_ids_are_64_bit_on_both_engines(any_store):
    if any_store.dialect == "sqlite":
        # INTEGER PRIMARY KEY is SQLite's rowid: 64-bit signed.
        with any_store.engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO sqlite_sequence (name, seq) VALUES ('ltp_ticks', ?)",
                                 (2**40,))
    else:
        assert scalar(any_store, "SELECT data_type FROM information_schema.columns WHERE "
                                 "table_schema = current_schema() AND table_name = 'ltp_ticks' "
                                 "AND column_name = 'id'") == "bigint"
        assert scalar(any_store, "SELECT data_type FROM pg_sequences WHERE "
                                 "sequencename = 'ltp_ticks_id_seq' AND schemaname = current_schema()"
                      ) == "bigint"
        scalar(any_store, "SELECT setval('ltp_ticks_id_seq', :v)", v=2**40)
    any_store.write_snapshot(JAN, snapshot())
    assert any_store.max_id() > 2**40
    assert len(any_store.after(2**40)) == 4


@pytest.mark.postgres
def test_postgres_table_is_partitioned_by_ist_month(pg_store):
    assert scalar(pg_store, "SELECT relkind FROM pg_class WHERE oid = to_regclass('ltp_ticks')") == "p"
    pg_store.write_snapshot(JAN, snapshot())
    pg_store.write_snapshot(parse_ts("2019-07-04T05:00:00Z"), snapshot())  # an import of old data
    # 31 Jan 19:00 UTC is 1 Feb 00:30 IST: February's partition, though January in UTC.
    pg_store.write_snapshot(parse_ts("2026-01-31T19:00:00Z"), snapshot())
    names = [p.name for p in pg_store.partitions()]
    assert names == ["ltp_ticks_y2019m07", "ltp_ticks_y2026m01", "ltp_ticks_y2026m02"]
    assert scalar(pg_store, "SELECT count(*) FROM ltp_ticks_y2026m02") == 4
    feb = pg_store.partitions()[-1]
    assert feb.lower == parse_ts("2026-01-31T18:30:00Z") and feb.upper == parse_ts("2026-02-28T18:30:00Z")
    # Each partition carries the parent's keys and index.
    indexes = {r[0] for r in pg_store.engine.connect().execute(sa.text(
        "SELECT indexdef FROM pg_indexes WHERE tablename = 'ltp_ticks_y2026m01'"))}
    assert any("(id, ts)" in i for i in indexes) and any("(symbol, ts)" in i for i in indexes)
    assert any(i.endswith("(ts)") for i in indexes)


@pytest.mark.postgres
def test_partitions_are_made_ahead_and_never_twice(pg_store):
    assert pg_store.prepare_partitions(JAN) == ["ltp_ticks_y2026m01", "ltp_ticks_y2026m02"]
    assert pg_store.prepare_partitions(JAN) == []
    with TickStore(pg_store.url) as other:  # another process, with its own cache
        assert other.prepare_partitions(FEB, months_ahead=2) == ["ltp_ticks_y2026m03", "ltp_ticks_y2026m04"]
    assert len(pg_store.partitions()) == 4


@pytest.mark.postgres
def test_a_new_month_is_attached_while_a_bulk_write_is_open(pg_store):
    # Attaching takes no lock that waits for open writers: a bulk load can add the month it
    # needs mid-transaction, while another writer's transaction is also open.
    pg_store.write_snapshot(JAN, snapshot())
    with TickStore(pg_store.url) as other, other.bulk_writer() as write:
        write([(JAN + timedelta(seconds=5), snapshot(1))])
        write([(FEB, snapshot(2))])
        write([(parse_ts("2026-03-02T04:00:00Z"), snapshot(3))])
    assert pg_store.count() == 16


def _old_table(engine: sa.Engine) -> sa.Table:
    """``ltp_ticks`` as earlier versions created it: a plain table with a SERIAL id."""
    old = sa.MetaData()
    table = ltp_ticks.to_metadata(old)
    table.c.id.type = sa.Integer()
    old.create_all(engine)
    return table


def _old_store(url: str) -> None:
    """An earlier version's store with a few rows, a view over them, ids near 2**31."""
    engine = sa.create_engine(url)
    table = _old_table(engine)
    with engine.begin() as conn:
        rows = [{**make_tick(s, 100.0 + i), "ts": JAN + timedelta(seconds=5 * i)}
                for i in range(3) for s in ("NIFTY 50", "NIFTY BANK")]
        conn.execute(table.insert(), rows)
        conn.execute(sa.text("CREATE VIEW v_ticks AS SELECT symbol, ts, ltp FROM ltp_ticks"))
        # Close to the 32-bit limit: only a widened sequence and column get past it.
        conn.execute(sa.text("SELECT setval('ltp_ticks_id_seq', 2147483600)"))
    engine.dispose()


@pytest.mark.postgres
def test_an_older_store_is_migrated_once_and_keeps_its_rows(pg_url):
    _old_store(pg_url)
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        before = conn.execute(sa.text("SELECT id, symbol, ts, ltp FROM ltp_ticks ORDER BY id")).all()
    role = f"dc_reader_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE ROLE {role}"))
        conn.execute(sa.text(f"GRANT SELECT ON ltp_ticks TO {role}"))
    try:
        with TickStore(pg_url) as store:
            assert scalar(store, "SELECT relkind FROM pg_class WHERE oid = to_regclass('ltp_ticks')") == "p"
            legacy = store.partitions()[0]
            assert legacy.name == "ltp_ticks_legacy" and legacy.lower is None
            assert legacy.upper == parse_ts("2026-01-31T18:30:00Z")  # 1 Feb IST: after its newest row
            with store.engine.connect() as conn:
                after = conn.execute(sa.text("SELECT id, symbol, ts, ltp FROM ltp_ticks ORDER BY id")).all()
                assert after == before
                # 110 rows take the ids past 2**31 - 1.
                store.write_snapshot(FEB, [make_tick(f"NIFTY06JAN26{26000 + 50 * k}CE", 1.0)
                                           for k in range(110)])
                store.write_snapshot(JAN + timedelta(minutes=1), snapshot())  # into the legacy range
                assert store.max_id() > 2**31
                assert conn.execute(sa.text("SELECT count(*) FROM v_ticks")).scalar() == 6 + 110 + 4
                assert conn.execute(sa.text("SELECT count(*) FROM ltp_ticks_legacy")).scalar() == 6 + 4
                assert conn.execute(sa.text(
                    "SELECT has_table_privilege(:r, 'ltp_ticks', 'SELECT')"), {"r": role}).scalar()
            assert store.latest("NIFTY 50")["ts"] == "2026-01-20T04:01:00+00:00"
        with TickStore(pg_url) as again:  # opening again changes nothing
            assert [p.name for p in again.partitions()] == ["ltp_ticks_legacy", "ltp_ticks_y2026m02"]
            assert again.count() == 6 + 110 + 4
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP OWNED BY {role}"))
            conn.execute(sa.text(f"DROP ROLE {role}"))
        engine.dispose()


@pytest.mark.postgres
def test_an_older_empty_store_becomes_partitioned(pg_url):
    engine = sa.create_engine(pg_url)
    _old_table(engine)
    engine.dispose()
    with TickStore(pg_url) as store:
        assert store.partitions() == []
        store.write_snapshot(JAN, snapshot())
        assert [p.name for p in store.partitions()] == ["ltp_ticks_y2026m01"]


@pytest.mark.postgres
def test_a_foreign_table_without_the_unique_key_is_only_widened(pg_url):
    plain_ltp_ticks(pg_url, key="id SERIAL PRIMARY KEY")
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO ltp_ticks (symbol, ts, ltp) VALUES ('NIFTY 50', :t, 1)"),
                     {"t": JAN})
    engine.dispose()
    with TickStore(pg_url) as store:
        assert scalar(store, "SELECT relkind FROM pg_class WHERE oid = to_regclass('ltp_ticks')") == "r"
        assert scalar(store, "SELECT data_type FROM information_schema.columns WHERE "
                             "table_schema = current_schema() AND table_name = 'ltp_ticks' "
                             "AND column_name = 'id'") == "bigint"
        assert store.write_snapshot(FEB, snapshot()) == 4
        assert store.partitions() == [] and store.count() == 5


def _plans(store: TickStore, run) -> list[str]:
    """The query plans of every statement ``run()`` sends to the store."""
    seen = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    raw_rows = feedreads._RawReads.rows

    def raw(reads, statement, parameters):  # the feed's read on its own sqlite3 connection
        seen.append((statement, parameters))
        return raw_rows(reads, statement, parameters)

    sa.event.listen(store.engine, "before_cursor_execute", capture)
    try:
        with mock.patch.object(feedreads._RawReads, "rows", raw):
            run()
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", capture)
    plans = []
    with store.engine.connect() as conn:
        if store.dialect == "postgresql":
            conn.exec_driver_sql("SET enable_seqscan = off")
        for statement, parameters in seen:
            explain = "EXPLAIN QUERY PLAN " if store.dialect == "sqlite" else "EXPLAIN "
            rows = conn.exec_driver_sql(explain + statement, parameters).all()
            plans.append("\n".join(str(r[-1]) for r in rows))
    return plans


@pytest.mark.parametrize("query", ["latest", "snapshot_at", "symbol_day", "day_times", "after"])
def test_hot_queries_read_through_indexes(any_store, query):
    for i in range(20):
        any_store.write_snapshot(JAN + timedelta(seconds=5 * i), snapshot(i))
    day = ("2026-01-19T18:30:00+00:00", "2026-01-20T18:29:59+00:00")
    run = {
        "latest": lambda: any_store.latest("NIFTY 50"),
        "snapshot_at": lambda: any_store.snapshot_at("2026-01-20T04:00:42+00:00", "NIFTY"),
        "symbol_day": lambda: any_store.history("NIFTY BANK", *day),
        "day_times": lambda: any_store.snapshot_times("NIFTY", *day),
        "after": lambda: any_store.after(40, limit=10),
    }[query]
    plans = _plans(any_store, run)
    assert plans
    for plan in plans:
        if any_store.dialect == "postgresql":
            assert "Seq Scan" not in plan, plan
        else:
            scans = [line for line in plan.splitlines() if "ltp_ticks" in line]
            assert all("USING" in line for line in scans), plan


def test_partition_bounds_parse():
    assert partitions.parse_bounds("FOR VALUES FROM (MINVALUE) TO ('2026-01-31 18:30:00+00')") == (
        None, parse_ts("2026-01-31T18:30:00Z"))
    assert partitions.month_start("2026-12-31T18:30:00Z") == parse_ts("2026-12-31T18:30:00Z")
    assert partitions.partition_name(partitions.month_start("2026-12-31T18:30:00Z")) == "ltp_ticks_y2027m01"


@pytest.mark.postgres
def test_a_table_with_inheritance_children_is_left_alone(pg_url):
    # The shape of a TimescaleDB hypertable: a plain parent whose chunks inherit from it.
    plain_ltp_ticks(pg_url, key="id BIGSERIAL",
                    constraints="PRIMARY KEY (id, ts), CONSTRAINT uq_ltp_ticks_symbol_ts UNIQUE (symbol, ts)")
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE chunk_1 (CHECK (ts >= '2026-01-01' AND ts < '2026-03-01')) "
                             "INHERITS (ltp_ticks)"))
    with TickStore(pg_url) as store:
        assert scalar(store, "SELECT relkind FROM pg_class WHERE oid = to_regclass('ltp_ticks')") == "r"
        assert store.partitions() == []
        assert store.write_snapshot(JAN, snapshot()) == 4 and store.count() == 4
        assert store.prune(1, now=FEB).rows == 4
    engine.dispose()


class _Fixed:
    """A source that always answers the same snapshot."""

    name = "fixed"

    def snapshot(self, moment):
        return snapshot()


def test_the_collector_makes_next_months_partition_ahead(any_store):
    from datacentre.ops.collector import Collector

    collector = Collector(any_store, _Fixed(), interval=5)
    collector.collect_once(parse_ts("2026-01-31T10:00:00Z"))
    if any_store.dialect == "postgresql":
        assert [p.name for p in any_store.partitions()] == ["ltp_ticks_y2026m01", "ltp_ticks_y2026m02"]
        # Once per IST day: 1 February (IST) starts at 18:30 UTC and brings March's.
        collector.collect_once(parse_ts("2026-01-31T18:00:00Z"))
        assert len(any_store.partitions()) == 2
        collector.collect_once(parse_ts("2026-01-31T18:30:00Z"))
        assert [p.name for p in any_store.partitions()][-1] == "ltp_ticks_y2026m03"
    else:
        assert any_store.partitions() == [] and any_store.count() == 4
