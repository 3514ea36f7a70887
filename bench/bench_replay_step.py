"""One replay step as the replay page makes it, on a full-day store, against a raw sqlite3 baseline.

    python bench/bench_replay_step.py [--interval 5] [--seed 7] [--steps 200]

Backfills one simulated session into a temporary SQLite store (``backfill``: 09:15-15:30
IST every ``--interval`` seconds, about 110 ticks a snapshot; 4,501 snapshots at 5 s).
Then, as the page does when it opens a day, it loads what the page caches per day
(``st.cache_data`` keyed on db_url + day, excluded from the step): the snapshot times,
the day's series (``underlying_series`` -> ``series_frame``, gaps broken) and the
opening snapshot.

A **step** is timed on ``--steps`` random snapshot times, in the page's order:

* ``fetch``: ``store.snapshot_at(ts, "NIFTY")`` — the as-of query (the page's only read);
* ``compute``: ``player.replay_frame`` (chain against the open, smile, max pain, PCR, ATM IV,
  skew, the ATM +/- 8 window and the three figures: spot with the cursor, smile, OI bars)
  plus the opening chain the metrics compare with;
* ``render``: what ``st.plotly_chart`` and ``st.dataframe`` do on the server with them
  (``return_figure_from_figure_or_data`` + ``plotly.io.to_json`` per figure; the chain
  Styler through Streamlit's ``marshall_styler`` and Arrow serialisation).

The baseline is the same as-of query with raw ``sqlite3`` (``MAX(ts) <= ?``, then that
snapshot's rows of the underlying's instruments, as dicts), in the same run.

It also times the export page's download for the whole day (``export.write_export``,
byte-for-byte the CLI's ``python -m datacentre export``) for NIFTY and for every symbol,
in rows per second. Prints ONE JSON object; times in milliseconds.
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

import bigstore  # noqa: E402
import streamlit.logger  # noqa: E402
from common import raw_snapshot_at, summary  # noqa: E402

streamlit.logger.set_log_level("error")  # no "no runtime" notes from the page caches in bare mode

import plotly.io  # noqa: E402
import plotly.tools  # noqa: E402
from streamlit import dataframe_util  # noqa: E402
from streamlit.elements.lib.pandas_styler_utils import marshall_styler  # noqa: E402
from streamlit.proto.ArrowData_pb2 import ArrowData as ArrowDataProto  # noqa: E402

from datacentre import analytics  # noqa: E402
from datacentre.app import export, player, reads, tables  # noqa: E402
from datacentre.ops.backfill import BackfillResult, backfill  # noqa: E402
from datacentre.store.tickstore import TickStore, sqlite_path  # noqa: E402

DAY = date(2026, 1, 2)
UNDERLYING = "NIFTY"
ATM_WINDOW = 8






def render(frame: player.ReplayFrame) -> None:
    """The server side of drawing a step: three plotly charts and the styled chain."""
    for fig in frame.figures.values():
        figure = plotly.tools.return_figure_from_figure_or_data(fig, validate_figure=True)
        plotly.io.to_json(figure, validate=False)
    styler = tables.chain_view(frame.window)
    marshall_styler(ArrowDataProto(), styler, "bench")
    dataframe_util.convert_pandas_df_to_arrow_bytes(dataframe_util.convert_anything_to_pandas_df(styler))


def export_rate(store: TickStore, selection: export.ExportSelection, out: Path) -> dict:
    started = time.perf_counter()
    with out.open("wb") as handle:
        rows = export.write_export(store, selection, handle)
    seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds),
            "mb": round(out.stat().st_size / 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--cached", action="store_true",
                        help="step through the last session of the cached month store (bigstore.py)")
    parser.add_argument("--no-export", action="store_true", help="skip the export timings")
    args = parser.parse_args()
    rng = random.Random(args.seed)

    with tempfile.TemporaryDirectory() as tmp:
        if args.cached:
            spec = bigstore.StoreSpec(interval=args.interval)
            store = TickStore(f"sqlite:///{bigstore.build(spec)}", create=False)
            day = spec.days()[-1]
            filled = BackfillResult([day], 0, store.max_id(), 0.0)  # what the store holds
        else:
            day = DAY
            store = TickStore(f"sqlite:///{Path(tmp) / 'day.db'}")
            filled = backfill(store, [DAY], interval=args.interval, seed=args.seed)
        raw = sqlite3.connect(sqlite_path(store.url))

        # what the page caches per store and day
        started = time.perf_counter()
        start, end = analytics.day_bounds(day)
        times = store.snapshot_times(UNDERLYING, start, end)
        opening = store.snapshot_at(times[0], UNDERLYING)
        expiry = analytics.expiries(opening, UNDERLYING)[0]
        series = analytics.series_frame(
            store.underlying_series(UNDERLYING, start, end, expiry=expiry, max_points=reads.SERIES_POINTS))
        day_load = time.perf_counter() - started

        parts: dict[str, list[float]] = {"fetch": [], "compute": [], "render": [], "step": []}
        baseline: list[float] = []
        for ts in (rng.choice(times) for _ in range(args.steps)):
            t0 = time.perf_counter()
            ticks = store.snapshot_at(ts, UNDERLYING)
            t1 = time.perf_counter()
            frame = player.replay_frame(ticks, UNDERLYING, expiry, opening=opening, series=series,
                                       atm_window=ATM_WINDOW)
            opening_chain = analytics.chain_table(opening, UNDERLYING, expiry)
            analytics.atm_iv(opening_chain), analytics.pcr(opening_chain)
            t2 = time.perf_counter()
            render(frame)
            t3 = time.perf_counter()
            raw_rows = raw_snapshot_at(raw, ts, UNDERLYING)
            t4 = time.perf_counter()
            if len(raw_rows) != len(ticks):
                raise SystemExit(f"baseline disagrees at {ts}: {len(raw_rows)} vs {len(ticks)} rows")
            for key, value in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t3 - t0)):
                parts[key].append(value)
            baseline.append(t4 - t3)

        session = (f"{start}", f"{end}")
        exports = {} if args.no_export else {
            "nifty_day": export_rate(store,
                                     export.ExportSelection(store.url, *session, underlying=UNDERLYING),
                                     Path(tmp) / "nifty.csv"),
            "all_symbols_day": export_rate(store, export.ExportSelection(store.url, *session),
                                           Path(tmp) / "all.csv"),
        }
        raw.close()
        store.close()

    print(json.dumps({
        "store": {"snapshots": filled.snapshots, "rows": filled.rows, "interval_s": args.interval,
                  "backfill_s": round(filled.seconds, 1)},
        "day_cache_load_ms": round(day_load * 1000, 1),
        "replay_step_ms": summary(parts["step"]),
        "replay_parts_ms": {k: summary(v) for k, v in parts.items() if k != "step"},
        "baseline_raw_sqlite3_asof_ms": summary(baseline),
        "export_csv": exports,
    }, indent=2))


if __name__ == "__main__":
    main()
