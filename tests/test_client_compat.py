"""The original data centre's client habits run unchanged: positional ``(ws_url, db_path,
on_data_callback)``, ``disconnect()``, ``%s`` SQL, ``DATABASE_URL``, and ``get_latest_all``
on a store that holds months of expired contracts, from the store and over the WebSocket."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import make_tick, synthetic_snapshot
from support import isolate_config, refused_port, wait_until

from datacentre import RealtimeDataClient
from datacentre.core.config import Settings, default_db_url, env_db_url
from datacentre.core.errors import ReadOnlyError, StoreError
from datacentre.core.instruments import has_expired, parse_symbol
from datacentre.core.ticks import frozen_clock

T0 = datetime(2026, 1, 2, 8, 13, 5, tzinfo=UTC)  # Friday, 13:43 IST
NOW = "2026-01-02T08:15:00+00:00"


@pytest.fixture(autouse=True)
def isolated_config(monkeypatch, tmp_path):
    isolate_config(monkeypatch, tmp_path)


def fill(store, snapshots: int = 3) -> None:
    for n in range(snapshots):
        moment = T0 + timedelta(seconds=5 * n)
        store.write_snapshot(moment, synthetic_snapshot(moment, nifty=26000 + n, step=n))


def test_the_originals_positional_order_db_path_and_disconnect(store, db_url, live_broadcaster):
    fill(store)
    received: list[dict] = []
    path = db_url.removeprefix("sqlite:///")
    client = RealtimeDataClient(live_broadcaster.url, path, received.append)
    try:
        assert client.connect()
        assert client.get_latest("NIFTY 50")["ltp"] == 26002
        rows = client.query("SELECT symbol, ltp FROM ltp_ticks WHERE symbol = %s ORDER BY ts DESC LIMIT %s",
                            ("NIFTY 50", 2))
        assert rows == [{"symbol": "NIFTY 50", "ltp": 26002.0}, {"symbol": "NIFTY 50", "ltp": 26001.0}]
        moment = T0 + timedelta(seconds=15)
        store.write_snapshot(moment, synthetic_snapshot(moment, nifty=26003))
        live_broadcaster.notify()
        assert wait_until(lambda: any(t["ltp"] == 26003 for t in received))
    finally:
        client.disconnect()
    assert not client.is_connected()


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_queries_take_every_placeholder_style_and_stay_read_only(engine, request, tmp_path):
    from datacentre.store import TickStore
    url = f"sqlite:///{tmp_path / 'ticks.db'}" if engine == "sqlite" else request.getfixturevalue("pg_url")
    with TickStore(url) as store:
        fill(store)
    with RealtimeDataClient(f"ws://127.0.0.1:{refused_port()}", db_url=url) as client:
        sql = "SELECT count(*) AS n FROM ltp_ticks WHERE symbol {} AND ts >= {}"
        since = "2026-01-02T08:13:10+00:00"
        assert client.query(sql.format("= ?", "?"), ("NIFTY 50", since)) == [{"n": 2}]
        assert client.query(sql.format("= %s", "%s"), ("NIFTY 50", since)) == [{"n": 2}]
        assert client.query(sql.format("= :s", ":t"), {"s": "NIFTY 50", "t": since}) == [{"n": 2}]
        # psycopg's habit: %% for a literal percent, also next to %s placeholders
        assert client.query("SELECT count(DISTINCT symbol) AS n FROM ltp_ticks WHERE symbol LIKE 'NIFTY%%CE' "
                            "AND ts >= %s", (since,)) == [{"n": 13}]
        with pytest.raises(ReadOnlyError):
            client.query("DELETE FROM ltp_ticks WHERE symbol = %s", ("NIFTY 50",))
        with pytest.raises(StoreError, match="one kind"):
            client.query("SELECT 1 WHERE 1 = ? AND 2 = :two", {"two": 2})
        with pytest.raises(StoreError, match="not a single string"):
            client.query("SELECT 1 WHERE 'NIFTY 50' = %s", "NIFTY 50")
    with TickStore(url) as store:
        assert store.count() == 3 * len(synthetic_snapshot(T0))


def on_tick(tick: dict) -> None:
    pass


@pytest.mark.parametrize("args, kwargs, message", [
    (("ws://localhost:8765", on_tick), {}, "pass the callback as on_data_callback="),
    (("ws://localhost:8765", 42), {}, "db_path must be the store's file path"),
    (("ws://localhost:8765", None, "print"), {}, "on_data_callback must be a function"),
    (("ws://localhost:8765", "a.db"), {"db_url": "sqlite:///b.db"}, "not both"),
    (("data/nifty_local.db",), {}, "ws_url must be the broadcaster's URL"),
    ((on_tick,), {}, "ws_url must be the broadcaster's URL, like 'ws://localhost:8765'; got a function"),
    ((), {"db_url": 3}, "db_url must be a database URL"),
])
def test_a_wrong_argument_is_a_clear_type_error(args, kwargs, message):
    with pytest.raises(TypeError, match=message):
        RealtimeDataClient(*args, **kwargs)


def test_the_guides_keywords_and_a_url_or_path_as_db_path(tmp_path):
    client = RealtimeDataClient(ws_url="ws://localhost:8765", on_data_callback=on_tick)
    assert (client.ws_url, client.on_data_callback, client.db_url) == ("ws://localhost:8765", on_tick, None)
    assert RealtimeDataClient("ws://h:1", tmp_path / "x.db").db_url == f"sqlite:///{tmp_path / 'x.db'}"
    assert RealtimeDataClient("ws://h:1", "sqlite:///y.db").db_url == "sqlite:///y.db"
    with pytest.raises(TypeError, match="limit must be a whole number"):
        client.get_latest_all(limit=0)


def test_database_url_names_the_store_when_nothing_else_does(store, db_url, monkeypatch):
    fill(store)
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert env_db_url() == db_url == default_db_url() == Settings.from_env().db_url
    with RealtimeDataClient(f"ws://127.0.0.1:{refused_port()}") as client:
        rows = client.query("SELECT count(*) AS n FROM ltp_ticks WHERE symbol = %s", ("NIFTY 50",))
    assert rows == [{"n": 3}]
    monkeypatch.setenv("DATACENTRE_DB_URL", "sqlite:///elsewhere.db")  # ours wins
    assert default_db_url() == "sqlite:///elsewhere.db"
    monkeypatch.delenv("DATACENTRE_DB_URL")
    monkeypatch.setenv("DATABASE_URL", "postgres://trader@db.example/nifty")  # Heroku-style spelling
    assert env_db_url() == "postgresql://trader@db.example/nifty"


# ---------------------------------------------------------------- get_latest_all

EXPIRED = [f"BANKNIFTY25NOV25{57000 + 100 * k}{r}" for k in range(60) for r in ("CE", "PE")]


def months_of_sessions(store) -> None:
    """Expired November contracts, alphabetically first, then today's live chain."""
    ticks = [make_tick(s, 100.0 + n, ts=f"2025-11-{20 + n % 5}T09:{n % 60:02d}:05+00:00", volume=650, oi=1300)
             for n, s in enumerate(EXPIRED)]
    store.insert_ticks(ticks)
    fill(store)


@pytest.mark.parametrize("through", ["store", "websocket"])
def test_get_latest_all_returns_the_live_chain_before_any_expired_contract(store, db_url, live_broadcaster,
                                                                          through, tmp_path):
    months_of_sessions(store)
    live = {t["symbol"] for t in synthetic_snapshot(T0)}
    where = db_url if through == "store" else f"sqlite:///{tmp_path / 'missing.db'}"
    with frozen_clock(NOW), RealtimeDataClient(live_broadcaster.url, db_url=where) as client:
        latest = client.get_latest_all(limit=100)
    symbols = [t["symbol"] for t in latest]
    assert len(latest) == 100 and symbols[:2] == ["NIFTY 50", "NIFTY BANK"]
    assert set(symbols[:len(live)]) == live
    assert all(t["ts"] == "2026-01-02T08:13:15+00:00" for t in latest[:len(live)])
    assert all(has_expired(parse_symbol(s).expiry, NOW) for s in symbols[len(live):])
