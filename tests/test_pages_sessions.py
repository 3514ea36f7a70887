"""Sessions, after hours, honest labels and no look-ahead, through the pages (AppTest).

A session is 09:15-15:30 IST on a trading day; ticks outside it are after hours. The
stores here are backfilled simulated sessions (one snapshot a minute); after-hours
ticks are added by hand, and the clock is set (``frozen_clock``) where the hour matters.
"""
from __future__ import annotations

import json
import sqlite3
from datetime import date, datetime, time, timedelta

import pytest
import sqlalchemy as sa
from conftest import app_test, check, metric, synthetic_snapshot
from streamlit.testing.v1 import AppTest
from support import free_port

from datacentre import analytics
from datacentre.app import player, reads
from datacentre.app.formatting import fmt_day
from datacentre.core.instruments import session_bounds
from datacentre.core.ticks import IST, format_ts, frozen_clock, parse_ts
from datacentre.ops.backfill import backfill, recent_sessions
from datacentre.store.tickstore import TickStore

pytestmark = pytest.mark.usefixtures("release_app_resources")

PAGES = {name: f"pages/{name}.py" for name in
         ("overview", "option_chain", "iv_smile", "oi_buildup", "replay", "export", "status")}
EXPIRY_DAY = date(2026, 1, 6)  # a Tuesday: NIFTY's weekly expires at 15:30 IST


@pytest.fixture(scope="module")
def session_db(tmp_path_factory) -> tuple[str, date]:
    """The last complete session, simulated at one snapshot a minute (376 snapshots)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('sessions') / 'session.db'}"
    (day,) = recent_sessions(1)
    with TickStore(url) as store:
        backfill(store, [day], interval=60.0, seed=5)
    return url, day


@pytest.fixture(scope="module")
def expiry_day_db(tmp_path_factory) -> str:
    """An expiry Tuesday's session, a snapshot every five minutes."""
    url = f"sqlite:///{tmp_path_factory.mktemp('expiry') / 'expiry.db'}"
    with TickStore(url) as store:
        backfill(store, [EXPIRY_DAY], interval=300.0, seed=3)
    return url


def copy_store(url: str, path, *, upto: str | None = None) -> str:
    """A copy of the SQLite store at ``url`` in ``path``; with ``upto``, only its rows up to then."""
    source, target = sqlite3.connect(url.removeprefix("sqlite:///")), sqlite3.connect(path)
    source.backup(target)
    source.close()
    if upto is not None:
        target.execute("DELETE FROM ltp_ticks WHERE ts > ?", (upto,))
        target.commit()
    target.close()
    return f"sqlite:///{path}"


def open_app(monkeypatch, url: str, page: str) -> AppTest:
    monkeypatch.setenv("DATACENTRE_DB_URL", url)
    monkeypatch.setenv("DATACENTRE_WS_PORT", str(free_port()))
    monkeypatch.setenv("DATACENTRE_AUTOSTART", "0")
    at = app_test()
    at.switch_page(PAGES[page]).run()
    check(at)
    return at


def shown(at: AppTest, *, skip: tuple[str, ...] = ()) -> dict:
    """Every figure a page shows: its cards, its charts' data and its tables."""
    cards = {m.label: (m.value, m.delta) for m in at.metric if m.label not in skip}
    charts = [[(t.get("name"), t.get("x"), t.get("y")) for t in json.loads(c.proto.spec)["data"]]
              for c in at.get("plotly_chart")]
    tables = [d.value.to_json() for d in at.dataframe]  # JSON: a NaN equals a NaN
    return {"cards": cards, "charts": charts, "tables": tables}


def ist_at(day: date, clock: time) -> str:
    return format_ts(datetime.combine(day, clock, IST))


# ---------------------------------------------------------------- no look-ahead


@pytest.mark.parametrize("clock", [time(9, 15), time(11, 32), time(15, 30)])
def test_the_oi_buildup_of_a_moment_uses_only_rows_up_to_it(session_db, tmp_path, monkeypatch, clock):
    """The page at a stored moment shows exactly what it shows on a store holding only the
    rows up to that moment: every card, chart and table."""
    url, day = session_db
    moment = ist_at(day, clock)

    def at_the_moment(store_url: str) -> dict:
        at = open_app(monkeypatch, store_url, "oi_buildup")
        at.button_group(key="buildup_mode").set_value("Stored").run()
        sliders = [s for s in at.slider if s.key == f"buildup_time_{day.isoformat()}"]
        if sliders:  # a single stored snapshot has no slider
            sliders[0].set_value(clock).run()
        check(at)
        assert metric(at, "As of").value == clock.strftime("%H:%M:%S")
        return shown(at)

    full = at_the_moment(url)
    cut = at_the_moment(copy_store(url, tmp_path / "cut.db", upto=moment))
    assert full == cut
    pcr = dict(full["cards"])["PCR (OI)"][0]
    chain = analytics.chain_table(TickStore(url).snapshot_at(moment, "NIFTY"), "NIFTY")
    assert pcr == f"{analytics.oi_summary(chain).pcr:.2f}"  # the snapshot's own figure


