"""Figure builders: expected traces, the shared colours, formatted hovers, empty input."""
from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from datacentre import analytics as A
from datacentre.app import charts as C
from datacentre.core.instruments import token_for

TS = "2026-01-02T08:13:05+00:00"
OPEN_TS = "2026-01-02T03:45:00+00:00"
STRIKES = [25800, 25900, 26000, 26100, 26200]


def tick(symbol, ltp, ts=TS, **fields) -> dict:
    row = dict.fromkeys(("bid", "ask", "oi", "delta", "gamma", "theta", "vega", "iv"))
    row.update(symbol=symbol, token=token_for(symbol), ts=ts, ltp=ltp, volume=0, source="sim")
    row.update(fields)
    return row


def snapshot(ts=TS, shift=0) -> list[dict]:
    """A put-skewed NIFTY chain around spot 26,010 (OI grows by ``shift`` per contract)."""
    ticks = [tick("NIFTY 50", 26010.0, ts), tick("NIFTY27JAN26FUT", 26120.0, ts, oi=13_000_000)]
    for i, k in enumerate(STRIKES):
        moneyness = (k - 26010) / 26010
        iv = 12 - 60 * moneyness
        call_delta = float(np.clip(0.5 - moneyness * 40, 0.02, 0.98))
        ticks.append(tick(f"NIFTY06JAN26{k}CE", 100.0 - (k - 26000) / 4, ts, oi=1_000_000 * (i + 1) + shift,
                          iv=iv - 0.5, delta=call_delta, volume=5000))
        ticks.append(tick(f"NIFTY06JAN26{k}PE", 90.0 + (k - 26000) / 4, ts, oi=2_000_000 * (5 - i) + shift,
                          iv=iv + 0.5, delta=call_delta - 1, volume=5000))
        ticks.append(tick(f"NIFTY13JAN26{k}CE", 150.0, ts, oi=300_000, iv=13.0, delta=call_delta))
        ticks.append(tick(f"NIFTY13JAN26{k}PE", 140.0, ts, oi=300_000, iv=13.5, delta=call_delta - 1))
    return ticks


@pytest.fixture
def chain() -> pd.DataFrame:
    return A.chain_table(snapshot(), "NIFTY", previous=snapshot(OPEN_TS, shift=-250_000))


@pytest.fixture
def series() -> pd.DataFrame:
    stamps = pd.date_range("2026-01-02 03:45", periods=30, freq="1min", tz="UTC")
    rows = [{"ts": t.strftime("%Y-%m-%dT%H:%M:%S+00:00"), "spot": 26000.0 + i, "future": 26100.0 + i,
             "ce_oi": 70_000_000 + 100_000 * i, "pe_oi": 80_000_000 - 50_000 * i, "atm_strike": 26000.0,
             "atm_iv": 12.0 + 0.01 * i, "expiry": "2026-01-06"} for i, t in enumerate(stamps)]
    return A.series_frame(rows)


def names(fig: go.Figure) -> list[str]:
    return [t.name for t in fig.data]


def trace(fig: go.Figure, name: str):
    return next(t for t in fig.data if t.name == name)


def color_of(t) -> str:
    if isinstance(t, go.Bar):
        return t.marker.color
    return t.line.color if t.mode and "lines" in t.mode else t.marker.color


def assert_empty(fig: go.Figure) -> None:
    assert isinstance(fig, go.Figure) and not fig.data
    assert len(fig.layout.annotations) == 1 and fig.layout.annotations[0].text


def test_colours_are_distinct_and_shared():
    colours = {C.CALL_COLOR, C.PUT_COLOR, C.SPOT_COLOR, C.IV_COLOR, C.PCR_COLOR}
    assert len(colours) == 5
    assert set(C.BUILDUP_COLORS) == set(A.BUILDUPS)
    # red and green mean down and up (build-up, changes), never calls and puts
    assert not {C.CALL_COLOR, C.PUT_COLOR} & set(C.BUILDUP_COLORS.values())


