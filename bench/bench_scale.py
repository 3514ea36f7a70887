"""The store's reads at scale: one session against a month of sessions. Prints one JSON object.

    python bench/bench_scale.py [--sessions 22] [--repeats 30] [--export-sessions 1]

Opens (building first if missing, see ``bigstore.py``) the cached one-session store and
the ``--sessions`` store, and on each times, with the store's own methods:

* ``asof_chain_ms``: ``snapshot_at(moment, "NIFTY")``, the whole chain as of a random
  moment inside a random session (median and p95 of ``--repeats``);
* ``history_query_ms``: ``history("NIFTY 50", open, close)`` of a random session, and
  ``history_raw_sqlite3_ms`` the same query on a raw ``sqlite3`` connection (the floor);
* ``latest_all_ms``: ``latest_all()``, the newest tick of every symbol;
* ``candles_ms``: ``candles("NIFTY 50", 1, open, close)``, when the store has candles;
* ``export_rows_per_s`` / ``export_peak_mb``: ``csvio.export_csv`` (the function behind
  ``python -m datacentre export`` and the export page) of every symbol over
  ``--export-sessions`` sessions into a file, in a fresh process whose peak resident
  memory is the figure (``export_baseline_mb`` is that process's size before exporting);
  then the same file written with nothing but ``sqlite3`` and ``csv`` (the floor), each
  also in rows per CPU second (what a busy machine's wall clock hides).

``main()`` returns ``{"session": {...}, "month": {...}}`` (no ``session`` with ``--month-only``).
"""
from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bigstore import StoreSpec, build  # noqa: E402

from datacentre.core.instruments import session_bounds  # noqa: E402
from datacentre.core.ticks import TICK_FIELDS, format_ts  # noqa: E402
from datacentre.store.schema import CACHE_KIB  # noqa: E402
from datacentre.store.tickstore import TickStore  # noqa: E402

UNDERLYING = "NIFTY"
INDEX = "NIFTY 50"


def timed(func: Callable[[], object], repeats: int) -> dict:
    """Median and p95 in milliseconds of ``repeats`` calls (after one untimed warm-up), and
    the median CPU time (on a busy machine the wall clock also counts waiting for a core)."""
    func()
    samples, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        func()
        samples.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return _summary(samples, cpu)


def _summary(samples: list[float], cpu: list[float]) -> dict:
    samples = sorted(samples)
    return {"median": round(statistics.median(samples), 2),
            "p95": round(samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))], 2),
            "cpu_median": round(statistics.median(cpu), 2)}


def _random_session(spec: StoreSpec, rng: random.Random) -> tuple[datetime, datetime]:
    return session_bounds(rng.choice(spec.days()))


def asof_chain(store: TickStore, spec: StoreSpec, rng: random.Random, repeats: int) -> dict:
    def one() -> None:
        start, end = _random_session(spec, rng)
        moment = start + timedelta(seconds=rng.uniform(0, (end - start).total_seconds()))
        if not store.snapshot_at(format_ts(moment), UNDERLYING):
            raise SystemExit(f"no chain as of {moment}")
    return timed(one, repeats)


def history(store: TickStore, spec: StoreSpec, rng: random.Random, repeats: int) -> tuple[dict, dict]:
    """``store.history`` of a random session, and the same query on a raw ``sqlite3``
    connection with the same page cache size (the floor), on the same sessions; the two
    take turns going first, so neither always finds the other's pages in the OS cache."""
    raw = sqlite3.connect(f"file:{spec.path}?mode=ro", uri=True)
    raw.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    sql = (f"SELECT {', '.join(TICK_FIELDS)} FROM ltp_ticks WHERE symbol = ? AND ts >= ? AND ts <= ? "
           "ORDER BY ts")

    def ours(start: str, end: str) -> None:
        if not store.history(INDEX, start, end):
            raise SystemExit(f"no history of {INDEX} from {start}")

    def floor(start: str, end: str) -> None:
        raw.execute(sql, (INDEX, start, end)).fetchall()

    times: dict = {ours: ([], []), floor: ([], [])}
    try:
        for i in range(repeats + 1):  # the first session warms up, untimed
            start, end = (format_ts(m) for m in _random_session(spec, rng))
            for func in (ours, floor) if i % 2 else (floor, ours):
                t0, c0 = time.perf_counter(), time.process_time()
                func(start, end)
                if i:
                    times[func][0].append((time.perf_counter() - t0) * 1000)
                    times[func][1].append((time.process_time() - c0) * 1000)
    finally:
        raw.close()
    return _summary(*times[ours]), _summary(*times[floor])


