"""The original data centre's tables and view, kept beside ours so its programs run unchanged.

* ``ohlc_1min`` (symbol, ts, open, high, low, close, volume, oi, delta, iv, gamma, theta,
  vega): one row per symbol and IST minute, ``ts`` the minute's start, unique on
  ``(symbol, ts)``. ``volume`` is the volume traded **in that minute**, unlike
  ``ltp_ticks.volume``, the cumulative day volume. Built by
  :meth:`~datacentre.store.candles.CandleQueries.candles`' SQL (definitions there).
* ``oi_snapshots`` (symbol, token, ts, oi, volume, delta, gamma, theta, vega, iv): the last
  tick of each future and option in each minute, at its own ``ts``; ``volume`` is that
  tick's cumulative day volume, as in ``ltp_ticks``. Indices (no OI) have none.
* ``v_ltp_ticks_backtest``: every ``ltp_ticks`` row with ``date_ist`` (``2026-01-02``) and
  ``time_ist`` (``13:43:05``) in front, computed by the engine (SQLite's ``date``/``time``
  with ``+330 minutes``; PostgreSQL's ``AT TIME ZONE 'Asia/Kolkata'``), so it shows every
  row, ours or the original's, whatever its timestamp form.

Maintenance: the collector calls :meth:`CompatTables.update_minutes` after each snapshot,
which writes every minute that has ended since the last one written (see
``ops/collector.py`` for why the collector does it); ``python -m datacentre candles
--rebuild [--date D]`` rebuilds days, ``--follow`` keeps a store that another program
writes up to date.

Opening a store the original system wrote (its own ``ltp_ticks``; perhaps its own
``ohlc_1min``): tables and the view are added only where missing, an index on
``(symbol, ts)`` is added if ``ltp_ticks`` has none, and the ``instruments`` table learns
the symbols already stored. No row of theirs is changed; minutes are only ever inserted
where none exists, except by an explicit ``--rebuild`` of a day.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta

import sqlalchemy as sa

from datacentre.core.errors import StoreError
from datacentre.core.ticks import format_ts, now_utc, parse_ts, trading_day, trading_day_start
from datacentre.store.schema import Timestamp, instruments, ltp_ticks, metadata

log = logging.getLogger(__name__)

VIEW = "v_ltp_ticks_backtest"
_BIG = sa.BigInteger().with_variant(sa.Integer, "sqlite")

def _columns(kind, *names: str) -> list[sa.Column]:
    return [sa.Column(name, kind) for name in names]


ohlc_1min = sa.Table(
    "ohlc_1min", metadata,
    sa.Column("symbol", sa.Text, nullable=False),
    sa.Column("ts", Timestamp, nullable=False),
    *_columns(sa.Float, "open", "high", "low", "close"),
    *_columns(_BIG, "volume", "oi"),
    *_columns(sa.Float, "delta", "iv", "gamma", "theta", "vega"),
    sa.UniqueConstraint("symbol", "ts", name="uq_ohlc_1min_symbol_ts"),
    sa.Index("ix_ohlc_1min_ts", "ts"),
)

oi_snapshots = sa.Table(
    "oi_snapshots", metadata,
    sa.Column("symbol", sa.Text, nullable=False),
    sa.Column("token", sa.Text),
    sa.Column("ts", Timestamp, nullable=False),
    *_columns(_BIG, "oi", "volume"),
    *_columns(sa.Float, "delta", "gamma", "theta", "vega", "iv"),
    sa.UniqueConstraint("symbol", "ts", name="uq_oi_snapshots_symbol_ts"),
    sa.Index("ix_oi_snapshots_ts", "ts"),
)

_VIEW_COLUMNS = "symbol, ltp, volume, oi, delta, gamma, theta, vega, iv, ts, token, bid, ask, source"
_VIEW_SQL = {
    "sqlite": f"CREATE VIEW IF NOT EXISTS {VIEW} AS SELECT date(ts, '+330 minutes') AS date_ist, "
              f"time(ts, '+330 minutes') AS time_ist, {_VIEW_COLUMNS} FROM ltp_ticks",
    "postgresql": f"CREATE VIEW {VIEW} AS SELECT (ts AT TIME ZONE 'Asia/Kolkata')::date AS date_ist, "
                  f"(ts AT TIME ZONE 'Asia/Kolkata')::time AS time_ist, {_VIEW_COLUMNS} FROM ltp_ticks",
}

# Distinct symbols by index seeks (one per symbol), not a scan of every row.
_SYMBOL_SEEKS = ("WITH RECURSIVE s(symbol) AS (SELECT min(symbol) FROM ltp_ticks UNION ALL "
                 "SELECT (SELECT min(symbol) FROM ltp_ticks WHERE symbol > s.symbol) FROM s "
                 "WHERE s.symbol IS NOT NULL) ")
DISTINCT_SYMBOLS = sa.text(_SYMBOL_SEEKS + "SELECT symbol FROM s WHERE symbol IS NOT NULL")
#: ``(symbol, newest ts)`` of every symbol: one more seek each.
NEWEST_PER_SYMBOL = sa.text(_SYMBOL_SEEKS + "SELECT symbol, (SELECT max(t.ts) FROM ltp_ticks t "
                            "WHERE t.symbol = s.symbol) AS ts FROM s WHERE symbol IS NOT NULL")

MINUTE = timedelta(minutes=1)
#: A minute counts as complete this long after it ends, for a store another process writes
#: (its snapshot of the minute's last seconds may still be on the way).
MINUTE_GRACE = timedelta(seconds=15)
_OHLC_FIELDS = ("open", "high", "low", "close", "volume", "oi", "delta", "iv", "gamma", "theta", "vega")
_SNAPSHOT_FIELDS = ("oi", "delta", "gamma", "theta", "vega", "iv")


def minute_start(moment) -> datetime:
    """The start of the minute holding ``moment`` (aware UTC; IST minutes are the same)."""
    m = parse_ts(moment)
    return m.replace(second=0, microsecond=0)


def _ohlc_row(candle: dict) -> dict:
    return {"symbol": candle["symbol"], "ts": candle["ts"], **{f: candle[f] for f in _OHLC_FIELDS}}


def _snapshot_row(candle: dict) -> dict:
    return {"symbol": candle["symbol"], "token": candle["token"], "ts": candle["last_ts"],
            "volume": candle["day_volume"], **{f: candle[f] for f in _SNAPSHOT_FIELDS}}


class CompatTables:
    """Creates and fills the original's tables; mixed into :class:`~datacentre.store.tickstore.TickStore`.

    Uses the store's ``engine``, ``dialect``, ``_insert``, ``_instrument_rows``,
    ``_candle_rows``, ``_scalar``, ``first_ts`` and ``last_ts``.
    """

    engine: sa.Engine
    dialect: str
    _minutes_done: datetime | None = None

    # ------------------------------------------------------------ schema

    def prepare_compat(self) -> None:
        """The view, a ``(symbol, ts)`` index and the instruments of a store that lacks them."""
        try:
            with self.engine.begin() as conn:
                self._ensure_view(conn)
                self._ensure_symbol_index(conn)
                self._learn_instruments(conn)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot prepare the store's tables at {self!r}: "
                             f"{getattr(exc, 'orig', None) or exc}") from exc

    def _ensure_view(self, conn: sa.Connection) -> None:
        if self.dialect == "postgresql":
            if conn.execute(sa.text("SELECT to_regclass(:v)"), {"v": VIEW}).scalar() is not None:
                return
            # A nested transaction: another process creating it at the same moment is fine.
            try:
                with conn.begin_nested():
                    conn.execute(sa.text(_VIEW_SQL["postgresql"]))
            except sa.exc.ProgrammingError as exc:
                if "already exists" not in str(exc):
                    raise
            return
        conn.execute(sa.text(_VIEW_SQL["sqlite"]))

    def _ensure_symbol_index(self, conn: sa.Connection) -> None:
        inspector = sa.inspect(conn)
        keys = [tuple(ix["column_names"][:2]) for ix in inspector.get_indexes("ltp_ticks")]
        keys += [tuple(uq["column_names"][:2]) for uq in inspector.get_unique_constraints("ltp_ticks")]
        if ("symbol", "ts") not in keys:
            log.warning("ltp_ticks has no index on (symbol, ts): creating ix_ltp_ticks_symbol_ts (one-off)")
            conn.execute(sa.text("CREATE INDEX IF NOT EXISTS ix_ltp_ticks_symbol_ts "
                                 "ON ltp_ticks (symbol, ts)"))
        if not any(k[:1] == ("ts",) for k in keys):
            conn.execute(sa.text("CREATE INDEX IF NOT EXISTS ix_ltp_ticks_ts ON ltp_ticks (ts)"))

    def _learn_instruments(self, conn: sa.Connection) -> None:
        """Instruments for symbols stored by other programs (the original's collector)."""
        if self.dialect == "postgresql":
            # Our partitioned table is only written by us, and we record instruments as we write.
            from datacentre.store.partitions import table_kind
            known = conn.execute(sa.select(sa.func.count()).select_from(instruments)).scalar()
            if table_kind(conn) == "partitioned" and known:
                return
        have = {row[0] for row in conn.execute(sa.select(instruments.c.symbol))}
        stored = [row[0] for row in conn.execute(DISTINCT_SYMBOLS)]
        rows = self._instrument_rows(s for s in stored if s not in have)
        if rows:
            conn.execute(self._insert(instruments), rows)
            log.info("recorded %d instruments of symbols already in ltp_ticks", len(rows))

    # ------------------------------------------------------------ minutes

    def _write_minutes(self, conn: sa.Connection, candles: list[dict]) -> int:
        if not candles:
            return 0
        conn.execute(self._insert(ohlc_1min), [_ohlc_row(c) for c in candles])
        snapshots = [_snapshot_row(c) for c in candles if c["oi"] is not None]
        if snapshots:
            conn.execute(self._insert(oi_snapshots), snapshots)
        return len(candles)

    def _first_minute_to_build(self, day_start: datetime) -> datetime:
        if self._minutes_done is not None and self._minutes_done >= day_start:
            return self._minutes_done
        last = self._scalar(sa.select(sa.func.max(ohlc_1min.c.ts)).where(
            ohlc_1min.c.ts >= format_ts(day_start)))
        return parse_ts(last) + MINUTE if last else day_start

    def update_minutes(self, through, max_minutes: int | None = None) -> int:
        """Write ``ohlc_1min`` and ``oi_snapshots`` for every minute that ended at or before
        ``through`` (all ticks up to it are stored) and is not written yet, from the start
        of ``through``'s IST day at the earliest; at most ``max_minutes`` of them (the
        oldest) per call, so a collector started late in the day catches up in steps
        instead of stalling a snapshot. Returns the candles written.

        Rows already there (the original's, or written before) are left as they are.
        """
        end = minute_start(through)
        start = self._first_minute_to_build(trading_day_start(trading_day(end)))
        if start >= end:
            return 0
        first = self._scalar(sa.select(sa.func.min(ltp_ticks.c.ts)).where(
            ltp_ticks.c.ts >= format_ts(start), ltp_ticks.c.ts < format_ts(end)))
        if first is None:  # no ticks in the whole stretch (a night, a holiday)
            self._minutes_done = end
            return 0
        start = max(start, minute_start(first))
        if max_minutes is not None:
            end = min(end, start + max_minutes * MINUTE)
        candles = self._candle_rows(None, 1, start, end)
        try:
            with self.engine.begin() as conn:
                written = self._write_minutes(conn, candles)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot write ohlc_1min: {getattr(exc, 'orig', None) or exc}") from exc
        self._minutes_done = end
        return written

    def rebuild_candles(self, days: Iterable[date] | None = None,
                        progress: Callable[[int, int], None] | None = None) -> dict[date, int]:
        """Rebuild ``ohlc_1min`` and ``oi_snapshots`` for IST ``days`` (default: every day
        with ticks), each day in one transaction: its rows are deleted and written again,
        up to the last minute complete by the wall clock (:data:`MINUTE_GRACE`), so a day
        still being collected keeps its current minute for the collector. Returns the
        candles written per day."""
        if days is None:
            first, last = self.first_ts(), self.last_ts()
            if first is None:
                return {}
            day, stop = trading_day(first), trading_day(last)
            wanted = []
            while day <= stop:
                wanted.append(day)
                day += timedelta(days=1)
        else:
            wanted = sorted(set(days))
        done: dict[date, int] = {}
        complete = minute_start(now_utc() - MINUTE_GRACE)
        for n, day in enumerate(wanted, 1):
            lo = trading_day_start(day)
            hi = min(trading_day_start(day + timedelta(days=1)), complete)
            if lo >= hi:
                continue
            candles = self._candle_rows(None, 1, lo, hi)
            try:
                with self.engine.begin() as conn:
                    for table in (ohlc_1min, oi_snapshots):
                        conn.execute(table.delete().where(table.c.ts >= format_ts(lo),
                                                          table.c.ts < format_ts(hi)))
                    done[day] = self._write_minutes(conn, candles)
            except sa.exc.SQLAlchemyError as exc:
                raise StoreError(f"cannot rebuild ohlc_1min for {day}: "
                                 f"{getattr(exc, 'orig', None) or exc}") from exc
            if progress is not None:
                progress(n, len(wanted))
        return done