def test_oi_bars(chain):
    fig = C.oi_bars(chain, max_pain=A.max_pain(chain))
    assert names(fig) == ["Call OI", "Call OI change", "Put OI", "Put OI change"]
    for name in names(fig):
        assert color_of(trace(fig, name)) == (C.CALL_COLOR if name.startswith("Call") else C.PUT_COLOR)
    assert trace(fig, "Call OI change").yaxis == "y2" and trace(fig, "Put OI").yaxis in (None, "y")
    assert fig.layout.barmode == "group" and fig.layout.xaxis.title.text == "Strike"
    call = trace(fig, "Call OI")
    assert list(call.x) == STRIKES and list(call.y) == [1e6, 2e6, 3e6, 4e6, 5e6]
    assert tuple(call.customdata[0]) == ("25,800", "10.00 L", "+2.50 L")  # formatted for the hover
    assert "%{customdata[1]}" in call.hovertemplate
    # one unit on the axis: lakhs, named in the title
    assert fig.layout.yaxis.title.text == "Open interest (L)"
    assert fig.layout.yaxis2.title.text == "OI change (L)"
    assert list(fig.layout.yaxis.ticktext) == [str(v) for v in range(0, 101, 20)]
    shapes = {s.line.color: s.x0 for s in fig.layout.shapes}
    assert shapes[C.SPOT_COLOR] == 26010.0 and shapes[C.MARKER_COLOR] == A.max_pain(chain)
    assert any("Spot 26,010.00" in a.text for a in fig.layout.annotations)


def test_oi_bars_without_changes(chain):
    assert names(C.oi_bars(chain, show_change=False)) == ["Call OI", "Put OI"]
    plain = A.chain_table(snapshot(), "NIFTY")  # no previous: no change panel
    fig = C.oi_bars(plain)
    assert names(fig) == ["Call OI", "Put OI"] and "yaxis2" not in fig.layout.to_plotly_json()


def test_max_pain_chart(chain):
    fig = C.max_pain_chart(chain)
    assert names(fig) == ["Calls payout", "Puts payout"]
    assert [color_of(t) for t in fig.data] == [C.CALL_COLOR, C.PUT_COLOR]
    total = np.add(fig.data[0].y, fig.data[1].y)
    assert STRIKES[int(np.argmin(total))] == A.max_pain(chain)


def test_buildup_bars(chain):
    table = A.buildup_table(snapshot(), snapshot(OPEN_TS, shift=-250_000), "NIFTY")
    fig = C.buildup_bars(table)
    assert fig.data and all(color_of(t) == C.BUILDUP_COLORS[t.name] for t in fig.data)
    assert {t.yaxis for t in fig.data} == {"y", "y2"}
    assert sum(len(t.x) for t in fig.data) == 10
    assert len([t for t in fig.data if t.showlegend is not False]) == len({t.name for t in fig.data})


def test_smile_chart_with_overlays(chain):
    smile = A.smile(chain)
    other = A.smile(A.chain_table(snapshot(), "NIFTY", "2026-01-13"))
    fig = C.smile_chart(smile, overlays={"13 Jan": other})
    assert names(fig) == ["13 Jan", "Call IV", "Put IV", "OTM IV"]
    assert color_of(trace(fig, "Call IV")) == C.CALL_COLOR and color_of(trace(fig, "Put IV")) == C.PUT_COLOR
    assert trace(fig, "13 Jan").line.dash == "dash"
    assert list(trace(fig, "OTM IV").y) == smile["otm_iv"].tolist()
    assert fig.layout.yaxis.title.text == "Implied volatility (%)" and fig.layout.yaxis.ticksuffix == "%"
    assert [s.x0 for s in fig.layout.shapes] == [26010.0, 26000.0]  # spot, then ATM from attrs
    assert len(C.smile_chart(smile, spot=26100.0, atm=26100.0).layout.shapes) == 1  # ATM at spot


def test_smile_call_markers_ring_the_put_markers(chain):
    fig = C.smile_chart(A.smile(chain))
    # equal call and put IV (one IV per strike) must still show both markers
    assert trace(fig, "Call IV").marker.size > trace(fig, "Put IV").marker.size


