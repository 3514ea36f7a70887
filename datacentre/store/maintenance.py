"""Keeping a store fit for years: monthly partitions made ahead of time, and retention.

:class:`Maintenance` is mixed into :class:`~datacentre.store.tickstore.TickStore`.

Partitions (PostgreSQL only, see :mod:`datacentre.store.partitions`): every write
makes sure the months it touches have a partition, and the collector calls
:meth:`~Maintenance.prepare_partitions` at start and each day, so the partition of
next month exists long before its first snapshot and the live path never runs DDL.

Retention (``python -m datacentre prune --keep-days N``): keeps the last N IST
calendar days, today included. On a partitioned PostgreSQL table whole months
older than that are dropped (instant, and the space goes back to the system); the
month that straddles the cutoff stays whole until all of it is old enough. On
SQLite, or a PostgreSQL table without partitions, old rows are deleted in batches
of ``batch`` rows, one short transaction each, so the collector and readers are
never held up for long; SQLite reuses the freed pages (``VACUUM`` shrinks the file).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from datacentre.core.errors import ConfigError, StoreError
from datacentre.core.ticks import normalize_ts, now_utc, trading_day, trading_day_start
from datacentre.store import partitions as parts

PRUNE_BATCH = 10_000
#: How long a drop waits for the locks it needs before giving up (the store is busy).
PRUNE_LOCK_TIMEOUT = "15s"


def prune_cutoff(keep_days: int, now: datetime) -> datetime:
    """The first instant kept when keeping ``keep_days`` IST days, today included (aware UTC)."""
    if isinstance(keep_days, bool) or not isinstance(keep_days, int) or keep_days < 1:
        raise ConfigError(f"--keep-days must be a whole number of days, 1 or more, got {keep_days!r}")
    return trading_day_start(trading_day(now) - timedelta(days=keep_days - 1))


@dataclass
class PrunedPart:
    """Rows that go (or went): a whole partition, or the batched deletes."""

    name: str | None  # the partition, None for batched deletes
    rows: int
    first_ts: str | None
    last_ts: str | None


@dataclass
class PruneResult:
    keep_days: int
    cutoff: str
    dry_run: bool
    parts: list[PrunedPart] = field(default_factory=list)
    kept_older: int = 0  # rows before the cutoff left in a partition that also holds newer ones
    kept_in: str | None = None

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.parts)

    def lines(self) -> list[str]:
        """What went (or would go), for people."""
        verb = "would " if self.dry_run else ""
        out = []
        for p in self.parts:
            span = f"{p.first_ts} .. {p.last_ts}" if p.rows else "empty"
            if p.name:
                out.append(f"{verb}drop partition {p.name}: {p.rows:,} rows ({span})")
            elif p.rows:
                out.append(f"{verb}delete {p.rows:,} rows ({span})")
        if not self.rows and not any(p.name for p in self.parts):
            out.append(f"nothing before {self.cutoff} (keeping {self.keep_days} days)")
        else:
            out.append(f"{verb}remove {self.rows:,} rows before {self.cutoff} "
                       f"(keeping {self.keep_days} days)")
        if self.kept_older:
            out.append(f"{self.kept_older:,} rows before {self.cutoff} stay in {self.kept_in} until "
                       f"that whole month is older than {self.keep_days} days (partitions go whole)")
        return out


class Maintenance:
    """Partitions ahead of time and pruning old days."""

    engine: Engine
    dialect: str

    _months_ready: set

    # ------------------------------------------------------------------ partitions

    def partitions(self) -> list[parts.Partition]:
        """The partitions of ``ltp_ticks``, oldest first (none on SQLite or a plain table)."""
        if self.dialect != "postgresql":
            return []
        with self.engine.begin() as conn:
            return parts.list_partitions(conn) if parts.table_kind(conn) == "partitioned" else []

    def prepare_partitions(self, moment: str | datetime | None = None,
                           months_ahead: int = parts.MONTHS_AHEAD) -> list[str]:
        """Make sure the month of ``moment`` (default now) and ``months_ahead`` more have a
        partition; return the names created. Does nothing on SQLite."""
        if self.dialect != "postgresql":
            return []
        before = {p.name for p in self.partitions()}
        months = parts.months_from(moment or now_utc(), months_ahead + 1)
        self._ensure_months(months)
        return sorted({p.name for p in self.partitions()} - before)

    def _ensure_months(self, months: Iterable[datetime]) -> None:
        missing = set(months) - self._months_ready
        if not missing:
            return
        try:
            parts.ensure_months(self.engine, missing)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot create the partitions of {sorted(m.date() for m in missing)}: "
                             f"{getattr(exc, 'orig', None) or exc}") from exc
        self._months_ready.update(missing)

    def _ensure_partitions_for(self, stamps: Iterable[str]) -> None:
        """Partitions for the months of these canonical timestamps (PostgreSQL writes)."""
        self._ensure_months({parts.month_start(ts) for ts in set(stamps)})

    # ------------------------------------------------------------------ retention

    def prune(self, keep_days: int, *, dry_run: bool = False, now: datetime | None = None,
              batch: int = PRUNE_BATCH) -> PruneResult:
        """Remove the rows older than the last ``keep_days`` IST days (today included).

        ``dry_run`` reports what would go and changes nothing.
        """
        cutoff = prune_cutoff(keep_days, now or now_utc())
        result = PruneResult(keep_days, normalize_ts(cutoff), dry_run)
        try:
            if self.dialect == "postgresql" and self.partitions():
                self._prune_partitions(result, cutoff)
            else:
                self._prune_rows(result, cutoff, batch)
        except sa.exc.SQLAlchemyError as exc:
            hint = " (the store is busy: try again)" if "lock timeout" in str(exc) else ""
            raise StoreError(f"prune failed{hint}: {getattr(exc, 'orig', None) or exc}") from exc
        return result

    def _prune_partitions(self, result: PruneResult, cutoff: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": parts.SCHEMA_LOCK_KEY})
            conn.execute(sa.text(f"SET LOCAL lock_timeout = '{PRUNE_LOCK_TIMEOUT}'"))
            for p in parts.list_partitions(conn):
                if p.upper is not None and p.upper <= cutoff:
                    rows, first, last = conn.execute(sa.text(
                        f"SELECT count(*), min(ts), max(ts) FROM {p.name}")).one()
                    result.parts.append(PrunedPart(p.name, int(rows), _ts(first), _ts(last)))
                    if not result.dry_run:
                        parts.drop_partition(conn, p.name)
                elif p.lower is None or p.lower < cutoff:
                    older = conn.execute(sa.text(f"SELECT count(*) FROM {p.name} WHERE ts < :c"),
                                         {"c": cutoff}).scalar()
                    if older:
                        result.kept_older, result.kept_in = int(older), p.name
        if not result.dry_run:
            self._months_ready.clear()

    def _prune_rows(self, result: PruneResult, cutoff: datetime, batch: int) -> None:
        if self.dialect == "sqlite":
            # Text comparison narrows through the ts index (an instant before the cutoff, in any
            # ISO spelling, starts with a date before cutoff + 2 days); julianday() decides.
            where = "ts < :coarse AND julianday(ts) < julianday(:cutoff)"
            params = {"coarse": (cutoff.date() + timedelta(days=2)).isoformat(),
                      "cutoff": normalize_ts(cutoff)}
        else:
            where, params = "ts < :cutoff", {"cutoff": cutoff}
        with self.engine.connect() as conn:
            rows, first, last = conn.execute(sa.text(
                f"SELECT count(*), min(ts), max(ts) FROM ltp_ticks WHERE {where}"), params).one()
        result.parts.append(PrunedPart(None, int(rows), _ts(first), _ts(last)))
        if result.dry_run or not rows:
            return
        delete = sa.text(f"DELETE FROM ltp_ticks WHERE id IN "
                         f"(SELECT id FROM ltp_ticks WHERE {where} LIMIT :n)")
        while True:
            with self.engine.begin() as conn:
                deleted = conn.execute(delete, {**params, "n": batch}).rowcount
            if deleted < batch:
                break


def _ts(value) -> str | None:
    return None if value is None else normalize_ts(value)
