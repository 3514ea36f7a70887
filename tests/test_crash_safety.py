"""Crashes lose nothing: kill -9 of the broadcaster and of the collector, a full disk, a read-only
store, and readers of every kind while the collector writes ten times faster than normal.

Real processes (the CLI), real SQLite files and PostgreSQL, real sockets.
"""
from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import app_test, synthetic_snapshot
from support import free_port, isolate_config, wait_until

import datacentre.clients.connection as connection
from datacentre import RealtimeDataClient
from datacentre.app.livefeed import LiveFeed
from datacentre.clients.health import broadcaster_health
from datacentre.core.errors import StoreError
from datacentre.core.ticks import now_utc
from datacentre.feed.broadcaster import BroadcasterThread
from datacentre.feed.resume import split_live
from datacentre.ops.collector import Collector, CollectorThread
from datacentre.sources import MarketSimulator
from datacentre.store.csvio import export_csv
from datacentre.store.tickstore import TickStore

ROOT = Path(__file__).resolve().parents[1]
RESTARTS = 10


def cli(*args: str, cwd: Path) -> subprocess.Popen:
    """``python -m datacentre ARGS`` in ``cwd`` (its data/ folder), this checkout's package."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATACENTRE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.Popen([sys.executable, "-m", "datacentre", *args], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def snapshot_sizes(path: Path, *, check: bool = True) -> Counter:
    """How many snapshots of each size the SQLite store at ``path`` holds (and, with ``check``,
    that the file passes SQLite's integrity check)."""
    with closing(sqlite3.connect(path)) as conn:
        if check:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        return Counter(n for (n,) in conn.execute("SELECT count(*) FROM ltp_ticks GROUP BY ts"))


def recording(folder: Path, snapshots: int = 10, strikes: int = 40) -> tuple[Path, int]:
    """A CSV recording of ``snapshots`` synthetic snapshots of one size, for ``--source csv``
    (so every snapshot the collector plays has that size); returns its path and the size."""
    path = folder / "recording.csv"
    with TickStore(f"sqlite:///{folder / 'recorded.db'}") as recorded:
        for n in range(snapshots):
            moment = now_utc().replace(microsecond=0) - timedelta(minutes=snapshots - n)
            recorded.write_snapshot(moment, synthetic_snapshot(moment, strikes=strikes, step=n))
        with open(path, "w", newline="", encoding="utf-8") as out:
            export_csv(recorded, out)
        return path, recorded.count() // snapshots


# ---------------------------------------------------------------- kill -9 of the broadcaster


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_killing_the_broadcaster_ten_times_loses_no_row_for_a_resuming_client(tmp_path, monkeypatch):
    isolate_config(monkeypatch, tmp_path)
    monkeypatch.setattr(connection, "backoff_delay", lambda attempt, **_: 0.05)
    url = f"sqlite:///{tmp_path / 'ticks.db'}"
    store = TickStore(url)
    port = free_port()
    ws_url = f"ws://127.0.0.1:{port}"

    def start() -> subprocess.Popen:
        proc = cli("broadcast", "--db", url, "--port", str(port), cwd=tmp_path)
        assert wait_until(lambda: (broadcaster_health(ws_url) or {}).get("pid") == proc.pid
                          or proc.poll() is not None, 60), "the broadcaster did not start"
        assert proc.poll() is None, proc.stderr.read()
        return proc

    received: list[tuple[str, str]] = []
    collector = CollectorThread(Collector(store, MarketSimulator(seed=2, underlyings=("NIFTY",)),
                                          interval=0.5)).start()
    proc = start()
    client = RealtimeDataClient(ws_url, on_data_callback=lambda t: received.append((t["symbol"], t["ts"])))
    try:
        assert client.connect(10)
        first_cursor = client._feed.welcome["cursor"]
        for _ in range(RESTARTS):
            seen = len(received)
            assert wait_until(lambda s=seen: len(received) > s + 200, 30)  # mid-stream
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            assert wait_until(lambda: not client.is_connected(), 10)
            time.sleep(random.uniform(0.2, 1.0))  # rows go on arriving while nothing broadcasts
            proc = start()
        seen = len(received)
        assert wait_until(lambda: len(received) > seen + 200, 30)
        collector.stop()
        top = store.max_id()
        assert wait_until(lambda: client._feed.cursor == top, 60)
        live, _, past = split_live(store.after(first_cursor, 10_000_000),
                                   store.newest_ts_through(first_cursor))
        expected = [(r["symbol"], r["ts"]) for r in live]
        assert wait_until(lambda: len(received) >= len(expected), 30)
        connections = client._feed.connections
    finally:
        client.close()
        collector.stop()
        proc.kill()
        proc.wait(10)
        store.close()
    lost = set(expected) - set(received)
    print(f"\n{RESTARTS} kill -9 restarts: {len(expected)} live rows, {len(lost)} lost, "
          f"{len(received) - len(set(received))} twice, {connections} connections")
    assert not lost and received == expected and past == 0
    assert connections == RESTARTS + 1


# ---------------------------------------------------------------- kill -9 of the collector


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_killing_the_collector_mid_write_leaves_no_partial_snapshot(tmp_path, monkeypatch):
    """The collector plays a recording of 3,208-row snapshots back (``--source csv``, so every
    snapshot has the same size), each write taking longer than the interval, and is killed at
    random moments: most of them land mid-write."""
    isolate_config(monkeypatch, tmp_path)
    played, size = recording(tmp_path, strikes=400)
    path = tmp_path / "ticks.db"
    url = f"sqlite:///{path}"
    TickStore(url).close()
    rng = random.Random(7)
    for _ in range(6):
        proc = cli("collect", "--db", url, "--interval", "0.1", "--source", "csv", "--csv", str(played),
                   "--loop", cwd=tmp_path)
        before = sum(snapshot_sizes(path, check=False).values())
        assert wait_until(lambda b=before, p=proc: p.poll() is not None
                          or sum(snapshot_sizes(path, check=False).values()) >= b + 3, 60)
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    sizes = snapshot_sizes(path)
    assert set(sizes) == {size} and sum(sizes.values()) >= 18, f"a partial snapshot: {sizes}"
    with TickStore(url) as store:  # the store opens and takes writes again
        store.write_snapshot(now_utc() + timedelta(minutes=1), synthetic_snapshot(now_utc()))


# ---------------------------------------------------------------- a full disk, a read-only store


def _small_disk(folder: Path, size: str) -> bool:
    folder.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                              capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


@pytest.fixture
def full_disk(tmp_path):
    """``(store URL, fill(), free())``: a store on a 4 MiB file system, and a ballast file that
    fills it and goes away. Where this machine cannot mount one, ``fill()`` caps the store at its
    size with SQLite's ``max_page_count``: it refuses writes the same way ("database or disk is
    full") until ``free()`` lifts the cap."""
    folder = tmp_path / "disk"
    ballast = folder / "ballast"
    if _small_disk(folder, "4m"):
        def fill() -> None:
            with open(ballast, "wb") as f:
                try:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
                except OSError:
                    pass

        def free() -> None:
            ballast.unlink()

        yield f"sqlite:///{folder / 'ticks.db'}", fill, free
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=10)
        return
    cap = {"pages": None}

    def limit(dbapi_conn, _record, _proxy) -> None:  # at every checkout, so pooled connections too
        dbapi_conn.execute(f"PRAGMA max_page_count = {cap['pages'] or 1_073_741_823}")

    sa.event.listen(sa.pool.Pool, "checkout", limit)
    url = f"sqlite:///{folder / 'ticks.db'}"

    def fill_pages() -> None:
        with closing(sqlite3.connect(folder / "ticks.db")) as conn:
            cap["pages"] = conn.execute("PRAGMA page_count").fetchone()[0]

    def free_pages() -> None:
        cap["pages"] = None

    try:
        yield url, fill_pages, free_pages
    finally:
        sa.event.remove(sa.pool.Pool, "checkout", limit)