@pytest.mark.parametrize("position", [0, 140, 375])
def test_a_replayed_moment_uses_only_rows_up_to_it(session_db, tmp_path, monkeypatch, position):
    url, day = session_db
    times = TickStore(url).snapshot_times("NIFTY", *(format_ts(m) for m in session_bounds(day)))

    def replayed(store_url: str) -> dict:
        at = open_app(monkeypatch, store_url, "replay")
        if position:
            at.select_slider(key="replay_time").set_value(position).run()
        check(at)
        assert at.session_state["replay_pos"] == times[position]
        # "snapshot k of N" counts the session's snapshots: metadata, not market data
        return shown(at, skip=("As of",))

    full = replayed(url)
    cut = replayed(copy_store(url, tmp_path / "cut.db", upto=times[position]))
    assert full == cut
    spot = full["charts"][0][0]
    assert spot[0] == "Spot" and len(spot[1]["bdata"] if isinstance(spot[1], dict) else spot[1]) >= 1


# ---------------------------------------------------------------- sessions and after hours


@pytest.fixture
def after_hours(session_db, tmp_path):
    """The session plus the simulator's night: ticks every minute from 01:00 to 01:20 IST
    the next day, with the clock at 01:20 IST (the exchange closed)."""
    url, day = session_db
    night = copy_store(url, tmp_path / "night.db")
    start = datetime.combine(day + timedelta(days=1), time(1, 0), IST)
    with TickStore(night) as store:
        for n in range(21):
            moment = start + timedelta(minutes=n)
            store.write_snapshot(moment, synthetic_snapshot(moment, nifty=26400 + n, step=n))
    with frozen_clock(start + timedelta(minutes=20, seconds=30)):
        yield night, day


def test_after_hours_ticks_are_never_a_session(after_hours, monkeypatch):
    url, day = after_hours
    next_day = day + timedelta(days=1)
    store = TickStore(url)
    ctx = type("Ctx", (), {"settings": type("S", (), {"db_url": url}), "underlying": "NIFTY"})
    assert reads.stored_days(ctx)[:2] == [next_day, day]
    assert reads.stored_sessions(ctx) == [day]
    night_ts = store.last_ts()
    assert reads.session_times(ctx, next_day) == [] and reads.day_open(ctx, next_day) == (None, [])

    at = open_app(monkeypatch, url, "replay")
    assert at.selectbox(key="session").options == [fmt_day(day)]  # the night is no session
    assert at.selectbox(key="session").value == day.isoformat()
    assert metric(at, "As of").value == "09:15:00"

    at.switch_page(PAGES["export"]).run()
    check(at)
    assert at.selectbox(key="export_day").value == day  # the last complete session, not the night
    assert "after hours only" in at.selectbox(key="export_day").options[0]

    at.switch_page(PAGES["oi_buildup"]).run()
    check(at)
    # live is the night's tick, labelled so; its "day open" is the session's, never the night's
    assert metric(at, "As of").value == datetime.fromisoformat(night_ts).astimezone(IST).strftime("%H:%M:%S")
    assert "after hours" in metric(at, "As of").delta
    assert "the open (09:15)" in metric(at, "NIFTY 50").help


def test_outside_market_hours_every_page_says_so(after_hours, monkeypatch):
    url, day = after_hours
    at = open_app(monkeypatch, url, "overview")
    for page in PAGES:
        at.switch_page(PAGES[page]).run()
        check(at)
        header = " ".join(m.value for m in at.markdown)
        assert "Simulated market" in header, page  # the source is the simulator
        assert "The exchange is closed" in " ".join(i.value for i in at.info), page
        link = at.get("page_link")[0].proto
        assert link.page.endswith("replay") and f"session={day.isoformat()}" in link.query_string, page
    assert all("after hours" in state for state in at.dataframe[0].value["State"])  # the status page's
    at.switch_page(PAGES["overview"]).run()
    assert "after hours" in metric(at, "Last tick").delta
    close = parse_ts(session_bounds(day)[1]).astimezone(IST)
    assert metric(at, "Day change").proto.delta_description == f"{close:%a} close"


def test_in_market_hours_there_is_no_banner(session_db, tmp_path, monkeypatch):
    url, day = session_db
    with frozen_clock(datetime.combine(day, time(11, 0), IST)):
        at = open_app(monkeypatch, copy_store(url, tmp_path / "open.db", upto=ist_at(day, time(11, 0))),
                      "option_chain")
        assert not any("The exchange is closed" in i.value for i in at.info)
        assert "Simulated market" in " ".join(m.value for m in at.markdown)
        assert "after hours" not in " ".join(c.value for c in at.caption)


