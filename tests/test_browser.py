"""The real app in a real browser: `streamlit run app.py` + headless Chromium (Playwright).

The server runs as a subprocess with autostart on, so it starts the embedded data
centre itself (collector + broadcaster on a free port, one snapshot a second). The
store is backfilled beforehand at one snapshot a minute, which takes about a second,
instead of letting the app backfill a whole session at one a second.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from support import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-dev-shm-usage"]
ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 60
PAGE_TIMEOUT_MS = 60_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs Debian's chromium at {CHROMIUM}"),
]


def wait_healthy(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.25)
    pytest.fail(f"streamlit not healthy after {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    from datacentre.ops.backfill import backfill, recent_sessions
    from datacentre.store.tickstore import TickStore

    data = tmp_path_factory.mktemp("browser")
    db_url = f"sqlite:///{data / 'ticks.db'}"
    with TickStore(db_url) as store:
        backfill(store, recent_sessions(1), interval=60, seed=11)
    env = {"DATACENTRE_DB_URL": db_url, "DATACENTRE_INTERVAL": "1", "DATACENTRE_AUTOSTART": "1",
           "DATACENTRE_SEED": "11"}
    with streamlit_server(data, env) as url:
        yield url


@contextmanager
def streamlit_server(data: Path, settings: dict[str, str]):
    """``streamlit run app.py`` on a free port with ``settings`` in its environment; the URL."""
    port, ws_port = free_port(), free_port()
    env = {**os.environ, "DATACENTRE_DATA_DIR": str(data), "DATACENTRE_WS_PORT": str(ws_port), **settings}
    env.pop("DATACENTRE_WS_URL", None)
    log = data / "streamlit.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.port", str(port), "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log)
        yield url
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    p = context.new_page()
    yield p
    context.close()


def open_page(page, url: str) -> None:
    """Load ``url`` and wait until its script has run once (fragments may rerun later)."""
    page.goto(url, wait_until="domcontentloaded", timeout=PAGE_TIMEOUT_MS)
    page.wait_for_selector('[data-testid="stApp"]', timeout=PAGE_TIMEOUT_MS)
    page.locator('[data-testid="stMain"] [data-testid="stElementContainer"]:visible').first.wait_for(
        timeout=PAGE_TIMEOUT_MS)
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]',
                           timeout=PAGE_TIMEOUT_MS)
    page.wait_for_selector('[data-testid="stSkeleton"]', state="detached", timeout=PAGE_TIMEOUT_MS)


def no_exception(page) -> None:
    errors = page.locator('[data-testid="stException"]')
    assert errors.count() == 0, errors.first.inner_text()


def metric_labels(page) -> list[str]:
    return page.locator('[data-testid="stMetricLabel"]').all_inner_texts()


OTHER_PAGES = ["/iv_smile", "/oi_buildup", "/replay", "/export"]


def test_overview_is_live_without_reloading(app_url, page):
    open_page(page, app_url + "/")
    no_exception(page)
    labels = metric_labels(page)
    for label in ("NIFTY 50", "Future", "Basis", "Day change", "ATM strike", "ATM IV", "PCR (OI)",
                  "Max pain", "Last tick"):
        assert label in labels, labels
    page.wait_for_selector('[data-testid="stPlotlyChart"]', timeout=PAGE_TIMEOUT_MS)
    sidebar = page.locator('[data-testid="stSidebar"]')
    assert "Underlying" in sidebar.inner_text()
    page.wait_for_function("() => document.querySelector('[data-testid=\"stSidebar\"]')"
                           ".innerText.includes('Embedded')", timeout=PAGE_TIMEOUT_MS)

    # the fragment refreshes the figures in place: a marker on window survives
    page.evaluate("window.__notReloaded = true")
    last_tick = page.locator('[data-testid="stMetric"]', has_text="Last tick")
    first = last_tick.inner_text()
    page.wait_for_function(
        "(before) => [...document.querySelectorAll('[data-testid=\"stMetric\"]')]"
        ".some(m => m.innerText.includes('Last tick') && m.innerText !== before)",
        arg=first, timeout=30_000)
    assert page.evaluate("window.__notReloaded") is True
    no_exception(page)


def test_option_chain_deep_link(app_url, page):
    open_page(page, app_url + "/option_chain")  # a first visit straight to the page
    no_exception(page)
    assert {"PCR (OI)", "Max pain", "Call OI", "Put OI"} <= set(metric_labels(page))
    cells = page.locator('[data-testid="stDataFrame"] [role="gridcell"]')
    cells.first.wait_for(state="attached", timeout=PAGE_TIMEOUT_MS)
    headers = page.locator('[data-testid="stDataFrame"] [role="columnheader"]').all_text_contents()
    assert headers[:2] == ["OI (L)", "Chg OI (L)"] and headers[-2:] == ["Chg OI (L)", "OI (L)"], headers
    strike_at = headers.index("Strike")
    values = cells.all_text_contents()
    strikes = [float(v) for v in values[strike_at::len(headers)]]
    assert len(strikes) == 21  # ATM +/- 10
    assert strikes == sorted(strikes) and all(s % 50 == 0 for s in strikes)
    sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
    assert "Expiry" in sidebar  # the deep link went through app.py


def test_the_underlying_comes_from_the_link(app_url, page):
    open_page(page, app_url + "/option_chain?underlying=BANKNIFTY")
    no_exception(page)
    assert "NIFTY BANK" in metric_labels(page)
    page.locator('[data-testid="stDataFrame"] [role="gridcell"]').first.wait_for(
        state="attached", timeout=PAGE_TIMEOUT_MS)
    headers = page.locator('[data-testid="stDataFrame"] [role="columnheader"]').all_text_contents()
    values = page.locator('[data-testid="stDataFrame"] [role="gridcell"]').all_text_contents()
    strikes = [float(v) for v in values[headers.index("Strike")::len(headers)]]
    assert strikes and all(s % 100 == 0 for s in strikes)


def test_option_chain_keeps_the_window_while_refreshing(app_url, page):
    open_page(page, app_url + "/option_chain")
    page.get_by_role("radiogroup", name="Strikes around ATM").get_by_role("radio", name="±5").click()
    page.wait_for_timeout(500)
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]',
                           timeout=PAGE_TIMEOUT_MS)

    def rows() -> int:
        headers = page.locator('[data-testid="stDataFrame"] [role="columnheader"]').count()
        return page.locator('[data-testid="stDataFrame"] [role="gridcell"]').count() // headers

    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=\"stDataFrame\"] [role=\"gridcell\"]').length"
        " === 11 * document.querySelectorAll('[data-testid=\"stDataFrame\"] [role=\"columnheader\"]').length",
        timeout=PAGE_TIMEOUT_MS)
    page.wait_for_timeout(3000)  # a few refreshes of the fragment
    assert rows() == 11
    no_exception(page)


def test_status_page(app_url, page):
    open_page(page, app_url + "/status")
    no_exception(page)
    labels = metric_labels(page)
    assert {"Broadcaster", "Subscribers", "Ticks / s", "Collector", "Rows"} <= set(labels), labels
    broadcaster = page.locator('[data-testid="stMetric"]', has_text="Broadcaster").inner_text()
    assert "Up" in broadcaster


@pytest.mark.parametrize("path", OTHER_PAGES)
def test_other_pages_open(app_url, page, path):
    open_page(page, app_url + path)
    no_exception(page)
    assert "Expiry" in page.locator('[data-testid="stSidebar"]').inner_text()


# ---------------------------------------------------------------- the day charts

DAY_CHARTS = {  # page -> (its charts' keys, a card it always shows)
    "/straddle": (("straddle_chart", "legs_chart"), "Straddle"),
    "/oi_history": (("oi_history_chart", "pain_pcr_chart"), "PCR (OI)"),
    "/futures": (("futures_chart",), "Basis"),
    "/gex": (("gex_chart",), "Net GEX"),
    "/candles": (("candles_chart",), "VWAP"),
    "/iv_rank": (("iv_rank_chart",), "IV rank"),
}


def charts_drawn(page, keys) -> None:
    """Each chart of ``keys`` drawn by plotly: a trace of it has a drawn path (a line, bars
    or candles), not an empty figure's message."""
    for key in keys:
        page.locator(f".st-key-{key} .js-plotly-plot").first.wait_for(timeout=PAGE_TIMEOUT_MS)
        page.wait_for_function(
            "(key) => [...document.querySelectorAll(`.st-key-${key} .js-plotly-plot .trace path`)]"
            ".some(p => (p.getAttribute('d') || '').length > 10)", arg=key, timeout=PAGE_TIMEOUT_MS)


