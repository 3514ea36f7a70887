"""Candles: OHLC, traded volume, VWAP and the last OI and Greeks per symbol and interval.

One SQL statement (:func:`candle_sql`) computes them on either engine; the candlestick
charts read it through :meth:`CandleQueries.candles` and the original data centre's
``ohlc_1min`` table is filled from it (:mod:`datacentre.store.compat`).

Definitions, for the ticks of a symbol with ``start <= ts < end``:

* a candle's ``ts`` is the start of its interval; intervals are aligned to the epoch,
  which in IST puts them on the minute grid of the session (09:15, 09:20, ...);
* ``open``/``close`` are the first/last ``ltp``, ``high``/``low`` the extremes;
* ``volume`` is the volume **traded in the candle**. The store's ``volume`` is the
  cumulative day volume, so each tick adds its increase over the symbol's previous tick
  of the same IST day (found with one index seek when that tick is before ``start``).
  A symbol's first tick of a day adds its whole cumulative volume only when it falls in
  the opening minute (before 09:16 IST); later, the volume before it is not this
  candle's, and it adds 0. A decrease (a broker's correction) adds 0;
* ``vwap`` is the candle's volume-weighted price, sum(ltp x traded) / sum(traded), None
  when nothing traded (indices). A session VWAP is sum(vwap x volume) / sum(volume)
  over the candles so far;
* ``oi``, ``delta``, ``gamma``, ``theta``, ``vega``, ``iv`` are the last tick's; an IV of 0
  (how the original data centre stored "unknown") is None;
* ``ticks`` counts the ticks in the candle.

Timestamps written without ``+00:00`` (stores of the original data centre) are read as
UTC: SQLite's date functions parse both forms, so buckets and the range are exact.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from datacentre.core.errors import ConfigError, StoreError
from datacentre.core.ticks import format_ts, parse_ts

#: Candle lengths in minutes: each divides the 5 h 30 min IST offset and 09:15, so
#: epoch-aligned candles start on the session's grid.
INTERVAL_MINUTES = (1, 3, 5, 15)
IST_OFFSET_S = 19_800
DAY_S = 86_400
#: Seconds into the IST day at which the opening minute (09:15) ends.
OPENING_MINUTE_END_S = 9 * 3600 + 16 * 60
CANDLE_FIELDS = ("ts", "open", "high", "low", "close", "volume", "vwap", "oi", "delta", "gamma",
                 "theta", "vega", "iv", "ticks")
_LAST_FIELDS = ("oi", "delta", "gamma", "theta", "vega")


def interval_seconds(interval: int | str) -> int:
    """``1``/``5`` (minutes) or ``"1min"``/``"5min"``/``"5m"`` -> seconds."""
    minutes: Any = interval
    if isinstance(interval, str):
        text = interval.strip().lower()
        for suffix in ("minutes", "minute", "mins", "min", "m"):
            if text.endswith(suffix):
                text = text[: -len(suffix)].strip()
                break
        minutes = int(text) if text.isdigit() else None
    if isinstance(minutes, bool) or minutes not in INTERVAL_MINUTES:
        raise ConfigError(f"candle interval must be one of {', '.join(map(str, INTERVAL_MINUTES))} "
                          f"minutes (e.g. 1 or '5min'), got {interval!r}")
    return int(minutes) * 60


def _epoch(dialect: str, column: str) -> str:
    if dialect == "postgresql":
        return f"CAST(floor(extract(epoch FROM {column})) AS BIGINT)"
    return f"CAST(strftime('%s', {column}) AS INTEGER)"


def _from_epoch(dialect: str, seconds: str) -> str:
    """A timestamp comparable with the ``ts`` column, ``seconds`` after the epoch."""
    if dialect == "postgresql":
        return f"to_timestamp({seconds})"
    return f"strftime('%Y-%m-%dT%H:%M:%S', {seconds}, 'unixepoch')"


def candle_sql(dialect: str, seconds: int, *, symbols: bool, lower: bool, upper: bool) -> str:
    """The candle statement. Binds: ``symbols`` (expanding), ``scan_lo``/``scan_hi`` (index
    range), and on SQLite ``exact_lo``/``exact_hi`` (``%Y-%m-%dT%H:%M:%f`` text)."""
    ep = _epoch(dialect, "ts")
    real = "DOUBLE PRECISION" if dialect == "postgresql" else "REAL"
    where = []
    if symbols:
        where.append("symbol IN :symbols")
    if lower:
        where.append("ts >= :scan_lo")
    if upper:
        where.append("ts < :scan_hi")
    exact = []
    if dialect == "sqlite":
        # The index range is widened to whole seconds (a bare "08:14:00" sorts before
        # "08:14:00+00:00"); this keeps exactly the instants asked for.
        if lower:
            exact.append("strftime('%Y-%m-%dT%H:%M:%f', ts) >= :exact_lo")
        if upper:
            exact.append("strftime('%Y-%m-%dT%H:%M:%f', ts) < :exact_hi")
    day_start = _from_epoch(dialect, f"day * {DAY_S} - {IST_OFFSET_S}")
    last = ",\n  ".join(f"MAX(CASE WHEN last THEN {f} END) AS {f}" for f in _LAST_FIELDS)
    # One window, one sort: each tick sees its symbol's previous and next tick, which gives
    # the volume traded since the previous tick of the same IST day and whether the tick
    # opens or closes its candle.
    return f"""
