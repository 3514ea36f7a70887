"""Helpers shared by the benchmarks: percentile summaries and the raw sqlite3 as-of baseline."""
from __future__ import annotations

import sqlite3
import statistics

from datacentre.core.ticks import TICK_FIELDS


def summary(samples: list[float]) -> dict:
    """Median and p95 in milliseconds of samples in seconds."""
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return {"median": round(statistics.median(ms), 2), "p95": round(p95, 2), "n": len(ms)}


def raw_snapshot_at(conn: sqlite3.Connection, ts: str, underlying: str) -> list[dict]:
    """The store's as-of snapshot query written by hand: the baseline for ``snapshot_at``."""
    (at,) = conn.execute("SELECT MAX(ts) FROM ltp_ticks WHERE ts <= ?", (ts,)).fetchone()
    if at is None:
        return []
    cur = conn.execute(
        f"SELECT {', '.join(TICK_FIELDS)} FROM ltp_ticks WHERE ts = ? AND symbol IN "
        "(SELECT symbol FROM instruments WHERE underlying = ?) ORDER BY symbol", (at, underlying))
    return [dict(zip(TICK_FIELDS, row)) for row in cur]
