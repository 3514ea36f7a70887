"""Every page of the Streamlit app through AppTest, against a prepared store.

AppTest runs the scripts in this process, without a browser: it checks that each
page runs without an exception and shows what it should. Fragment timers are not
simulated (tests/test_browser.py covers the real thing).
"""
from __future__ import annotations

import threading

import pytest
from conftest import app_test
from streamlit.testing.v1 import AppTest
from support import refused_port

from datacentre.app import livefeed
from datacentre.feed.broadcaster import BroadcasterThread
from datacentre.store.tickstore import TickStore

PAGES = {
    "overview": "pages/overview.py",
    "option_chain": "pages/option_chain.py",
    "iv_smile": "pages/iv_smile.py",
    "oi_buildup": "pages/oi_buildup.py",
    "replay": "pages/replay.py",
    "export": "pages/export.py",
    "status": "pages/status.py",
}
pytestmark = pytest.mark.usefixtures("release_app_resources")  # each test its own store and feed


def _offline(url: str, monkeypatch) -> str:
    monkeypatch.setenv("DATACENTRE_DB_URL", url)
    monkeypatch.setenv("DATACENTRE_WS_PORT", str(refused_port()))
    monkeypatch.setenv("DATACENTRE_AUTOSTART", "0")
    return url


@pytest.fixture
def offline_app(market_db, monkeypatch):
    """The app on a prepared store with no broadcaster and autostart off."""
    return _offline(market_db, monkeypatch)


@pytest.fixture
def offline_app_on_both_engines(any_market_db, monkeypatch):
    """``offline_app`` on SQLite, then on PostgreSQL: every page reads either store."""
    return _offline(any_market_db, monkeypatch)


@pytest.fixture
def live_app(market_db, monkeypatch):
    """The app on a prepared store with a real broadcaster on a free port."""
    store = TickStore(market_db)
    broadcaster = BroadcasterThread(store, port=0).start()
    monkeypatch.setenv("DATACENTRE_DB_URL", market_db)
    monkeypatch.setenv("DATACENTRE_WS_PORT", str(broadcaster.port))
    yield broadcaster
    broadcaster.stop()
    store.close()


def run(page: str | None = None) -> AppTest:
    at = app_test()
    if page is not None:
        at.switch_page(PAGES[page]).run()
        assert not at.exception, [e.value for e in at.exception]
    return at


def labels(at: AppTest) -> set[str]:
    return {m.label for m in at.metric}


def test_every_page_runs_without_an_exception(offline_app_on_both_engines):
    at = run()
    for page in PAGES:
        at.switch_page(PAGES[page]).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert not at.error, (page, [e.value for e in at.error])


def test_reruns_never_add_feed_threads(live_app):
    at = run("option_chain")
    for _ in range(3):
        at.run()
    at.switch_page(PAGES["overview"]).run()
    assert not at.exception
    threads = [t for t in threading.enumerate() if t.name.startswith(livefeed.THREAD_NAME)]
    assert len(threads) == 1, threads
    assert livefeed.running_feeds()[0].wait_connected(10)


def test_sidebar_offers_underlyings_and_the_stored_expiries(offline_app):
    # AppTest (1.67) shows the sidebar of the first run only when st.navigation is used;
    # later runs set the selection through session_state, as the widgets do.
    at = run()
    underlying = at.sidebar.get("button_group")[0]
    assert underlying.value == "NIFTY"
    expiry = at.sidebar.selectbox(key="expiry")
    assert len(expiry.options) == 1
    assert expiry.value is not None
    state = " ".join(m.value for m in at.sidebar.markdown)
    assert "Connecting" in state  # the feed's badge: nothing answers, autostart is off
    assert "Last tick" in at.sidebar.caption[0].value