def test_spot_chart(series):
    fig = C.spot_chart(series, cursor_ts="2026-01-02T04:00:00+00:00", title="NIFTY 50")
    assert names(fig) == ["Spot", "Future"]
    assert color_of(trace(fig, "Spot")) == C.SPOT_COLOR
    # the future on its own axis: a shared one would flatten the spot by the basis
    assert trace(fig, "Future").yaxis == "y2" and fig.layout.yaxis2.overlaying == "y"
    first = pd.Timestamp(trace(fig, "Spot").x[0])
    assert (first.hour, first.minute, first.tzinfo) == (9, 15, None)  # IST wall clock
    cursor = fig.layout.shapes[0]
    assert pd.Timestamp(cursor.x0) == pd.Timestamp("2026-01-02 09:30")
    assert fig.layout.xaxis.title.text == "Time (IST)" and fig.layout.title.text == "NIFTY 50"
    assert names(C.spot_chart(series, show_future=False)) == ["Spot"]
    assert not C.spot_chart(series).layout.shapes
    session = (datetime(2026, 1, 2, 3, 45, tzinfo=UTC), datetime(2026, 1, 2, 10, 0, tzinfo=UTC))
    spanned = C.spot_chart(series, span=session).layout.xaxis.range
    assert [pd.Timestamp(x) for x in spanned] == [pd.Timestamp("2026-01-02 09:15"),
                                                  pd.Timestamp("2026-01-02 15:30")]


@pytest.fixture
def paused_series() -> pd.DataFrame:
    """The session's first half hour, then a six-hour pause, then half an hour of evening ticks."""
    stamps = [*pd.date_range("2026-01-02 03:45", periods=30, freq="1min", tz="UTC"),
              *pd.date_range("2026-01-02 10:15", periods=30, freq="1min", tz="UTC")]
    rows = [{"ts": t.strftime("%Y-%m-%dT%H:%M:%S+00:00"), "spot": 26000.0 + i, "future": 26100.0 + i,
             "ce_oi": 70_000_000 + 100_000 * i, "pe_oi": 80_000_000, "atm_strike": 26000.0,
             "atm_iv": 12.0, "expiry": "2026-01-06"} for i, t in enumerate(stamps)]
    return A.series_frame(rows)


@pytest.mark.parametrize("build", [C.spot_chart, C.oi_series_chart, C.atm_iv_chart])
def test_day_charts_cut_a_pause_out_of_the_time_axis(build, paused_series, series):
    fig = build(paused_series)
    # 09:44 IST is the last point before the pause, 15:45 the first after: a minute
    # either side stays on the axis, where the line is seen to break
    (gap,) = fig.layout.xaxis.rangebreaks
    assert pd.Timestamp(gap.values[0]) == pd.Timestamp("2026-01-02 09:45")
    assert gap.dvalue == (pd.Timedelta(hours=6, minutes=1) - 2 * C.GAP_MARGIN).total_seconds() * 1000
    assert np.isnan(np.asarray(fig.data[0].y, dtype=float)).sum() == 1  # the line breaks there
    (mark,) = [a for a in fig.layout.annotations if a.text.startswith("no ticks")]
    assert mark.text == "no ticks 09:44–15:45" and mark.x == gap.values[0]
    # ticks only on the time shown: not plotly's tick at 15:45 next to the one at 09:30
    assert fig.layout.xaxis.ticktext == ("09:15", "09:30", "15:45", "16:00")
    plain = build(series).layout
    assert not plain.xaxis.rangebreaks and plain.xaxis.tickvals is None  # no pause, nothing hidden
    assert not [a for a in plain.annotations if a.text.startswith("no ticks")]


def test_day_charts_find_the_pauses_of_any_frame(paused_series):
    """A frame with a ``time`` column that never went through series_frame (or lost its attrs)."""
    bare = paused_series.dropna(subset=["spot"]).reset_index(drop=True)
    bare.attrs = {}
    assert len(C.spot_chart(bare).layout.xaxis.rangebreaks) == 1
    rows = bare.drop(columns=["time"]).to_dict("records")
    assert len(C.spot_chart(rows).layout.xaxis.rangebreaks) == 1


def test_spot_chart_takes_store_rows(series):
    rows = series.drop(columns=["time"]).to_dict("records")
    assert names(C.spot_chart(rows)) == ["Spot", "Future"]
    assert names(C.spot_chart(pd.DataFrame(rows))) == ["Spot", "Future"]


