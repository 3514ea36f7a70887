"""Finding the store that already exists: one read-only opener for clients, ``status`` and ``verify``.

The store lives in a folder whose name holds every character a ``file:`` URI treats
specially (``#`` starts a fragment, ``?`` a query, ``%`` an escape), so an opener that
builds its URI by hand opens some other file, or none.
"""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import synthetic_snapshot
from support import isolate_config, refused_port, wait_until

from datacentre import RealtimeDataClient
from datacentre.core.config import Settings
from datacentre.core.errors import StoreError
from datacentre.ops.services import format_status, service_command, service_status
from datacentre.ops.verify import format_table, run_verify
from datacentre.store import TickStore, open_existing_store

FOLDER = "C# ticks?100%"
T0 = datetime(2026, 1, 2, 8, 13, 5, tzinfo=UTC)


def sqlite_url(path: Path | str) -> str:
    """The URL of a SQLite file, quoted by SQLAlchemy so the folder name survives parsing."""
    return sa.engine.URL.create("sqlite", database=str(path)).render_as_string()


@pytest.fixture
def db_url(tmp_path) -> str:
    """Every store fixture (``store``, ``live_broadcaster``, ``live_market``) lives in FOLDER."""
    return sqlite_url(tmp_path / FOLDER / "ticks.db")


@pytest.fixture(autouse=True)
def isolated_config(monkeypatch, tmp_path):
    isolate_config(monkeypatch, tmp_path)


@pytest.fixture
def filled(store, tmp_path) -> TickStore:
    store.write_snapshot(T0, synthetic_snapshot(T0))
    assert (tmp_path / FOLDER / "ticks.db").is_file()  # the store really is inside the folder
    return store


def only_the_folder(tmp_path: Path) -> bool:
    """Nothing was created next to the folder (a hand-built URI cut at '#' creates ``C``)."""
    return sorted(p.name for p in tmp_path.iterdir()) == [FOLDER]


def test_query_and_the_opener_find_the_store_in_the_folder(filled, db_url, tmp_path):
    count = filled.count()
    assert filled.query("SELECT count(*) AS n FROM ltp_ticks") == [{"n": count}]
    found = open_existing_store(db_url)
    assert found is not None
    try:
        assert found.count() == count
    finally:
        found.close()
    assert only_the_folder(tmp_path)


def test_the_client_queries_the_store_in_the_folder(filled, db_url, tmp_path):
    with RealtimeDataClient(f"ws://127.0.0.1:{refused_port()}", db_url=db_url) as client:
        assert client.query("SELECT count(*) AS n FROM ltp_ticks") == [{"n": filled.count()}]
        assert client.get_latest("NIFTY 50") == filled.latest("NIFTY 50")
    assert only_the_folder(tmp_path)


def test_status_reads_the_store_in_the_folder_from_a_relative_url(filled, tmp_path):
    settings = Settings(db_url=sqlite_url(Path(FOLDER) / "ticks.db"), ws_port=refused_port(),
                        data_dir=tmp_path / "data")
    rows = {row["name"]: row for row in service_status(settings)}
    collector = rows["collector"]
    assert "store_error" not in collector, collector
    assert collector["last_id"] == filled.max_id() and collector["last_tick_ts"] == filled.last_ts()
    assert "no tick store" not in format_status(list(rows.values()))
    # the services get the same file, whatever folder they are started from
    command = service_command(settings, "collector")
    db_arg = command[command.index("--db") + 1]
    assert sa.engine.make_url(db_arg).database == str(tmp_path / FOLDER / "ticks.db")


def test_verify_reads_the_rate_from_the_store_in_the_folder(store, db_url, live_broadcaster, live_market):
    assert wait_until(lambda: live_market.snapshots >= 3)
    checks = run_verify(live_broadcaster.url, timeout=10, db_url=db_url, interval=0.2)
    assert all(c.ok for c in checks), format_table(checks)
    assert "in the store" in checks[-1].detail


def test_the_opener_never_creates_a_store(tmp_path):
    folder = tmp_path / FOLDER
    folder.mkdir()
    empty = folder / "empty.db"
    empty.touch()  # a file, but no ltp_ticks table
    assert open_existing_store(sqlite_url(folder / "none.db")) is None
    assert open_existing_store(sqlite_url(empty)) is None
    assert sorted(p.name for p in folder.iterdir()) == ["empty.db"] and empty.stat().st_size == 0
    assert only_the_folder(tmp_path)
    with pytest.raises(StoreError, match="invalid database URL"):
        open_existing_store("not a url")


def test_the_opener_leaves_a_file_that_is_not_sqlite_alone(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    assert open_existing_store(sqlite_url(junk)) is None
    assert junk.read_bytes() == b"not a database at all" * 100
