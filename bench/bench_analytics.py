"""Replay steps and the day's series on a full-day store, against a raw sqlite3 baseline.

    python bench/bench_analytics.py [--interval 5] [--seed 7] [--steps 200] [--repeats 15]

Fills a temporary SQLite store with one simulated session (``MarketSimulator.session``:
09:15-15:30 IST every ``--interval`` seconds, about 110 ticks a snapshot; 4,500 snapshots
at 5 s), then times, on ``--steps`` random snapshot times:

* a **replay step** as the replay page does it: ``store.snapshot_at(ts, "NIFTY")``,
  ``chain_table`` (against the day's opening snapshot), ``smile``, ``max_pain``/``pcr``/
  ``skew_metrics``, and the figures ``oi_bars`` + ``smile_chart`` + ``spot_chart`` (with
  the replay cursor, over the day's series loaded once);
* the same as-of query with raw ``sqlite3`` (``MAX(ts) <= ?``, then that snapshot's rows of
  the underlying's instruments, as dicts): the baseline for ``snapshot_at``;

and, ``--repeats`` times each, ``store.underlying_series`` for the whole day (every
snapshot, at the default cap of 500 points, and at 1,000) plus ``series_frame`` and
the three day charts, and a live refresh (``ticks_frame`` + ``chain_table`` of the latest
snapshot's ticks).

Prints ONE JSON object with medians and 95th percentiles in milliseconds. The machine's
other load shows up in every number alike, baseline included.
"""
from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import raw_snapshot_at, summary  # noqa: E402

from datacentre import analytics as A  # noqa: E402
from datacentre.app import charts as C  # noqa: E402
from datacentre.sources.simulator import MarketSimulator  # noqa: E402
from datacentre.store.schema import sqlite_path  # noqa: E402
from datacentre.store.tickstore import TickStore  # noqa: E402

DAY = date(2026, 1, 2)
UNDERLYING = "NIFTY"




def fill(store: TickStore, seed: int, interval: float) -> tuple[int, int]:
    snapshots = list(MarketSimulator(seed=seed).session(DAY, interval))
    if hasattr(store, "bulk_writer"):
        with store.bulk_writer() as write:
            write(snapshots)
    else:
        for moment, ticks in snapshots:
            store.write_snapshot(moment, ticks)
    return len(snapshots), len(snapshots[0][1])




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    with tempfile.TemporaryDirectory() as tmp:
        store = TickStore(f"sqlite:///{Path(tmp) / 'day.db'}")
        started = time.perf_counter()
        snapshots, per_snapshot = fill(store, args.seed, args.interval)
        fill_s = time.perf_counter() - started
        raw = sqlite3.connect(sqlite_path(store.url))

        times = store.snapshot_times(UNDERLYING)
        start, end = A.day_bounds(times[0])
        opening = store.first_snapshot(start, end, UNDERLYING)
        series = A.series_frame(store.underlying_series(UNDERLYING, start, end))
        picks = [rng.choice(times) for _ in range(args.steps)]

        parts: dict[str, list[float]] = {k: [] for k in
                                         ("snapshot_at", "chain_table", "smile_and_figures_of_merit",
                                          "figures", "step")}
        baseline: list[float] = []
        for ts in picks:
            t0 = time.perf_counter()
            ticks = store.snapshot_at(ts, UNDERLYING)
            t1 = time.perf_counter()
            chain = A.chain_table(ticks, UNDERLYING, previous=opening)
            t2 = time.perf_counter()
            smile = A.smile(chain)
            pain = A.max_pain(chain)
            A.pcr(chain)
            A.skew_metrics(chain)
            t3 = time.perf_counter()
            C.oi_bars(chain, max_pain=pain)
            C.smile_chart(smile)
            C.spot_chart(series, cursor_ts=ts)
            t4 = time.perf_counter()
            raw_rows = raw_snapshot_at(raw, ts, UNDERLYING)
            t5 = time.perf_counter()
            if len(raw_rows) != len(ticks):
                raise SystemExit(f"baseline disagrees at {ts}: {len(raw_rows)} vs {len(ticks)} rows")
            for key, value in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)):
                parts[key].append(value)
            baseline.append(t5 - t4)

        default = store.SERIES_MAX_POINTS
        limits = {"all_snapshots": None, f"default_max_points_{default}": default, "max_points_1000": 1000}
        series_runs: dict[str, list[float]] = {k: [] for k in (*limits, "series_frame_and_3_charts",
                                                                "snapshot_times")}
        for _ in range(args.repeats):
            for key, limit in limits.items():
                t0 = time.perf_counter()
                rows = store.underlying_series(UNDERLYING, start, end, max_points=limit)
                series_runs[key].append(time.perf_counter() - t0)
            rows = store.underlying_series(UNDERLYING, start, end)
            t0 = time.perf_counter()
            frame = A.series_frame(rows)
            C.spot_chart(frame)
            C.oi_series_chart(frame)
            C.atm_iv_chart(frame)
            series_runs["series_frame_and_3_charts"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            store.snapshot_times(UNDERLYING, start, end)
            series_runs["snapshot_times"].append(time.perf_counter() - t0)

        latest = store.snapshot_at(times[-1])
        live: list[float] = []
        for _ in range(args.repeats * 10):
            t0 = time.perf_counter()
            A.chain_table(A.ticks_frame(latest), UNDERLYING, previous=opening)
            live.append(time.perf_counter() - t0)
        raw.close()
        store.close()

    print(json.dumps({
        "store": {"snapshots": snapshots, "ticks_per_snapshot": per_snapshot,
                  "rows": snapshots * per_snapshot, "fill_s": round(fill_s, 1)},
        "replay_step_ms": summary(parts["step"]),
        "replay_parts_ms": {k: summary(v) for k, v in parts.items() if k != "step"},
        "baseline_raw_sqlite3_asof_ms": summary(baseline),
        "underlying_series_day_ms": {k: summary(v) for k, v in series_runs.items()},
        "live_refresh_chain_ms": summary(live),
    }, indent=2))


if __name__ == "__main__":
    main()