def test_overview_shows_the_market(offline_app):
    at = run("overview")
    found = labels(at)
    for label in ("NIFTY 50", "Future", "Basis", "Day change", "ATM strike", "ATM IV", "PCR (OI)",
                  "Max pain", "Last tick"):
        assert label in found, (label, found)
    spot = next(m for m in at.metric if m.label == "NIFTY 50")
    assert spot.value.replace(",", "").replace(".", "").isdigit()
    atm = next(m for m in at.metric if m.label == "ATM strike")
    assert int(atm.value.replace(",", "")) % 50 == 0
    assert at.get("plotly_chart"), "the intraday spot chart"


def test_overview_follows_the_underlying(offline_app):
    at = run("overview")
    at.session_state["underlying"] = "BANKNIFTY"
    at.run()
    assert not at.exception
    assert "NIFTY BANK" in labels(at)
    atm = next(m for m in at.metric if m.label == "ATM strike")
    assert int(atm.value.replace(",", "")) % 100 == 0


def test_option_chain_table(offline_app):
    at = run("option_chain")
    assert {"PCR (OI)", "Max pain", "Call OI", "Put OI"} <= labels(at)
    table = at.dataframe[0].value
    assert "strike" in table.columns
    assert list(table.columns[:2]) == ["ce_oi", "ce_oi_change"]
    assert list(table.columns[-2:]) == ["pe_oi_change", "pe_oi"]
    # the prepared store has ATM +/- 6 strikes; the default window is +/- 10
    assert len(table) == 13
    assert table["strike"].is_monotonic_increasing
    assert (table["strike"] % 50 == 0).all()


def test_option_chain_window_and_greeks(offline_app):
    at = run("option_chain")
    at.get("button_group")[0].set_value(5).run()
    assert not at.exception
    assert len(at.dataframe[0].value) == 11
    at.toggle(key="chain_greeks").set_value(True).run()
    assert {"ce_gamma", "pe_vega"} <= set(at.dataframe[0].value.columns)
    assert len(at.dataframe[0].value) == 11  # the window was kept


def test_chain_selections_survive_a_visit_to_another_page(offline_app):
    at = run("option_chain")
    at.get("button_group")[0].set_value(5).run()
    at.switch_page(PAGES["overview"]).run()
    at.switch_page(PAGES["option_chain"]).run()
    assert not at.exception
    assert len(at.dataframe[0].value) == 11


def test_status_page(offline_app):
    at = run("status")
    found = labels(at)
    assert {"Broadcaster", "Subscribers", "Ticks / s", "Collector", "Rows", "Size", "Last tick"} <= found
    assert next(m for m in at.metric if m.label == "Broadcaster").value == "Down"
    rows = next(m for m in at.metric if m.label == "Rows")
    assert int(rows.value.replace(",", "")) > 0
    table = at.dataframe[0].value
    assert list(table["Underlying"]) == ["NIFTY", "BANKNIFTY"]


def test_with_a_live_broadcaster(live_app):
    at = run("status")
    assert next(m for m in at.metric if m.label == "Broadcaster").value == "Up"
    at.switch_page(PAGES["option_chain"]).run()
    assert not at.exception
    assert len(at.dataframe[0].value) == 13


def test_pages_wait_politely_for_data(tmp_path, monkeypatch):
    monkeypatch.setenv("DATACENTRE_DB_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    monkeypatch.setenv("DATACENTRE_WS_PORT", str(refused_port()))
    monkeypatch.setenv("DATACENTRE_AUTOSTART", "0")
    at = run("overview")
    assert any("Waiting for the first snapshot" in i.value for i in at.info)
    at.switch_page(PAGES["option_chain"]).run()
    assert not at.exception
    assert any("No options" in i.value for i in at.info)
    at.switch_page(PAGES["status"]).run()
    assert not at.exception
    assert next(m for m in at.metric if m.label == "Rows").value == "0"


def test_a_bad_setting_is_reported_not_raised(offline_app, monkeypatch):
    monkeypatch.setenv("DATACENTRE_INTERVAL", "often")
    at = app_test()
    assert "DATACENTRE_INTERVAL" in at.error[0].value
