"""Run every benchmark and print one JSON object keyed by benchmark name.

    python bench/run.py [--only store,pricing,...]

Each benchmark is a script in this folder that prints one JSON object; each measures
its own baseline in the same run (raw sqlite3, a bare websockets broadcast loop,
a scalar reference library), since absolute times on a shared machine are noisy.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = {
    "pricing": "bench_pricing.py",
    "store": "bench_store.py",
    "analytics": "bench_analytics.py",
    "replay_step": "bench_replay_step.py",
    "broadcast": "bench_broadcast.py",
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="comma-separated names: " + ", ".join(BENCHES))
    a = ap.parse_args()
    names = a.only.split(",") if a.only else list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        ap.error(f"unknown benchmark(s): {', '.join(unknown)}")
    results = {}
    for name in names:
        script = HERE / BENCHES[name]
        started = time.perf_counter()
        print(f"running {name} ...", file=sys.stderr, flush=True)
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
        elapsed = round(time.perf_counter() - started, 1)
        if proc.returncode != 0:
            results[name] = {"error": proc.stderr.strip().splitlines()[-1:], "elapsed_s": elapsed}
            continue
        start = proc.stdout.find("{")
        results[name] = json.loads(proc.stdout[start:]) if start >= 0 else {"output": proc.stdout}
    print(json.dumps(results, indent=2))
    return 0 if all("error" not in r for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
