"""The reads that keep the live feed exact: where the feed stands and the newest snapshot at a cursor.

:class:`FeedReads` is mixed into :class:`~datacentre.store.tickstore.TickStore` (it
uses ``_all`` and ``_scalar``). The live feed follows the store by id; a row is *live*
when its snapshot time is at or after the newest one among the rows before it
(:mod:`datacentre.feed.resume`).
These queries let any broadcaster, after any restart, work that rule out at any cursor
from the store alone, each in one index seek or one short index range whatever the size
of the store:

* the id and ``ts`` indexes are read separately (two scalar subqueries in one statement,
  so one consistent view), never ``max(id), max(ts)`` over the whole table;
* "the newest ``ts`` at or before id N" walks the ``ts`` index down from the top and stops
  at the first row at or before N. ``+id`` keeps SQLite from choosing the id range
  instead (that is a scan of every row before N and a sort).
"""
from __future__ import annotations

import sqlite3
import threading
from functools import cached_property
from pathlib import Path

import sqlalchemy as sa

from datacentre.core.errors import StoreError
from datacentre.core.ticks import TICK_FIELDS, normalize_ts
from datacentre.store.readonly import connect_read_only
from datacentre.store.schema import TICK_COLUMNS, ltp_ticks, sqlite_path

# Unary plus: the planners must not use the primary key for these conditions (see above).
_id_unindexed = sa.literal_column("+id")

#: The live feed's read after each commit, on both engines (``:name`` parameters).
AFTER_SQL = (f"SELECT id, {', '.join(TICK_FIELDS)} FROM ltp_ticks "
             "WHERE id > :last_id AND id <= :until_id ORDER BY id LIMIT :limit")
_AFTER = sa.text(AFTER_SQL).columns(ltp_ticks.c.id, *TICK_COLUMNS)
_MAX_ID = 2**63 - 1


class _RawReads:
    """One read-only ``sqlite3`` connection for the feed's read, shared by threads under a lock:
    no pool checkout and no SQLAlchemy row processing between a commit and its broadcast
    (on SQLite the driver's values already are the column types' values)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def rows(self, sql: str, params: dict) -> list[dict]:
        with self._lock:
            try:
                if self._conn is None:
                    self._conn = connect_read_only(self.path, check_same_thread=False)
                cursor = self._conn.execute(sql, params)
                keys = [d[0] for d in cursor.description]
                return [dict(zip(keys, row)) for row in cursor.fetchall()]
            except sqlite3.Error as exc:
                self._close()
                raise StoreError(f"read failed: {exc.__class__.__name__}: {exc}") from exc

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def close(self) -> None:
        with self._lock:
            self._close()


class FeedReads:
    """Cursor-side reads of ``ltp_ticks`` for the broadcaster and its resumes."""

    def after(self, last_id: int, limit: int = 10_000, until_id: int | None = None) -> list[dict]:
        """Rows with ``last_id < id`` (``<= until_id``, if given) in id order, each with its
        ``id`` (the broadcaster's cursor): the live feed's read after every commit."""
        params = {"last_id": int(last_id), "until_id": _MAX_ID if until_id is None else int(until_id),
                  "limit": int(limit)}
        if self._raw_reads is not None:
            return self._raw_reads.rows(AFTER_SQL, params)
        return self._all(_AFTER, params)

    @cached_property
    def _raw_reads(self) -> _RawReads | None:
        path = sqlite_path(self.url) if self.dialect == "sqlite" else None
        return _RawReads(path) if path is not None else None

    def close_feed_reads(self) -> None:
        """Close the feed's own connection (a later read opens it again)."""
        if self.__dict__.get("_raw_reads") is not None:
            self._raw_reads.close()

    def feed_head(self) -> tuple[int, str | None]:
        """``(newest id, newest snapshot time)``: where a broadcaster starting now stands."""
        stmt = sa.select(sa.select(sa.func.max(ltp_ticks.c.id)).scalar_subquery().label("id"),
                         sa.select(sa.func.max(ltp_ticks.c.ts)).scalar_subquery().label("ts"))
        (head,) = self._all(stmt)
        return int(head["id"] or 0), head["ts"]

    def newest_ts_through(self, last_id: int) -> str | None:
        """The newest snapshot time among the rows with ``id <= last_id`` (None if none)."""
        stmt = (sa.select(ltp_ticks.c.ts).where(_id_unindexed <= int(last_id))
                .order_by(ltp_ticks.c.ts.desc()).limit(1))
        return self._scalar(stmt)

    def first_id_since(self, ts) -> int | None:
        """The smallest id of a row whose snapshot time is at or after ``ts``."""
        stmt = sa.select(sa.func.min(_id_unindexed)).where(ltp_ticks.c.ts >= normalize_ts(ts))
        found = self._scalar(stmt)
        return None if found is None else int(found)

    def first_ts_between(self, after_id: int, through_id: int, since_ts=None) -> str | None:
        """The earliest snapshot time at or after ``since_ts`` (any, if None) among the rows
        with ``after_id < id <= through_id``; None when there is no such row."""
        stmt = sa.select(ltp_ticks.c.ts).where(_id_unindexed > int(after_id),
                                               _id_unindexed <= int(through_id))
        if since_ts is not None:
            stmt = stmt.where(ltp_ticks.c.ts >= normalize_ts(since_ts))
        return self._scalar(stmt.order_by(ltp_ticks.c.ts).limit(1))
