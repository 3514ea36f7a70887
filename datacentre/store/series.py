"""Day queries: the read-only SQL behind :mod:`datacentre.analytics` and the app's day charts.

:class:`DayQueries` is mixed into :class:`~datacentre.store.tickstore.TickStore`; it uses
the store's ``engine``, ``dialect`` and read helpers (``_scalar``, ``_all``, ``_range``),
and keeps these heavier, chart-shaped queries out of the store's core reads and writes.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from datacentre.core.errors import StoreError
from datacentre.core.instruments import has_expired, nearest_future
from datacentre.core.instruments import underlying as find_underlying
from datacentre.core.ticks import trading_day
from datacentre.store.schema import TICK_COLUMNS, Timestamp, instruments, ltp_ticks


class DayQueries:
    """Snapshot times, opening snapshots, expiries and per-snapshot series of one underlying."""

    engine: Engine
    dialect: str

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
        index_symbol = find_underlying(underlying).index_symbol
        stmt = sa.select(ltp_ticks.c.ts).where(ltp_ticks.c.symbol == index_symbol)
        stmt = self._range(stmt, start_ts, end_ts).order_by(ltp_ticks.c.ts)
        return [row[0] for row in self._analytics_rows(stmt)]

    def first_snapshot(self, start_ts, end_ts=None, underlying: str | None = None) -> list[dict]:
        """The earliest snapshot with ``start_ts <= ts <= end_ts`` (``underlying``'s symbols
        only, if given): with ``analytics.day_bounds`` the day's opening snapshot, the
        usual base for OI and price changes."""
        at = self._scalar(self._range(sa.select(sa.func.min(ltp_ticks.c.ts)), start_ts, end_ts))
        if at is None:
            return []
        rows = sa.select(*TICK_COLUMNS).where(ltp_ticks.c.ts == at)
        if underlying:
            members = sa.select(instruments.c.symbol).where(
                instruments.c.underlying == find_underlying(underlying).base)
            rows = rows.where(ltp_ticks.c.symbol.in_(members))
        return self._all(rows.order_by(ltp_ticks.c.symbol))

    def option_expiries(self, underlying: str) -> list[str]:
        """Every option expiry (ISO date) ever stored for ``underlying``, oldest first."""
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

        Each row: ``ts``, ``spot`` (index), ``future`` (the price of the future that was the
        nearest at the first snapshot, by :func:`~datacentre.core.instruments.nearest_future`),
        ``ce_oi`` / ``pe_oi`` (total OI of the calls / puts of ``expiry`` in that snapshot),
        ``atm_strike`` (strike step nearest the spot), ``atm_iv`` (mean call/put IV at that
        strike, percent; one side when the other has none, None when neither is stored)
        and ``expiry`` (ISO date; default the nearest option expiry still trading at the
        first snapshot).

        Snapshots are those carrying the index tick (none without it: an empty list).
        ``every_n`` keeps every n-th snapshot; ``max_points`` raises that stride so at
        most about that many rows come back (None: every snapshot). The last snapshot is
        always included: the rule of :func:`datacentre.analytics.thin`. Cost grows with
        the rows read: on SQLite a full day (4,500 snapshots x 110 ticks) takes tens of
        ms at the default 500 points (one every 45 s, plenty for a chart) and several
        hundred uncapped, since the OI totals read every row of every snapshot kept.

        The OI totals cover the strikes stored in each snapshot: when the collector's
        ATM window moves with the spot, strikes entering or leaving it move the totals.
        """
        if every_n < 1:
            raise ValueError(f"every_n must be at least 1, got {every_n}")
        if max_points is not None and max_points < 2:
            raise ValueError(f"max_points must be at least 2 (or None), got {max_points}")
        u = find_underlying(underlying)
        times = self.snapshot_times(u.base, start_ts, end_ts)
        if not times:
            return []
        day = trading_day(times[0])
        if has_expired(day, times[0]):
            day += timedelta(days=1)  # after 15:30 IST the day's own expiry has stopped trading
        i, t = instruments.c, ltp_ticks.c
        if expiry is None:
            expiry = self._scalar(sa.select(sa.func.min(i.expiry)).where(
                i.underlying == u.base, i.kind.in_(("CE", "PE")), i.expiry >= day.isoformat()))
        elif isinstance(expiry, date):
            expiry = expiry.isoformat()
        legs = self._analytics_rows(sa.select(i.symbol, i.kind, i.strike).where(
            i.underlying == u.base, i.kind.in_(("CE", "PE")), i.expiry == expiry)) if expiry else []
        calls = {strike: symbol for symbol, kind, strike in legs if kind == "CE"}
        puts = {strike: symbol for symbol, kind, strike in legs if kind == "PE"}
        stored_futures = self._analytics_rows(
            sa.select(i.symbol).where(i.underlying == u.base, i.kind == "FUT"))
        nearest = nearest_future((row[0] for row in stored_futures), times[0], u.base)
        future = nearest.symbol if nearest else None

        # imported here: the store's other users (collector, feeds) need no pandas
        from datacentre.analytics.series import thin
        picked = thin(times, max_points, every_n=every_n)
        # Canonical text is what SQLite stores, so it binds as-is (no per-value parsing).
        ts_type = sa.Text() if self.dialect == "sqlite" else Timestamp()

        def at(column):
            if len(picked) == len(times):
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
            ivs = [v for v in (ce_iv, pe_iv) if v]  # an IV of 0 is "unknown" in older stores
            out.append({"ts": ts, "spot": spot, "future": fut,
                        "ce_oi": None if ce_oi is None else int(ce_oi),
                        "pe_oi": None if pe_oi is None else int(pe_oi),
                        "atm_strike": None if strike is None else float(strike),
                        "atm_iv": sum(ivs) / len(ivs) if ivs else None, "expiry": expiry})
        return out