def pick_last(page, combobox) -> None:
    """Open ``combobox`` and pick its last option; again if a rerun closed the list first
    (a live page reruns every second)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    combobox.wait_for(timeout=PAGE_TIMEOUT_MS)
    for attempt in range(3):
        combobox.click()
        try:
            page.get_by_role("option").last.click(timeout=5_000)
            return
        except PlaywrightTimeout:
            if attempt == 2:
                raise


def main_text(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


@pytest.mark.parametrize("path", DAY_CHARTS)
def test_day_chart_live_then_as_of_the_stored_session(app_url, page, path):
    keys, card = DAY_CHARTS[path]
    open_page(page, app_url + path)
    no_exception(page)
    assert card in metric_labels(page), metric_labels(page)
    charts_drawn(page, keys)
    # live: the fragment redraws with the feed (a new snapshot every second), in place
    page.evaluate("window.__notReloaded = true")
    before = main_text(page)
    page.wait_for_function("(before) => document.querySelector('[data-testid=\"stMain\"]').innerText"
                           " !== before", arg=before, timeout=30_000)
    assert page.evaluate("window.__notReloaded") is True
    no_exception(page)

    # replay: the oldest stored session (the backfilled one), at its last minute
    page.get_by_role("radiogroup", name="As of").get_by_role("radio", name="Stored").click()
    pick_last(page, page.get_by_role("combobox", name=re.compile("^(Day|Session)$")))
    settle(page)
    no_exception(page)
    assert card in metric_labels(page), metric_labels(page)
    charts_drawn(page, keys)
    page.get_by_text("15:30:00").first.wait_for(timeout=PAGE_TIMEOUT_MS)  # the session's last snapshot
    no_exception(page)


def test_iv_rank_backfills_sessions_from_the_page(app_url, page):
    open_page(page, app_url + "/iv_rank")
    no_exception(page)
    page.get_by_text("IV rank needs at least 20 stored sessions").wait_for(timeout=PAGE_TIMEOUT_MS)
    sessions = int(metric_value(page, "Sessions"))
    box = page.get_by_label("Sessions to backfill")
    box.fill("2")
    box.press("Enter")
    page.get_by_text("backfill --days 2 --interval 300").wait_for(timeout=PAGE_TIMEOUT_MS)
    page.get_by_role("button", name="Backfill").click()
    page.get_by_text("Backfilled").wait_for(timeout=PAGE_TIMEOUT_MS)
    page.wait_for_function(
        "(before) => [...document.querySelectorAll('[data-testid=\"stMetric\"]')].some(m =>"
        " m.querySelector('[data-testid=\"stMetricLabel\"]').innerText.trim() === 'Sessions' &&"
        " parseInt(m.querySelector('[data-testid=\"stMetricValue\"]').innerText) > before)",
        arg=sessions, timeout=PAGE_TIMEOUT_MS)
    no_exception(page)


# ---------------------------------------------------------------- an imported real day

REALDATA = os.environ.get("DATACENTRE_REALDATA")


@pytest.fixture(scope="module")
def real_app_url(tmp_path_factory):
    """The app on a store holding only imported real data (no simulator): the 54 NSE
    option-chain snapshots of 1 July 2019, a bhavcopy day and an option-chain API snapshot."""
    if not REALDATA:
        pytest.skip("DATACENTRE_REALDATA is not set (the folder of real market files)")
    from datacentre.sources.imports import ImportOptions, import_files
    from datacentre.store.tickstore import TickStore

    root = Path(REALDATA)
    files = [root / "nse_oc_2019_intraday", root / "bhavcopy_udiff" / "NIFTY_2025-01-10.csv",
             root / "nse_option_chain_json" / "NIFTY_28-Mar-2022_104719_ashok-kollipara_2bdf78b135.json"]
    data = tmp_path_factory.mktemp("browser_real")
    db_url = f"sqlite:///{data / 'real.db'}"
    with TickStore(db_url) as store:
        import_files(store, files, ImportOptions(), progress=False)
    with streamlit_server(data, {"DATACENTRE_DB_URL": db_url, "DATACENTRE_AUTOSTART": "0"}) as url:
        yield url


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the selectbox labelled ``label`` and wait for the rerun."""
    page.get_by_role("combobox", name=label).click()
    page.get_by_role("option", name=option).click()
    settle(page)


