"""The store's schema and engines: tables ``ltp_ticks`` and ``instruments``, the timestamp type.

SQLite (the default, ``data/nifty_local.db``) keeps ``ts`` as ISO text so the
user's own ``sqlite3`` scripts run unchanged; PostgreSQL keeps it as
``timestamptz``. Either way Python sees the canonical text form of
:mod:`datacentre.core.ticks`.

SQLite runs in WAL mode with ``synchronous=NORMAL``: readers never block the
writer and an application crash loses nothing committed (a power cut may lose
the last few commits).
"""
from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine
from sqlalchemy.types import TypeDecorator

from datacentre.core.errors import StoreError
from datacentre.core.ticks import TICK_FIELDS, format_ts, normalize_ts
from datacentre.store import partitions

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000
CACHE_KIB = 65_536  # index pages of a full day stay in memory while writing
#: SQLite page cache while streaming a range: its pages are read once, so a big cache
#: would only grow the process by the size of the range read (up to ``CACHE_KIB``).
STREAM_CACHE_KIB = 2_048


class Timestamp(TypeDecorator):
    """ISO text on SQLite, ``timestamptz`` on PostgreSQL; canonical text in Python."""

    impl = sa.Text
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.TIMESTAMP(timezone=True))
        return dialect.type_descriptor(sa.Text())

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        text = normalize_ts(value)
        if dialect.name == "postgresql":
            return datetime.fromisoformat(text)
        return text

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return format_ts(value) if isinstance(value, datetime) else value


metadata = sa.MetaData()

ltp_ticks = sa.Table(
    "ltp_ticks", metadata,
    # 64-bit on both engines: SQLite's INTEGER PRIMARY KEY already is; on PostgreSQL the
    # table is partitioned by month and its DDL lives in store/partitions.py.
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("symbol", sa.Text, nullable=False),
    sa.Column("token", sa.Text),
    sa.Column("ts", Timestamp, nullable=False),
    sa.Column("ltp", sa.Float),
    sa.Column("bid", sa.Float),
    sa.Column("ask", sa.Float),
    sa.Column("volume", sa.BigInteger().with_variant(sa.Integer, "sqlite")),
    sa.Column("oi", sa.BigInteger().with_variant(sa.Integer, "sqlite")),
    sa.Column("delta", sa.Float),
    sa.Column("gamma", sa.Float),
    sa.Column("theta", sa.Float),
    sa.Column("vega", sa.Float),
    sa.Column("iv", sa.Float),
    sa.Column("source", sa.Text),
    sa.UniqueConstraint("symbol", "ts", name="uq_ltp_ticks_symbol_ts"),
    sa.Index("ix_ltp_ticks_ts", "ts"),
    sqlite_autoincrement=True,  # ids are the broadcaster's cursor: never reuse them
)

instruments = sa.Table(
    "instruments", metadata,
    sa.Column("symbol", sa.Text, primary_key=True),
    sa.Column("token", sa.Text),
    sa.Column("underlying", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),  # INDEX, FUT, CE, PE
    sa.Column("expiry", sa.Text),  # ISO date
    sa.Column("strike", sa.Float),
    sa.Column("lot_size", sa.Integer),
    sa.Index("ix_instruments_underlying_expiry", "underlying", "expiry"),
)

#: Where each ``sync`` source got to in this store: the last source id copied.
sync_cursors = sa.Table(
    "sync_cursors", metadata,
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("last_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False),
)

#: The 14 tick columns of ``ltp_ticks`` in :data:`~datacentre.core.ticks.TICK_FIELDS` order.
TICK_COLUMNS = [ltp_ticks.c[name] for name in TICK_FIELDS]


def sqlite_path(url: str) -> Path | None:
    """The file behind a ``sqlite:///`` URL (None for memory or other databases)."""
    u = sa.engine.make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


def sqlite_pragmas(dbapi_conn, _record=None) -> None:
    """The settings the store gives each SQLite connection it opens."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    cur.close()


def make_engine(url: str) -> Engine:
    """An engine for ``sqlite:///path`` (WAL, busy timeout; the folder is created) or PostgreSQL."""
    try:
        u = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise StoreError(f"invalid database URL {url!r}: {exc}") from exc
    backend = u.get_backend_name()
    if backend == "sqlite":
        path = sqlite_path(url)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the folder {path.parent} for the store: "
                                 f"{exc.strerror}") from exc
        engine = sa.create_engine(u, connect_args={"check_same_thread": False,
                                                   "timeout": BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", sqlite_pragmas)
        return engine
    if backend == "postgresql":
        if u.drivername == "postgresql":
            u = u.set(drivername="postgresql+psycopg")
        return sa.create_engine(u, pool_pre_ping=True)
    raise StoreError(f"unsupported database {backend!r}: use sqlite:///path or postgresql://...")


def create_schema(engine: Engine, where: str) -> None:
    """Create missing tables and indexes (safe when several processes start at once).

    ``where`` names the store in the error message.
    """
    for attempt in range(3):
        try:
            if engine.dialect.name == "postgresql":
                with engine.begin() as conn:
                    done = partitions.prepare_table(conn, ltp_ticks)
                    metadata.create_all(conn)
                if done:
                    log.info("%s: ltp_ticks %s", where, ", ".join(done))
            else:
                metadata.create_all(engine)
            return
        except sa.exc.SQLAlchemyError as exc:
            # "already exists": another process created it between our check and CREATE.
            if "already exists" not in str(exc) or attempt == 2:
                raise StoreError(f"cannot open the store at {where}: {exc.__class__.__name__}: "
                                 f"{getattr(exc, 'orig', None) or exc}") from exc
        time.sleep(0.05 * (attempt + 1))


@contextmanager
def temporary_schema(database_url: str, prefix: str = "tmp") -> Iterator[str]:
    """A store URL on a new, empty schema of the PostgreSQL database at ``database_url``
    (``<prefix>_<random>``), dropped with everything in it afterwards: a scratch store for
    tests, benchmarks or a try-out beside real ones."""
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{database_url}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
