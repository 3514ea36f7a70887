"""The IV smile, OI build-up, replay and export pages through AppTest, on simulated sessions.

The store holds two backfilled sessions (the simulator at one snapshot a minute: two
NIFTY weeklies, so there is a term structure, and a previous close). AppTest runs the
scripts without a browser and without fragment timers: the replay's play button is
checked by the step a run makes, not by the timer.
"""
from __future__ import annotations

import base64
import json
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import app_test, backfilled_sessions, check, metric, synthetic_snapshot
from streamlit.testing.v1 import AppTest

from datacentre import analytics
from datacentre.app import charts, export, player, reads, tables
from datacentre.app.days import ist_ts
from datacentre.app.formatting import fmt_oi, fmt_ratio
from datacentre.core.instruments import nearest_option_expiry, parse_symbol, session_bounds
from datacentre.core.ticks import IST, format_ts, parse_ts
from datacentre.store.csvio import select_symbols
from datacentre.store.tickstore import TickStore

ROOT = Path(__file__).resolve().parent.parent
PAGES = {name: f"pages/{name}.py" for name in ("iv_smile", "oi_buildup", "replay", "export")}
INTERVAL = 60.0
BUILDUPS = set(analytics.BUILDUPS)


@pytest.fixture(scope="module")
def sessions_db(tmp_path_factory) -> tuple[str, list]:
    """Two complete simulated sessions, a snapshot a minute (376 each)."""
    return backfilled_sessions(tmp_path_factory, "pages", 2, interval=INTERVAL, seed=11)


def run(page: str) -> AppTest:
    at = app_test()
    at.switch_page(PAGES[page]).run()
    check(at)
    return at


def number(text: str) -> float:
    return float(text.replace(",", "").replace("%", "").split()[0])


def ist(ts: str) -> str:
    return parse_ts(ts).astimezone(IST).strftime("%H:%M:%S")


# ---------------------------------------------------------------- IV smile


def test_iv_smile_live(app_env):
    store, days = app_env
    at = run("iv_smile")
    atm_iv = metric(at, "ATM IV")
    assert 5 < number(atm_iv.value) < 60
    assert atm_iv.delta.endswith(" pts")  # against the session's open, in vol points
    rr = metric(at, "25Δ RR")
    assert abs(number(rr.value)) < 20 and rr.value.endswith(" pts")
    for label in ("25Δ fly", "25Δ put IV", "25Δ call IV", "Expiry"):
        metric(at, label)
    # the smile, the term structure (two weeklies) and ATM IV through the day
    assert len(at.get("plotly_chart")) == 3
    skew = at.dataframe[0].value
    assert list(skew.columns) == ["distance_strike", "put_strike", "call_strike", "put_iv", "call_iv",
                                  "put_minus_call"]
    assert (skew["put_strike"] + skew["call_strike"]).nunique() == 1  # equidistant around ATM
    assert skew["distance_strike"].is_monotonic_increasing
    last = store.last_ts()
    caption = " ".join(c.value for c in at.caption)
    # the date is shown too once the snapshot is from another day than today (IST)
    assert "As of " in caption and f"{ist(last)} IST" in caption or f"As of {ist(last)}" in caption, caption


def test_iv_smile_as_of_a_stored_time_with_overlays(app_env):
    store, days = app_env
    at = run("iv_smile")
    at.button_group(key="smile_mode").set_value("Stored").run()
    check(at)
    assert at.selectbox(key="smile_day").value == days[-1]  # newest first
    at.selectbox(key="smile_day").set_value(days[0]).run()
    slider = at.slider(key=f"smile_time_{days[0].isoformat()}")
    slider.set_value(time(11, 30)).run()
    check(at)
    caption = " ".join(c.value for c in at.caption)
    assert "As of " in caption and "11:30:00" in caption, caption
    at.multiselect(key="smile_overlays").set_value(["Open", "1 h ago", "Chosen time"]).run()
    at.time_input(key="smile_chosen").set_value(time(10, 0)).run()
    check(at)
    assert len(at.get("plotly_chart")) == 3


