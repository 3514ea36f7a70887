"""``ltp_ticks`` on PostgreSQL: a table partitioned by month of ``ts``, and the migration to it.

Why partitions: a store that collects for years holds billions of rows. Monthly
partitions keep each index small enough to stay in memory for the month being
written, and retention becomes ``DROP TABLE`` of whole months (instant, no
vacuum debt) instead of deleting rows one by one.

Layout (native declarative partitioning, PostgreSQL 11 or later)::

    ltp_ticks                 PARTITION BY RANGE (ts); id BIGINT from ltp_ticks_id_seq
    ├── ltp_ticks_y2026m01    [2026-01-01 00:00 IST, 2026-02-01 00:00 IST)
    ├── ltp_ticks_y2026m02    ...
    └── ltp_ticks_legacy      [MINVALUE, first month after its rows), only after a migration

Months are IST calendar months, so a partition holds whole trading days. The
primary key is ``(id, ts)``, because every unique key of a partitioned table must
contain the partition column; ids still come from one sequence, so they stay
unique and are never reused. ``(symbol, ts)`` stays unique and ``ts`` indexed.

New partitions are made with ``CREATE TABLE ... (LIKE ltp_ticks)`` and ``ATTACH
PARTITION``: attaching takes only a SHARE UPDATE EXCLUSIVE lock on the parent,
which does not wait for open write transactions, whereas ``CREATE TABLE ...
PARTITION OF`` takes an ACCESS EXCLUSIVE lock and would wait for (and block
behind) every writer and reader. So a bulk load can add the month it needs in
the middle of its own transaction without deadlocking on itself.

Migration of a store made by earlier versions (a plain table with a 32-bit
``SERIAL`` id) runs once, automatically, when the store is opened: ``id`` and its
sequence become BIGINT, then the table is renamed ``ltp_ticks_legacy`` and
attached under a new partitioned ``ltp_ticks`` as the partition of everything up
to the month after its newest row; views over it are re-created on the new table
and table privileges are granted again. Row values are never changed. A plain
table that lacks the ``(symbol, ts)`` unique key (stores written by other
programs) keeps its layout after the id step: retention then deletes in batches.
A table with inheritance children (a TimescaleDB hypertable) is never touched.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from datacentre.core.errors import StoreError
from datacentre.core.ticks import IST, TICK_FIELDS, parse_ts

log = logging.getLogger(__name__)

TABLE = "ltp_ticks"
SEQUENCE = "ltp_ticks_id_seq"
LEGACY = "ltp_ticks_legacy"
#: Advisory lock held while the table's layout changes (creation, migration, new partitions).
SCHEMA_LOCK_KEY = 8765_0002
#: Months the collector keeps ready beyond the current one.
MONTHS_AHEAD = 1

_BOUND = re.compile(r"FROM \((.+)\) TO \((.+)\)")
_NAME = re.compile(r"^ltp_ticks_y(\d{4})m(\d{2})$")


# ---------------------------------------------------------------- months (pure)

def month_start(moment: str | datetime) -> datetime:
    """Midnight IST on the first of the IST month holding ``moment`` (aware, in IST)."""
    local = parse_ts(moment).astimezone(IST)
    return datetime(local.year, local.month, 1, tzinfo=IST)


def next_month(start: datetime) -> datetime:
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return datetime(year, month, 1, tzinfo=IST)


def months_from(moment: str | datetime, count: int) -> list[datetime]:
    """The IST month holding ``moment`` and the ``count - 1`` months after it."""
    months = [month_start(moment)]
    while len(months) < count:
        months.append(next_month(months[-1]))
    return months


def partition_name(start: datetime) -> str:
    return f"{TABLE}_y{start.year:04d}m{start.month:02d}"


@dataclass(frozen=True)
class Partition:
    """One partition and its range ``[lower, upper)``; None is an open end."""

    name: str
    lower: datetime | None
    upper: datetime | None

    def covers(self, moment: datetime) -> bool:
        return (self.lower is None or self.lower <= moment) and (self.upper is None or moment < self.upper)

    @property
    def monthly(self) -> bool:
        return _NAME.match(self.name) is not None


def _bound(text: str) -> datetime | None:
    text = text.strip()
    if text in ("MINVALUE", "MAXVALUE"):
        return None
    return datetime.fromisoformat(text.strip("'")).astimezone(UTC)


def parse_bounds(expression: str) -> tuple[datetime | None, datetime | None]:
    """``FOR VALUES FROM ('2025-12-31 18:30:00+00') TO (MAXVALUE)`` -> (lower, upper)."""
    match = _BOUND.search(expression)
    if match is None:
        raise StoreError(f"unexpected partition bound {expression!r} on {TABLE}")
    return _bound(match.group(1)), _bound(match.group(2))


# ---------------------------------------------------------------- DDL

def _column_ddl(table: sa.Table, names: Iterable[str]) -> str:
    dialect = postgresql.dialect()
    parts = []
    for name in names:
        column = table.c[name]
        null = "" if column.nullable else " NOT NULL"
        parts.append(f"{name} {column.type.compile(dialect=dialect)}{null}")
    return ", ".join(parts)


def tick_columns_ddl(table: sa.Table) -> str:
    """The 14 tick columns as PostgreSQL column definitions (for staging tables too)."""
    return _column_ddl(table, TICK_FIELDS)


def table_kind(conn: sa.Connection) -> str | None:
    """``"partitioned"``, ``"plain"``, or None when ``ltp_ticks`` does not exist."""
    kind = conn.execute(sa.text("SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass(:t)"),
                        {"t": TABLE}).scalar()
    return {"p": "partitioned", "r": "plain"}.get(kind) if kind else None


def create_table(conn: sa.Connection, table: sa.Table) -> None:
    """The partitioned ``ltp_ticks`` with its sequence and indexes (no partitions yet)."""
    conn.execute(sa.text(f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE} AS BIGINT"))
    _create_parent(conn, table)


def _create_parent(conn: sa.Connection, table: sa.Table) -> None:
    conn.execute(sa.text(
        f"CREATE TABLE {TABLE} (id BIGINT NOT NULL DEFAULT nextval('{SEQUENCE}'), "
        f"{tick_columns_ddl(table)}, "
        f"CONSTRAINT ltp_ticks_pkey PRIMARY KEY (id, ts), "
        f"CONSTRAINT uq_ltp_ticks_symbol_ts UNIQUE (symbol, ts)) PARTITION BY RANGE (ts)"))
    # The table owns the sequence: dropping a partition (even the legacy one) never drops it.
    conn.execute(sa.text(f"ALTER SEQUENCE {SEQUENCE} OWNED BY {TABLE}.id"))
    conn.execute(sa.text(f"CREATE INDEX ix_ltp_ticks_ts ON {TABLE} (ts)"))


def list_partitions(conn: sa.Connection) -> list[Partition]:
    """The partitions of ``ltp_ticks``, oldest range first."""
    # Bounds are printed in the session's time zone: UTC makes them unambiguous to parse.
    conn.execute(sa.text("SELECT set_config('TimeZone', 'UTC', true)"))
    rows = conn.execute(sa.text(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(:t)"), {"t": TABLE})
    found = [Partition(name, *parse_bounds(bound)) for name, bound in rows]
    far_past = datetime.min.replace(tzinfo=UTC)
    return sorted(found, key=lambda p: p.lower or far_past)


def attach_month(conn: sa.Connection, start: datetime) -> str:
    """Create and attach the partition of the IST month starting at ``start``."""
    name = partition_name(start)
    conn.execute(sa.text(f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS)"))
    conn.execute(sa.text(f"ALTER TABLE {TABLE} ATTACH PARTITION {name} "
                         f"FOR VALUES FROM ('{start.isoformat()}') TO ('{next_month(start).isoformat()}')"))
    log.info("created partition %s", name)
    return name


def ensure_months(engine: sa.Engine, months: Iterable[datetime]) -> list[Partition]:
    """Attach a partition for each month not covered yet; return every partition.

    Runs in its own short transaction (so a caller's open write transaction never
    holds the parent locked while it waits), serialised between processes by an
    advisory lock. Does nothing on a plain (unpartitioned) table.
    """
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": SCHEMA_LOCK_KEY})
        if table_kind(conn) != "partitioned":
            return []
        partitions = list_partitions(conn)
        for start in sorted(set(months)):
            if not any(p.covers(start) for p in partitions):
                attach_month(conn, start)
                partitions = list_partitions(conn)
        return partitions


def drop_partition(conn: sa.Connection, name: str) -> None:
    if not re.fullmatch(r"ltp_ticks_[a-z0-9_]+", name):
        raise StoreError(f"refusing to drop {name!r}: not a partition of {TABLE}")
    conn.execute(sa.text(f"DROP TABLE {name}"))
    log.info("dropped partition %s", name)


# ---------------------------------------------------------------- migration

def _id_type(conn: sa.Connection) -> str | None:
    return conn.execute(sa.text(
        "SELECT data_type FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = :t AND column_name = 'id'"), {"t": TABLE}).scalar()


def _serial_sequence(conn: sa.Connection) -> str | None:
    """The unqualified name of the sequence behind ``ltp_ticks.id`` (None if it has none)."""
    return conn.execute(sa.text(
        "SELECT s.relname FROM pg_class s WHERE s.oid = pg_get_serial_sequence(:t, 'id')::regclass"),
        {"t": TABLE}).scalar()


def _has_constraint(conn: sa.Connection, name: str) -> bool:
    return conn.execute(sa.text(
        "SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass(:t) AND conname = :n"),
        {"t": TABLE, "n": name}).first() is not None


def widen_id(conn: sa.Connection) -> bool:
    """Make a plain table's ``id`` and its sequence 64-bit; True if anything changed."""
    if _id_type(conn) == "bigint":
        return False
    log.warning("migrating %s.id to BIGINT (rewrites the table once; may take minutes on a big store)",
                TABLE)
    try:
        with conn.begin_nested():
            conn.execute(sa.text(f"ALTER TABLE {TABLE} ALTER COLUMN id TYPE BIGINT"))
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(
            f"cannot widen {TABLE}.id to BIGINT: {getattr(exc, 'orig', None) or exc}. A view or rule "
            f"that uses the id column blocks it: drop it, open the store again, re-create it") from exc
    sequence = _serial_sequence(conn)
    if sequence:
        conn.execute(sa.text(f"ALTER SEQUENCE {sequence} AS BIGINT"))
    return True


