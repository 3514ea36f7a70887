"""Store to store: incremental, idempotent, resumable, every IST day compared and filled."""
from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import uuid
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
import websocket
from conftest import fresh_schema, synthetic_snapshot
from support import wait_until

from datacentre.core.errors import ConfigError
from datacentre.core.ticks import TICK_FIELDS, format_ts
from datacentre.ops.sync import follow, sync
from datacentre.store.schema import sqlite_path
from datacentre.store.tickstore import TickStore

DAY1 = datetime(2026, 1, 5, 4, 0, tzinfo=UTC)  # Monday 09:30 IST
DAY2 = datetime(2026, 1, 6, 4, 0, tzinfo=UTC)
EVENING = datetime(2026, 1, 6, 19, 0, tzinfo=UTC)  # 00:30 IST on 7 January: the next IST day


@pytest.fixture
def new_url(request, tmp_path):
    """``new_url(engine)``: the URL of a fresh, empty store on ``"sqlite"`` or ``"postgres"``."""
    with ExitStack() as schemas:
        def make(engine: str) -> str:
            if engine == "sqlite":
                return f"sqlite:///{tmp_path / f'{uuid.uuid4().hex[:8]}.db'}"
            return schemas.enter_context(fresh_schema(request.getfixturevalue("pg_database")))

        yield make


PG = pytest.mark.postgres
PAIRS = [pytest.param(("sqlite", "postgres"), marks=PG, id="sqlite-to-postgres"),
         pytest.param(("postgres", "sqlite"), marks=PG, id="postgres-to-sqlite"),
         pytest.param(("sqlite", "sqlite"), id="sqlite-to-sqlite")]


@pytest.fixture(params=PAIRS)
def stores(request, new_url):
    """(source, target) on the engines of the parameter, both empty."""
    source_engine, target_engine = request.param
    source, target = TickStore(new_url(source_engine)), TickStore(new_url(target_engine))
    yield source, target
    source.close()
    target.close()


def fill(store: TickStore, start: datetime, count: int, every_s: float = 60.0) -> None:
    for n in range(count):
        moment = start + timedelta(seconds=n * every_s)
        store.write_snapshot(moment, synthetic_snapshot(moment, nifty=26000 + n, step=n))


def all_rows(store: TickStore) -> list[tuple]:
    return sorted(tuple(row) for rows in store.iter_rows() for row in rows)


def test_sync_copies_every_row_and_again_copies_nothing(stores):
    source, target = stores
    fill(source, DAY1, 6)
    fill(source, DAY2, 4)
    fill(source, EVENING, 2)
    report = sync(source, target)
    assert report.copied == source.count() > 0 and not report.gaps
    assert target.day_counts() == source.day_counts()
    assert list(source.day_counts()) == [date(2026, 1, 5), date(2026, 1, 6), date(2026, 1, 7)]
    assert all_rows(target) == all_rows(source)
    again = sync(source, target)
    assert (again.copied, again.filled, again.gaps) == (0, 0, [])
    assert "every day complete" in again.lines()[-1]


def test_rows_committed_later_with_older_times_are_copied_next_time(stores):
    source, target = stores
    fill(source, DAY2, 3)
    sync(source, target)
    fill(source, DAY1, 2)  # a backfill of an earlier day, after the first sync
    report = sync(source, target)
    assert report.copied == source.count(None, "2026-01-04T18:30:00+00:00", "2026-01-05T18:29:59+00:00")
    assert all_rows(target) == all_rows(source)


def test_since_copies_only_later_days(stores):
    source, target = stores
    fill(source, DAY1, 3)
    fill(source, DAY2, 3)
    fill(source, EVENING, 1)
    report = sync(source, target, since=date(2026, 1, 6))
    assert list(target.day_counts()) == [date(2026, 1, 6), date(2026, 1, 7)]
    assert [d.day for d in report.days] == [date(2026, 1, 6), date(2026, 1, 7)] and not report.gaps


