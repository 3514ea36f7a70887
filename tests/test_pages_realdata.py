"""Every page on imported real days (AppTest): the 54 snapshots of 1 July 2019, one bhavcopy
day and one NSE option-chain snapshot. Snapshots are off the collector's grid, strikes come and
go, IVs and quotes are missing, the expiries are long past."""
from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest
from conftest import app_test
from support import free_port

from datacentre.sources.imports import ImportOptions, import_files
from datacentre.store.tickstore import TickStore

FOLDER = os.environ.get("DATACENTRE_REALDATA")
pytestmark = [
    pytest.mark.skipif(not FOLDER, reason="DATACENTRE_REALDATA is not set (the folder of real market files)"),
    pytest.mark.usefixtures("release_app_resources"),
]
PAGE_2019, BHAV_DAY, CHAIN_DAY = date(2019, 7, 1), date(2025, 1, 10), date(2022, 3, 28)
DAYS = (PAGE_2019, BHAV_DAY, CHAIN_DAY)


def real_files() -> list[Path]:
    root = Path(FOLDER)
    return [root / "nse_oc_2019_intraday", root / "bhavcopy_udiff" / "NIFTY_2025-01-10.csv",
            root / "bhavcopy_udiff" / "BANKNIFTY_2025-01-10.csv",
            root / "nse_option_chain_json" / "NIFTY_28-Mar-2022_104719_ashok-kollipara_2bdf78b135.json"]


@pytest.fixture(scope="module")
def real_db(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('realpages') / 'real.db'}"
    with TickStore(url) as store:
        import_files(store, real_files(), ImportOptions(), progress=False)
    return url


@pytest.fixture
def app_env(real_db, monkeypatch):
    monkeypatch.setenv("DATACENTRE_DB_URL", real_db)
    monkeypatch.setenv("DATACENTRE_WS_PORT", str(free_port()))
    monkeypatch.setenv("DATACENTRE_AUTOSTART", "0")


def run(page: str, base: str = "NIFTY", **state):
    at = app_test()
    at.session_state["underlying"] = base
    for key, value in state.items():
        at.session_state[key] = value
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


@pytest.mark.usefixtures("app_env")
@pytest.mark.parametrize("page", ["overview", "option_chain", "status", "export"])
@pytest.mark.parametrize("base", ["NIFTY", "BANKNIFTY"])
def test_live_pages_on_the_newest_imported_day(page, base):
    run(page, base)


@pytest.mark.usefixtures("app_env")
def test_replay_steps_through_the_2019_day():
    at = run("replay", session=PAGE_2019.isoformat())
    assert at.selectbox(key="session").value == PAGE_2019.isoformat()
    # the file of 15:45 is after hours: kept in the store, not part of the session replayed
    assert "26 snapshots every 900 s" in " ".join(c.value for c in at.caption)
    # 09:15: the index only, nothing had traded yet
    assert any("No options" in i.value for i in at.info)
    at.button(key="replay_next").click().run()
    at.button(key="replay_next").click().run()
    shown = metrics(at)
    assert shown["As of"] == "09:45:00" and shown["NIFTY 50"].startswith("11,")
    assert shown["ATM IV"].endswith("%") and shown["PCR (OI)"] != "–"
    at.button(key="replay_last").click().run()
    assert metrics(at)["As of"] == "15:30:00"
    assert not at.exception


@pytest.mark.usefixtures("app_env")
@pytest.mark.parametrize("day", DAYS)
@pytest.mark.parametrize("page, key", [("option_chain", "chain"), ("iv_smile", "smile"),
                                       ("oi_buildup", "buildup")])
def test_stored_moments_of_every_imported_day(page, key, day):
    at = run(page, **{f"{key}_mode": "Stored", f"{key}_day": day})
    assert at.selectbox(key=f"{key}_day").value == day
    captions = " ".join(c.value for c in at.caption)
    if page == "option_chain":
        shown = metrics(at)
        assert shown["NIFTY 50"] != "–" and shown["PCR (OI)"] != "–", shown
        assert f"{day:%d %b}" in captions  # as of that day, not the newest one
    if page == "iv_smile":
        assert metrics(at)["ATM IV"].endswith("%")


@pytest.mark.usefixtures("app_env")
@pytest.mark.parametrize("clock", ["10:07", "13:52"])
def test_a_minute_between_two_snapshots_shows_the_earlier(clock):
    from datetime import datetime
    at = run("option_chain", chain_mode="Stored", chain_day=PAGE_2019)
    at.slider(key="chain_time_2019-07-01").set_value(datetime.strptime(clock, "%H:%M").time()).run()
    captions = " ".join(c.value for c in at.caption)
    expected = {"10:07": "10:00:00", "13:52": "13:45:00"}[clock]
    assert f"01 Jul {expected}" in captions, captions