# ---------------------------------------------------------------- OI build-up


def test_oi_buildup_live(app_env):
    store, days = app_env
    at = run("oi_buildup")
    for label in ("NIFTY 50", "Call OI", "Put OI", "PCR (OI)", "Resistance", "Support", "Max pain",
                  "Call writing", "Put writing", "As of"):
        metric(at, label)
    future = metric(at, "Future")
    assert "NIFTY" in future.label and "FUT" in future.label
    assert any(b in future.label for b in BUILDUPS)
    assert number(metric(at, "Resistance").value) % 50 == 0
    assert number(metric(at, "Support").value) % 50 == 0
    ratio = number(metric(at, "PCR (OI)").value)
    assert 0.1 < ratio < 10
    # OI bars, build-up bars, OI and PCR through the day
    assert len(at.get("plotly_chart")) == 3
    table, futures = at.dataframe[0].value, at.dataframe[1].value
    assert list(table.columns[:2]) == ["ce_buildup", "ce_oi"]
    assert list(table.columns[-2:]) == ["pe_oi", "pe_buildup"]
    assert set(table["ce_buildup"].dropna()) | set(table["pe_buildup"].dropna()) <= BUILDUPS
    assert table["strike"].is_monotonic_increasing
    assert futures["symbol"].str.endswith("FUT").all()


@pytest.mark.parametrize("base", ["Previous close", "1 h ago", "15 min ago", "Chosen time"])
def test_oi_buildup_change_since(app_env, base):
    at = run("oi_buildup")
    at.selectbox(key="buildup_base").set_value(base).run()
    check(at)
    assert not at.warning, [w.value for w in at.warning]  # every base has a stored snapshot
    table = at.dataframe[0].value
    assert table["ce_oi_change"].notna().any()


def test_oi_buildup_matches_the_store(app_env):
    """The page's totals and build-up are those of analytics on the same two snapshots."""
    store, days = app_env
    at = run("oi_buildup")
    last = store.last_ts()
    start, end = analytics.day_bounds(last)
    now = store.snapshot_at(last, "NIFTY")
    opening = store.first_snapshot(start, end, "NIFTY")
    expected = analytics.buildup_table(now, opening, "NIFTY")
    table = at.dataframe[0].value
    calls = expected[expected["kind"] == "CE"].set_index("strike")["buildup"]
    shown = table.set_index("strike")["ce_buildup"]
    assert (shown.reindex(calls.index) == calls).all()
    chain = analytics.chain_table(now, "NIFTY")
    assert metric(at, "Resistance").value == f"{analytics.support_resistance(chain).resistance:,.0f}"


def test_the_day_series_is_each_snapshots_own_figures_up_to_the_moment(app_env):
    """The day chart's points are each snapshot's own oi_summary, and a moment's series
    ends at it, its own snapshot last: nothing from after it."""
    store, days = app_env
    ctx = SimpleNamespace(settings=SimpleNamespace(db_url=store.url), underlying="NIFTY")
    times = reads.session_times(ctx, days[-1])
    moment = times[150]
    expiry = analytics.expiries(store.snapshot_at(moment, "NIFTY"), "NIFTY")[0]
    series = reads.day_series(ctx, days[-1], expiry, upto=moment).dropna(subset=["ts"])
    assert series["ts"].iloc[-1] == moment and (series["ts"] <= moment).all()
    for row in series.iloc[::25].itertuples():
        oi = analytics.oi_summary(analytics.chain_table(store.snapshot_at(row.ts, "NIFTY"), "NIFTY", expiry))
        assert (row.ce_oi, row.pe_oi) == (oi.call_oi, oi.put_oi)
        assert row.pcr == pytest.approx(oi.pcr)