def settle(page) -> None:
    page.wait_for_timeout(300)
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]',
                           timeout=PAGE_TIMEOUT_MS)


def metric_value(page, label: str) -> str:
    return page.locator('[data-testid="stMetric"]', has_text=label).locator(
        '[data-testid="stMetricValue"]').inner_text()


def test_replay_steps_through_the_imported_2019_day(real_app_url, page):
    open_page(page, real_app_url + "/replay")
    no_exception(page)
    choose(page, "Session", "Mon 01 Jul 2019")
    # the file of 15:45 is after hours: stored, not part of the session replayed
    page.get_by_text("26 snapshots every 900 s").wait_for(timeout=PAGE_TIMEOUT_MS)
    page.get_by_text("No options of this underlying in that snapshot").wait_for(timeout=PAGE_TIMEOUT_MS)
    for _ in range(3):  # 09:15 had no trades yet; step to 10:00
        page.locator(".st-key-replay_next button:visible").click()
        settle(page)
    page.wait_for_function("() => [...document.querySelectorAll('[data-testid=\"stMetric\"]')]"
                           ".some(m => m.innerText.includes('As of') && m.innerText.includes('10:00:00'))",
                           timeout=PAGE_TIMEOUT_MS)
    assert metric_value(page, "NIFTY 50").startswith("11,")
    assert metric_value(page, "ATM IV").endswith("%")
    page.wait_for_selector('[data-testid="stPlotlyChart"]', timeout=PAGE_TIMEOUT_MS)
    assert page.locator('[data-testid="stDataFrame"]').count() >= 1
    no_exception(page)


