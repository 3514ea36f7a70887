"""The tick store: table ``ltp_ticks`` (DESIGN section 3) on SQLAlchemy 2 Core.

SQLite (the default, ``data/nifty_local.db``) keeps ``ts`` as ISO text so the
user's own ``sqlite3`` scripts run unchanged; PostgreSQL keeps it as
``timestamptz``. Either way every method takes and returns the canonical text
form of :mod:`datacentre.core.ticks`.

SQLite runs in WAL mode with ``synchronous=NORMAL``: readers never block the
writer and an application crash loses nothing committed (a power cut may lose
the last few commits). Each snapshot is one transaction.
"""
from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from datetime import datetime
from functools import cached_property
from itertools import islice
from pathlib import Path
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.types import TypeDecorator

from datacentre.core.config import DEFAULT_DB_URL
from datacentre.core.errors import ReadOnlyError, StoreError, SymbolError
from datacentre.core.instruments import parse_symbol
from datacentre.core.ticks import TICK_FIELDS, format_ts, normalize_ts

BUSY_TIMEOUT_MS = 10_000
CACHE_KIB = 65_536  # index pages of a full day stay in memory while writing
QUERY_TIMEOUT_S = 10.0
QUERY_MAX_ROWS = 100_000
INSERT_BATCH = 5_000
WRITER_LOCK_KEY = 8765_0001


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
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
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

_TICK_COLUMNS = [ltp_ticks.c[name] for name in TICK_FIELDS]
_SQLITE_INSERT = (f"INSERT OR IGNORE INTO ltp_ticks ({', '.join(TICK_FIELDS)}) "
                  f"VALUES ({', '.join('?' for _ in TICK_FIELDS)})")


def sqlite_path(url: str) -> Path | None:
    """The file behind a ``sqlite:///`` URL (None for memory or other databases)."""
    u = sa.engine.make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    cur.close()


def make_engine(url: str) -> Engine:
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
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if backend == "postgresql":
        if u.drivername == "postgresql":
            u = u.set(drivername="postgresql+psycopg")
        return sa.create_engine(u, pool_pre_ping=True)
    raise StoreError(f"unsupported database {backend!r}: use sqlite:///path or postgresql://...")


def batched(items: Iterable, size: int) -> Iterator[list]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


Snapshot = tuple[str | datetime, Sequence[dict]]


_TS = TICK_FIELDS.index("ts")
Row = tuple  # the 14 tick fields in TICK_FIELDS order


def _as_row(tick: dict, stamp: str) -> Row:
    values = list(map(tick.get, TICK_FIELDS))
    values[_TS] = stamp
    return tuple(values)


def _snapshot_rows(snapshots: Iterable[Snapshot]) -> Iterator[Row]:
    for ts, ticks in snapshots:
        stamp = normalize_ts(ts)
        for t in ticks:
            yield _as_row(t, stamp)


def _row(mapping) -> dict[str, Any]:
    return dict(mapping)


def _in_ts(value) -> str | None:
    return None if value is None else normalize_ts(value)


def _placeholders_to_pyformat(sql: str) -> str:
    """Turn the client guide's ``?`` placeholders (outside quotes) into psycopg's ``%s``.

    psycopg reads ``%`` everywhere, quoted or not, so every literal ``%`` is doubled.
    """
    out, quote = [], None
    for ch in sql:
        if ch == "%":
            out.append("%%")
        elif quote:
            out.append(ch)
            if ch == quote:
                quote = None
        elif ch in ("'", '"'):
            quote = ch
            out.append(ch)
        else:
            out.append("%s" if ch == "?" else ch)
    return "".join(out)


# What a read-only query may do beyond mode=ro and query_only, which already refuse
# writes to the store: no ATTACH (reads other files; VACUUM INTO creates one), no
# pragma that changes a setting or runs a checkpoint, no extension loading.
_READ_PRAGMAS = frozenset({
    "application_id", "collation_list", "compile_options", "data_version", "database_list",
    "encoding", "foreign_key_check", "foreign_key_list", "freelist_count", "function_list",
    "index_info", "index_list", "index_xinfo", "integrity_check", "journal_mode",
    "module_list", "page_count", "page_size", "pragma_list", "quick_check", "schema_version",
    "table_info", "table_list", "table_xinfo", "user_version",
})
_PRAGMAS_WITH_ARGUMENT = frozenset({
    "foreign_key_check", "foreign_key_list", "index_info", "index_list", "index_xinfo",
    "integrity_check", "quick_check", "table_info", "table_list", "table_xinfo",
})


