"""Store write and read speed against raw sqlite3 in the same run. Prints one JSON object.

    python bench/bench_store.py [--snapshots 1000]

* snapshot writes: TickStore.write_snapshot (one transaction per ~90-row snapshot, as the
  collector does) vs raw sqlite3 executemany + commit with the same schema and pragmas;
* bulk writes: TickStore.bulk_writer (backfill path) vs raw sqlite3 executemany in one
  transaction;
* backfill: a whole simulated session (generation + storage), rows per second;
* as-of read: TickStore.snapshot_at vs the same two raw queries.
"""
from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datacentre.core.ticks import TICK_FIELDS, format_ts, tick_values  # noqa: E402
from datacentre.ops.backfill import backfill  # noqa: E402
from datacentre.sources import MarketSimulator  # noqa: E402
from datacentre.store.schema import sqlite_pragmas  # noqa: E402
from datacentre.store.tickstore import TickStore  # noqa: E402

DAY = date(2026, 11, 27)


def snapshots(n: int) -> list[tuple[str, list[dict]]]:
    sim = MarketSimulator(seed=1)
    return [(format_ts(m), ticks) for (m, ticks), _ in zip(sim.session(DAY, 5.0), range(n))]


def raw_connection(path: Path) -> sqlite3.Connection:
    """The same table and indexes as the store, and the connection settings the store gives
    each of its connections (WAL, synchronous=NORMAL, its page cache and busy timeout)."""
    TickStore(f"sqlite:///{path}").close()
    conn = sqlite3.connect(path)
    sqlite_pragmas(conn)
    return conn


INSERT = (f"INSERT OR IGNORE INTO ltp_ticks ({', '.join(TICK_FIELDS)}) "
          f"VALUES ({', '.join('?' for _ in TICK_FIELDS)})")


def rows_of(ts: str, ticks: list[dict]) -> list[tuple]:
    return [tick_values(t, ts) for t in ticks]


def per_snapshot(tmp: Path, snaps) -> dict:
    """Each snapshot is written by both in turn, each first every other time, so a busy
    machine slows both alike."""
    store = TickStore(f"sqlite:///{tmp / 'a.db'}")
    conn = raw_connection(tmp / "b.db")

    def theirs(ts, ticks) -> None:
        conn.executemany(INSERT, rows_of(ts, ticks))
        conn.commit()

    spent = {store.write_snapshot: 0.0, theirs: 0.0}
    for n, (ts, ticks) in enumerate(snaps):
        for write in (store.write_snapshot, theirs) if n % 2 else (theirs, store.write_snapshot):
            t0 = time.perf_counter()
            write(ts, ticks)
            spent[write] += time.perf_counter() - t0
    ours, raw = spent[store.write_snapshot], spent[theirs]
    rows = sum(len(t) for _, t in snaps)
    return {"snapshots": len(snaps), "rows": rows,
            "store_ms_per_snapshot": round(1000 * ours / len(snaps), 3),
            "raw_sqlite3_ms_per_snapshot": round(1000 * raw / len(snaps), 3),
            "overhead_x": round(ours / raw, 2)}


def bulk(tmp: Path, snaps) -> dict:
    store = TickStore(f"sqlite:///{tmp / 'c.db'}")
    t0 = time.perf_counter()
    with store.bulk_writer() as write:
        write(snaps)
    ours = time.perf_counter() - t0
    conn = raw_connection(tmp / "d.db")
    t0 = time.perf_counter()
    for ts, ticks in snaps:
        conn.executemany(INSERT, rows_of(ts, ticks))
    conn.commit()
    raw = time.perf_counter() - t0
    rows = sum(len(t) for _, t in snaps)
    return {"rows": rows, "store_rows_per_s": round(rows / ours), "raw_sqlite3_rows_per_s": round(rows / raw),
            "overhead_x": round(ours / raw, 2)}


def full_backfill(tmp: Path) -> dict:
    store = TickStore(f"sqlite:///{tmp / 'e.db'}")
    t0 = time.perf_counter()
    generated = sum(len(t) for _, t in MarketSimulator(seed=2).session(DAY - timedelta(days=1), 5.0))
    gen_s = time.perf_counter() - t0
    result = backfill(store, [DAY], interval=5.0, seed=2)
    return {"session_snapshots": result.snapshots, "rows": result.rows,
            "seconds": round(result.seconds, 2), "rows_per_s": round(result.rows_per_second),
            "generation_only_rows_per_s": round(generated / gen_s), "store": store}


def as_of(store: TickStore, repeats: int = 200) -> dict:
    stamps = store.timestamps()
    path = store.url.removeprefix("sqlite:///")
    conn = sqlite3.connect(path)
    picks = [stamps[(i * 37) % len(stamps)] for i in range(repeats)]
    ours, raw = [], []
    for ts in picks:
        t0 = time.perf_counter()
        store.snapshot_at(ts, "NIFTY")
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        at = conn.execute("SELECT max(ts) FROM ltp_ticks WHERE ts <= ?", (ts,)).fetchone()[0]
        conn.execute("SELECT * FROM ltp_ticks WHERE ts = ? AND symbol IN "
                     "(SELECT symbol FROM instruments WHERE underlying = 'NIFTY')", (at,)).fetchall()
        raw.append(time.perf_counter() - t0)
    return {"store_median_ms": round(1000 * statistics.median(ours), 3),
            "raw_sqlite3_median_ms": round(1000 * statistics.median(raw), 3),
            "store_rows": store.count()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--snapshots", type=int, default=1000)
    ap.add_argument("--skip-backfill", action="store_true",
                    help="writes only (bench_scale.py times reads on cached stores)")
    a = ap.parse_args()
    snaps = snapshots(a.snapshots)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        out = {"per_snapshot_commit": per_snapshot(tmp, snaps), "bulk_insert": bulk(tmp, snaps)}
        if a.skip_backfill:
            print(json.dumps(out, indent=2))
            return
        fb = full_backfill(tmp)
        store = fb.pop("store")
        out["backfill_one_session"] = fb
        out["snapshot_at"] = as_of(store)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
