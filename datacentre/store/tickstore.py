"""The tick store: :class:`TickStore`, reads and writes of ``ltp_ticks`` on SQLAlchemy 2 Core.

The tables, the timestamp type and the engines are in :mod:`datacentre.store.schema`;
the read-only raw SQL of :meth:`TickStore.query` in :mod:`datacentre.store.readonly`;
the day-chart queries in :mod:`datacentre.store.series`. Every method takes and returns
the canonical timestamp text of :mod:`datacentre.core.ticks`. Each snapshot is one
transaction.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import cached_property
from itertools import islice
from typing import Any, Self

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from datacentre.core.config import DEFAULT_DB_URL
from datacentre.core.errors import StoreError, SymbolError
from datacentre.core.instruments import has_expired, parse_symbol
from datacentre.core.ticks import TICK_FIELDS, normalize_ts, now_utc, parse_ts, tick_values
from datacentre.store.candles import CandleQueries
from datacentre.store.compat import DISTINCT_SYMBOLS, NEWEST_PER_SYMBOL, CompatTables
from datacentre.store.feedreads import FeedReads
from datacentre.store.intraday import IntradayQueries
from datacentre.store.maintenance import Maintenance
from datacentre.store.notify import CommitListener, DataVersionProbe, notify_commit
from datacentre.store.partitions import tick_columns_ddl
from datacentre.store.pgcopy import CopyWriter
from datacentre.store.readonly import (
    QUERY_MAX_ROWS,
    QUERY_TIMEOUT_S,
    check_statement,
    query_postgres,
    query_sqlite,
)
from datacentre.store.schema import (
    CACHE_KIB,
    STREAM_CACHE_KIB,
    TICK_COLUMNS,
    create_schema,
    instruments,
    ltp_ticks,
    make_engine,
    sqlite_path,
)
from datacentre.store.series import DayQueries
from datacentre.store.transfer import Transfers

__all__ = ["INSERT_BATCH", "WRITER_LOCK_KEY", "Row", "Snapshot", "TickStore", "batched",
           "open_store", "sqlite_path"]

INSERT_BATCH = 5_000
WRITER_LOCK_KEY = 8765_0001

_SQLITE_INSERT = (f"INSERT OR IGNORE INTO ltp_ticks ({', '.join(TICK_FIELDS)}) "
                  f"VALUES ({', '.join('?' for _ in TICK_FIELDS)})")


def batched(items: Iterable, size: int) -> Iterator[list]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


Snapshot = tuple[str | datetime, Sequence[dict]]


Row = tuple  # the 14 tick fields in TICK_FIELDS order (core.ticks.tick_values)
_TS = TICK_FIELDS.index("ts")


def _snapshot_rows(snapshots: Iterable[Snapshot]) -> Iterator[Row]:
    for ts, ticks in snapshots:
        stamp = normalize_ts(ts)
        for t in ticks:
            yield tick_values(t, stamp)


def _row(mapping) -> dict[str, Any]:
    return dict(mapping)


def _in_ts(value) -> str | None:
    return None if value is None else normalize_ts(value)


class _Writer:
    """``write(rows) -> new rows`` inside one transaction (``conn``), batching its input."""

    def __init__(self, store: TickStore, conn: sa.Connection) -> None:
        self.store = store
        self.conn = conn
        self.written = 0
        self._seen: set[str] = set()
        self._copy = CopyWriter(conn, tick_columns_ddl(ltp_ticks)) if store.dialect == "postgresql" else None

    def __call__(self, rows: Iterable[Row]) -> int:
        written = 0
        for batch in batched(rows, INSERT_BATCH):
            written += self.store._write(self.conn, batch, self._seen, self._copy)
        self.written += written
        return written


class TickStore(DayQueries, IntradayQueries, CandleQueries, CompatTables, Transfers, Maintenance,
                FeedReads):
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
        self._months_ready: set[datetime] = set()  # months known to have a partition
        if create:
            self.create_schema()

    def __repr__(self) -> str:
        return f"TickStore({self.engine.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        self.engine.dispose()
        self.close_feed_reads()
        if "_query_engine" in self.__dict__:
            self._query_engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def create_schema(self) -> None:
        """Create missing tables, views and indexes (safe when several processes start at once)."""
        create_schema(self.engine, repr(self))
        self.prepare_compat()

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

    def _write(self, conn, rows: list[Row], seen: set[str], copy: CopyWriter | None) -> int:
        symbols = {r[0] for r in rows}
        new_instruments = self._instrument_rows(symbols - seen)
        if new_instruments:
            conn.execute(self._insert(instruments), new_instruments)
        seen.update(symbols)
        if copy is not None:
            self._ensure_partitions_for(r[_TS] for r in rows)
            return copy.write(rows)
        # The hot path (collector, backfill, import): executemany of tuples on the driver's
        # own cursor, inside this transaction. Core's per-dict parameters cost 3x as much,
        # and exec_driver_sql's handling of each parameter set about 2 % of a snapshot.
        cursor = conn.connection.driver_connection.cursor()
        try:
            cursor.executemany(_SQLITE_INSERT, rows)
            return max(cursor.rowcount, 0)
        finally:
            cursor.close()

    @contextmanager
    def _transaction(self) -> Iterator[_Writer]:
        """One transaction; yields a :class:`_Writer`.

        On PostgreSQL the commit notification is queued last, so listeners hear of the
        rows exactly when they become readable (:mod:`datacentre.store.notify`).
        """
        try:
            with self.engine.begin() as conn:
                if self.dialect == "postgresql":
                    # Writers take turns, so ids commit in id order and the broadcaster's
                    # id cursor can never step over a row that commits later.
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITER_LOCK_KEY})
                writer = _Writer(self, conn)
                yield writer
                if writer.written and self.dialect == "postgresql":
                    notify_commit(conn)
        except (sa.exc.SQLAlchemyError, psycopg.Error, sqlite3.Error) as exc:
            self._months_ready.clear()  # a partition may have been dropped under us
            raise StoreError(f"write failed, nothing committed: {exc.__class__.__name__}: "
                             f"{getattr(exc, 'orig', None) or exc}") from exc
        self._known_symbols.update(writer._seen)

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
        return self._commit(tick_values(t, normalize_ts(t["ts"])) for t in ticks)

    def commit_listener(self, on_commit: Callable[[], None]) -> CommitListener | None:
        """A listener that calls ``on_commit()`` whenever any process commits rows to this
        store (PostgreSQL LISTEN/NOTIFY; start it with ``.start()``). None on SQLite, which
        has no notifications: readers there poll."""
        if self.dialect != "postgresql":
            return None
        return CommitListener(self.url, on_commit)

    def change_probe(self) -> DataVersionProbe | None:
        """A cheap "has anything been committed since I last asked?" for readers that poll:
        on a SQLite file, its ``data_version``; None elsewhere (PostgreSQL pushes, see
        :meth:`commit_listener`; a database in memory has no other writer)."""
        path = sqlite_path(self.url) if self.dialect == "sqlite" else None
        return DataVersionProbe(path) if path is not None else None

    def checkpoint(self) -> None:
        """Fold SQLite's write-ahead log back into the database file (after bulk writes)."""
        if self.dialect == "sqlite":
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    # ------------------------------------------------------------------ reads

    def _all(self, stmt, params: dict | None = None) -> list[dict]:
        try:
            with self.engine.connect() as conn:
                return [_row(m) for m in conn.execute(stmt, params).mappings()]
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"read failed: {exc.__class__.__name__}: "
                             f"{getattr(exc, 'orig', None) or exc}") from exc

    def _tick_dicts(self, stmt, params: dict | None = None) -> list[dict]:
        """:meth:`_all` for a select of ``ltp_ticks`` columns. On SQLite the driver's values
        already are what those column types give (canonical timestamp text, REAL floats,
        integers), so rows come straight off the cursor: SQLAlchemy's per-row processing
        was most of the time of a session's history."""
        if self.dialect != "sqlite":
            return self._all(stmt, params)
        try:
            with self.engine.connect() as conn:
                result = conn.execute(stmt, params)
                keys = tuple(result.keys())
                return [dict(zip(keys, row)) for row in result.cursor.fetchall()]
        except (sa.exc.SQLAlchemyError, sqlite3.Error) as exc:
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
        stmt = (sa.select(*TICK_COLUMNS).where(ltp_ticks.c.symbol == symbol)
                .order_by(ltp_ticks.c.ts.desc()).limit(1))
        rows = self._all(stmt)
        return rows[0] if rows else None

    def latest_all(self, limit: int | None = 100) -> list[dict]:
        """The newest tick of the ``limit`` symbols updated most recently (None: all).

        Live symbols come first (indices, symbols that do not parse, and contracts that
        have not expired at :func:`~datacentre.core.ticks.now_utc`), newest first, within a
        snapshot indices, futures, then options; expired contracts follow, so a store
        holding months of sessions answers with today's chain, never with old expiries.
        Each symbol's newest time is one index seek, whatever the size of the store.
        """
        newest = {symbol: ts for symbol, ts in self._analytics_rows(NEWEST_PER_SYMBOL) if ts is not None}
        chosen = recent_first(newest, now_utc())
        if limit is not None:
            chosen = chosen[:limit]
        # The exact (symbol, ts) pairs, one index seek each; on SQLite the stored text as it
        # is (a store of another program may hold other spellings of the time).
        ts = sa.type_coerce(ltp_ticks.c.ts, sa.Text) if self.dialect == "sqlite" else ltp_ticks.c.ts
        found: dict[str, dict] = {}
        for part in batched(chosen, 200):
            # OR of pairs, not a row-value IN: SQLite plans the IN list as a scan of the table
            pairs = sa.or_(*(sa.and_(ltp_ticks.c.symbol == s, ts == newest[s]) for s in part))
            found.update((row["symbol"], row) for row in self._all(sa.select(*TICK_COLUMNS).where(pairs)))
        return [found[s] for s in chosen if s in found]

    def history(self, symbol: str, start_ts=None, end_ts=None, limit: int | None = None) -> list[dict]:
        """Ticks of ``symbol`` with ``start_ts <= ts <= end_ts``, oldest first."""
        stmt = sa.select(*TICK_COLUMNS).where(ltp_ticks.c.symbol == symbol)
        stmt = self._range(stmt, start_ts, end_ts).order_by(ltp_ticks.c.ts)
        if limit is not None:
            stmt = stmt.limit(limit)
        return self._tick_dicts(stmt)

    def _range(self, stmt, start_ts, end_ts):
        if start_ts is not None:
            stmt = stmt.where(ltp_ticks.c.ts >= _in_ts(start_ts))
        if end_ts is not None:
            stmt = stmt.where(ltp_ticks.c.ts <= _in_ts(end_ts))
        return stmt

    def symbols(self) -> list[str]:
        """Every symbol that has ticks, sorted."""
        stmt = sa.select(instruments.c.symbol).order_by(instruments.c.symbol)
        try:
            found = [r["symbol"] for r in self._all(stmt)]
        except StoreError:
            found = []  # a store of another program, opened read-only: no instruments table
        if found:
            return found
        return sorted(row[0] for row in self._analytics_rows(DISTINCT_SYMBOLS))

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
        rows = sa.select(*TICK_COLUMNS).where(ltp_ticks.c.ts == at)
        if underlying:
            members = sa.select(instruments.c.symbol).where(instruments.c.underlying == underlying)
            # ``symbol || ''``: filter the snapshot's rows (one ts index range) by membership.
            # On the bare column SQLite seeks (symbol, ts) once per instrument ever stored,
            # hundreds on a month's store: 89 ms against 1.3 ms.
            rows = rows.where(ltp_ticks.c.symbol.concat("").in_(members))
        return self._tick_dicts(rows.order_by(ltp_ticks.c.symbol))

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

    def count(self, symbols: Sequence[str] | None = None, start_ts=None, end_ts=None) -> int:
        stmt = self._range(sa.select(sa.func.count()).select_from(ltp_ticks), start_ts, end_ts)
        if symbols:
            stmt = stmt.where(ltp_ticks.c.symbol.in_(list(symbols)))
        return int(self._scalar(stmt) or 0)

    def range_select(self, columns: Sequence[Any], symbols: Sequence[str] | None = None, start_ts=None,
                     end_ts=None) -> sa.Select:
        """``SELECT columns`` of the ticks of ``symbols`` (all if None) from ``start_ts`` to
        ``end_ts`` (both included), in ``(ts, symbol)`` order: what a range read streams."""
        stmt = self._range(sa.select(*columns), start_ts, end_ts)
        if symbols:
            stmt = stmt.where(ltp_ticks.c.symbol.in_(list(symbols)))
        return stmt.order_by(ltp_ticks.c.ts, ltp_ticks.c.symbol)

    def iter_rows(self, symbols: Sequence[str] | None = None, start_ts=None, end_ts=None,
                  batch: int = 5_000) -> Iterator[Sequence[Row]]:
        """Batches of tick rows (tuples in TICK_FIELDS order), ``(ts, symbol)`` order, streamed."""
        stmt = self.range_select(TICK_COLUMNS, symbols, start_ts, end_ts)
        try:
            with self.engine.connect() as conn:
                if self.dialect == "sqlite":
                    yield from _sqlite_batches(conn, stmt, batch)
                else:
                    result = conn.execution_options(stream_results=True, yield_per=batch).execute(stmt)
                    yield from result.partitions()
        except (sa.exc.SQLAlchemyError, sqlite3.Error) as exc:
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
            # The parent of a partitioned table has no storage of its own: sum its tree.
            size = self._scalar(sa.text("SELECT sum(pg_total_relation_size(relid))::bigint "
                                        "FROM pg_partition_tree('ltp_ticks')"))
        return {"rows": self.count(), "bytes": size, "first_ts": self.first_ts(),
                "last_ts": self.last_ts(), "max_id": self.max_id()}

    # ------------------------------------------------------------------ raw SQL

    def query(self, sql: str, params: Sequence[Any] | dict = (), *,
              timeout: float = QUERY_TIMEOUT_S, max_rows: int = QUERY_MAX_ROWS) -> list[dict]:
        """Run one read-only SQL statement with ``?`` placeholders; return rows as dicts.

        Writes raise :class:`ReadOnlyError`; statements that run longer than ``timeout``
        seconds are interrupted; at most ``max_rows`` rows are returned.
        """
        check_statement(sql)
        if self.dialect == "sqlite":
            path = sqlite_path(self.url)
            if path is None:
                raise StoreError("read-only queries need a file database")
            return query_sqlite(path, sql, params, timeout=timeout, max_rows=max_rows)
        return query_postgres(self._query_engine, sql, params, timeout=timeout, max_rows=max_rows)

    @cached_property
    def _query_engine(self) -> Engine:
        return sa.create_engine(self.engine.url, poolclass=sa.pool.NullPool)


