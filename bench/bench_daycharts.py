"""The day charts on a full session: store read, figures and plotly figure, per chart.

    python bench/bench_daycharts.py [--sessions 1] [--repeat 5] [--db URL]

Reads the benchmark store of :mod:`bench.bigstore` (one session of 5-second snapshots by
default, ~500,000 rows; ``--sessions 22`` is a month, ~10.9 million) and times, for the
last session, each chart's whole path as a page runs it with a cold cache: the store
method, the :mod:`datacentre.analytics.intraday` frame and the figure. A month's store
should cost what a day's does: every read follows an index to the rows it needs.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bigstore import StoreSpec, build  # noqa: E402
from bench.common import summary  # noqa: E402
from datacentre import analytics  # noqa: E402
from datacentre.analytics import intraday  # noqa: E402
from datacentre.app import daycharts  # noqa: E402
from datacentre.core.instruments import format_option, nearest_future, session_bounds  # noqa: E402
from datacentre.core.ticks import format_ts, trading_day  # noqa: E402
from datacentre.store.tickstore import TickStore  # noqa: E402

BASE, INDEX = "NIFTY", "NIFTY 50"


def charts(store: TickStore, day) -> dict:
    """Each chart's work as a function of nothing: the names are the pages' charts."""
    start, end = analytics.day_bounds(day)
    close = format_ts(session_bounds(day)[1])
    ticks = store.snapshot_at(close, BASE)
    chain = analytics.chain_table(ticks, BASE)
    expiry, atm = chain.attrs["expiry"], chain.attrs["atm"]
    call, put = (format_option(BASE, expiry, atm, r) for r in ("CE", "PE"))
    strangle = [format_option(BASE, expiry, atm + 100, "CE"), format_option(BASE, expiry, atm - 100, "PE")]
    near = [format_option(BASE, expiry, atm + k, r) for k in (-50, 0, 50) for r in ("CE", "PE")]
    future = nearest_future((t["symbol"] for t in ticks), close, BASE).symbol
    days = [d for d in stored_days(store) if d < day]

    def straddle_rolling():
        frame = intraday.straddle_frame(store.straddle_series(BASE, expiry, start, end))
        return daycharts.straddle_chart(frame)

    def straddle_fixed():
        rows = store.contract_series([INDEX, call, put], start, end, fields=("ltp",))
        frame = intraday.straddle_frame(intraday.fixed_straddle_rows(rows, INDEX, call, put, atm))
        return daycharts.straddle_chart(frame)

    def two_legs():
        frame = intraday.legs_frame(store.contract_series(strangle, start, end, fields=("ltp",)), strangle)
        return daycharts.legs_chart(frame, [(s, s, s[-2:]) for s in strangle])

    def oi_history():
        frame = intraday.oi_history(store.contract_series(near, start, end, fields=("oi",)), near)
        return daycharts.oi_history_chart(frame, {s: (s, s[-2:]) for s in near})

    def pcr_max_pain():
        times = analytics.thin(store.snapshot_times(BASE, start, end), 400)
        frame = intraday.pain_pcr_frame(store.chain_oi_series(BASE, expiry, times))
        spot = intraday.legs_frame(store.contract_series([INDEX], start, end, fields=("ltp",)), [INDEX])
        return daycharts.pain_pcr_chart(frame, spot.rename(columns={INDEX: "spot"}))

    def futures():
        rows = store.contract_series([INDEX, future], start, end, fields=("ltp", "oi", "volume"))
        frame = intraday.futures_frame(rows, INDEX, future)
        return daycharts.futures_chart(frame, future)

    def gex():
        table = intraday.snapshot_gex(store.snapshot_at(close, BASE), BASE, [expiry])
        return daycharts.gex_chart(table, intraday.gex_summary(table))

    def candles(symbol, interval):
        def run():
            frame = intraday.candle_frame(store.candles(symbol, interval, start, end))
            return daycharts.candles_chart(frame, symbol)
        return run

    def iv_rank():
        windows = [(d, *(format_ts(b) for b in session_bounds(d))) for d in days]
        history = intraday.atm_iv_history(store.session_atm_iv(BASE, windows))
        current, _ = intraday.atm_iv_after(ticks, BASE, day)
        intraday.iv_rank(history["atm_iv"], current)
        return daycharts.iv_rank_chart(history, ("now", current))

    return {"straddle (rolling ATM)": straddle_rolling, "straddle (fixed strike)": straddle_fixed,
            "two legs": two_legs, "OI history (3 strikes, CE+PE)": oi_history,
            "PCR and max pain": pcr_max_pain, "futures, OI and basis": futures, "gamma exposure": gex,
            "candles 1 min, spot": candles(INDEX, 1), "candles 5 min, ATM call": candles(call, 5),
            f"IV rank ({len(days)} earlier sessions)": iv_rank}


def stored_days(store: TickStore) -> list:
    """The IST days holding index ticks: one index seek per day, as the app's picker reads them."""
    days, cursor = [], None
    while first := store.history(INDEX, start_ts=cursor, limit=1):
        days.append(trading_day(first[0]["ts"]))
        cursor = analytics.day_bounds(days[-1] + timedelta(days=1))[0]
    return days


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--db", help="a store URL instead of the benchmark store")
    a = ap.parse_args()
    url = a.db or f"sqlite:///{build(StoreSpec(a.sessions))}"
    with TickStore(url, create=False) as store:
        day = trading_day(store.last_ts())
        work = charts(store, day)
        results = {}
        for name, run in work.items():
            wall, cpu = [], []
            for _ in range(a.repeat):
                started, used = time.perf_counter(), time.process_time()
                run()
                wall.append(time.perf_counter() - started)
                cpu.append(time.process_time() - used)
            results[name] = {"wall": summary(wall), "cpu": summary(cpu)}
            print(f"{name:34s} wall median {results[name]['wall']['median']:8.1f} ms   "
                  f"cpu median {results[name]['cpu']['median']:8.1f} ms")
    # On a shared machine the wall time waits for other processes; the CPU time is this one's.
    print(json.dumps({"store": url, "day": day.isoformat(), "load": os.getloadavg()[0], "charts": results}))


if __name__ == "__main__":
    main()