def latest_all(store: TickStore, repeats: int) -> dict:
    return timed(lambda: store.latest_all(), repeats)


def candles(store: TickStore, spec: StoreSpec, rng: random.Random, repeats: int) -> dict | None:
    if not hasattr(store, "candles"):
        return None

    def one() -> None:
        start, end = _random_session(spec, rng)
        store.candles(INDEX, 1, format_ts(start), format_ts(end))
    return timed(one, repeats)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 1e6


def _peak_rss_mb() -> float:
    """This process's peak resident size: VmHWM, which starts afresh at exec (ru_maxrss
    would carry over the parent's peak into a spawned child)."""
    with open("/proc/self/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return kib * 1024 / 1e6


def _export_child(url: str, start: str, end: str, out: str, answer) -> None:
    from datacentre.store.csvio import export_csv

    store = TickStore(url, create=False)
    store.count(None, start, start)  # connects, so the baseline holds what every export needs
    before = _rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    with open(out, "w", newline="") as handle:
        rows = export_csv(store, handle, start_ts=start, end_ts=end)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = _peak_rss_mb()
    floor = _raw_floor(store.url, start, end, out)
    answer.send({"rows": rows, "seconds": seconds, "cpu_s": cpu, "baseline_mb": before,
                 "peak_mb": peak, **floor})


def _raw_floor(url: str, start: str, end: str, out: str) -> dict:
    """The same file with nothing but ``sqlite3`` and ``csv``: the floor of any export
    written in Python (decoding rows and formatting floats is nearly all of it)."""
    conn = sqlite3.connect(f"file:{url.removeprefix('sqlite:///')}?mode=ro", uri=True)
    t0, c0 = time.perf_counter(), time.process_time()
    cursor = conn.execute(f"SELECT {', '.join(TICK_FIELDS)} FROM ltp_ticks WHERE ts >= ? AND ts <= ? "
                          "ORDER BY ts, symbol", (start, end))
    with open(out, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(TICK_FIELDS)
        while rows := cursor.fetchmany(5_000):
            writer.writerows(rows)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    conn.close()
    return {"raw_seconds": seconds, "raw_cpu_s": cpu}


def export(spec: StoreSpec, sessions: int) -> dict:
    """Every symbol over the store's last ``sessions`` sessions, in a fresh process."""
    days = spec.days()[-sessions:]
    start, end = format_ts(session_bounds(days[0])[0]), format_ts(session_bounds(days[-1])[1])
    ctx = mp.get_context("spawn")
    ours, theirs = ctx.Pipe(duplex=False)
    with tempfile.TemporaryDirectory() as tmp:
        proc = ctx.Process(target=_export_child,
                           args=(f"sqlite:///{spec.path}", start, end, f"{tmp}/out.csv", theirs))
        proc.start()
        result = ours.recv()
        proc.join()
    rows = result["rows"]
    return {"rows": rows, "rows_per_s": round(rows / result["seconds"]),
            "cpu_rows_per_s": round(rows / result["cpu_s"]),
            "raw_sqlite3_csv_rows_per_s": round(rows / result["raw_seconds"]),
            "raw_sqlite3_csv_cpu_rows_per_s": round(rows / result["raw_cpu_s"]),
            "peak_mb": round(result["peak_mb"], 1), "baseline_mb": round(result["baseline_mb"], 1),
            "sessions": len(days)}


def measure(spec: StoreSpec, repeats: int, export_sessions: int, seed: int = 1) -> dict:
    path = build(spec, log=lambda line: print(line, file=sys.stderr, flush=True))
    rng = random.Random(seed)
    store = TickStore(f"sqlite:///{path}", create=False)
    try:
        ours, floor = history(store, spec, rng, repeats)
        out = {"store_rows": store.max_id(), "store_mb": round(path.stat().st_size / 1e6),
               "asof_chain_ms": asof_chain(store, spec, rng, repeats),
               "history_query_ms": ours, "history_raw_sqlite3_ms": floor,
               "latest_all_ms": latest_all(store, max(3, repeats // 10)),
               "candles_ms": candles(store, spec, rng, repeats)}
    finally:
        store.close()
    out["export"] = export(spec, min(export_sessions, spec.sessions))
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=StoreSpec().sessions)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--export-sessions", type=int, default=1)
    ap.add_argument("--month-only", action="store_true", help="skip the one-session store")
    a = ap.parse_args(argv)
    out = {} if a.month_only else {"session": measure(StoreSpec(sessions=1), a.repeats, a.export_sessions)}
    out["month"] = measure(StoreSpec(sessions=a.sessions), a.repeats, a.export_sessions)
    return out


if __name__ == "__main__":
    print(json.dumps(main()))