def _authorize_read(action, arg1, arg2, _db, _trigger) -> int:
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA:
        name = arg1.lower()
        allowed = name in _READ_PRAGMAS and (arg2 is None or name in _PRAGMAS_WITH_ARGUMENT)
        return sqlite3.SQLITE_OK if allowed else sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and arg2 and arg2.lower() == "load_extension":
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


class TickStore:
    """Ticks and instruments in one database.

    >>> store = TickStore("sqlite:///data/nifty_local.db")
    >>> store.write_snapshot("2026-01-02T08:13:05+00:00", ticks)
    >>> store.latest("NIFTY 50")
    """

    def __init__(self, url: str | None = None, *, create: bool = True) -> None:
        self.url = url or DEFAULT_DB_URL
        self.engine = make_engine(self.url)
        self.dialect = self.engine.dialect.name
        self._known_symbols: set[str] = set()
        if create:
            self.create_schema()

    def __repr__(self) -> str:
        return f"TickStore({self.engine.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        self.engine.dispose()
        if "_query_engine" in self.__dict__:
            self._query_engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def create_schema(self) -> None:
        """Create missing tables and indexes (safe when several processes start at once)."""
        for attempt in range(3):
            try:
                metadata.create_all(self.engine)
                return
            except sa.exc.SQLAlchemyError as exc:
                # "already exists": another process created it between our check and CREATE.
                if "already exists" not in str(exc) or attempt == 2:
                    raise StoreError(f"cannot open the store at {self!r}: {exc.__class__.__name__}: "
                                     f"{getattr(exc, 'orig', None) or exc}") from exc
            time.sleep(0.05 * (attempt + 1))

    # ------------------------------------------------------------------ writes

    def _insert(self, table: sa.Table):
        if self.dialect == "postgresql":
            return postgresql.insert(table).on_conflict_do_nothing()
        return sqlite.insert(table).on_conflict_do_nothing()

    def _instrument_rows(self, symbols: Iterable[str]) -> list[dict]:
        rows = []
        for symbol in set(symbols) - self._known_symbols:
            try:
                ins = parse_symbol(symbol)
            except SymbolError:
                continue
            rows.append({"symbol": ins.symbol, "token": ins.token, "underlying": ins.underlying,
                         "kind": ins.kind, "expiry": ins.expiry.isoformat() if ins.expiry else None,
                         "strike": ins.strike, "lot_size": ins.lot_size})
        return rows

    def _write(self, conn, rows: list[Row], seen: set[str]) -> int:
        symbols = {r[0] for r in rows}
        new_instruments = self._instrument_rows(symbols - seen)
        if new_instruments:
            conn.execute(self._insert(instruments), new_instruments)
        seen.update(symbols)
        if self.dialect == "postgresql":
            params = [dict(zip(TICK_FIELDS, r)) for r in rows]
            result = conn.execute(self._insert(ltp_ticks).returning(ltp_ticks.c.id), params)
            return len(result.all())
        # The hot path (collector, backfill, import): plain executemany on tuples
        # costs a third of what Core's per-dict parameter processing does.
        return max(conn.exec_driver_sql(_SQLITE_INSERT, rows).rowcount, 0)

    @contextmanager
    def _transaction(self) -> Iterator[Callable[[Iterable[Row]], int]]:
        """One transaction; yields ``write(rows) -> new rows`` that batches its input."""
        seen: set[str] = set()
        try:
            with self.engine.begin() as conn:
                if self.dialect == "postgresql":
                    # Writers take turns, so ids commit in id order and the broadcaster's
                    # id cursor can never step over a row that commits later.
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITER_LOCK_KEY})

                def write(rows: Iterable[Row]) -> int:
                    written = 0
                    for batch in batched(rows, INSERT_BATCH):
                        written += self._write(conn, batch, seen)
                    return written

                yield write
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"write failed, nothing committed: {exc.__class__.__name__}: "
                             f"{getattr(exc, 'orig', None) or exc}") from exc
        self._known_symbols.update(seen)

    def _commit(self, rows: Iterable[Row]) -> int:
        with self._transaction() as write:
            return write(rows)

    @contextmanager
    def bulk_writer(self) -> Iterator[Callable[[Iterable[Snapshot]], int]]:
        """Many snapshots in one transaction (backfill): all of them or none.

        >>> with store.bulk_writer() as write:
        ...     write([(ts, ticks), ...])
        """
        with self._transaction() as write:
            yield lambda snapshots: write(_snapshot_rows(snapshots))

    def write_snapshot(self, ts: str | datetime, ticks: Sequence[dict]) -> int:
        """Store one snapshot atomically; every row gets the same ``ts``.

        Returns the number of new rows (rows already stored for ``(symbol, ts)`` are
        skipped, so writing the same snapshot twice is harmless).
        """
        rows = list(_snapshot_rows([(ts, ticks)]))
        if any(not row[0] for row in rows):
            raise StoreError("every tick needs a symbol; nothing committed")
        return self._commit(rows)

    def insert_ticks(self, ticks: Iterable[dict]) -> int:
        """Store ticks with their own timestamps in one transaction (imports), streaming."""
        return self._commit(_as_row(t, normalize_ts(t["ts"])) for t in ticks)

    def checkpoint(self) -> None:
        """Fold SQLite's write-ahead log back into the database file (after bulk writes)."""
        if self.dialect == "sqlite":
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    # ------------------------------------------------------------------ reads

    def _all(self, stmt) -> list[dict]:
        try:
            with self.engine.connect() as conn:
                return [_row(m) for m in conn.execute(stmt).mappings()]
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"read failed: {exc.__class__.__name__}: "
                             f"{getattr(exc, 'orig', None) or exc}") from exc

    def _scalar(self, stmt):
        try:
            with self.engine.connect() as conn:
                return conn.execute(stmt).scalar()
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"read failed: {getattr(exc, 'orig', None) or exc}") from exc

    def latest(self, symbol: str) -> dict | None:
        """The newest tick of ``symbol``, or None."""
        stmt = (sa.select(*_TICK_COLUMNS).where(ltp_ticks.c.symbol == symbol)
                .order_by(ltp_ticks.c.ts.desc()).limit(1))
        rows = self._all(stmt)
        return rows[0] if rows else None

    def latest_all(self, limit: int | None = 100) -> list[dict]:
        """The newest tick of every symbol (up to ``limit`` symbols, by symbol)."""
        newest = (sa.select(ltp_ticks.c.symbol, sa.func.max(ltp_ticks.c.ts).label("ts"))
                  .group_by(ltp_ticks.c.symbol).subquery())
        stmt = (sa.select(*_TICK_COLUMNS)
                .join(newest, sa.and_(ltp_ticks.c.symbol == newest.c.symbol,
                                      ltp_ticks.c.ts == newest.c.ts))
                .order_by(ltp_ticks.c.symbol))
        if limit is not None:
            stmt = stmt.limit(limit)
        return self._all(stmt)

    def history(self, symbol: str, start_ts=None, end_ts=None, limit: int | None = None) -> list[dict]:
        """Ticks of ``symbol`` with ``start_ts <= ts <= end_ts``, oldest first."""
        stmt = sa.select(*_TICK_COLUMNS).where(ltp_ticks.c.symbol == symbol)
        stmt = self._range(stmt, start_ts, end_ts).order_by(ltp_ticks.c.ts)
        if limit is not None:
            stmt = stmt.limit(limit)
        return self._all(stmt)

    def _range(self, stmt, start_ts, end_ts):
        if start_ts is not None:
            stmt = stmt.where(ltp_ticks.c.ts >= _in_ts(start_ts))
        if end_ts is not None:
            stmt = stmt.where(ltp_ticks.c.ts <= _in_ts(end_ts))
        return stmt

    def symbols(self) -> list[str]:
        """Every symbol that has ticks, sorted."""
        stmt = sa.select(instruments.c.symbol).order_by(instruments.c.symbol)
        found = [r["symbol"] for r in self._all(stmt)]
        if found:
            return found
        return [r["symbol"] for r in self._all(
            sa.select(ltp_ticks.c.symbol).distinct().order_by(ltp_ticks.c.symbol))]

    def has_symbol(self, symbol: str) -> bool:
        if symbol in self._known_symbols:
            return True
        stmt = sa.select(ltp_ticks.c.id).where(ltp_ticks.c.symbol == symbol).limit(1)
        found = self._scalar(stmt) is not None
        if found:
            self._known_symbols.add(symbol)
        return found

    def instruments(self, underlying: str | None = None) -> list[dict]:
        stmt = sa.select(instruments).order_by(instruments.c.symbol)
        if underlying:
            stmt = stmt.where(instruments.c.underlying == underlying)
        return self._all(stmt)

    def snapshot_at(self, ts, underlying: str | None = None) -> list[dict]:
        """The latest snapshot at or before ``ts`` (for ``underlying``'s symbols only, if given)."""
        stmt = sa.select(sa.func.max(ltp_ticks.c.ts)).where(ltp_ticks.c.ts <= _in_ts(ts))
        at = self._scalar(stmt)
        if at is None:
            return []
        rows = sa.select(*_TICK_COLUMNS).where(ltp_ticks.c.ts == at)
        if underlying:
            members = sa.select(instruments.c.symbol).where(instruments.c.underlying == underlying)
            rows = rows.where(ltp_ticks.c.symbol.in_(members))
        return self._all(rows.order_by(ltp_ticks.c.symbol))

    def timestamps(self, start_ts=None, end_ts=None) -> list[str]:
        """Distinct snapshot times in a range, oldest first."""
        stmt = self._range(sa.select(ltp_ticks.c.ts).distinct(), start_ts, end_ts)
        return [r["ts"] for r in self._all(stmt.order_by(ltp_ticks.c.ts))]

    def first_ts(self) -> str | None:
        return self._scalar(sa.select(sa.func.min(ltp_ticks.c.ts)))

    def last_ts(self) -> str | None:
        return self._scalar(sa.select(sa.func.max(ltp_ticks.c.ts)))

    def max_id(self) -> int:
        return self._scalar(sa.select(sa.func.max(ltp_ticks.c.id))) or 0

    def after(self, last_id: int, limit: int = 10_000) -> list[dict]:
        """Rows with ``id > last_id`` in id order, each with its ``id`` (the broadcaster's cursor)."""
        stmt = (sa.select(ltp_ticks.c.id, *_TICK_COLUMNS).where(ltp_ticks.c.id > last_id)
                .order_by(ltp_ticks.c.id).limit(limit))
        return self._all(stmt)

    def count(self, symbols: Sequence[str] | None = None, start_ts=None, end_ts=None) -> int:
        stmt = self._range(sa.select(sa.func.count()).select_from(ltp_ticks), start_ts, end_ts)
        if symbols:
            stmt = stmt.where(ltp_ticks.c.symbol.in_(list(symbols)))
        return int(self._scalar(stmt) or 0)

    def iter_rows(self, symbols: Sequence[str] | None = None, start_ts=None, end_ts=None,
                  batch: int = 5_000) -> Iterator[Sequence[Row]]:
        """Batches of tick rows (tuples in TICK_FIELDS order), ``(ts, symbol)`` order, streamed."""
        stmt = self._range(sa.select(*_TICK_COLUMNS), start_ts, end_ts)
        if symbols:
            stmt = stmt.where(ltp_ticks.c.symbol.in_(list(symbols)))
        stmt = stmt.order_by(ltp_ticks.c.ts, ltp_ticks.c.symbol)
        try:
            with self.engine.connect() as conn:
                result = conn.execution_options(stream_results=True, yield_per=batch).execute(stmt)
                yield from result.partitions()
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"read failed: {getattr(exc, 'orig', None) or exc}") from exc

    def iter_ticks(self, symbols: Sequence[str] | None = None, start_ts=None, end_ts=None,
                   batch: int = 5_000) -> Iterator[dict]:
        """Ticks as dicts in ``(ts, symbol)`` order, streamed in batches (constant memory)."""
        for rows in self.iter_rows(symbols, start_ts, end_ts, batch):
            for row in rows:
                yield dict(zip(TICK_FIELDS, row))

    def stats(self) -> dict:
        """Row count, database size in bytes (SQLite file; PostgreSQL table) and last ts."""
        size = None
        path = sqlite_path(self.url)
        if path is not None and path.exists():
            size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
        elif self.dialect == "postgresql":
            size = self._scalar(sa.text("SELECT pg_total_relation_size('ltp_ticks')"))
        return {"rows": self.count(), "bytes": size, "first_ts": self.first_ts(),
                "last_ts": self.last_ts(), "max_id": self.max_id()}

    # ------------------------------------------------------------------ raw SQL

    def query(self, sql: str, params: Sequence[Any] | dict = (), *,
              timeout: float = QUERY_TIMEOUT_S, max_rows: int = QUERY_MAX_ROWS) -> list[dict]:
        """Run one read-only SQL statement with ``?`` placeholders; return rows as dicts.

        Writes raise :class:`ReadOnlyError`; statements that run longer than ``timeout``
        seconds are interrupted; at most ``max_rows`` rows are returned.
        """
        if not isinstance(sql, str) or not sql.strip():
            raise StoreError("query needs an SQL statement")
        if self.dialect == "sqlite":
            return self._query_sqlite(sql, params, timeout, max_rows)
        return self._query_postgres(sql, params, timeout, max_rows)

    def _query_sqlite(self, sql, params, timeout, max_rows) -> list[dict]:
        path = sqlite_path(self.url)
        if path is None:
            raise StoreError("read-only queries need a file database")
        # as_uri() escapes '#', '?' and '%' in folder names, which a bare file: URI would cut at
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                               timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            deadline = time.monotonic() + timeout
            conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
            conn.execute("PRAGMA query_only=ON")
            conn.set_authorizer(_authorize_read)
            cur = conn.execute(sql, params)
            names = [d[0] for d in cur.description or ()]
            return [dict(zip(names, row)) for row in cur.fetchmany(max_rows)]
        except (sqlite3.Error, ValueError) as exc:
            msg = str(exc)
            if any(word in msg for word in ("readonly", "read-only", "query_only", "authoriz")):
                raise ReadOnlyError(f"queries are read-only (no ATTACH, no pragma changes, "
                                    f"no extensions): {msg}") from exc
            if "interrupted" in msg:
                raise StoreError(f"query took longer than {timeout:g} s and was stopped") from exc
            if "one statement" in msg:
                raise StoreError("query takes one SQL statement at a time") from exc
            raise StoreError(f"query failed: {msg}") from exc
        finally:
            conn.close()

    def _query_postgres(self, sql, params, timeout, max_rows) -> list[dict]:
        if isinstance(params, dict):
            statement, args = sql, params
        else:
            statement, args = _placeholders_to_pyformat(sql), tuple(params)
        try:
            # A connection of its own, closed afterwards: whatever the statement leaves in its
            # session (an advisory lock on the writers' key, SET, prepared statements) dies
            # with it instead of going back to the pool the writers use.
            raw = self._query_engine.raw_connection()
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"query failed: {getattr(exc, 'orig', None) or exc}") from exc
        try:
            cur = raw.cursor()
            # psycopg has opened the transaction already (so no BEGIN here): make it read-only.
            cur.execute("SET TRANSACTION READ ONLY")
            cur.execute(f"SET LOCAL statement_timeout = {int(timeout * 1000)}")
            # Always with parameters: the extended protocol takes exactly one statement, so
            # "COMMIT; DELETE ..." is refused. stream() reads row by row: a huge result is
            # cut at max_rows on the client instead of being buffered whole.
            with closing(cur.stream(statement, args)) as stream:
                rows = list(islice(stream, max_rows))
                names = [d[0] for d in cur.description or ()]
            return [{k: format_ts(v) if isinstance(v, datetime) else v for k, v in zip(names, r)}
                    for r in rows]
        except Exception as exc:
            msg = str(exc).strip()
            if "read-only transaction" in msg:
                raise ReadOnlyError(f"queries are read-only: {msg}") from exc
            if "statement timeout" in msg:
                raise StoreError(f"query took longer than {timeout:g} s and was stopped") from exc
            if "multiple commands" in msg:
                raise StoreError("query takes one SQL statement at a time") from exc
            if "didn't produce a result" in msg:
                raise StoreError("query takes a statement that returns rows, such as SELECT") from exc
            raise StoreError(f"query failed: {msg}") from exc
        finally:
            raw.close()

    @cached_property
    def _query_engine(self) -> Engine:
        return sa.create_engine(self.engine.url, poolclass=sa.pool.NullPool)

    # ---- analytics queries
    # Read-only queries behind datacentre.analytics and the app's day charts; kept in
    # this block so the rest of the store stays independent of them.

    SERIES_MAX_POINTS = 500

    def _analytics_rows(self, stmt) -> list:
        try:
            with self.engine.connect() as conn:
                return list(conn.execute(stmt))
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"read failed: {exc.__class__.__name__}: "
                             f"{getattr(exc, 'orig', None) or exc}") from exc

    def snapshot_times(self, underlying: str, start_ts=None, end_ts=None) -> list[str]:
        """Times of the snapshots carrying ``underlying``'s index tick, oldest first.

        Reads one symbol's slice of the ``(symbol, ts)`` index, so it stays fast on a big
        store where :meth:`timestamps` visits every row (a few ms against ~100 ms for a
        full day): use it for replay sliders.
        """
        from datacentre.core.instruments import underlying as find_underlying
        index_symbol = find_underlying(underlying).index_symbol
        stmt = sa.select(ltp_ticks.c.ts).where(ltp_ticks.c.symbol == index_symbol)
        stmt = self._range(stmt, start_ts, end_ts).order_by(ltp_ticks.c.ts)
        return [row[0] for row in self._analytics_rows(stmt)]

    def first_snapshot(self, start_ts, end_ts=None, underlying: str | None = None) -> list[dict]:
        """The earliest snapshot with ``start_ts <= ts <= end_ts`` (``underlying``'s symbols
        only, if given): with ``analytics.day_bounds`` the day's opening snapshot, the
        usual base for OI and price changes."""
        from datacentre.core.instruments import underlying as find_underlying
        at = self._scalar(self._range(sa.select(sa.func.min(ltp_ticks.c.ts)), start_ts, end_ts))
        if at is None:
            return []
        rows = sa.select(*_TICK_COLUMNS).where(ltp_ticks.c.ts == at)
        if underlying:
            members = sa.select(instruments.c.symbol).where(
                instruments.c.underlying == find_underlying(underlying).base)
            rows = rows.where(ltp_ticks.c.symbol.in_(members))
        return self._all(rows.order_by(ltp_ticks.c.symbol))

    def option_expiries(self, underlying: str) -> list[str]:
        """Every option expiry (ISO date) ever stored for ``underlying``, oldest first."""
        from datacentre.core.instruments import underlying as find_underlying
        i = instruments.c
        stmt = (sa.select(i.expiry).distinct()
                .where(i.underlying == find_underlying(underlying).base, i.kind.in_(("CE", "PE")))
                .order_by(i.expiry))
        return [row[0] for row in self._analytics_rows(stmt)]

    def oi_at(self, symbols: Sequence[str], times: Sequence[str]) -> list[tuple[str, str, int | None]]:
        """``(ts, symbol, oi)`` of each of ``symbols`` stored at exactly one of ``times``
        (snapshot times, as :meth:`snapshot_times` gives them), in no particular order."""
        if not symbols or not times:
            return []
        t = ltp_ticks.c
        stmt = sa.select(t.ts, t.symbol, t.oi).where(t.symbol.in_(list(symbols)), t.ts.in_(list(times)))
        return [tuple(row) for row in self._analytics_rows(stmt)]

    def underlying_series(self, underlying: str, start_ts=None, end_ts=None, expiry=None, *,
                          every_n: int = 1, max_points: int | None = SERIES_MAX_POINTS) -> list[dict]:
        """One row per snapshot for the day's charts, computed in SQL.

        Each row: ``ts``, ``spot`` (index), ``future`` (the nearest future expiring on or
        after the first snapshot's day), ``ce_oi`` / ``pe_oi`` (total OI of the calls /
        puts of ``expiry`` in that snapshot), ``atm_strike`` (strike step nearest the
        spot), ``atm_iv`` (mean call/put IV at that strike, percent; one side when the
        other has none, None when neither is stored) and ``expiry`` (ISO date; default
        the nearest option expiry on or after the first snapshot's day).

        Snapshots are those carrying the index tick (none without it: an empty list).
        ``every_n`` keeps every n-th snapshot; ``max_points`` raises that stride so at
        most about that many rows come back (None: every snapshot). The last snapshot is
        always included. Cost grows with the rows read: on SQLite a full day (4,500
        snapshots x 110 ticks) takes tens of ms at the default 500 points (one every
        45 s, plenty for a chart) and several hundred uncapped, since the OI totals
        read every row of every snapshot kept.

        The OI totals cover the strikes stored in each snapshot: when the collector's
        ATM window moves with the spot, strikes entering or leaving it move the totals.
        """
        from datetime import date

        from datacentre.core.instruments import underlying as find_underlying
        if every_n < 1:
            raise ValueError(f"every_n must be at least 1, got {every_n}")
        if max_points is not None and max_points < 2:
            raise ValueError(f"max_points must be at least 2 (or None), got {max_points}")
        u = find_underlying(underlying)
        times = self.snapshot_times(u.base, start_ts, end_ts)
        if not times:
            return []
        day = times[0][:10]  # canonical text starts with the UTC date
        i, t = instruments.c, ltp_ticks.c
        if expiry is None:
            expiry = self._scalar(sa.select(sa.func.min(i.expiry)).where(
                i.underlying == u.base, i.kind.in_(("CE", "PE")), i.expiry >= day))
        elif isinstance(expiry, date):
            expiry = expiry.isoformat()
        legs = self._analytics_rows(sa.select(i.symbol, i.kind, i.strike).where(
            i.underlying == u.base, i.kind.in_(("CE", "PE")), i.expiry == expiry)) if expiry else []
        calls = {strike: symbol for symbol, kind, strike in legs if kind == "CE"}
        puts = {strike: symbol for symbol, kind, strike in legs if kind == "PE"}
        future = self._scalar(sa.select(i.symbol).where(i.underlying == u.base, i.kind == "FUT",
                                                         i.expiry >= day).order_by(i.expiry).limit(1))

        stride = every_n
        if max_points is not None:
            stride = max(stride, -(-len(times) // max_points))
        picked = times[::stride]
        if picked[-1] != times[-1]:
            picked.append(times[-1])
        # Canonical text is what SQLite stores, so it binds as-is (no per-value parsing).
        ts_type = sa.Text() if self.dialect == "sqlite" else Timestamp()

        def at(column):
            if stride == 1:
                return column.between(sa.bindparam("t0", times[0], type_=ts_type),
                                      sa.bindparam("t1", times[-1], type_=ts_type))
            return column.in_(sa.bindparam("picked", picked, expanding=True, type_=ts_type))

        # Per index tick: the future and the two options at the strike nearest the spot,
        # each found through the (symbol, ts) index (the ATM symbols come from a CASE
        # over the expiry's strikes, so no per-row scan of the instruments).
        idx = ltp_ticks.alias("idx")
        atm = sa.func.round(idx.c.ltp / float(u.strike_step)) * float(u.strike_step)
        columns, joins = [idx.c.ts, idx.c.ltp, atm], idx
        for name, symbol in (("fut", future), ("ce", calls), ("pe", puts)):
            if not symbol:
                columns.append(sa.null())
                continue
            leg = ltp_ticks.alias(name)
            which = sa.literal(symbol) if name == "fut" else sa.case(symbol, value=atm)
            joins = joins.outerjoin(leg, sa.and_(leg.c.symbol == which, leg.c.ts == idx.c.ts))
            columns.append(leg.c.ltp if name == "fut" else leg.c.iv)
        per_tick = (sa.select(*columns).select_from(joins)
                    .where(idx.c.symbol == u.index_symbol, at(idx.c.ts)).order_by(idx.c.ts))

        # Totals: one pass over the snapshots' rows (all of them: OI is summed in SQL).
        totals = {}
        if calls or puts:
            sums = [sa.func.sum(sa.case((t.symbol.in_(list(side.values())), t.oi))) if side else sa.null()
                    for side in (calls, puts)]
            stmt = sa.select(t.ts, *sums).where(at(t.ts)).group_by(t.ts)
            totals = {ts: (ce, pe) for ts, ce, pe in self._analytics_rows(stmt)}

        out = []
        for ts, spot, strike, fut, ce_iv, pe_iv in self._analytics_rows(per_tick):
            ce_oi, pe_oi = totals.get(ts, (None, None))
            ivs = [v for v in (ce_iv, pe_iv) if v is not None]
            out.append({"ts": ts, "spot": spot, "future": fut,
                        "ce_oi": None if ce_oi is None else int(ce_oi),
                        "pe_oi": None if pe_oi is None else int(pe_oi),
                        "atm_strike": None if strike is None else float(strike),
                        "atm_iv": sum(ivs) / len(ivs) if ivs else None, "expiry": expiry})
        return out


def open_store(url: str | None = None) -> TickStore:
    """Open (and create if missing) the store at ``url`` or the configured default."""
    return TickStore(url)
