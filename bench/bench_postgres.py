"""PostgreSQL scale-out figures, each against its baseline in the same run. Prints one JSON object.

    python bench/bench_postgres.py [--snapshots 200] [--bulk-snapshots 450] [--latency-snapshots 40]
                                   [--no-sizing]

* writes: TickStore's COPY path against ``executemany`` (psycopg 3, pipelined INSERT ...
  ON CONFLICT DO NOTHING) and against the SQLAlchemy ``insert().returning()`` the store
  used before, with the same transaction around each (writer lock, NOTIFY, commit):
  one ~110-row snapshot per commit, a bulk load in one transaction, and the same bulk
  again when every row is already stored (COPY's conflict path through a staging table);
* latency: commit-to-client on one run, two broadcasters on the same database, one
  polling every 50 ms (``listen=False``) and one woken by LISTEN/NOTIFY, each with a
  WebSocket client; a writer in this process commits snapshots at random moments;
* migration: opening a store of an earlier version (32-bit id, no partitions) the first time;
* sizing: rows per snapshot per underlying and watch list (ATM +/- N strikes), rows per
  session, and bytes per row and per month on SQLite and on PostgreSQL, from one whole
  simulated session written to each.

The server is ``DATACENTRE_BENCH_PG_URL`` or ``DATACENTRE_TEST_PG_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``); everything happens in scratch
schemas, dropped at the end. ``main()`` returns the figures as a dict.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import psycopg
import sqlalchemy as sa
import websocket
from sqlalchemy.dialects import postgresql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import summary  # noqa: E402

from datacentre.core.ticks import TICK_FIELDS, format_ts, tick_values  # noqa: E402
from datacentre.feed.broadcaster import BroadcasterThread  # noqa: E402
from datacentre.ops.backfill import backfill  # noqa: E402
from datacentre.sources import MarketSimulator  # noqa: E402
from datacentre.store.notify import CHANNEL, libpq_url  # noqa: E402
from datacentre.store.schema import ltp_ticks, temporary_schema  # noqa: E402
from datacentre.store.tickstore import WRITER_LOCK_KEY, TickStore  # noqa: E402

DAY = date(2026, 11, 27)
SESSIONS_PER_MONTH = 21  # NSE trading days in a typical month
SERVER = os.environ.get("DATACENTRE_BENCH_PG_URL") or os.environ.get(
    "DATACENTRE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
_INSERT = (f"INSERT INTO ltp_ticks ({', '.join(TICK_FIELDS)}) VALUES ({', '.join(['%s'] * 14)}) "
           f"ON CONFLICT DO NOTHING")


def scratch_schema():
    """A store URL on a fresh schema of the benchmark server, dropped afterwards."""
    return temporary_schema(SERVER, "bench")


def snapshots(n: int, seed: int = 1) -> list[tuple[str, list[dict]]]:
    sim = MarketSimulator(seed=seed)
    return [(format_ts(m), ticks) for (m, ticks), _ in zip(sim.session(DAY, 5.0), range(n))]


def _rows(snaps) -> list[tuple]:
    return [tick_values(t, ts) for ts, ticks in snaps for t in ticks]


# ---------------------------------------------------------------- writes

class _Executemany:
    """The same transaction as the store's, with psycopg's executemany for the rows."""

    def __init__(self, url: str, first_ts: str) -> None:
        with TickStore(url) as store:  # the store's own schema and partitions
            store.prepare_partitions(first_ts)
        self.conn = psycopg.connect(libpq_url(url))

    def write(self, rows: list[tuple]) -> None:
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (WRITER_LOCK_KEY,))
            cur.executemany(_INSERT, rows)
            cur.execute("SELECT pg_notify(%s, current_schema())", (CHANNEL,))


class _Returning:
    """The store's earlier path: SQLAlchemy Core insert ... on conflict do nothing returning id."""

    def __init__(self, url: str, first_ts: str) -> None:
        self.store = TickStore(url)
        self.store.prepare_partitions(first_ts)

    def write(self, rows: list[tuple]) -> None:
        params = [dict(zip(TICK_FIELDS, r)) for r in rows]
        with self.store.engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": WRITER_LOCK_KEY})
            conn.execute(postgresql.insert(ltp_ticks).on_conflict_do_nothing().returning(ltp_ticks.c.id),
                         params).all()
            conn.execute(sa.text("SELECT pg_notify(:c, current_schema())"), {"c": CHANNEL})


