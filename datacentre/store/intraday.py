"""Intraday chart queries: contract prices and OI through a day, the rolling ATM straddle,
the chain's OI at a day's snapshots and the ATM IV at each session's close.

:class:`IntradayQueries` is mixed into :class:`~datacentre.store.tickstore.TickStore`
(it uses ``engine`` and ``dialect``). Each method is one
SQL statement whose cost follows the rows a chart needs, never a scan of the whole table:
the contracts' slices of the ``(symbol, ts)`` index, the index symbol's slice joined to
the legs it names, or one seek per session. Timestamps are the canonical text of
:mod:`datacentre.core.ticks` in and out.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import sqlalchemy as sa

from datacentre.core.errors import StoreError
from datacentre.core.instruments import CE, PE
from datacentre.core.instruments import underlying as find_underlying
from datacentre.core.ticks import normalize_ts
from datacentre.store.schema import Timestamp, instruments, ltp_ticks

#: The most contracts :meth:`IntradayQueries.contract_series` reads in one call.
MAX_CONTRACTS = 24
SERIES_FIELDS = ("ltp", "volume", "oi", "iv", "gamma")


class IntradayQueries:
    """Chart-shaped reads of a day (or any range) of one underlying's contracts."""

    engine: sa.Engine
    dialect: str

    def _ts_type(self):
        # Canonical text is what SQLite stores, so it binds as-is (no per-value parsing).
        return sa.Text() if self.dialect == "sqlite" else Timestamp()

    def _ts_out(self, column):
        """``column`` read as the canonical text it already is on SQLite (no per-row
        conversion: half the cost of a long read); PostgreSQL's timestamps are formatted."""
        return sa.type_coerce(column, sa.Text) if self.dialect == "sqlite" else column

    def _fetch(self, stmt) -> list:
        """The rows of ``stmt`` as tuples. On SQLite straight from the driver's cursor: a
        day's read is tens of thousands of rows, and building a Row object for each costs
        as much as the query (the columns need no conversion there, see :meth:`_ts_out`)."""
        try:
            with self.engine.connect() as conn:
                if self.dialect != "sqlite":
                    return conn.execute(stmt).all()
                compiled = stmt.compile(dialect=self.engine.dialect,
                                        compile_kwargs={"render_postcompile": True})
                params = compiled.construct_params()
                cursor = conn.connection.driver_connection.cursor()
                try:
                    values = [params[name] for name in compiled.positiontup]
                    return cursor.execute(str(compiled), values).fetchall()
                finally:
                    cursor.close()
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"read failed: {exc.__class__.__name__}: "
                             f"{getattr(exc, 'orig', None) or exc}") from exc

    def _between(self, stmt, column, start_ts, end_ts):
        if start_ts is not None:
            stmt = stmt.where(column >= sa.bindparam(None, normalize_ts(start_ts), type_=self._ts_type()))
        if end_ts is not None:
            stmt = stmt.where(column <= sa.bindparam(None, normalize_ts(end_ts), type_=self._ts_type()))
        return stmt

    def _atm_strike(self, spot, step: float):
        """The strike step nearest ``spot``, halfway between two the lower one (the chain's
        ATM rule, :func:`datacentre.analytics.chain_table`), as a SQL expression."""
        q = spot / float(step)
        # floor() is missing from SQLite builds without math functions; for the positive
        # prices here an integer cast truncates to the same value.
        low = sa.func.floor(q) if self.dialect == "postgresql" else sa.cast(q, sa.Integer)
        return sa.case((q - low <= 0.5, low), else_=low + 1) * float(step)

    def contract_series(self, symbols: Sequence[str], start_ts=None, end_ts=None, *,
                        fields: Sequence[str] = SERIES_FIELDS) -> list[dict]:
        """Rows ``ts, symbol`` and ``fields`` (of :data:`SERIES_FIELDS`: ``ltp, volume, oi,
        iv, gamma``) of each of ``symbols`` (up to :data:`MAX_CONTRACTS`) with ``start_ts <=
        ts <= end_ts``, oldest first (by symbol within a snapshot): the straddle, leg,
        OI-history and futures charts.

        Each symbol's slice of the ``(symbol, ts)`` index is read, so the cost is that of
        the rows returned (a full day of 5-second snapshots: 4,500 a symbol).
        """
        wanted = sorted(set(symbols))
        if not wanted:
            return []
        if len(wanted) > MAX_CONTRACTS:
            raise StoreError(f"at most {MAX_CONTRACTS} contracts in one series, got {len(wanted)}")
        unknown = set(fields) - set(SERIES_FIELDS)
        if unknown:
            raise StoreError(f"contract series fields are {', '.join(SERIES_FIELDS)}; not {sorted(unknown)}")
        t = ltp_ticks.c
        stmt = (sa.select(self._ts_out(t.ts), t.symbol, *(t[f] for f in fields))
                .where(t.symbol.in_(wanted)))
        stmt = self._between(stmt, t.ts, start_ts, end_ts).order_by(t.ts, t.symbol)
        names = ("ts", "symbol", *fields)
        return [dict(zip(names, row)) for row in self._fetch(stmt)]

    def straddle_series(self, underlying: str, expiry: date | str, start_ts=None, end_ts=None) -> list[dict]:
        """The rolling ATM straddle: per snapshot of ``underlying``'s index, ``ts``,
        ``spot``, ``strike`` (the strike step nearest the spot, halfway the lower, as the
        chain's ATM) and ``ce`` / ``pe``, the last prices of ``expiry``'s call and put at
        that strike (None where that snapshot lacks the contract).

        One pass over the index's slice of the ``(symbol, ts)`` index, each leg found by an
        index seek: the legs' symbols come from a CASE over the expiry's strikes.
        """
        u = find_underlying(underlying)
        expiry = expiry.isoformat() if isinstance(expiry, date) else str(expiry)
        i = instruments.c
        legs = self._fetch(sa.select(i.symbol, i.kind, i.strike).where(
            i.underlying == u.base, i.kind.in_((CE, PE)), i.expiry == expiry))
        idx = ltp_ticks.alias("idx")
        atm = self._atm_strike(idx.c.ltp, u.strike_step)
        columns, joins = [self._ts_out(idx.c.ts), idx.c.ltp, atm], idx
        for kind in (CE, PE):
            by_strike = {float(strike): symbol for symbol, k, strike in legs if k == kind}
            if not by_strike:
                columns.append(sa.null())
                continue
            leg = ltp_ticks.alias(kind.lower())
            joins = joins.outerjoin(leg, sa.and_(leg.c.symbol == sa.case(by_strike, value=atm),
                                                 leg.c.ts == idx.c.ts))
            columns.append(leg.c.ltp)
        stmt = sa.select(*columns).select_from(joins).where(idx.c.symbol == u.index_symbol)
        stmt = self._between(stmt, idx.c.ts, start_ts, end_ts).order_by(idx.c.ts)
        return [{"ts": ts, "spot": spot, "strike": None if strike is None else float(strike),
                 "ce": ce, "pe": pe} for ts, spot, strike, ce, pe in self._fetch(stmt)]

    def chain_oi_series(self, underlying: str, expiry: date | str, times: Sequence[str]) -> list[tuple]:
        """``(ts, kind, strike, oi)`` of every ``expiry`` option of ``underlying`` stored at
        one of ``times`` (snapshot times, e.g. :meth:`snapshot_times` thinned by
        :func:`datacentre.analytics.thin`), in no particular order: PCR and max pain
        through the day. Each leg's rows are found by index seeks, so a day's 500
        picked snapshots of an 80-leg chain read 40,000 rows, whatever the store holds.
        """
        if not times:
            return []
        u = find_underlying(underlying)
        expiry = expiry.isoformat() if isinstance(expiry, date) else str(expiry)
        i, t = instruments.c, ltp_ticks.c
        stmt = (sa.select(self._ts_out(t.ts), i.kind, i.strike, t.oi)
                .select_from(instruments.join(ltp_ticks, t.symbol == i.symbol))
                .where(i.underlying == u.base, i.kind.in_((CE, PE)), i.expiry == expiry,
                       t.ts.in_(sa.bindparam("times", list(times), expanding=True, type_=self._ts_type()))))
        return [tuple(row) for row in self._fetch(stmt)]

    def session_atm_iv(self, underlying: str, windows: Sequence[tuple[date, str, str]]) -> list[dict]:
        """For each ``(day, start_ts, end_ts)`` window (a session, or a day up to a moment):
        the last snapshot of ``underlying``'s index in it and that snapshot's ATM IV.

        Rows ``day, ts, spot, expiry, strike, ce_iv, pe_iv`` in the windows' order (``ts``
        None for a window without a snapshot). The expiry is the nearest option expiry
        after ``day`` (an option on its last day says little about volatility), the strike
        the step nearest the spot as the chain's ATM. One seek per window: a year of
        sessions is 250 seeks, not a read of their ticks.
        """
        if not windows:
            return []
        u = find_underlying(underlying)
        ts_type = self._ts_type()
        days = sa.values(sa.column("n", sa.Integer), sa.column("day", sa.Text), sa.column("t0", ts_type),
                         sa.column("t1", ts_type), name="windows").data(
            [(n, day.isoformat(), normalize_ts(start), normalize_ts(end))
             for n, (day, start, end) in enumerate(windows)]).cte("windows")
        i = instruments.c
        idx = ltp_ticks.alias("idx")
        close = (sa.select(sa.func.max(idx.c.ts))
                 .where(idx.c.symbol == u.index_symbol, idx.c.ts >= days.c.t0, idx.c.ts <= days.c.t1)
                 .scalar_subquery())
        after = (sa.select(sa.func.min(i.expiry))
                 .where(i.underlying == u.base, i.kind.in_((CE, PE)), i.expiry > days.c.day)
                 .scalar_subquery())
        closes = sa.select(days.c.n, days.c.day, close.label("ts"), after.label("expiry")).subquery("closes")
        spot = ltp_ticks.alias("spot")
        atm = self._atm_strike(spot.c.ltp, u.strike_step)
        columns = [closes.c.day, closes.c.ts, spot.c.ltp, closes.c.expiry, atm]
        joins = closes.outerjoin(spot, sa.and_(spot.c.symbol == u.index_symbol, spot.c.ts == closes.c.ts))
        for kind in (CE, PE):
            contract = instruments.alias(f"{kind.lower()}_contract")
            leg = ltp_ticks.alias(kind.lower())
            joins = (joins.outerjoin(contract, sa.and_(contract.c.underlying == u.base,
                                                       contract.c.kind == kind,
                                                       contract.c.expiry == closes.c.expiry,
                                                       contract.c.strike == atm))
                     .outerjoin(leg, sa.and_(leg.c.symbol == contract.c.symbol, leg.c.ts == closes.c.ts)))
            columns.append(leg.c.iv)
        stmt = sa.select(*columns).select_from(joins).order_by(closes.c.n)
        out = []
        for day, ts, spot_ltp, expiry, strike, ce_iv, pe_iv in self._fetch(stmt):
            out.append({"day": date.fromisoformat(day), "ts": ts, "spot": spot_ltp, "expiry": expiry,
                        "strike": None if strike is None or spot_ltp is None else float(strike),
                        "ce_iv": ce_iv, "pe_iv": pe_iv})
        return out