def test_gaps_are_reported_by_check_and_filled_by_sync(stores):
    source, target = stores
    fill(source, DAY1, 5)
    fill(source, DAY2, 5)
    sync(source, target)
    with target.engine.begin() as conn:  # rows lost on the target side, behind the cursor
        lost = conn.execute(sa.text("DELETE FROM ltp_ticks WHERE symbol = 'NIFTY 50' AND ts >= :t"),
                            {"t": DAY2 if target.dialect == "postgresql" else "2026-01-06"}).rowcount
    assert lost == 5
    check = sync(source, target, check_only=True)
    assert [(d.day, d.missing) for d in check.gaps] == [(date(2026, 1, 6), 5)]
    assert check.copied == check.filled == 0 and target.count() == source.count() - 5
    assert "2026-01-06: source" in "\n".join(check.lines())
    report = sync(source, target)
    assert (report.copied, report.filled, report.gaps) == (0, 5, [])
    assert all_rows(target) == all_rows(source)


def test_rows_only_the_target_has_are_reported_and_kept(stores):
    source, target = stores
    fill(source, DAY1, 2)
    fill(target, DAY2, 1)  # the target's own collector
    report = sync(source, target)
    assert [(d.day, d.source, d.target) for d in report.extra] == [(date(2026, 1, 6), 0, target.count(
        None, "2026-01-05T18:30:00+00:00", "2026-01-06T18:29:59+00:00"))]
    assert not report.gaps and "more in the target" in "\n".join(report.lines())


def test_a_rebuilt_source_is_copied_from_its_start(stores, new_url):
    source, target = stores
    fill(source, DAY1, 4)
    sync(source, target)
    with source.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM ltp_ticks"))
    # A cursor past the source's ids: the source was replaced by a store with fewer ids.
    with target.engine.begin() as conn:
        conn.execute(sa.text("UPDATE sync_cursors SET last_id = last_id + 1000000"))
    fill(source, DAY2, 2)
    report = sync(source, target)
    assert report.copied == source.count()


def test_a_store_is_never_synced_with_itself(store):
    with pytest.raises(ConfigError, match="same store"):
        sync(store, TickStore(store.url))


@pytest.mark.parametrize("target_engine", ["sqlite", pytest.param("postgres", marks=PG)])
def test_timestamp_spellings_never_drop_a_row(new_url, target_engine):
    # A SQLite file written by other programs: instants spelled six ways.
    source = TickStore(new_url("sqlite"))
    spellings = ["2026-01-05 04:00:00", "2026-01-05T04:00:05Z", "2026-01-05T09:30:10+05:30",
                 "2026-01-05T04:00:15.500+00:00", "2026-01-05T04:00:20+00:00",
                 "2026-01-06T00:10:00+05:30", "2026-01-05 19:40:00"]  # the last two: 6 Jan in IST
    columns = ", ".join(TICK_FIELDS)
    with sqlite3.connect(sqlite_path(source.url)) as conn:
        for i, ts in enumerate(spellings):
            conn.execute(f"INSERT INTO ltp_ticks ({columns}) VALUES (?, ?, ?, ?, NULL, NULL, 0, NULL, "
                         f"NULL, NULL, NULL, NULL, NULL, 'ws')", ("NIFTY 50", "99926000", ts, 26000.0 + i))
    target = TickStore(new_url(target_engine))
    report = sync(source, target)
    assert report.copied == len(spellings) and not report.gaps
    assert target.day_counts() == source.day_counts() == {date(2026, 1, 5): 5, date(2026, 1, 6): 2}
    assert [r["ts"] for r in target.history("NIFTY 50")] == [
        "2026-01-05T04:00:00+00:00", "2026-01-05T04:00:05+00:00", "2026-01-05T04:00:10+00:00",
        "2026-01-05T04:00:15.500+00:00", "2026-01-05T04:00:20+00:00", "2026-01-05T18:40:00+00:00",
        "2026-01-05T19:40:00+00:00"]
    # Only the IST day of 6 January, whatever the spelling of its instants.
    later = TickStore(new_url(target_engine))
    sync(source, later, since=date(2026, 1, 6))
    assert later.day_counts() == {date(2026, 1, 6): 2}
    for s in (source, target, later):
        s.close()


@pytest.mark.parametrize("source_engine", ["sqlite", pytest.param("postgres", marks=PG)])
def test_follow_keeps_a_desk_copy_in_step(new_url, source_engine):
    # On PostgreSQL the source's commit notifications wake it: the 60 s poll never comes round.
    source = TickStore(new_url(source_engine))
    target = TickStore(new_url("sqlite"))
    fill(source, DAY1, 2)
    sync(source, target)
    stop = threading.Event()
    interval = 60.0 if source_engine == "postgres" else 0.05
    thread = threading.Thread(target=follow, args=(source, target, stop), kwargs={"interval": interval})
    thread.start()
    try:
        for n in range(3):
            moment = DAY2 + timedelta(seconds=5 * n)
            source.write_snapshot(moment, synthetic_snapshot(moment, step=n))
            assert wait_until(lambda: target.count() == source.count(), timeout=10)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert all_rows(target) == all_rows(source)


def cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "datacentre", *args], capture_output=True, text=True,
                          timeout=120, **kwargs)


@pytest.mark.postgres
def test_sync_killed_midway_resumes_to_identical_day_counts(new_url, tmp_path):
    source = TickStore(new_url("sqlite"))
    for day in (DAY1, DAY2):
        moments = [day + timedelta(seconds=5 * n) for n in range(150)]
        with source.bulk_writer() as write:
            write([(m, synthetic_snapshot(m, step=n)) for n, m in enumerate(moments)])
    target = TickStore(new_url("postgres"))
    total = source.count()
    proc = subprocess.Popen([sys.executable, "-m", "datacentre", "sync", "--from", source.url,
                             "--to", target.url, "--batch", "100", "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert wait_until(lambda: target.count() > 0 or proc.poll() is not None, timeout=60)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    committed = target.count()
    assert 0 < committed < total, "the sync ended before it could be killed midway"
    # The rows and the cursor committed together, batch by batch: what lies past the cursor
    # is exactly what the target lacks, and that is all the next run reads.
    cursor = target.sync_cursor(source.store_key)
    assert cursor > 0 and source.count_since(cursor) == total - committed
    out = cli("sync", "--from", source.url, "--to", target.url, "--batch", "1000")
    assert out.returncode == 0, out.stderr
    assert f"copied {total - committed:,} new rows" in out.stdout
    assert "every day complete" in out.stdout
    assert "row" in out.stderr  # the progress bar
    assert target.day_counts() == source.day_counts()
    assert all_rows(target) == all_rows(source)
    check = cli("sync", "--from", source.url, "--to", target.url, "--check")
    assert check.returncode == 0 and "copied" not in check.stdout


def test_sync_cli_check_exits_1_on_gaps_and_refuses_a_missing_source(new_url, tmp_path):
    source, target = TickStore(new_url("sqlite")), TickStore(new_url("sqlite"))
    fill(source, DAY1, 2)
    out = cli("sync", "--from", source.url, "--to", target.url, "--check")
    assert out.returncode == 1 and "missing" in out.stdout and target.count() == 0
    missing = cli("sync", "--from", f"sqlite:///{tmp_path / 'none.db'}", "--to", target.url)
    assert missing.returncode == 2 and "no tick store" in missing.stderr
    assert not (tmp_path / "none.db").exists()


@pytest.mark.parametrize("target_engine", ["sqlite", pytest.param("postgres", marks=PG)])
def test_synced_past_days_are_history_to_the_targets_broadcaster(new_url, target_engine):
    from datacentre.feed.broadcaster import BroadcasterThread

    source, target = TickStore(new_url("sqlite")), TickStore(new_url(target_engine))
    fill(source, DAY1, 3)  # the past, at the VPS
    live = DAY2 + timedelta(hours=1)
    server = BroadcasterThread(target, port=0, poll_interval=0.02).start()
    received: list[dict] = []
    ws = websocket.create_connection(server.url, timeout=5)
    try:
        assert json.loads(ws.recv())["type"] == "welcome"
        target.write_snapshot(live, synthetic_snapshot(live))  # the desk's own live snapshot
        server.notify()
        while len(received) < target.count():
            received.append(json.loads(ws.recv()))
        sync(source, target)  # yesterday's rows arrive after it: stored, never broadcast
        later = live + timedelta(seconds=5)
        target.write_snapshot(later, synthetic_snapshot(later, step=1))
        server.notify()
        # Commit order: had the synced rows gone out, they would come before this snapshot.
        while len(received) < 2 * len(synthetic_snapshot(live)):
            received.append(json.loads(ws.recv()))
    finally:
        ws.close()
        server.stop()
    assert {m["ts"] for m in received} == {format_ts(live), format_ts(later)}
    assert target.count(None, format_ts(DAY1), format_ts(DAY1 + timedelta(hours=1))) == source.count()
