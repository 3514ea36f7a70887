"""The day-chart pages (straddle, OI history, futures, gamma exposure, candles, IV rank)
through AppTest on simulated sessions: each runs live and as of a stored moment, and its
cards show that moment's figures, worked out here from the store's own ticks."""
from __future__ import annotations

from datetime import time

import pytest
from conftest import app_test, backfilled_sessions
from streamlit.testing.v1 import AppTest
from support import free_port, wait_until

from datacentre import analytics
from datacentre.analytics import intraday
from datacentre.app import backfilljob, daycharts
from datacentre.app.days import ist_ts
from datacentre.app.formatting import fmt_oi, fmt_pct, fmt_price, fmt_ratio, fmt_strike
from datacentre.core.config import Settings
from datacentre.core.instruments import nearest_future, session_bounds
from datacentre.core.ticks import format_ts
from datacentre.ops.backfill import recent_sessions
from datacentre.store.tickstore import TickStore

PAGES = {name: f"pages/{name}.py"
         for name in ("straddle", "oi_history", "futures", "gex", "candles", "iv_rank")}
KEYS = {"straddle": "straddle", "oi_history": "oi_history", "futures": "futures", "gex": "gex",
        "candles": "candles", "iv_rank": "iv_rank"}
CARDS = {
    "straddle": {"Straddle", "Day range", "Breakevens", "Strike", "Call + put"},
    "oi_history": {"Calls OI, chosen strikes", "Puts OI, chosen strikes", "PCR (OI)", "Max pain", "Strikes"},
    "futures": {"Basis", "Carry", "Open interest", "Volume"},
    "gex": {"Net GEX", "Calls", "Puts", "Most positive", "Most negative", "Spot"},
    "candles": {"NIFTY 50", "Day high", "Day low", "VWAP", "Volume", "As of"},
    "iv_rank": {"ATM IV", "IV rank", "IV percentile", "Low", "High", "Sessions"},
}
CHOSEN = time(11, 32)
pytestmark = pytest.mark.usefixtures("release_app_resources")


@pytest.fixture(scope="module")
def sessions_db(tmp_path_factory) -> tuple[str, list]:
    """Three complete simulated sessions, a snapshot a minute."""
    return backfilled_sessions(tmp_path_factory, "daycharts", 3, interval=60.0, seed=7)


def open_page(page: str) -> AppTest:
    at = app_test()
    at.switch_page(PAGES[page]).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def as_of(at: AppTest, page: str, day, clock: time = CHOSEN) -> str:
    """Switch ``page`` to the stored moment ``clock`` IST on ``day``; returns the target time."""
    key = KEYS[page]
    at.button_group(key=f"{key}_mode").set_value("Stored").run()
    at.selectbox(key=f"{key}_day").set_value(day).run()
    at.slider(key=f"{key}_time_{day.isoformat()}").set_value(clock).run()
    assert not at.exception, [e.value for e in at.exception]
    return ist_ts(day, clock.replace(second=59))


def card(at: AppTest, label: str):
    found = [m for m in at.metric if m.label == label]
    assert found, (label, [m.label for m in at.metric])
    return found[0]


def in_force(store: TickStore, target: str) -> tuple[str, list[dict]]:
    ticks = store.snapshot_at(target, "NIFTY")
    return ticks[0]["ts"], ticks


@pytest.mark.parametrize("page", list(PAGES))
def test_every_chart_page_runs_live(app_env, page):
    at = open_page(page)
    assert not at.error, [e.value for e in at.error]
    assert CARDS[page] <= {m.label for m in at.metric}, (page, [m.label for m in at.metric])
    assert at.get("plotly_chart")


@pytest.mark.parametrize("page", list(PAGES))
def test_every_chart_page_runs_as_of_a_stored_moment(app_env, page):
    _, days = app_env
    at = open_page(page)
    as_of(at, page, days[0])
    assert not at.error, [e.value for e in at.error]
    assert CARDS[page] <= {m.label for m in at.metric}, (page, [m.label for m in at.metric])
    assert at.get("plotly_chart")


def chain_at(at: AppTest, store: TickStore, target: str, page: str, day):
    """The chain a page shows at ``target``: of the expiry picked in its as-of controls
    (by default the nearest still trading then, ``asof.expiry_at``)."""
    ts, ticks = in_force(store, target)
    expiry = at.selectbox(key=f"{KEYS[page]}_expiry_{day}").value
    assert expiry in analytics.expiries(ticks, "NIFTY")
    return analytics.chain_table(ticks, "NIFTY", expiry), ticks


