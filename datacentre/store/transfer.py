"""Rows between stores: what ``python -m datacentre sync`` reads from one store and writes to another.

:class:`Transfers` is mixed into :class:`~datacentre.store.tickstore.TickStore`. The
source side reads by id (``id`` is the commit order on both engines, so a cursor on it
sees every row ever committed, whatever its ``ts``) and counts rows per IST day; the
target side inserts with ``ON CONFLICT DO NOTHING`` on ``(symbol, ts)`` and keeps its
cursor per source in ``sync_cursors``, committed in the same transaction as the rows,
so a sync killed at any point resumes where its last batch ended.

Timestamps leave in the canonical text form whatever a SQLite file holds (``Z``,
``+05:30``, a space instead of ``T``, no offset): SQLite compares ``ts`` as text, so
every filter on it here is a wide text range for the index plus an exact test on the
parsed instant (``date()``/``julianday()`` in SQL, :func:`normalize_ts` in Python).
Nothing is dropped for being spelled differently.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from datacentre.core.errors import ConfigError, StoreError
from datacentre.core.ticks import TICK_FIELDS, normalize_ts, trading_day_start
from datacentre.store.schema import TICK_COLUMNS, ltp_ticks, sqlite_path, sync_cursors

SYNC_BATCH = 5_000
_TS = TICK_FIELDS.index("ts")
#: SQLite: the IST calendar date of a ``ts`` in any ISO 8601 spelling (NULL if unreadable).
_SQLITE_IST_DATE = "date(ts, '+330 minutes')"


def _text_floor(day: date) -> str:
    """A text lower bound for SQLite ``ts`` of instants on or after IST ``day``: any ISO
    spelling of them (offsets -12:00 to +14:00) starts with a date from ``day - 1`` on."""
    return (day - timedelta(days=1)).isoformat()


class Transfers:
    """Reading rows out by id and per IST day, writing them in idempotently."""

    engine: Engine
    dialect: str
    url: str

    def _transfer_error(self, what: str, exc: Exception) -> StoreError:
        return StoreError(f"{what} failed: {exc.__class__.__name__}: {getattr(exc, 'orig', None) or exc}")

    @property
    def store_key(self) -> str:
        """This store's name as a sync source: the file for SQLite, the URL (no password) otherwise."""
        path = sqlite_path(self.url)
        if path is not None:
            return f"sqlite:///{path.resolve()}"
        u = self.engine.url.set(drivername=self.engine.url.get_backend_name())
        return u.render_as_string(hide_password=True)

    # ------------------------------------------------------------------ source side

    def _since_filter(self, stmt, since: date | None):
        if since is None:
            return stmt
        if self.dialect == "sqlite":
            return stmt.where(sa.text("ts >= :floor").bindparams(floor=_text_floor(since)))
        return stmt.where(ltp_ticks.c.ts >= trading_day_start(since))

    def rows_since(self, after_id: int, *, since: date | None = None,
                   limit: int = SYNC_BATCH) -> tuple[int, list[tuple]]:
        """Up to ``limit`` rows with ``id > after_id``, in id order, with canonical ``ts``.

        Returns ``(last_id, rows)``: ``last_id`` is the id of the last row read (the next
        cursor; ``after_id`` when nothing is left) and ``rows`` the 14-field tuples of
        those on or after IST day ``since``.
        """
        stmt = (sa.select(ltp_ticks.c.id, *TICK_COLUMNS).where(ltp_ticks.c.id > after_id)
                .order_by(ltp_ticks.c.id).limit(limit))
        try:
            with self.engine.connect() as conn:
                found = conn.execute(self._since_filter(stmt, since)).all()
        except sa.exc.SQLAlchemyError as exc:
            raise self._transfer_error("reading rows", exc) from exc
        if not found:
            return after_id, []
        floor = None if since is None else normalize_ts(trading_day_start(since))
        rows = [row for row in _canonical(found) if floor is None or row[_TS] >= floor]
        return found[-1][0], rows

    def count_since(self, after_id: int, since: date | None = None) -> int:
        """About how many rows :meth:`rows_since` has to read (exact on PostgreSQL)."""
        stmt = sa.select(sa.func.count()).select_from(ltp_ticks).where(ltp_ticks.c.id > after_id)
        try:
            with self.engine.connect() as conn:
                return int(conn.execute(self._since_filter(stmt, since)).scalar() or 0)
        except sa.exc.SQLAlchemyError as exc:
            raise self._transfer_error("counting rows", exc) from exc

    def day_counts(self, since: date | None = None) -> dict[date, int]:
        """Rows per IST calendar day (from ``since`` on), oldest day first."""
        if self.dialect == "sqlite":
            day = sa.literal_column(_SQLITE_IST_DATE)
        else:
            day = sa.cast(sa.func.timezone("Asia/Kolkata", ltp_ticks.c.ts), sa.Date)
        stmt = self._since_filter(sa.select(day.label("day"), sa.func.count()).select_from(ltp_ticks),
                                  since).group_by(sa.literal_column("day"))
        try:
            with self.engine.connect() as conn:
                found = conn.execute(stmt).all()
        except sa.exc.SQLAlchemyError as exc:
            raise self._transfer_error("counting rows per day", exc) from exc
        counts = {}
        for value, count in found:
            if value is None:
                raise StoreError(f"{count} row(s) of {self!r} have a ts that is not a time: "
                                 f"find them with SELECT * FROM ltp_ticks WHERE {_SQLITE_IST_DATE} IS NULL")
            day = date.fromisoformat(value) if isinstance(value, str) else value
            if since is None or day >= since:
                counts[day] = int(count)
        return dict(sorted(counts.items()))

    def iter_day_rows(self, day: date, batch: int = SYNC_BATCH) -> Iterator[list[tuple]]:
        """Batches of the rows of IST ``day`` (canonical ``ts``), in id order, streamed."""
        stmt = sa.select(ltp_ticks.c.id, *TICK_COLUMNS).order_by(ltp_ticks.c.id)
        if self.dialect == "sqlite":
            stmt = stmt.where(sa.text(f"ts >= :lo AND ts < :hi AND {_SQLITE_IST_DATE} = :day").bindparams(
                lo=_text_floor(day), hi=(day + timedelta(days=2)).isoformat(), day=day.isoformat()))
        else:
            stmt = stmt.where(ltp_ticks.c.ts >= trading_day_start(day),
                              ltp_ticks.c.ts < trading_day_start(day + timedelta(days=1)))
        try:
            with self.engine.connect() as conn:
                result = conn.execution_options(stream_results=True, yield_per=batch).execute(stmt)
                for part in result.partitions():
                    yield _canonical(part)
        except sa.exc.SQLAlchemyError as exc:
            raise self._transfer_error("reading a day", exc) from exc

    # ------------------------------------------------------------------ target side

    def sync_cursor(self, source_key: str) -> int:
        """The last source id copied from ``source_key`` into this store (0 if none)."""
        stmt = sa.select(sync_cursors.c.last_id).where(sync_cursors.c.source == source_key)
        try:
            with self.engine.connect() as conn:
                return int(conn.execute(stmt).scalar() or 0)
        except sa.exc.SQLAlchemyError as exc:
            raise self._transfer_error("reading the sync cursor", exc) from exc

    def insert_rows(self, rows: Iterable[Sequence], *, cursor: tuple[str, int] | None = None) -> int:
        """Insert 14-field rows, skipping ``(symbol, ts)`` already stored; return how many were new.

        With ``cursor=(source_key, last_id)`` the source's cursor is saved in the same
        transaction, so the rows and the cursor commit together or not at all.
        """
        with self._transaction() as write:  # type: ignore[attr-defined]
            written = write(rows)
            if cursor is not None:
                key, last_id = cursor
                insert = (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(sync_cursors)
                values = {"source": key, "last_id": int(last_id)}
                write.conn.execute(insert.values(values).on_conflict_do_update(
                    index_elements=[sync_cursors.c.source], set_={"last_id": values["last_id"]}))
        return written


def _canonical(found: Sequence) -> list[tuple]:
    """Rows ``(id, *14 fields)`` as 14-field tuples with the canonical ``ts`` (one parse per ts)."""
    stamps: dict[str, str] = {}
    out = []
    for row in found:
        values = list(row[1:])
        raw = values[_TS]
        stamp = stamps.get(raw)
        if stamp is None:
            try:
                stamp = stamps[raw] = normalize_ts(raw)
            except ConfigError as exc:
                raise StoreError(f"row id {row[0]} has ts {raw!r}, which is not a time") from exc
        values[_TS] = stamp
        out.append(tuple(values))
    return out