def plotly_values(values) -> list:
    """A trace's values from the figure's JSON (plotly sends numbers as base64 arrays)."""
    if isinstance(values, dict) and "bdata" in values:
        array = np.frombuffer(base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"]))
        return [None if not np.isfinite(v) else float(v) for v in array]
    return list(values)


def day_chart(at: AppTest) -> dict[str, tuple[list, list]]:
    """The OI build-up page's "total OI and PCR" chart: trace name -> (x, y)."""
    figure = json.loads(at.get("plotly_chart")[2].proto.spec)
    return {t["name"]: (plotly_values(t["x"]), plotly_values(t["y"])) for t in figure["data"]}


def last_point(values: list) -> float:
    return next(v for v in reversed(values) if v is not None)


def test_oi_buildup_cards_match_the_day_chart_live(app_env):
    """Call OI, put OI and PCR on the cards are the chart's last point: one definition."""
    at = run("oi_buildup")
    traces = day_chart(at)
    assert {"Call OI", "Put OI", "PCR"} <= set(traces)
    pcr = last_point(traces["PCR"][1])
    assert metric(at, "PCR (OI)").value == fmt_ratio(pcr)
    assert metric(at, "Call OI").value == fmt_oi(last_point(traces["Call OI"][1]))
    assert metric(at, "Put OI").value == fmt_oi(last_point(traces["Put OI"][1]))
    help_text = metric(at, "PCR (OI)").help
    assert "strikes" in help_text and "expiry in the snapshot of" in help_text  # exactly what it covers
    assert "as the cards compute it" in " ".join(c.value for c in at.caption)


def test_oi_buildup_cards_match_the_day_chart_at_a_stored_moment(app_env):
    store, days = app_env
    at = run("oi_buildup")
    at.button_group(key="buildup_mode").set_value("Stored").run()
    at.slider(key=f"buildup_time_{days[-1].isoformat()}").set_value(time(11, 32)).run()
    check(at)
    assert metric(at, "As of").value == "11:32:00"
    x, y = day_chart(at)["PCR"]
    at_cursor = [v for t, v in zip(x, y) if str(t).startswith(f"{days[-1].isoformat()}T11:32:00")]
    assert at_cursor and metric(at, "PCR (OI)").value == fmt_ratio(at_cursor[0])
    # the change is measured on the same definition (from the open, the chart's first point)
    assert number(metric(at, "PCR (OI)").delta) == pytest.approx(at_cursor[0] - y[0], abs=0.011)


# ---------------------------------------------------------------- replay


def replay_ts(at: AppTest) -> str:
    return at.session_state["replay_pos"]


def nifty_times(store: TickStore, day) -> list[str]:
    """The replay's positions: NIFTY's snapshot times of ``day`` (IST)."""
    return store.snapshot_times("NIFTY", *analytics.day_bounds(day))


def test_replay_starts_at_the_first_snapshot(app_env):
    store, days = app_env
    at = run("replay")
    times = nifty_times(store, days[-1])
    assert at.selectbox(key="session").value == days[-1].isoformat()  # the last complete session
    assert replay_ts(at) == times[0]
    assert metric(at, "As of").value == ist(times[0])
    assert metric(at, "As of").delta == f"1 of {len(times):,}"
    assert len(at.get("plotly_chart")) == 3  # spot with cursor, smile, OI
    # the expiry nearest to expiring that traded at the open: on an expiry day, the expiring weekly
    shown = date.fromisoformat(str(at.selectbox(key=f"replay_expiry_{days[-1].isoformat()}").value))
    assert shown == nearest_option_expiry("NIFTY", session_bounds(days[-1])[0])
    strikes = sorted({parse_symbol(t["symbol"]).strike for t in store.snapshot_at(times[0], "NIFTY")
                      if parse_symbol(t["symbol"]).is_option and parse_symbol(t["symbol"]).expiry == shown})
    chain = at.dataframe[0].value
    assert "strike" in chain.columns and len(chain) == min(17, len(strikes))
    # the header says what the table holds
    header = next(m.value for m in at.markdown if "Option chain" in m.value)
    assert f"{len(chain)} strikes {chain['strike'].min():,.0f}–{chain['strike'].max():,.0f}" in header


def test_replay_slider_moves_over_the_snapshots(app_env):
    store, days = app_env
    at = run("replay")
    times = nifty_times(store, days[-1])
    slider = at.select_slider(key="replay_time")
    # one position per stored snapshot, labelled with its IST time
    assert slider.options == [ist(t) for t in times]
    assert slider.value == 0
    chosen = slider.options.index("13:07:00")
    slider.set_value(chosen).run()
    check(at)
    expected = times[chosen]
    assert ist(expected) == "13:07:00"
    assert replay_ts(at) == expected
    assert metric(at, "As of").value == ist(expected) == "13:07:00"
    assert metric(at, "As of").delta == f"{chosen + 1:,} of {len(times):,}"
    spot = next(t for t in store.snapshot_at(expected, "NIFTY") if t["symbol"] == "NIFTY 50")
    assert number(metric(at, "NIFTY 50").value) == pytest.approx(spot["ltp"], abs=0.005)
    # the change is against the day's first snapshot
    assert metric(at, "NIFTY 50").delta not in (None, "", "0")
    # the step buttons move the slider with the snapshot shown
    at.button(key="replay_next").click().run()
    assert replay_ts(at) == times[chosen + 1]
    assert at.select_slider(key="replay_time").value == chosen + 1
    assert metric(at, "As of").value == ist(times[chosen + 1])
    # the moment chosen survives a visit to another page
    at.switch_page(PAGES["export"]).run()
    at.switch_page(PAGES["replay"]).run()
    check(at)
    assert replay_ts(at) == times[chosen + 1]
    assert at.select_slider(key="replay_time").value == chosen + 1


def test_replay_step_buttons_and_play(app_env):
    store, days = app_env
    at = run("replay")
    times = nifty_times(store, days[-1])
    at.button(key="replay_next").click().run()
    assert replay_ts(at) == times[1]
    at.button(key="replay_last").click().run()
    assert replay_ts(at) == times[-1]
    at.button(key="replay_back").click().run()
    assert replay_ts(at) == times[-2]
    at.button(key="replay_first").click().run()
    assert replay_ts(at) == times[0]

    # 60x with one-minute snapshots: a step every second, one snapshot a step
    at.button_group(key="replay_speed").set_value(60).run()
    at.button(key="replay_play").click().run()  # the run that starts playing takes the first step
    check(at)
    assert at.session_state["replay_playing"] is True
    assert replay_ts(at) == times[1]
    assert at.button(key="replay_play").label == "Pause"
    at.button(key="replay_play").click().run()
    assert at.session_state["replay_playing"] is False
    assert replay_ts(at) == times[1]


def test_replay_comes_back_paused_where_it_was(app_env):
    store, days = app_env
    at = run("replay")
    times = nifty_times(store, days[-1])
    at.button(key="replay_play").click().run()
    assert replay_ts(at) == times[1]
    at.switch_page(PAGES["export"]).run()
    at.switch_page(PAGES["replay"]).run()
    check(at)
    assert at.session_state["replay_playing"] is False  # the timer stopped with the page
    assert replay_ts(at) == times[1]
    assert at.select_slider(key="replay_time").value == 1
    assert metric(at, "As of").value == ist(times[1])
    assert at.button(key="replay_play").label == "Play"


def test_replay_other_session_and_underlying(app_env):
    store, days = app_env
    at = run("replay")
    at.selectbox(key="session").set_value(days[0].isoformat()).run()
    check(at)
    times = nifty_times(store, days[0])
    assert replay_ts(at) == times[0]
    at.session_state["underlying"] = "BANKNIFTY"
    at.run()
    check(at)
    assert number(metric(at, "NIFTY BANK").value) > 10_000


# ---------------------------------------------------------------- export


def cli_export(tmp_path, url: str, *args: str) -> bytes:
    out = tmp_path / "cli.csv"
    subprocess.run([sys.executable, "-m", "datacentre", "export", "--db", url, *args, "--out", str(out)],
                   cwd=ROOT, check=True, capture_output=True)
    return out.read_bytes()


def test_export_page_counts_and_shows_the_command(app_env):
    store, days = app_env
    at = run("export")
    assert at.selectbox(key="export_day").value == days[-1]
    rows = int(metric(at, "Rows").value.replace(",", ""))
    start, end = ist_ts(days[-1], time(9, 15)), ist_ts(days[-1], time(15, 30, 59, 999_000))
    assert rows == store.count(select_symbols(store, "NIFTY"), start, end) > 0
    button = at.download_button(key="export_download")
    assert button.label == f"Download {metric(at, 'Rows').value} rows as CSV"
    command = at.code[0].value
    assert command.startswith("python -m datacentre export --db ")
    assert "--underlying NIFTY" in command and f"--start {start}" in command and f"--end {end}" in command
    preview = at.dataframe[0].value
    assert list(preview.columns) == ["symbol", "token", "ts", "ltp", "bid", "ask", "volume", "oi", "delta",
                                     "gamma", "theta", "vega", "iv", "source"]
    assert (preview["ts"] == start).all()  # the session's first snapshot, in (ts, symbol) order
    assert list(preview["symbol"]) == sorted(preview["symbol"])


def test_export_one_expiry_and_a_time_range(app_env):
    store, days = app_env
    at = run("export")
    at.button_group(key="export_mode").set_value("One expiry").run()
    assert at.selectbox(key="export_expiry").value == at.selectbox(key="expiry").value.isoformat()
    # the day's nearest weekly (ATM +/- 10), not the sidebar's: after an expiry that is the next one
    expiry = nearest_option_expiry("NIFTY", session_bounds(days[-1])[0]).isoformat()
    at.selectbox(key="export_expiry").set_value(expiry).run()
    day = days[-1].isoformat()
    at.time_input(key=f"export_from_{day}").set_value(time(10, 0)).run()
    at.time_input(key=f"export_to_{day}").set_value(time(10, 29)).run()
    check(at)
    start, end = ist_ts(days[-1], time(10, 0)), ist_ts(days[-1], time(10, 29, 59, 999_000))
    symbols = select_symbols(store, "NIFTY", expiry)
    assert "NIFTY 50" in symbols and sum(s.endswith("FUT") for s in symbols) == 1  # with its future
    expected = store.count(symbols, start, end)
    assert int(metric(at, "Rows").value.replace(",", "")) == expected >= 30 * (2 + 2 * 21)
    assert f"--expiry {expiry}" in at.code[0].value


def test_export_chosen_symbols(app_env):
    store, days = app_env
    at = run("export")
    at.button_group(key="export_mode").set_value("Symbols").run()
    picker = at.multiselect(key="export_symbols")
    assert picker.value == ["NIFTY 50"]
    future = next(s for s in picker.options if s.endswith("FUT"))
    picker.set_value(["NIFTY 50", future]).run()
    check(at)
    # a future stops trading at 15:30 IST on its expiry, the next month's starts then
    whole_day = analytics.day_bounds(days[-1])
    assert store.count(["NIFTY 50"], *whole_day) == 376
    assert int(metric(at, "Rows").value.replace(",", "")) == store.count(["NIFTY 50", future], *whole_day)
    assert "--symbol 'NIFTY 50' --symbol " + future in at.code[0].value
    at.multiselect(key="export_symbols").set_value([]).run()
    check(at)
    assert at.info and not at.download_button


def test_a_reversed_time_range_is_reported(app_env):
    store, days = app_env
    at = run("export")
    day = days[-1].isoformat()
    at.time_input(key=f"export_to_{day}").set_value(time(9, 0)).run()
    assert not at.exception
    assert "ends before it starts" in at.error[0].value


@pytest.mark.parametrize("selection", [
    {"underlying": "NIFTY"},
    {"underlying": "NIFTY", "expiry": "second"},
    {"symbols": ("NIFTY 50", "future")},
    {"underlying": "BANKNIFTY", "window": (timedelta(hours=1), timedelta(hours=2))},
])
def test_export_download_is_byte_for_byte_the_cli(app_env, tmp_path, selection):
    store, days = app_env
    day = days[-1]
    start, end = ist_ts(day, time(9, 15)), ist_ts(day, time(15, 30, 59, 999_000))
    if "window" in selection:
        first, last = selection["window"]
        opening = parse_ts(start)
        start, end = format_ts(opening + first), format_ts(opening + last)
    expiry = store.option_expiries("NIFTY")[1] if selection.get("expiry") else None
    symbols = tuple(s if s != "future" else next(x for x in store.symbols() if x.startswith("NIFTY")
                                                 and x.endswith("FUT"))
                    for s in selection.get("symbols", ()))
    chosen = export.ExportSelection(store.url, start, end, underlying=selection.get("underlying"),
                                   expiry=expiry, symbols=symbols)

    data = export.export_file(store.url, chosen)()
    args = [*(a for s in symbols for a in ("--symbol", s))]
    if chosen.underlying:
        args += ["--underlying", chosen.underlying]
    if expiry:
        args += ["--expiry", expiry]
    assert data == cli_export(tmp_path, store.url, *args, "--start", start, "--end", end)
    lines = data.decode().splitlines()
    assert lines[0] == "symbol,token,ts,ltp,bid,ask,volume,oi,delta,gamma,theta,vega,iv,source"
    assert len(lines) - 1 == store.count(chosen.resolved_symbols(store), start, end) > 0
    # the command the page shows runs the same export
    command = export.export_command(chosen, db_url=store.url)
    assert f"--start {start} --end {end}" in command and command.endswith(f"--out {chosen.file_name()}")


# ---------------------------------------------------------------- helpers


def test_chain_view_styles_the_exchange_layout():
    moment = datetime(2026, 1, 2, 6, 0, tzinfo=UTC)
    chain = analytics.chain_table(synthetic_snapshot(moment, nifty=26010.0, strikes=3), "NIFTY",
                                  previous=synthetic_snapshot(moment, nifty=25990.0, strikes=3))
    peaks = analytics.support_resistance(chain)
    plain = tables.exchange_columns()
    assert plain[plain.index("strike") + 1:][:2] == ["pe_bid", "pe_ask"]  # bid before ask
    columns = tables.exchange_columns(greeks=True)
    assert columns[:4] == ["ce_gamma", "ce_theta", "ce_vega", "ce_oi"] and columns[-1] == "pe_gamma"
    # the Greeks take the quotes' place, so both OI columns stay on a 1600-pixel screen
    assert len(columns) == len(plain) == 17 and not {"ce_bid", "pe_ask"} & set(columns)
    assert columns[-3:] == ["pe_vega", "pe_theta", "pe_gamma"] and {"ce_delta", "pe_oi"} <= set(columns)
    assert list(tables.chain_view(chain, columns, peaks=peaks).data.columns) == columns
    styler = tables.chain_view(chain, plain, peaks=peaks)
    assert styler.data.attrs == {} and list(styler.data.columns) == plain
    css = styler._compute().ctx  # (row, column position) -> [(property, value)]

    def style(strike: float, column: str) -> dict:
        row = int(chain.index[chain["strike"] == strike][0])
        return dict(css[row, plain.index(column)])

    assert style(26000.0, "ce_oi")["background-color"] == "#bcd4fa"  # the ATM row
    assert style(25950.0, "ce_ltp")["background-color"] == "#fbf3d5"  # calls below spot: in the money
    assert "background-color" not in style(25950.0, "pe_ltp")
    assert style(peaks.resistance, "ce_oi")["color"] == charts.CALL_COLOR
    assert style(peaks.support, "pe_oi")["color"] == charts.PUT_COLOR
    assert style(25950.0, "ce_ltp_change")["color"] == "#15803d"  # calls rose with the spot
    # no data cell is bold (a bold value overflows the width measured for regular text)
    bold = {plain[c] for (_, c), props in css.items() if ("font-weight", "700") in props}
    assert bold == {"strike"}


def test_buildup_strikes_puts_calls_and_puts_side_by_side():
    moment = datetime(2026, 1, 2, 6, 0, tzinfo=UTC)
    now, then = (synthetic_snapshot(moment, nifty=spot, strikes=2, step=step)
                 for spot, step in ((26010.0, 5), (25990.0, 0)))
    table = analytics.buildup_table(now, then, "NIFTY", kinds=("CE", "PE", "FUT"))
    strikes = tables.buildup_strikes(table)
    assert list(strikes.columns) == tables.BUILDUP_COLUMNS
    assert strikes["strike"].tolist() == [25900.0, 25950.0, 26000.0, 26050.0, 26100.0]
    calls = table[table["kind"] == "CE"].set_index("strike")
    assert strikes.set_index("strike")["ce_oi_change"].equals(calls["oi_change"].rename("ce_oi_change"))
    assert tables.futures_view(table).data["symbol"].str.endswith("FUT").all()
    assert tables.futures_view(table[table["kind"] != "FUT"]) is None


def test_the_replay_player_steps_and_jumps_pauses():
    def every_5_s(hour: int, count: int) -> list[str]:
        start = datetime(2026, 1, 2, hour, tzinfo=UTC)
        return [format_ts(start + timedelta(seconds=5 * i)) for i in range(count)]

    session, evening = every_5_s(4, 4), every_5_s(15, 2)
    times = session + evening
    assert player.snapshot_interval(times) == 5.0 and player.snapshot_interval(times[:1]) == 1.0
    assert player.play_cadence(10, 5.0) == (0.5, 5.0)  # a snapshot a step
    assert player.play_cadence(60, 5.0) == (0.5, 30.0)  # no faster than MIN_PLAY_PERIOD_S: skips snapshots
    assert player.position_of(times, session[1]) == 1 and player.position_of(times, "2026-01-01") == 0
    clock = parse_ts(session[0]) + timedelta(seconds=12)
    assert player.play_step(times, session[0], clock) == (session[2], clock)
    # from the session's last snapshot the clock would sit in the pause for hours: jump it
    late = parse_ts(session[-1]) + timedelta(seconds=5)
    assert player.play_step(times, session[-1], late) == (evening[0], parse_ts(evening[0]))
    end = parse_ts(evening[-1]) + timedelta(minutes=1)
    assert player.play_step(times, evening[-1], end) == (evening[-1], end)


def test_the_replay_slider_has_a_position_per_snapshot():
    """A session plus evening live ticks: the slider's positions are the snapshots, so
    the session takes its share of them, not of the clock (which the evening doubles)."""
    def every(start: datetime, seconds: float, count: int) -> list[str]:
        return [format_ts(start + timedelta(seconds=seconds * i)) for i in range(count)]

    session = every(datetime(2026, 1, 2, 3, 45, tzinfo=UTC), 60, 376)  # 09:15-15:30 IST
    evening = every(datetime(2026, 1, 2, 15, 30, tzinfo=UTC), 60, 60)  # from 21:00 IST
    labels = player.snapshot_labels(session + evening)
    assert len(labels) == len(set(labels)) == 436
    assert labels[0] == "09:15:00" and labels[375] == "15:30:00" and labels[376] == "21:00:00"
    # the session's share of the slider, against its share of the clock
    on_slider = labels.index("15:30:00") / (len(labels) - 1)
    on_clock = (parse_ts(session[-1]) - parse_ts(session[0])) / (parse_ts(evening[-1]) - parse_ts(session[0]))
    assert on_clock < 0.5 and on_slider > 0.85
    # snapshots within one second keep apart by their milliseconds
    close = every(datetime(2026, 1, 2, 3, 45, tzinfo=UTC), 0.5, 3)
    assert player.snapshot_labels(close) == ["09:15:00.000", "09:15:00.500", "09:15:01"]
    assert player.snapshot_labels([]) == []