def test_a_full_disk_stops_the_collector_clearly_and_it_carries_on_when_space_returns(full_disk, caplog):
    url, fill, free = full_disk
    store = TickStore(url)
    collector = Collector(store, MarketSimulator(seed=1), interval=0.1)
    thread = CollectorThread(collector).start()
    try:
        assert wait_until(lambda: collector.snapshots >= 3, 30)
        fill()
        assert wait_until(lambda: collector.failures >= 3, 30)
        stored = store.count()
        assert store.count() == stored  # nothing more is written while full ...
        free()
        assert wait_until(lambda: store.count() > stored, 30)  # ... and it goes on by itself
        assert thread.alive
    finally:
        thread.stop()
        store.close()
    messages = [r.getMessage() for r in caplog.records if r.name == "datacentre.ops.collector"]
    assert any("disk is full" in m and "free some space" in m for m in messages), messages
    assert any("storing snapshots again" in m for m in messages), messages
    sizes = snapshot_sizes(Path(sa.engine.make_url(url).database))
    assert len(sizes) == 1, f"a partial snapshot: {sizes}"


@pytest.mark.postgres
def test_a_read_only_store_stops_the_collector_clearly_and_it_carries_on(pg_url, caplog):
    store = TickStore(pg_url)
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    database = sa.engine.make_url(pg_url).database
    collector = Collector(store, MarketSimulator(seed=1, underlyings=("NIFTY",)), interval=0.1)

    def writable() -> None:
        with admin.connect() as conn:  # this session too starts read-only by now
            conn.execute(sa.text("SET default_transaction_read_only = off"))
            conn.execute(sa.text(f"ALTER DATABASE {database} RESET default_transaction_read_only"))

    thread = CollectorThread(collector).start()
    try:
        assert wait_until(lambda: collector.snapshots >= 3, 30)
        with admin.connect() as conn:
            conn.execute(sa.text(f"ALTER DATABASE {database} SET default_transaction_read_only = on"))
        store.engine.dispose()  # the next writes open sessions that are read-only
        assert wait_until(lambda: collector.failures >= 3, 30)
        with pytest.raises(StoreError, match="read-only"):
            store.write_snapshot("2026-01-02T04:00:00+00:00", [{"symbol": "NIFTY 50", "ltp": 1.0}])
        stored = store.count()
        writable()
        store.engine.dispose()
        assert wait_until(lambda: store.count() > stored, 30)
    finally:
        writable()
        thread.stop()
        store.close()
        admin.dispose()
    messages = [r.getMessage() for r in caplog.records if r.name == "datacentre.ops.collector"]
    assert any("read-only" in m for m in messages), messages
    with TickStore(pg_url) as check:
        sizes = Counter(check.count(start_ts=ts, end_ts=ts) for ts in check.timestamps())
    assert len(sizes) == 1, f"a partial snapshot: {sizes}"