@pytest.mark.parametrize("path", ["/option_chain", "/iv_smile", "/oi_buildup"])
def test_pages_as_of_the_imported_2019_day(real_app_url, page, path):
    open_page(page, real_app_url + path)
    no_exception(page)
    page.get_by_role("radiogroup", name="As of").get_by_role("radio", name="Stored").click()
    settle(page)
    choose(page, "Session", "Mon 01 Jul 2019")
    page.get_by_text("01 Jul").first.wait_for(timeout=PAGE_TIMEOUT_MS)
    no_exception(page)
    main = page.locator('[data-testid="stMain"]')
    # the day's own expiry, long expired: in the caption, or chosen in the page's expiry picker
    assert "04 Jul 2019" in main.inner_text() or \
        main.get_by_role("combobox", name="Expiry").input_value().startswith("04 Jul 2019")


# ---------------------------------------------------------------- honest labels, one truth

OWN_PAGES = ["/", "/option_chain", "/iv_smile", "/oi_buildup", "/replay", "/export", "/status"]


@pytest.fixture(scope="module")
def closed_app(tmp_path_factory):
    """The app at 01:20 IST the night after the last complete session, the exchange closed
    (the clock of the whole server set by tests/clock), on a store that does not change
    (autostart off): the live market is the store's last snapshot, one moment on every page."""
    from datetime import datetime, time, timedelta

    from datacentre.core.instruments import last_complete_session
    from datacentre.core.ticks import IST, now_utc
    from datacentre.ops.backfill import backfill
    from datacentre.store.tickstore import TickStore

    day = last_complete_session(now_utc())
    night = datetime.combine(day + timedelta(days=1), time(1, 20), IST)
    data = tmp_path_factory.mktemp("browser_closed")
    db_url = f"sqlite:///{data / 'ticks.db'}"
    with TickStore(db_url) as store:
        backfill(store, [day], interval=60, seed=12)
    env = {"DATACENTRE_DB_URL": db_url, "DATACENTRE_AUTOSTART": "0",
           "DATACENTRE_TEST_CLOCK": night.isoformat(), "PYTHONPATH": str(ROOT / "tests" / "clock")}
    with streamlit_server(data, env) as url:
        yield url, day, db_url


@pytest.mark.parametrize("path", OWN_PAGES)
def test_every_page_says_the_market_is_simulated(app_url, page, path):
    open_page(page, app_url + path)
    no_exception(page)
    page.locator('[data-testid="stMain"]').get_by_text("Simulated market").first.wait_for(
        timeout=PAGE_TIMEOUT_MS)