def writes(n_snapshots: int, n_bulk: int) -> dict:
    snaps = snapshots(n_snapshots)
    bulk_snaps = snapshots(n_bulk, seed=2)
    bulk_rows = _rows(bulk_snaps)
    out: dict = {"rows_per_snapshot": round(len(_rows(snaps)) / len(snaps), 1), "bulk_rows": len(bulk_rows)}
    with scratch_schema() as a, scratch_schema() as b, scratch_schema() as c:
        store = TickStore(a)
        store.prepare_partitions(snaps[0][0])
        many, returning = _Executemany(b, snaps[0][0]), _Returning(c, snaps[0][0])
        # Interleaved, so the machine's load falls on all three alike.
        per: dict[str, list[float]] = {"copy": [], "executemany": [], "sqlalchemy_returning": []}
        for ts, ticks in snaps:
            rows = [tick_values(t, ts) for t in ticks]
            for name, write, arg in (("copy", store.write_snapshot, (ts, ticks)),
                                     ("executemany", many.write, (rows,)),
                                     ("sqlalchemy_returning", returning.write, (rows,))):
                t0 = time.perf_counter()
                write(*arg)
                per[name].append(time.perf_counter() - t0)
        out["per_snapshot_commit_ms"] = {k: summary(v) for k, v in per.items()}
        bulk = {}
        # The second round writes the same rows again: every one is already stored.
        for label in ("new_rows", "rows_already_stored"):
            t0 = time.perf_counter()
            with store.bulk_writer() as write:
                write(bulk_snaps)
            copy_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            many.write(bulk_rows)
            many_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            returning.write(bulk_rows)
            returning_s = time.perf_counter() - t0
            bulk[label] = {"copy_rows_per_s": round(len(bulk_rows) / copy_s),
                           "executemany_rows_per_s": round(len(bulk_rows) / many_s),
                           "sqlalchemy_returning_rows_per_s": round(len(bulk_rows) / returning_s),
                           "copy_speedup_x": round(many_s / copy_s, 2)}
        out["bulk_one_transaction"] = bulk
        med = out["per_snapshot_commit_ms"]
        out["per_snapshot_copy_speedup_x"] = round(med["executemany"]["median"] / med["copy"]["median"], 2)
        many.conn.close()
        returning.store.close()
        store.close()
    return out


# ---------------------------------------------------------------- latency