def test_straddle_cards_are_the_moment_snapshot(app_env):
    store, days = app_env
    at = open_page("straddle")
    target = as_of(at, "straddle", days[0])
    chain, _ = chain_at(at, store, target, "straddle", days[0])
    atm = chain.attrs["atm"]
    row = chain[chain["strike"] == atm].iloc[0]
    assert card(at, "Straddle").value == fmt_price(row["ce_ltp"] + row["pe_ltp"])
    assert card(at, "Strike").value == fmt_strike(atm)
    # the day range runs to the moment, not past it: from the store's rows up to the target
    rows = store.straddle_series("NIFTY", chain.attrs["expiry"], *analytics.day_bounds(days[0]))
    premiums = [r["ce"] + r["pe"] for r in rows if r["ts"] <= target and r["ce"] and r["pe"]]
    assert card(at, "Day range").value == f"{fmt_price(min(premiums))} – {fmt_price(max(premiums))}"
    later = [r["ce"] + r["pe"] for r in rows if r["ts"] > target and r["ce"] and r["pe"]]
    assert later, "the session goes on after the moment"

    # the two legs (by default two strikes above the live ATM, a call, and two below, a put)
    legs = [(at.selectbox(key=f"straddle_leg{n}").value, right) for n, right in enumerate(("CE", "PE"))]
    assert legs[0][0] > legs[1][0]
    prices = {(k, r): chain.loc[chain["strike"] == k, f"{r.lower()}_ltp"].iloc[0] for k, r in legs}
    label = " + ".join(f"{fmt_strike(k)} {r}" for k, r in legs)
    assert card(at, label).value == fmt_price(sum(prices.values()))

    at.button_group(key="straddle_strikes").set_value("Fixed strike").run()
    at.selectbox(key="straddle_strike").set_value(atm - 50).run()
    assert not at.exception
    fixed = chain[chain["strike"] == atm - 50].iloc[0]
    assert card(at, "Straddle").value == fmt_price(fixed["ce_ltp"] + fixed["pe_ltp"])
    assert card(at, "Strike").value == fmt_strike(atm - 50)


def test_oi_history_figures_are_the_moment_chain(app_env):
    store, days = app_env
    at = open_page("oi_history")
    target = as_of(at, "oi_history", days[1])
    chain, _ = chain_at(at, store, target, "oi_history", days[1])
    summary = analytics.oi_summary(chain)
    assert card(at, "PCR (OI)").value == fmt_ratio(summary.pcr)
    assert card(at, "Max pain").value == fmt_strike(summary.max_pain)
    assert card(at, "Strikes").value == str(summary.strikes)
    assert card(at, "Call OI").value == fmt_oi(summary.call_oi)
    picked = next(w for w in at.multiselect if w.label == "Strikes").value
    assert len(picked) == 3  # by default ATM and one strike either side
    near = chain[chain["strike"].isin(picked)]
    assert card(at, "Calls OI, chosen strikes").value == fmt_oi(near["ce_oi"].sum())
    assert card(at, "Puts OI, chosen strikes").value == fmt_oi(near["pe_oi"].sum())


def test_futures_cards_are_the_moment_future(app_env):
    store, days = app_env
    at = open_page("futures")
    target = as_of(at, "futures", days[2])
    ts, ticks = in_force(store, target)
    future = nearest_future((t["symbol"] for t in ticks), ts, "NIFTY").symbol
    price = {t["symbol"]: t for t in ticks}
    first = store.contract_series([future], *analytics.day_bounds(days[2]))[0]
    buildup = analytics.classify_buildup(price[future]["ltp"] - first["ltp"],
                                         price[future]["oi"] - first["oi"])
    [label] = [m.label for m in at.metric if m.label.startswith(future)]
    assert f"-badge[{buildup}]" in label  # the build-up since the day's first snapshot
    assert card(at, label).value == fmt_price(price[future]["ltp"])
    assert card(at, "Basis").value == f"+{fmt_price(price[future]['ltp'] - price['NIFTY 50']['ltp'])}"
    assert card(at, "Open interest").value == fmt_oi(price[future]["oi"])