def replay_link(page):
    main = page.locator('[data-testid="stMain"]')
    return main.get_by_role("link", name=re.compile("Replay the last session"))


@pytest.mark.parametrize("path", OWN_PAGES)
def test_after_hours_every_page_says_the_exchange_is_closed(closed_app, page, path):
    url, day, _ = closed_app
    open_page(page, url + path)
    no_exception(page)
    page.locator('[data-testid="stAlert"]', has_text="The exchange is closed").wait_for(
        timeout=PAGE_TIMEOUT_MS)
    assert f"session={day.isoformat()}" in replay_link(page).get_attribute("href")


def test_the_banner_links_to_the_last_session(closed_app, page):
    url, day, _ = closed_app
    open_page(page, url + "/")
    replay_link(page).click()
    # the app's own navigation: the URL changes without a page load
    page.wait_for_function("() => location.pathname.endsWith('/replay')", timeout=PAGE_TIMEOUT_MS)
    page.get_by_role("combobox", name="Session").wait_for(timeout=PAGE_TIMEOUT_MS)
    settle(page)
    no_exception(page)
    assert page.get_by_role("combobox", name="Session").input_value() == f"{day:%a %d %b %Y}"
    assert metric_value(page, "As of") == "09:15:00"


def test_pcr_is_the_same_on_every_page_at_one_moment(closed_app, page):
    """Overview, Option chain and OI build-up show one PCR for the one live snapshot, and
    it is that snapshot's own (oi_summary of its chain)."""
    from datacentre import analytics
    from datacentre.store.tickstore import TickStore

    url, _, db_url = closed_app
    shown = {}
    for path in ("/", "/option_chain", "/oi_buildup"):
        open_page(page, url + path)
        no_exception(page)
        page.locator('[data-testid="stMetric"]', has_text="PCR (OI)").first.wait_for(timeout=PAGE_TIMEOUT_MS)
        shown[path] = metric_value(page, "PCR (OI)")
    with TickStore(db_url) as store:
        ticks = store.snapshot_at(store.last_ts(), "NIFTY")
    nearest = analytics.expiries(ticks, "NIFTY")[0]  # the sidebar's expiry
    expected = analytics.oi_summary(analytics.chain_table(ticks, "NIFTY", nearest)).pcr
    assert set(shown.values()) == {f"{expected:.2f}"}, shown


def test_the_favicon_is_served_by_the_app(app_url, page):
    open_page(page, app_url + "/")
    icons = page.evaluate("() => [...document.querySelectorAll('link[rel~=icon]')].map(l => l.href)")
    assert icons and all(icon.startswith(app_url) for icon in icons), icons  # nothing from the internet
    with urllib.request.urlopen(icons[-1], timeout=10) as response:
        assert response.status == 200 and response.headers["Content-Type"] == "image/png"


@pytest.mark.parametrize("greeks", [False, True])
def test_the_chain_fits_1600_pixels(app_url, page, greeks):
    """Both OI columns in view, BANKNIFTY's wide prices included, with the Greeks or without."""
    open_page(page, app_url + "/option_chain?underlying=BANKNIFTY")
    page.locator('[data-testid="stDataFrame"] [role="gridcell"]').first.wait_for(
        state="attached", timeout=PAGE_TIMEOUT_MS)
    if greeks:
        page.get_by_text("Greeks").first.click()
        settle(page)
        page.wait_for_function("() => [...document.querySelectorAll('[data-testid=\"stDataFrame\"] "
                               "[role=\"columnheader\"]')].some(h => h.innerText === 'Gamma')",
                               timeout=PAGE_TIMEOUT_MS)
    widths = page.evaluate("() => { const s = document.querySelector('[data-testid=\"stDataFrame\"] "
                           ".dvn-scroller'); return [s.scrollWidth, s.clientWidth]; }")
    assert widths[0] <= widths[1], widths  # no horizontal scrolling
    headers = page.locator('[data-testid="stDataFrame"] [role="columnheader"]').all_text_contents()
    assert headers[0] in ("OI (L)", "Gamma") and headers[-1] in ("OI (L)", "Gamma"), headers