def test_oi_series_chart(series):
    fig = C.oi_series_chart(series, cursor_ts=datetime(2026, 1, 2, 4, 0))
    assert names(fig) == ["Call OI", "Put OI", "PCR"]
    assert [color_of(t) for t in fig.data] == [C.CALL_COLOR, C.PUT_COLOR, C.PCR_COLOR]
    assert trace(fig, "PCR").yaxis == "y2" and fig.layout.yaxis2.overlaying == "y"
    assert tuple(trace(fig, "Call OI").customdata[1]) == ("701.00 L", "+1.00 L")
    assert fig.layout.yaxis.title.text == "Open interest (L)"
    assert all(label.replace(",", "").replace(".", "").isdigit() for label in fig.layout.yaxis.ticktext)
    assert len(fig.layout.shapes) == 1


def test_atm_iv_and_term_structure(series):
    fig = C.atm_iv_chart(series)
    assert names(fig) == ["ATM IV"] and color_of(fig.data[0]) == C.IV_COLOR
    term = A.term_structure(snapshot(), "NIFTY")
    fig = C.term_structure_chart(term)
    assert list(fig.data[0].x) == ["06 Jan 2026", "13 Jan 2026"]
    assert list(fig.data[0].y) == pytest.approx(term["atm_iv"].tolist())
    assert fig.layout.xaxis.type == "category"


EMPTY_CHAIN = A.chain_table([], "NIFTY")
NAN_CHAIN = pd.DataFrame({c: [np.nan, np.nan] for c in A.CHAIN_COLUMNS})


@pytest.mark.parametrize("build", [
    C.spot_chart, C.oi_series_chart, C.atm_iv_chart, C.oi_bars, C.max_pain_chart, C.buildup_bars,
    C.smile_chart, C.term_structure_chart,
])
@pytest.mark.parametrize("data", [None, [], pd.DataFrame(), EMPTY_CHAIN, NAN_CHAIN], ids=[
    "none", "list", "frame", "empty-chain", "nan-chain"])
def test_empty_input_gives_a_message_not_an_error(build, data):
    assert_empty(build(data))


def test_empty_helpers_of_each_kind():
    assert_empty(C.spot_chart(A.series_frame([])))
    assert_empty(C.smile_chart(A.smile(EMPTY_CHAIN)))
    assert_empty(C.term_structure_chart(A.term_structure([], "NIFTY")))
    assert_empty(C.buildup_bars(A.buildup_table([], [], "NIFTY")))
    fig = C.empty_figure("Waiting for the feed", title="Spot")
    assert fig.layout.annotations[0].text == "Waiting for the feed" and fig.layout.title.text == "Spot"


def test_figures_serialise(chain, series):
    figures = [C.oi_bars(chain), C.smile_chart(A.smile(chain)), C.spot_chart(series, cursor_ts=TS),
               C.oi_series_chart(series), C.atm_iv_chart(series), C.max_pain_chart(chain),
               C.term_structure_chart(A.term_structure(snapshot(), "NIFTY")), C.empty_figure()]
    for fig in figures:
        assert fig.to_json().startswith("{")
        assert fig.layout.height and fig.layout.width is None  # fills a wide container
        assert fig.layout.template.layout.plot_bgcolor == "white"


def test_term_structure_chart_skips_expiries_without_iv():
    term = pd.DataFrame({"expiry": [date(2026, 1, 6), date(2026, 1, 13)], "days_to_expiry": [4.0, 11.0],
                         "atm_strike": [26000.0, 26000.0], "atm_iv": [11.0, np.nan]})
    assert list(C.term_structure_chart(term).data[0].x) == ["06 Jan 2026"]


def test_a_flat_pcr_keeps_distinct_tick_labels():
    import pandas as pd

    from datacentre.app import charts
    times = pd.date_range("2026-01-02 03:45", periods=5, freq="5min", tz="UTC")
    flat = pd.DataFrame({"ts": times.strftime("%Y-%m-%dT%H:%M:%S+00:00"), "time": times,
                         "ce_oi": [1e7] * 5, "pe_oi": [0.89e7, 0.891e7, 0.892e7, 0.891e7, 0.89e7]})
    flat["pcr"] = flat["pe_oi"] / flat["ce_oi"]
    flat["ce_oi_change"] = flat["ce_oi"] - flat["ce_oi"].iloc[0]
    flat["pe_oi_change"] = flat["pe_oi"] - flat["pe_oi"].iloc[0]
    axis = charts.oi_series_chart(flat).layout.yaxis2
    low, high = axis.range
    assert high - low >= charts.PCR_MIN_SPAN - 1e-9
    assert low < flat["pcr"].min() and high > flat["pcr"].max()