def _dependent_views(conn: sa.Connection) -> list[tuple[int, str, str, str]]:
    """(name, kind 'v'/'m', definition) of views reading ``ltp_ticks`` directly, oldest first."""
    return [tuple(r) for r in conn.execute(sa.text(
        "SELECT DISTINCT v.oid, v.oid::regclass::text, v.relkind, pg_get_viewdef(v.oid) "
        "FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid "
        "JOIN pg_class v ON v.oid = r.ev_class "
        "WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = to_regclass(:t) "
        "AND v.oid <> to_regclass(:t) ORDER BY v.oid"), {"t": TABLE}).all()]


def _grants(conn: sa.Connection) -> list[tuple[str, str]]:
    return [tuple(r) for r in conn.execute(sa.text(
        "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END, "
        "a.privilege_type FROM pg_class c, aclexplode(c.relacl) a "
        "WHERE c.oid = to_regclass(:t) AND a.grantee <> c.relowner"), {"t": TABLE}).all()]


def partition_plain_table(conn: sa.Connection, table: sa.Table) -> bool:
    """Turn a plain ``ltp_ticks`` into the partitioned layout; False if it cannot be.

    The old table becomes the partition ``ltp_ticks_legacy`` of everything before
    the IST month after its newest row (an empty one is simply replaced).
    """
    if not (_has_constraint(conn, "uq_ltp_ticks_symbol_ts") and _serial_sequence(conn)):
        log.warning("%s has no (symbol, ts) unique key or no id sequence: keeping it unpartitioned "
                    "(retention deletes rows in batches)", TABLE)
        return False
    log.warning("migrating %s to monthly partitions (one-off)", TABLE)
    conn.execute(sa.text(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE"))
    sequence = _serial_sequence(conn)
    views = _dependent_views(conn)
    grants = _grants(conn)
    newest = conn.execute(sa.text(f"SELECT max(ts) FROM {TABLE}")).scalar()
    for _oid, name, kind, _definition in reversed(views):
        conn.execute(sa.text(f"DROP {'MATERIALIZED VIEW' if kind == 'm' else 'VIEW'} {name}"))
    conn.execute(sa.text(f"ALTER TABLE {TABLE} RENAME TO {LEGACY}"))
    # Index names are per schema: the new parent's must be free.
    conn.execute(sa.text(f"ALTER TABLE {LEGACY} RENAME CONSTRAINT uq_ltp_ticks_symbol_ts "
                         f"TO uq_ltp_ticks_legacy_symbol_ts"))
    conn.execute(sa.text("ALTER INDEX IF EXISTS ix_ltp_ticks_ts RENAME TO ix_ltp_ticks_legacy_ts"))
    # The parent's key is (id, ts); a partition can have only one primary key, so the old
    # key on id alone gives way to the matching one (ids stay unique: one sequence).
    old_key = conn.execute(sa.text(
        "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(:t) AND contype = 'p'"),
        {"t": LEGACY}).scalar()
    drop = f"DROP CONSTRAINT {old_key}, " if old_key else ""
    conn.execute(sa.text(f"ALTER TABLE {LEGACY} {drop}"
                         f"ADD CONSTRAINT ltp_ticks_legacy_pkey PRIMARY KEY (id, ts)"))
    if sequence != SEQUENCE:
        conn.execute(sa.text(f"ALTER SEQUENCE {sequence} RENAME TO {SEQUENCE}"))
    _create_parent(conn, table)
    if newest is None:
        conn.execute(sa.text(f"DROP TABLE {LEGACY}"))
    else:
        upper = next_month(month_start(newest))
        conn.execute(sa.text(f"ALTER TABLE {TABLE} ATTACH PARTITION {LEGACY} "
                             f"FOR VALUES FROM (MINVALUE) TO ('{upper.isoformat()}')"))
    for grantee, privilege in grants:
        conn.execute(sa.text(f"GRANT {privilege} ON {TABLE} TO {grantee}"))
    for _oid, name, kind, definition in views:
        what = "MATERIALIZED VIEW" if kind == "m" else "VIEW"
        conn.execute(sa.text(f"CREATE {what} {name} AS {definition}"))
    return True


def prepare_table(conn: sa.Connection, table: sa.Table) -> list[str]:
    """Create or migrate ``ltp_ticks`` under the schema lock; return what was done.

    Call it before ``metadata.create_all`` (which then finds the table and leaves it be).
    """
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": SCHEMA_LOCK_KEY})
    kind = table_kind(conn)
    if kind == "partitioned":
        return []
    if kind is None:
        create_table(conn, table)
        return ["created"]
    if conn.execute(sa.text("SELECT 1 FROM pg_inherits WHERE inhparent = to_regclass(:t) LIMIT 1"),
                    {"t": TABLE}).first():
        # Children by inheritance: a TimescaleDB hypertable (docs/deploy.md) or partitioning
        # made by hand. Its owner chose that layout; it is left exactly as it is.
        return []
    done = ["widened id"] if widen_id(conn) else []
    if partition_plain_table(conn, table):
        done.append("partitioned")
    return done
