"""The benchmark stores: simulated sessions written by the backfill's bulk path, cached.

    python bench/bigstore.py [--sessions 22] [--interval 5] [--seed 7]

A month of sessions at 5 s is 22 x 4,501 snapshots x ~110 ticks, about 10.9 million
rows (2.7 GB of SQLite). Building it takes minutes, so it is kept between runs under
``$DATACENTRE_BENCH_CACHE`` (default ``~/.cache/datacentre-bench``), in a file named by
its parameters: a store with other parameters is another file. It is built as
``<name>.partial.db`` and renamed only when every session is in, so an interrupted build
resumes (the backfill skips sessions that already hold ticks) and a cached file is whole.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datacentre.ops.backfill import backfill  # noqa: E402
from datacentre.store.tickstore import TickStore  # noqa: E402

#: The last session of every benchmark store: fixed, so the cache key is all the parameters.
LAST_SESSION = date(2026, 11, 27)
MONTH_SESSIONS = 22


def cache_dir() -> Path:
    return Path(os.environ.get("DATACENTRE_BENCH_CACHE") or Path.home() / ".cache" / "datacentre-bench")


@dataclass(frozen=True)
class StoreSpec:
    sessions: int = MONTH_SESSIONS
    interval: float = 5.0
    seed: int = 7

    @property
    def name(self) -> str:
        return f"ticks_{self.sessions}x_{self.interval:g}s_seed{self.seed}_to{LAST_SESSION:%Y%m%d}"

    @property
    def path(self) -> Path:
        return cache_dir() / f"{self.name}.db"

    def days(self) -> list[date]:
        """The ``sessions`` weekdays up to :data:`LAST_SESSION`, oldest first: plain weekdays,
        so the same file keeps meaning the same days whatever the exchange calendar says."""
        out, day = [], LAST_SESSION
        while len(out) < self.sessions:
            if day.weekday() < 5:
                out.append(day)
            day -= timedelta(days=1)
        return out[::-1]


def build(spec: StoreSpec, log=print) -> Path:
    """The cached store of ``spec`` (built first if missing); its path."""
    if spec.path.exists():
        return spec.path
    spec.path.parent.mkdir(parents=True, exist_ok=True)
    partial = spec.path.with_suffix(".partial.db")
    store = TickStore(f"sqlite:///{partial}")
    started = time.perf_counter()
    try:
        for number, day in enumerate(spec.days()):
            # One call per session so the log shows progress; the seed is that of a
            # single many-session backfill (seed + the session's number).
            result = backfill(store, [day], interval=spec.interval, seed=spec.seed + number)
            if result.rows:
                log(f"  {spec.name}: {day} {result.rows:,} rows in {result.seconds:.1f} s "
                    f"({time.perf_counter() - started:.0f} s so far)")
        store.checkpoint()
    finally:
        store.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{partial}{suffix}").unlink(missing_ok=True)
    partial.rename(spec.path)
    return spec.path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=MONTH_SESSIONS)
    ap.add_argument("--interval", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    print(build(StoreSpec(a.sessions, a.interval, a.seed)))


if __name__ == "__main__":
    main()