def test_gex_cards_by_hand(app_env):
    store, days = app_env
    at = open_page("gex")
    target = as_of(at, "gex", days[0])
    chain, _ = chain_at(at, store, target, "gex", days[0])
    spot = chain.attrs["spot"]
    calls = (chain["ce_gamma"].fillna(0) * chain["ce_oi"].fillna(0)).sum() * spot ** 2 * 0.01
    puts = (chain["pe_gamma"].fillna(0) * chain["pe_oi"].fillna(0)).sum() * spot ** 2 * 0.01
    assert card(at, "Calls").value == daycharts.rupee_crore(calls)
    assert card(at, "Puts").value == daycharts.rupee_crore(-puts)
    assert card(at, "Net GEX").value == daycharts.rupee_crore(calls - puts)
    assert card(at, "Spot").value == fmt_price(spot)


def test_candles_run_to_the_moment(app_env):
    store, days = app_env
    at = open_page("candles")
    target = as_of(at, "candles", days[0])
    ticks = [t for t in store.history("NIFTY 50", *analytics.day_bounds(days[0])) if t["ts"] <= target]
    assert card(at, "NIFTY 50").value == fmt_price(ticks[-1]["ltp"])
    assert card(at, "Day high").value == fmt_price(max(t["ltp"] for t in ticks))
    assert card(at, "Day low").value == fmt_price(min(t["ltp"] for t in ticks))

    at.button_group(key="candles_kind").set_value("Option").run()
    at.button_group(key="candles_interval").set_value(5).run()
    assert not at.exception, [e.value for e in at.exception]
    symbol = next(m.label for m in at.metric if m.label.endswith("CE"))
    option = [t for t in store.history(symbol, *analytics.day_bounds(days[0])) if t["ts"] <= target]
    assert card(at, symbol).value == fmt_price(option[-1]["ltp"])
    assert card(at, "VWAP").value != "–"  # options trade: the VWAP is known


def closing_iv(store: TickStore, day) -> float:
    ts, ticks = in_force(store, format_ts(session_bounds(day)[1]))
    return intraday.atm_iv_after(ticks, "NIFTY", day)[0]


def test_iv_rank_against_the_earlier_sessions(app_env):
    store, days = app_env
    at = open_page("iv_rank")
    target = as_of(at, "iv_rank", days[2])
    _, ticks = in_force(store, target)
    current, _ = intraday.atm_iv_after(ticks, "NIFTY", days[2])
    past = [closing_iv(store, d) for d in days[:2]]
    rank = intraday.iv_rank(past, current)
    assert card(at, "Sessions").value == "2"
    assert card(at, "ATM IV").value == fmt_pct(current)
    assert card(at, "IV percentile").value == fmt_pct(100 * sum(v < current for v in past) / 2, 0)
    assert card(at, "IV rank").value == fmt_pct(rank.rank, 0)
    assert card(at, "Low").value == fmt_pct(min(*past, current))
    # too few sessions: the backfill is offered, with its command
    assert any("needs at least 20 stored sessions" in w.value for w in at.warning)
    assert any("python -m datacentre backfill --days 20 --interval 300" in c.value for c in at.code)
    assert at.button(key="iv_rank_backfill")


def test_the_app_backfill_writes_whole_sessions(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    settings = Settings(db_url=url, seed=3)
    job = backfilljob.start_backfill(settings, 1, 300.0)
    assert job.wait(120), "the backfill did not finish"
    assert job.status == backfilljob.DONE, job.error
    assert job.sessions == recent_sessions(1) and job.progress[0] == job.progress[1] > 0
    with TickStore(url) as store:
        assert store.count(["NIFTY 50"], *session_bounds(job.sessions[0])) == job.progress[1]
    again = backfilljob.start_backfill(settings, 1, 300.0)
    assert wait_until(lambda: again.status != backfilljob.RUNNING, 60)
    assert again.skipped == job.sessions and not again.sessions
    assert backfilljob.current_job(settings) is again



def test_pages_wait_politely_on_an_empty_store(tmp_path, monkeypatch):
    monkeypatch.setenv("DATACENTRE_DB_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    monkeypatch.setenv("DATACENTRE_WS_PORT", str(free_port()))
    monkeypatch.setenv("DATACENTRE_AUTOSTART", "0")
    at = app_test()
    for page in PAGES:
        at.switch_page(PAGES[page]).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert not at.error, (page, [e.value for e in at.error])
        notes = [i.value for i in at.info]
        assert any("No " in note or "Nothing" in note for note in notes), (page, notes)