# ---------------------------------------------------------------- everyone reads while it writes fast


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.usefixtures("release_app_resources")
def test_readers_of_every_kind_while_the_collector_writes_ten_times_faster(tmp_path, monkeypatch):
    """The collector (its own process) writes a 328-row snapshot every 0.5 s, ten times the
    normal rate; meanwhile 20 clients query the store, two take the live feed, the app runs
    its option-chain page and its live feed, and an export reads everything. Nobody sees
    "database is locked" or half a snapshot."""
    isolate_config(monkeypatch, tmp_path)
    played, full = recording(tmp_path)
    url = f"sqlite:///{tmp_path / 'ticks.db'}"
    store = TickStore(url)
    collector = cli("collect", "--db", url, "--interval", "0.5", "--source", "csv", "--csv", str(played),
                    "--loop", cwd=tmp_path)
    server = BroadcasterThread(store, port=0, poll_interval=0.05).start()
    errors: list[str] = []
    half: list[str] = []
    stop = threading.Event()
    queriers = [RealtimeDataClient(server.url, db_url=url) for _ in range(20)]
    live: list[tuple[RealtimeDataClient, Counter]] = []

    def client_reads(client: RealtimeDataClient) -> None:
        while not stop.is_set():
            try:
                newest = client.get_latest_all(10_000)
                rows = client.query("SELECT ts, count(*) AS n FROM ltp_ticks "
                                    "WHERE ts = (SELECT max(ts) FROM ltp_ticks) GROUP BY ts")
                client.get_historical("NIFTY 50", rows[0]["ts"] if rows else None)
            except Exception as exc:  # noqa: BLE001 - every failure is the finding
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            if rows and rows[0]["n"] != full:
                half.append(f"query saw {rows[0]['n']} rows at {rows[0]['ts']}")
            last = max((t["ts"] for t in newest), default=None)
            if last is not None and sum(t["ts"] == last for t in newest) != full:
                half.append(f"get_latest_all gave {sum(t['ts'] == last for t in newest)} ticks at {last}")
            time.sleep(0.1)

    readers = [threading.Thread(target=client_reads, args=(c,), daemon=True) for c in queriers]
    try:
        assert wait_until(lambda: store.count() > 0 or collector.poll() is not None, 60)
        assert collector.poll() is None, collector.stderr.read()
        monkeypatch.setenv("DATACENTRE_DB_URL", url)
        monkeypatch.setenv("DATACENTRE_WS_PORT", str(server.port))
        monkeypatch.setenv("DATACENTRE_AUTOSTART", "0")
        for _ in range(2):
            counts: Counter = Counter()
            client = RealtimeDataClient(server.url, on_data_callback=lambda t, c=counts: c.update([t["ts"]]))
            assert client.connect(10)
            live.append((client, counts))
        for reader in readers:
            reader.start()
        feed = LiveFeed(server.url).start()
        export = cli("export", "--db", url, "--out", str(tmp_path / "export.csv"), cwd=tmp_path)
        started = time.monotonic()
        pages = 0
        while time.monotonic() - started < 10 or export.poll() is None or not pages:
            at = app_test()
            at.switch_page("pages/option_chain.py").run()
            assert not at.exception, [e.value for e in at.exception]
            pages += 1
            snap = feed.snapshot()
            if snap is not None and len(snap["ticks"]) != full:
                half.append(f"the app's feed showed {len(snap['ticks'])} ticks at {snap['ts']}")
            assert time.monotonic() - started < 200
        assert export.wait(60) == 0, export.stderr.read()
        stop.set()
        for reader in readers:
            reader.join(10)
        collector.send_signal(signal.SIGTERM)
        assert collector.wait(30) == 0
        top = store.max_id()
        # every tick handed on and every callback run: then each client's snapshots are whole
        assert wait_until(lambda: all(c._feed.cursor == top and c._callbacks._queue.empty()
                                      for c, _ in live), 60)
        time.sleep(0.1)  # the last callback of each client returns
        feed.stop()
        stamps = store.timestamps()
    finally:
        stop.set()
        for client in [*queriers, *(c for c, _ in live)]:
            client.close()
        if collector.poll() is None:
            collector.kill()
        collector.wait(30)
        server.stop()
        store.close()
    lines = (tmp_path / "export.csv").read_text().splitlines()
    exported = Counter(line.split(",")[2] for line in lines[1:])
    assert exported and set(exported.values()) == {full}, "the export holds half a snapshot"
    assert not [e for e in errors if "locked" in e], errors[:5]
    assert not errors and not half, (errors[:5], half[:5])
    # Under this load a client whose process cannot read for a few seconds is cut and resumes:
    # still every snapshot it receives is whole, and it receives every one.
    print(f"\n{pages} page runs, {len(lines) - 1} rows exported, {server.stats()['dropped_clients']} "
          f"slow clients cut (and resumed)")
    for _, counts in live:
        assert counts and set(counts.values()) == {full}, counts
        assert sorted(counts) == [ts for ts in stamps if ts >= min(counts)]
