"""Retention: ``prune --keep-days N`` drops whole months on PostgreSQL, deletes in batches on SQLite."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from conftest import make_tick
from support import plain_ltp_ticks

from datacentre.core.errors import ConfigError
from datacentre.core.ticks import TICK_FIELDS, format_ts, now_utc
from datacentre.store.maintenance import prune_cutoff
from datacentre.store.schema import sqlite_path
from datacentre.store.tickstore import TickStore

NOW = datetime(2026, 1, 7, 6, 0, tzinfo=UTC)  # 11:30 IST on Wednesday 7 January
CUTOFF = "2026-01-05T18:30:00+00:00"  # keeping 2 days: 6 and 7 January (IST)
MOMENTS = ["2025-12-10T04:00:00+00:00", "2025-12-31T19:00:00+00:00",  # the latter: 1 Jan IST
           "2026-01-05T04:00:00+00:00", "2026-01-05T18:29:59+00:00",
           "2026-01-05T18:30:00+00:00", "2026-01-06T04:00:00+00:00", "2026-01-07T04:00:00+00:00"]


def snapshot() -> list[dict]:
    return [make_tick("NIFTY 50", 26000.0), make_tick("NIFTY BANK", 59000.0)]


def filled(store: TickStore) -> TickStore:
    for ts in MOMENTS:
        store.write_snapshot(ts, snapshot())
    return store


def stamps(store: TickStore) -> list[str]:
    return store.timestamps()


def test_cutoff_is_ist_midnight_keeping_today():
    assert format_ts(prune_cutoff(1, NOW)) == "2026-01-06T18:30:00+00:00"
    assert format_ts(prune_cutoff(2, NOW)) == CUTOFF
    # 20:00 UTC on 6 January is already 7 January in IST.
    assert format_ts(prune_cutoff(1, datetime(2026, 1, 6, 20, 0, tzinfo=UTC))) == "2026-01-06T18:30:00+00:00"
    for bad in (0, -3, 1.5, True):
        with pytest.raises(ConfigError, match="keep-days"):
            prune_cutoff(bad, NOW)


def test_dry_run_says_what_would_go_and_changes_nothing(any_store):
    filled(any_store)
    result = any_store.prune(2, dry_run=True, now=NOW)
    assert stamps(any_store) == MOMENTS
    text = "\n".join(result.lines())
    assert text.startswith("would ") and CUTOFF in text
    if any_store.dialect == "postgresql":
        # December (IST) goes whole; January keeps its early days until all of it is old.
        assert [(p.name, p.rows) for p in result.parts] == [("ltp_ticks_y2025m12", 2)]
        assert result.parts[0].first_ts == MOMENTS[0] and result.parts[0].last_ts == MOMENTS[0]
        assert (result.kept_older, result.kept_in) == (6, "ltp_ticks_y2026m01")
        assert "stay in ltp_ticks_y2026m01" in text
    else:
        assert result.rows == 8 and result.parts[0].first_ts == MOMENTS[0]
        assert result.parts[0].last_ts == "2026-01-05T18:29:59+00:00"


def test_prune_removes_old_days(any_store):
    filled(any_store)
    result = any_store.prune(2, now=NOW)
    if any_store.dialect == "postgresql":
        assert stamps(any_store) == MOMENTS[1:]
        assert [p.name for p in any_store.partitions()][0] == "ltp_ticks_y2026m01"
        assert result.rows == 2
        # A month later all of January is old: its partition goes too, February's stays.
        any_store.write_snapshot("2026-02-02T04:00:00+00:00", snapshot())
        any_store.prune(2, now=datetime(2026, 2, 3, 6, 0, tzinfo=UTC))
        assert stamps(any_store) == ["2026-02-02T04:00:00+00:00"]
        assert [p.name for p in any_store.partitions()] == ["ltp_ticks_y2026m02"]
    else:
        assert stamps(any_store) == MOMENTS[4:]
        assert result.rows == 8
    assert any_store.prune(2, now=NOW).rows == 0  # again: nothing left to remove
    any_store.write_snapshot("2026-01-07T04:00:05+00:00", snapshot())  # writes carry on


def test_sqlite_deletes_in_batches_and_reads_every_spelling(store):
    columns = ", ".join(TICK_FIELDS)
    spelled = {"2026-01-05 18:00:00": False,  # kept: False means removed
               "2026-01-05T23:30:00+05:30": False,  # 18:00 UTC
               "2026-01-05 19:00:00": True,  # after the cutoff, though it sorts before it as text
               "2026-01-06T00:10:00+05:30": True,  # 18:40 UTC
               "2026-01-05T18:45:00Z": True}
    with sqlite3.connect(sqlite_path(store.url)) as conn:
        for i, ts in enumerate(spelled):
            conn.execute(f"INSERT INTO ltp_ticks ({columns}) VALUES (?, NULL, ?, 1, NULL, NULL, 0, NULL, "
                         f"NULL, NULL, NULL, NULL, NULL, 'ws')", (f"NIFTY06JAN26{26000 + 50 * i}CE", ts))
    for n in range(25):
        store.write_snapshot(f"2026-01-0{1 + n % 4}T04:00:{n:02d}+00:00", snapshot())
    result = store.prune(2, now=NOW, batch=7)
    assert result.rows == 50 + 2
    kept = {r["ts"] for r in store.query("SELECT ts FROM ltp_ticks")}
    assert kept == {ts for ts, keep in spelled.items() if keep}


@pytest.mark.postgres
def test_a_postgres_table_without_partitions_deletes_in_batches(pg_url):
    plain_ltp_ticks(pg_url)
    with TickStore(pg_url) as store:
        filled(store)
        assert store.prune(2, dry_run=True, now=NOW).rows == 8 and store.count() == 14
        result = store.prune(2, now=NOW, batch=3)
        assert result.rows == 8 and stamps(store) == MOMENTS[4:]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "datacentre", *args], capture_output=True, text=True,
                          timeout=120)


def test_prune_command(any_store):
    today = now_utc()
    old, recent = today - timedelta(days=100), today - timedelta(hours=1)
    for moment in (old, recent):
        any_store.write_snapshot(moment, snapshot())
    dry = cli("prune", "--keep-days", "30", "--dry-run", "--db", any_store.url)
    assert dry.returncode == 0, dry.stderr
    assert "would " in dry.stdout and any_store.count() == 4
    done = cli("prune", "--keep-days", "30", "--db", any_store.url)
    assert done.returncode == 0, done.stderr
    assert "remove 2 rows" in done.stdout
    assert stamps(any_store) == [format_ts(recent)]
    bad = cli("prune", "--keep-days", "0", "--db", any_store.url)
    assert bad.returncode == 2 and "keep-days" in bad.stderr