_KIND_ORDER = {"INDEX": 0, "FUT": 1}


def recent_first(newest: dict[str, Any], moment: datetime) -> list[str]:
    """Symbols ordered for :meth:`TickStore.latest_all`: live before expired at ``moment``,
    then newest time first; within a snapshot indices, futures, then options, by symbol.
    ``newest`` maps symbol -> its newest ts."""
    def key(symbol: str):
        try:
            ins = parse_symbol(symbol)
            expired = ins.expiry is not None and has_expired(ins.expiry, moment)
            kind = _KIND_ORDER.get(ins.kind, 2)
        except SymbolError:
            expired, kind = False, 3
        return expired, -parse_ts(newest[symbol]).timestamp(), kind, symbol
    return sorted(newest, key=key)


def _sqlite_batches(conn: sa.Connection, stmt, batch: int) -> Iterator[list[Row]]:
    """Tuples straight off the driver's cursor (see :meth:`TickStore._tick_dicts`), with a
    small page cache for the stream and the connection's own restored after it."""
    conn.exec_driver_sql(f"PRAGMA cache_size=-{STREAM_CACHE_KIB}")
    try:
        cursor = conn.execute(stmt).cursor
        while rows := cursor.fetchmany(batch):
            yield rows
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size=-{CACHE_KIB}")


def open_store(url: str | None = None) -> TickStore:
    """Open (and create if missing) the store at ``url`` or the configured default."""
    return TickStore(url)
