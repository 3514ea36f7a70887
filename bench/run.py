"""Run every benchmark; print a table and, as the last line, one flat JSON object of figures.

    python bench/run.py [--quick] [--only store,pricing,...] [--json-out results.json]

Each benchmark is a script in this folder run in its own process; each measures its own
baseline in the same run (raw sqlite3, a bare websockets broadcast loop, a scalar
reference library), since absolute times on a shared machine are noisy. ``--quick``
(under 4 minutes on 2 cores once the month store is cached) takes fewer samples, not
smaller stores: the store figures are always taken on a month of sessions (see
``bigstore.py``; the first run builds it, which takes several minutes, and caches it).

Every figure in the JSON comes from one function of :data:`FIGURES`, named by its key;
the table shows each against its target.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: name -> (script, full-run arguments, quick-run arguments)
BENCHES: dict[str, tuple[str, list[str], list[str]]] = {
    "pricing": ("bench_pricing.py", [], ["--repeats", "10"]),
    "store": ("bench_store.py", [], ["--snapshots", "400", "--skip-backfill"]),
    "scale": ("bench_scale.py", ["--export-sessions", "5"], ["--repeats", "20", "--month-only"]),
    "replay_step": ("bench_replay_step.py", ["--cached"], ["--cached", "--steps", "60", "--no-export"]),
    "pages": ("bench_pages.py", [], ["--rounds", "1"]),
    "broadcast": ("bench_broadcast.py", ["--modes", "raw", "--skip-snapshot-format"],
                  ["--modes", "raw", "--skip-snapshot-format", "--snapshots", "8", "--budget", "70"]),
    "postgres": ("bench_postgres.py", [],
                 ["--snapshots", "60", "--bulk-snapshots", "150", "--latency-snapshots", "15",
                  "--migration-snapshots", "300", "--no-sizing"]),
}


def _get(data: dict, *path, default=None):
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return default
        data = data[key]
    return data


def _ratio(a, b, digits: int = 2):
    return round(a / b, digits) if a and b else None


def store_figures(r: dict) -> dict:
    snap = r["per_snapshot_commit"]
    ours, raw = snap["store_ms_per_snapshot"], snap["raw_sqlite3_ms_per_snapshot"]
    return {"ingest_rows_per_s": round(snap["rows"] / (snap["snapshots"] * ours / 1000)),
            "ingest_ratio_vs_sqlite3": _ratio(raw, ours)}


def broadcast_figures(r: dict) -> dict:
    ours = _get(r, "variants", "datacentre.tick.raw", default={})
    naive = _get(r, "variants", "baseline.tick.raw", default={})
    p99 = _get(ours, "last_tick_ms", "p99")
    complete = ours.get("snapshots_complete") == ours.get("snapshots_expected")
    return {"fanout_clients": r.get("clients"),
            "fanout_latency_p50_ms": _get(ours, "last_tick_ms", "p50"),
            "fanout_latency_p99_ms": p99 if complete else None,
            "fanout_naive_p99_ms": _get(naive, "last_tick_ms", "p99"),
            "fanout_ratio_vs_naive_broadcast": _ratio(_get(naive, "last_tick_ms", "p99"), p99, 1),
            "broadcaster_rss_mb": r.get("server_rss_mb")}


def pricing_figures(r: dict) -> dict:
    return {"iv_per_s": round(1e6 / r["us_per_option"]), "iv_ratio_vs_vollib": r["speedup"],
            "iv_max_error": r["max_abs_err_vs_true"]}


def scale_figures(r: dict) -> dict:
    month, session = r["month"], r.get("session", {})
    out = {"store_rows": month["store_rows"]}
    for key in ("asof_chain_ms", "history_query_ms", "history_raw_sqlite3_ms", "latest_all_ms", "candles_ms"):
        out[key] = _get(month, key, "median")
        out[f"{key.removesuffix('_ms')}_cpu_ms"] = _get(month, key, "cpu_median")
    out["export_rows_per_s"] = month["export"]["rows_per_s"]
    out["export_peak_mb"] = month["export"]["peak_mb"]
    out["export_growth_mb"] = round(month["export"]["peak_mb"] - month["export"]["baseline_mb"], 1)
    out["export_rows"] = month["export"]["rows"]
    out["export_raw_sqlite3_csv_rows_per_s"] = month["export"]["raw_sqlite3_csv_rows_per_s"]
    out["export_cpu_rows_per_s"] = month["export"]["cpu_rows_per_s"]
    out["export_raw_sqlite3_csv_cpu_rows_per_s"] = month["export"]["raw_sqlite3_csv_cpu_rows_per_s"]
    if session:  # the full run: how each figure grows from one session to a month
        out["session_store_rows"] = session["store_rows"]
        for key in ("asof_chain_ms", "history_query_ms", "latest_all_ms", "candles_ms"):
            out[f"session_{key}"] = _get(session, key, "median")
        out["session_export_rows_per_s"] = session["export"]["rows_per_s"]
    return out


def replay_figures(r: dict) -> dict:
    step = r["replay_step_ms"]
    return {"replay_step_ms_p95": step["p95"], "replay_step_ms_median": step["median"],
            "replay_store_rows": _get(r, "store", "rows")}


def pages_figures(r: dict) -> dict:
    return {"page_render_ms_max": r["max_ms"], "page_slowest": r["slowest"]}


def postgres_figures(r: dict) -> dict:
    """Every number of the PostgreSQL benchmark, flattened under ``pg_``."""
    out: dict = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}_{k}", v)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[prefix] = value
    walk("pg", {k: v for k, v in r.items() if k != "server"})
    return out


FIGURES: dict[str, Callable[[dict], dict]] = {
    "store": store_figures, "broadcast": broadcast_figures, "pricing": pricing_figures,
    "scale": scale_figures, "replay_step": replay_figures, "pages": pages_figures,
    "postgres": postgres_figures,
}

#: figure -> (comparison, target) in quick mode on this machine
TARGETS: dict[str, tuple[str, float]] = {
    "ingest_ratio_vs_sqlite3": (">=", 0.9),
    "fanout_latency_p99_ms": ("<=", 25.0),
    "fanout_ratio_vs_naive_broadcast": (">=", 5.0),
    "iv_ratio_vs_vollib": (">=", 200.0),
    "iv_max_error": ("<=", 1e-9),
    "store_rows": (">=", 10_000_000),
    "asof_chain_ms": ("<=", 10.0),
    "history_query_ms": ("<=", 30.0),
    "page_render_ms_max": ("<=", 1000.0),
    "replay_step_ms_p95": ("<=", 100.0),
    "export_rows_per_s": (">=", 300_000),
    "export_growth_mb": ("<", 100.0),
}


def meets(key: str, value) -> bool | None:
    if key not in TARGETS or not isinstance(value, (int, float)):
        return None
    op, target = TARGETS[key]
    return {">=": value >= target, "<=": value <= target, "<": value < target}[op]


def run_one(name: str, quick: bool) -> tuple[dict, float, str | None]:
    script, full, short = BENCHES[name]
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, str(HERE / script), *(short if quick else full)],
                          capture_output=True, text=True, cwd=HERE.parent)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        return {}, elapsed, lines[-1] if lines else f"exit status {proc.returncode}"
    start = proc.stdout.find("{")
    try:
        return json.loads(proc.stdout[start:]), elapsed, None
    except ValueError as exc:
        return {}, elapsed, f"unreadable output: {exc}"


def table(figures: dict) -> str:
    lines = [f"{'figure':40} {'value':>16}  target"]
    for key, value in figures.items():
        if key.startswith("pg_") and key not in ("pg_writes_snapshot_ratio",):
            continue
        target = " ".join(str(t) for t in TARGETS[key]) if key in TARGETS else ""
        ok = meets(key, value)
        mark = "" if ok is None else ("  ok" if ok else "  MISSED")
        shown = f"{value:.3g}" if isinstance(value, float) and abs(value) < 1e-3 else str(value)
        lines.append(f"{key:40} {shown:>16}  {target}{mark}")
    pg = [k for k in figures if k.startswith("pg_")]
    if pg:
        lines.append(f"(+ {len(pg)} PostgreSQL figures pg_* in the JSON)")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer samples (under 4 minutes)")
    ap.add_argument("--only", help="comma-separated names: " + ", ".join(BENCHES))
    ap.add_argument("--json-out", type=Path, help="also write every benchmark's full output here")
    a = ap.parse_args()
    names = a.only.split(",") if a.only else list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        ap.error(f"unknown benchmark(s): {', '.join(unknown)}")
    started = time.perf_counter()
    figures: dict = {"quick": a.quick, "cpus": os.cpu_count(),
                     "loadavg_1m_start": round(os.getloadavg()[0], 2)}
    raw: dict = {}
    errors: dict = {}
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        result, elapsed, error = run_one(name, a.quick)
        figures[f"elapsed_{name}_s"] = round(elapsed, 1)
        raw[name] = result
        if error:
            errors[name] = error
            print(f"  {name} failed: {error}", file=sys.stderr, flush=True)
            continue
        try:
            figures.update(FIGURES[name](result))
        except (KeyError, TypeError, ZeroDivisionError) as exc:
            errors[name] = f"figures missing: {exc!r}"
    figures["loadavg_1m_end"] = round(os.getloadavg()[0], 2)
    figures["elapsed_s"] = round(time.perf_counter() - started, 1)
    figures["targets_missed"] = [k for k in TARGETS if k in figures and meets(k, figures[k]) is False]
    if errors:
        figures["errors"] = errors
    if a.json_out:
        a.json_out.write_text(json.dumps({"figures": figures, "benchmarks": raw}, indent=2))
    print(table(figures))
    print(json.dumps(figures))
    return 1 if errors.keys() - {"postgres"} else 0


if __name__ == "__main__":
    sys.exit(main())