def test_no_simulated_badge_for_other_sources(session_db, tmp_path, monkeypatch):
    url, _ = session_db
    other = copy_store(url, tmp_path / "imported.db")
    engine = sa.create_engine(other)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE ltp_ticks SET source = 'csv'"))
    engine.dispose()
    at = open_app(monkeypatch, other, "overview")
    assert "Simulated market" not in " ".join(m.value for m in at.markdown)


# ---------------------------------------------------------------- expiry days


def test_replaying_an_expiry_day_shows_the_expiring_weekly(expiry_day_db, monkeypatch):
    at = open_app(monkeypatch, expiry_day_db, "replay")
    assert at.selectbox(key="session").value == EXPIRY_DAY.isoformat()
    picker = at.selectbox(key=f"replay_expiry_{EXPIRY_DAY.isoformat()}")
    assert picker.value == EXPIRY_DAY and picker.options == ["06 Jan 2026 (Tue)", "13 Jan 2026 (Tue)"]
    chain = at.dataframe[0].value
    header = next(m.value for m in at.markdown if "Option chain" in m.value)
    assert "06 Jan 2026 expiry" in header and f"{len(chain)} strikes" in header
    # at 15:30 the expiring contracts have stopped trading: said, not swapped for the next weekly
    at.button(key="replay_last").click().run()
    check(at)
    assert any("stopped trading at 15:30" in i.value for i in at.info)
    # the next weekly is one choice away
    picker = at.selectbox(key=f"replay_expiry_{EXPIRY_DAY.isoformat()}")
    picker.set_value(date(2026, 1, 13)).run()
    check(at)
    assert "13 Jan 2026 expiry" in next(m.value for m in at.markdown if "Option chain" in m.value)


def test_history_pages_choose_an_expired_expiry(expiry_day_db, monkeypatch):
    at = open_app(monkeypatch, expiry_day_db, "iv_smile")
    at.button_group(key="smile_mode").set_value("Stored").run()
    at.slider(key=f"smile_time_{EXPIRY_DAY.isoformat()}").set_value(time(10, 0)).run()
    check(at)
    picker = at.selectbox(key=f"smile_expiry_{EXPIRY_DAY.isoformat()}")
    assert picker.value == EXPIRY_DAY and picker.options == ["06 Jan 2026 (Tue)", "13 Jan 2026 (Tue)"]
    assert metric(at, "Expiry").value == "06 Jan"


def test_an_overlay_without_a_snapshot_is_said_not_swapped(session_db, monkeypatch):
    url, day = session_db
    at = open_app(monkeypatch, url, "iv_smile")
    at.button_group(key="smile_mode").set_value("Stored").run()
    at.slider(key=f"smile_time_{day.isoformat()}").set_value(time(9, 40)).run()
    at.multiselect(key="smile_overlays").set_value(["Open", "1 h ago", "Chosen time"]).run()
    at.time_input(key="smile_chosen").set_value(time(14, 0)).run()  # later than the moment shown
    check(at)
    caption = " ".join(c.value for c in at.caption)
    assert "1 h ago: no snapshot stored at 08:40 IST" in caption  # before the session: not the last close
    assert "Chosen time: no snapshot stored at 14:00 IST" in caption
    names = [t["name"] for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]]
    assert any(n.startswith("Open (09:15)") for n in names) and not any("1 h ago" in n for n in names)


# ---------------------------------------------------------------- the player


@pytest.mark.parametrize("speed", [1, 10, 60])
def test_the_player_moves_market_time_evenly(speed):
    """Every step covers speed x period of market time, whatever the renders cost."""
    start = datetime.combine(date(2026, 1, 2), time(9, 15), IST)
    times = [format_ts(start + timedelta(seconds=5 * i)) for i in range(4501)]
    period, advance_s = player.play_cadence(speed, 5.0)
    assert advance_s == speed * period and period >= player.MIN_PLAY_PERIOD_S
    pos, clock, shown_at = times[0], None, [parse_ts(times[0])]
    for _ in range(40):
        pos, market = player.play_forward(times, pos, clock, advance_s)
        clock = (market, pos)
        shown_at.append(parse_ts(pos))
    steps = {(b - a).total_seconds() for a, b in zip(shown_at, shown_at[1:])}
    assert steps == {advance_s}  # 5 s at 1x and 10x, a steady 30 s at 60x
    # a moved position restarts the clock there
    moved, _ = player.play_forward(times, times[100], clock, advance_s)
    assert parse_ts(moved) - parse_ts(times[100]) == timedelta(seconds=advance_s)