class _Client(threading.Thread):
    """A WebSocket client noting when the first tick of each snapshot arrives."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.ws = websocket.create_connection(url, timeout=0.5)
        assert json.loads(self.ws.recv())["type"] == "welcome"
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.ticks: list[tuple[str, str]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                raw = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            except Exception:
                return
            now = time.perf_counter()
            tick = json.loads(raw)
            self.first.setdefault(tick["ts"], now)
            self.last[tick["ts"]] = now
            self.ticks.append((tick["symbol"], tick["ts"]))


def latency(n_snapshots: int) -> dict:
    snaps = snapshots(n_snapshots, seed=3)
    rng = random.Random(7)
    with scratch_schema() as url:
        writer = TickStore(url)
        writer.prepare_partitions(snaps[0][0])
        sites = {"polling_50ms": BroadcasterThread(TickStore(url), port=0, listen=False).start(),
                 "listen_notify": BroadcasterThread(TickStore(url), port=0).start()}
        clients = {name: _Client(site.url) for name, site in sites.items()}
        for client in clients.values():
            client.start()
        committed: dict[str, float] = {}
        try:
            for ts, ticks in snaps:
                time.sleep(rng.uniform(0.05, 0.25))  # commits fall anywhere in the poll cycle
                writer.write_snapshot(ts, ticks)
                committed[ts] = time.perf_counter()
            rows = sum(len(ticks) for _, ticks in snaps)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not all(len(c.ticks) >= rows for c in clients.values()):
                time.sleep(0.05)
        finally:
            listening = sites["listen_notify"].stats()["listening"]
            for client in clients.values():
                client.stop.set()
                client.join(2)
                client.ws.close()
            for site in sites.values():
                site.stop()
                site.server.store.close()
            writer.close()
    out: dict = {"snapshots": len(snaps), "listener_connected": listening,
                 "identical_ticks": clients["polling_50ms"].ticks == clients["listen_notify"].ticks}
    for name, client in clients.items():
        out[name] = {
            "first_tick_ms": summary([client.first[ts] - at for ts, at in committed.items()
                                      if ts in client.first]),
            "whole_snapshot_ms": summary([client.last[ts] - at for ts, at in committed.items()
                                          if ts in client.last]),
            "snapshots_received": len(client.first)}
    return out


# ---------------------------------------------------------------- sizing

def sizing() -> dict:
    moment = snapshots(1)[0][0]
    per_snapshot = {}
    for window in (10, 5):
        for underlying in ("NIFTY", "BANKNIFTY"):
            sim = MarketSimulator(seed=1, atm_window=window, underlyings=(underlying,))
            per_snapshot[f"{underlying}_atm_{window}"] = len(sim.snapshot(moment))
    out: dict = {"rows_per_snapshot": per_snapshot, "snapshots_per_session_at_5s": 4501,
                 "rows_per_session": {k: v * 4501 for k, v in per_snapshot.items()},
                 "sessions_per_month": SESSIONS_PER_MONTH}
    with tempfile.TemporaryDirectory() as tmp, scratch_schema() as url:
        for engine, store_url in (("sqlite", f"sqlite:///{Path(tmp) / 'size.db'}"), ("postgres", url)):
            store = TickStore(store_url)
            t0 = time.perf_counter()
            result = backfill(store, [DAY], interval=5.0, seed=4)
            seconds = time.perf_counter() - t0
            if engine == "postgres":
                with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(sa.text("VACUUM ANALYZE ltp_ticks"))
            size = store.stats()["bytes"]
            out[engine] = {"session_rows": result.rows, "backfill_rows_per_s": round(result.rows / seconds),
                           "bytes_per_row": round(size / result.rows, 1),
                           "mib_per_session": round(size / 2**20, 1),
                           "gib_per_month": round(size * SESSIONS_PER_MONTH / 2**30, 2)}
            store.close()
    return out


def migration(n_snapshots: int) -> dict:
    """Opening a store made by earlier versions (a plain table, 32-bit SERIAL id): the one-off
    migration to BIGINT and monthly partitions, timed."""
    rows = _rows(snapshots(n_snapshots, seed=5))
    with scratch_schema() as url:
        old = sa.MetaData()
        table = ltp_ticks.to_metadata(old)
        table.c.id.type = sa.Integer()
        engine = sa.create_engine(url)
        old.create_all(engine)
        engine.dispose()
        columns = ", ".join(TICK_FIELDS)
        with psycopg.connect(libpq_url(url)) as conn, conn.cursor() as cur, \
                cur.copy(f"COPY ltp_ticks ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        t0 = time.perf_counter()
        store = TickStore(url)
        seconds = time.perf_counter() - t0
        partitioned = [p.name for p in store.partitions()] == ["ltp_ticks_legacy"]
        store.close()
    return {"rows": len(rows), "seconds": round(seconds, 2), "rows_per_s": round(len(rows) / seconds),
            "partitioned": partitioned}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--snapshots", type=int, default=200, help="per-snapshot commits to time")
    ap.add_argument("--bulk-snapshots", type=int, default=450, help="snapshots in the bulk transaction")
    ap.add_argument("--latency-snapshots", type=int, default=40)
    ap.add_argument("--migration-snapshots", type=int, default=1800, help="rows of the store to migrate "
                    "(x ~110)")
    ap.add_argument("--no-sizing", action="store_true", help="skip the whole-session sizing run")
    a = ap.parse_args(argv)
    out = {"server": sa.engine.make_url(SERVER).render_as_string(hide_password=True),
           "writes": writes(a.snapshots, a.bulk_snapshots), "latency": latency(a.latency_snapshots),
           "migration": migration(a.migration_snapshots)}
    if not a.no_sizing:
        out["sizing"] = sizing()
    return out


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