WITH picked AS (
  SELECT symbol, token, ts, ltp, volume, oi, delta, gamma, theta, vega, iv, {ep} AS ep
  FROM ltp_ticks {"WHERE " + " AND ".join(where) if where else ""}
), stepped AS (
  SELECT picked.*, ep - ep % {seconds} AS bucket, (ep + {IST_OFFSET_S}) / {DAY_S} AS day
  FROM picked WHERE {" AND ".join(["ep IS NOT NULL", *exact])}
), marked AS (
  SELECT stepped.*, LAG(volume) OVER w AS prev_volume, LAG(day) OVER w AS prev_day,
    LAG(bucket) OVER w AS prev_bucket, LEAD(bucket) OVER w AS next_bucket
  FROM stepped WINDOW w AS (PARTITION BY symbol ORDER BY ep, ts)
), based AS (
  SELECT marked.*,
    CASE WHEN prev_day = day THEN prev_volume ELSE
      (SELECT p.volume FROM ltp_ticks p WHERE p.symbol = marked.symbol AND p.ts < marked.ts
         AND p.ts >= {day_start} ORDER BY p.ts DESC LIMIT 1) END AS before,
    (prev_bucket IS NULL OR prev_bucket <> bucket) AS first,
    (next_bucket IS NULL OR next_bucket <> bucket) AS last
  FROM marked
), traded AS (
  SELECT based.*,
    CASE WHEN volume IS NULL THEN NULL
         WHEN before IS NULL THEN
           CASE WHEN (ep + {IST_OFFSET_S}) % {DAY_S} < {OPENING_MINUTE_END_S} THEN volume ELSE 0 END
         WHEN volume > before THEN volume - before ELSE 0 END AS traded
  FROM based
)
SELECT symbol, bucket,
  MAX(CASE WHEN first THEN ltp END) AS open, MAX(ltp) AS high, MIN(ltp) AS low,
  MAX(CASE WHEN last THEN ltp END) AS close,
  SUM(traded) AS volume,
  SUM(traded * ltp) / NULLIF(CAST(SUM(CASE WHEN ltp IS NOT NULL THEN traded END) AS {real}), 0) AS vwap,
  {last},
  MAX(CASE WHEN last THEN NULLIF(iv, 0) END) AS iv,
  MAX(CASE WHEN last THEN token END) AS token,
  MAX(CASE WHEN last THEN volume END) AS day_volume,
  MAX(CASE WHEN last THEN ts END) AS last_ts,
  COUNT(*) AS ticks
FROM traded GROUP BY symbol, bucket ORDER BY symbol, bucket
"""


def _whole_second(moment: datetime, *, up: bool) -> datetime:
    floor = moment.replace(microsecond=0)
    return floor + timedelta(seconds=1) if up and floor != moment else floor


def _bounds(dialect: str, start, end) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, value in (("lo", start), ("hi", end)):
        if value is None:
            continue
        moment = parse_ts(value)
        if dialect == "postgresql":
            params[f"scan_{name}"] = moment
            continue
        # Every text form of an instant starts with its whole second ("08:14:00",
        # "08:14:00+00:00", "08:14:00.5+00:00"), so whole-second bounds miss none of them.
        edge = _whole_second(moment, up=name == "hi")
        params[f"scan_{name}"] = edge.strftime("%Y-%m-%dT%H:%M:%S")
        params[f"exact_{name}"] = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
    return params


def _number(value):
    # PostgreSQL sums integers as numeric (Decimal)
    return None if value is None else int(value)


class CandleQueries:
    """Candles of the store's ticks; mixed into :class:`~datacentre.store.tickstore.TickStore`."""

    engine: sa.Engine
    dialect: str

    def _candle_rows(self, symbols: Sequence[str] | None, interval: int | str, start, end) -> list[dict]:
        """Candles of ``symbols`` (None: every symbol with ticks in the range), each with
        ``symbol``, ``token``, ``last_ts`` (the last tick's time) and ``day_volume`` (its
        cumulative day volume) besides :data:`CANDLE_FIELDS`."""
        seconds = interval_seconds(interval)
        if symbols is not None and not symbols:
            return []
        sql = candle_sql(self.dialect, seconds, symbols=symbols is not None, lower=start is not None,
                         upper=end is not None)
        stmt = sa.text(sql)
        params = _bounds(self.dialect, start, end)
        if symbols is not None:
            stmt = stmt.bindparams(sa.bindparam("symbols", expanding=True))
            params["symbols"] = list(symbols)
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(stmt, params).mappings().all()
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"candles failed: {exc.__class__.__name__}: "
                             f"{getattr(exc, 'orig', None) or exc}") from exc
        out = []
        for row in rows:
            candle = dict(row)
            candle["ts"] = format_ts(datetime.fromtimestamp(int(candle.pop("bucket")), UTC))
            last = candle["last_ts"]
            candle["last_ts"] = format_ts(last) if isinstance(last, datetime) else last
            candle["volume"] = _number(candle["volume"])
            candle["oi"] = _number(candle["oi"])
            candle["day_volume"] = _number(candle["day_volume"])
            candle["ticks"] = int(candle["ticks"])
            out.append(candle)
        return out

    def candles(self, symbol: str, interval: int | str = 1, start=None, end=None) -> list[dict]:
        """``symbol``'s candles of ``interval`` minutes (1, 3, 5 or 15; ``"5min"`` works too)
        over the ticks with ``start <= ts < end`` (ISO text or datetimes; None: open-ended),
        oldest first: dicts of :data:`CANDLE_FIELDS` (see the module docstring).

        Computed in SQL from the ``(symbol, ts)`` index: a day of 5-second ticks is
        4,500 rows a symbol, a few milliseconds. A candle cut by ``start`` or ``end``
        holds only the ticks inside the range.
        """
        if not isinstance(symbol, str) or not symbol:
            raise ConfigError(f"candles need a symbol such as 'NIFTY 50', got {symbol!r}")
        rows = self._candle_rows([symbol], interval, start, end)
        return [{k: row[k] for k in CANDLE_FIELDS} for row in rows]
