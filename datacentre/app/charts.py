"""Plotly figure builders for every page: data in, figure out.

One look across the app: calls are always :data:`CALL_COLOR` (blue), puts
:data:`PUT_COLOR` (amber), the index :data:`SPOT_COLOR`; green and red mean only up and
down (a rise, a fall, long and short build-up), never calls and puts. Axes carry units,
OI is in lakhs everywhere (axis titles say "(L)"), time axes read IST wall-clock.
Figures have a fixed height and no width, so ``st.plotly_chart(fig)`` fills a wide
layout. Empty or missing input gives :func:`empty_figure` with a message, never an exception.

Inputs are what :mod:`datacentre.analytics` returns (a chain, a smile, a day series or
the store's ``underlying_series`` rows, a term structure, a build-up table). A day
series' pauses longer than :data:`analytics.SERIES_GAP` are cut out of the time axis.
Figures are built from plain dicts with a small template: plotly's stock template and
``make_subplots`` cost tens of milliseconds a figure, which a replay step cannot afford.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from datacentre import analytics
from datacentre.app.formatting import (
    LAKH_UNIT,
    MISSING,
    fmt_change,
    fmt_expiry,
    fmt_lakh,
    fmt_oi,
    fmt_pct,
    fmt_price,
    fmt_strike,
)
from datacentre.core.numbers import finite_or_none
from datacentre.core.ticks import IST, parse_ts

CALL_COLOR = "#2563EB"  # blue; red and green are kept for down and up
PUT_COLOR = "#D97706"  # amber
SPOT_COLOR = "#1E293B"
FUTURE_COLOR = "#8A8A8A"
SMILE_COLOR = "#3D3D3D"
IV_COLOR = "#0F8B8D"
PCR_COLOR = "#7B4FA0"
PCR_MIN_SPAN = 0.1  # the PCR axis shows at least this range, so its 2-decimal ticks stay distinct
MARKER_COLOR = "#8A8A8A"  # ATM, max pain, the replay cursor
OVERLAY_COLORS = ("#6C8EBF", "#B0A16C", "#8FB996", "#C58FB0", "#A0A0A0")
OVERLAY_DASHES = ("dash", "dot", "dashdot", "longdash", "longdashdot")
BUILDUP_COLORS = {
    analytics.LONG_BUILDUP: "#15803D",  # price up: greens
    analytics.SHORT_COVERING: "#86CF9C",
    analytics.SHORT_BUILDUP: "#B91C1C",  # price down: reds
    analytics.LONG_UNWINDING: "#F29B9B",
    analytics.NEUTRAL: "#B5B5B5",
}

HEIGHT = 420
TALL_HEIGHT = 560
FONT = "Inter, -apple-system, 'Segoe UI', Roboto, sans-serif"
TIME_FORMAT = "%H:%M"
GAP_MARGIN = pd.Timedelta(minutes=1)  # of each pause in a day series, left on the axis
TIME_TICK_STEPS = tuple(pd.Timedelta(minutes=m) for m in (15, 30, 60, 120, 180, 240))
MAX_TIME_TICKS = 8
CALL_MARKER_SIZE = 12
PUT_MARKER_SIZE = 8
HOVER_TIME = "%{x|%H:%M:%S} IST"
GRID = "#EBF0F8"
TEXT = "#2A3F5F"

_AXIS = {"gridcolor": GRID, "linecolor": GRID, "zerolinecolor": GRID, "zerolinewidth": 2, "ticks": "",
         "automargin": True, "title": {"standoff": 12}}
TEMPLATE = go.layout.Template({
    "layout": {
        "font": {"family": FONT, "size": 13, "color": TEXT},
        "paper_bgcolor": "white", "plot_bgcolor": "white",
        "colorway": [CALL_COLOR, PUT_COLOR, SPOT_COLOR, IV_COLOR, PCR_COLOR, FUTURE_COLOR],
        "hoverlabel": {"align": "left", "font": {"family": FONT}},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0},
        "xaxis": _AXIS, "yaxis": _AXIS, "bargap": 0.25,
        "annotationdefaults": {"arrowcolor": TEXT, "arrowhead": 0, "arrowwidth": 1},
    },
    "data": {"bar": [{"marker": {"line": {"color": "white", "width": 0.5}}}]},
})


# ---------------------------------------------------------------- shared pieces

def _layout(*, title: str | None, height: int, hovermode: str = "closest", **extra) -> dict:
    layout = {
        "template": TEMPLATE, "height": height, "hovermode": hovermode,
        "margin": {"l": 70, "r": 30, "t": 100 if title else 60, "b": 50},
        "shapes": [], "annotations": [],
    }
    if title:  # at the very top, clear of the legend above the plot
        layout["title"] = {"text": title, "x": 0, "xanchor": "left", "y": 1, "yref": "container",
                           "yanchor": "top", "pad": {"t": 12, "l": 8}, "font": {"size": 16}}
    layout.update(extra)
    return layout


def empty_figure(message: str = "No data yet", *, title: str | None = None,
                 height: int = HEIGHT) -> go.Figure:
    """A blank figure that says why it is blank."""
    layout = _layout(title=title, height=height, xaxis={"visible": False}, yaxis={"visible": False})
    layout["annotations"].append({"text": message, "x": 0.5, "y": 0.5, "xref": "paper", "yref": "paper",
                                  "showarrow": False, "font": {"size": 15, "color": "#777777"}})
    return go.Figure(layout=layout)


def _has(frame, *columns: str) -> bool:
    """A non-empty DataFrame with ``columns``, at least one of them holding a number."""
    if not isinstance(frame, pd.DataFrame) or frame.empty:
        return False
    if any(c not in frame.columns for c in columns):
        return False
    return bool(np.isfinite(frame[list(columns)].to_numpy(dtype=float)).any())


def _texts(formatter, values) -> np.ndarray:
    """Formatted hover texts (an object array: plotly takes it without a per-item check)."""
    return np.array([formatter(v) for v in values], dtype=object)


def _oi_change(value) -> str:
    return fmt_change(value, kind="oi")


def _axis_lakh(value: float) -> str:
    """An OI axis label in lakhs, without trailing zeros: ``'25'``, ``'2.5'``, ``'1,250'``."""
    text = fmt_lakh(value)
    return text.rstrip("0").rstrip(".") if "." in text else text


def _oi_title(text: str) -> dict:
    return {"title": {"text": f"{text} ({LAKH_UNIT})"}}


def _oi_ticks(values, *, from_zero: bool = True) -> dict:
    """Tick positions labelled in lakhs for an OI axis spanning ``values`` (and zero for
    bars; not for a line through the day); :func:`_oi_title` gives the unit."""
    data = np.asarray(values, dtype=float)
    data = data[np.isfinite(data)]
    if not len(data):
        return {}
    low, high = float(data.min()), float(data.max())
    if from_zero:
        low, high = min(0.0, low), max(0.0, high)
    if high - low <= 0:
        return {}
    raw = (high - low) / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    ticks = np.arange(math.floor(low / step) * step, high + step, step)
    return {"tickmode": "array", "tickvals": ticks.tolist(), "ticktext": [_axis_lakh(v) for v in ticks]}


def _vline(layout: dict, x, label: str, color: str, dash: str, *, left: bool = False) -> None:
    """A vertical marker across the plot, labelled at the top; each further marker's
    label sits a line lower, so close markers' labels never print over each other."""
    if x is None:
        return
    below = len(layout["shapes"])
    layout["shapes"].append({"type": "line", "x0": x, "x1": x, "xref": "x", "yref": "paper", "y0": 0, "y1": 1,
                             "line": {"color": color, "width": 1.5, "dash": dash}})
    layout["annotations"].append({"text": label, "x": x, "xref": "x", "y": 1, "yref": "paper",
                                  "xanchor": "right" if left else "left", "yanchor": "top",
                                  "yshift": -14 * below, "showarrow": False,
                                  "bgcolor": "rgba(255,255,255,0.8)", "font": {"size": 11, "color": color}})


def _cursor(layout: dict, cursor_ts) -> None:
    if cursor_ts is None:
        return
    try:
        moment = parse_ts(cursor_ts).astimezone(IST).replace(tzinfo=None)
    except (ValueError, TypeError):
        return
    _vline(layout, moment, moment.strftime("%H:%M:%S"), MARKER_COLOR, "dot")


def _time_axis() -> dict:
    return {"title": {"text": "Time (IST)"}, "tickformat": TIME_FORMAT, "hoverformat": "%H:%M:%S"}


def _cut_pauses(layout: dict, frame: pd.DataFrame) -> None:
    """Cut the series' pauses (``attrs["gaps"]``) out of the time axis, all but
    :data:`GAP_MARGIN` either side, and mark each with a dotted line labelled with
    the time it hides.

    Plotly ticks the first moment after a cut (its "22:07" lands on "15:00"), so the
    ticks are set here instead: whole steps of the time shown, at most
    :data:`MAX_TIME_TICKS`.
    """
    gaps = [(pd.Timestamp(b), pd.Timestamp(a)) for b, a in frame.attrs.get("gaps", ())
            if pd.Timestamp(a) - pd.Timestamp(b) > 2 * GAP_MARGIN]
    if not gaps:
        return
    times = frame["time"].dropna()
    spans = list(zip([times.iloc[0], *(after for _, after in gaps)],
                     [*(before for before, _ in gaps), times.iloc[-1]]))
    shown = sum((end - start for start, end in spans), pd.Timedelta(0))
    breaks, elapsed = [], pd.Timedelta(0)
    for (before, after), (start, end) in zip(gaps, spans):
        elapsed += end - start
        edge = (analytics.wall_moment(before) + GAP_MARGIN).isoformat()
        breaks.append({"values": [edge], "dvalue": (after - before - 2 * GAP_MARGIN).total_seconds() * 1000})
        layout["shapes"].append({"type": "line", "x0": edge, "x1": edge, "xref": "x", "yref": "paper",
                                 "y0": 0, "y1": 1, "line": {"color": MARKER_COLOR, "dash": "dot"}})
        layout["annotations"].append({
            "text": f"no ticks {before:%H:%M}–{after:%H:%M}", "x": edge, "xref": "x", "y": 0, "yref": "paper",
            "xanchor": "right" if elapsed > shown / 2 else "left", "yanchor": "bottom", "showarrow": False,
            "bgcolor": "rgba(255,255,255,0.8)", "font": {"size": 11, "color": MARKER_COLOR}})
    step = next((s for s in TIME_TICK_STEPS if shown / s <= MAX_TIME_TICKS), TIME_TICK_STEPS[-1])
    ticks = [tick for start, end in spans
             for tick in pd.date_range(analytics.wall_moment(start).ceil(step), analytics.wall_moment(end),
                                       freq=step)]
    layout["xaxis"].update(rangebreaks=breaks, tickmode="array", tickvals=[t.isoformat() for t in ticks],
                           ticktext=[t.strftime(TIME_FORMAT) for t in ticks])


def _day_figure(traces: list, layout: dict, frame: pd.DataFrame, cursor_ts, span=None) -> go.Figure:
    """A chart through the day: the replay cursor drawn, the series' pauses cut out.

    ``span`` (two moments, e.g. a session's bounds) fixes the time axis, so a series
    that ends at the moment shown (no data from after it) keeps the session's scale.
    """
    _cursor(layout, cursor_ts)
    if span is not None:
        layout["xaxis"]["range"] = [analytics.wall_moment(m).isoformat() for m in span]
    _cut_pauses(layout, frame)
    return go.Figure(data=traces, layout=layout)


# ---------------------------------------------------------------- intraday

def spot_chart(series, cursor_ts=None, *, show_future: bool = True, title: str | None = None,
               height: int = HEIGHT, span=None) -> go.Figure:
    """The index through the day (and the nearest future, dotted, on its own right-hand
    axis: it trades a basis away, and one shared axis would flatten the spot's line),
    with an optional replay cursor.

    ``series`` is :func:`analytics.series_frame` output or the store's rows;
    ``cursor_ts`` a store timestamp or datetime, drawn as a vertical line; ``span`` see
    :func:`_day_figure`.
    """
    frame = analytics.as_series_frame(series)
    if not _has(frame, "spot"):
        return empty_figure("No index ticks in this range", title=title, height=height)
    x = analytics.wall_clock(frame["time"])
    traces = [go.Scatter(x=x, y=frame["spot"], name="Spot", mode="lines",
                         line={"color": SPOT_COLOR, "width": 2},
                         hovertemplate="Spot %{y:,.2f}<extra></extra>")]
    layout = _layout(title=title, height=height, hovermode="x unified", xaxis=_time_axis(),
                     yaxis={"title": {"text": "Spot (points)", "font": {"color": SPOT_COLOR}},
                            "tickformat": ",.2~f"})
    if show_future and _has(frame, "future"):
        traces.append(go.Scatter(
            x=x, y=frame["future"], name="Future", mode="lines", yaxis="y2",
            line={"color": FUTURE_COLOR, "width": 1.5, "dash": "dot"},
            customdata=frame["basis"].to_numpy(dtype=float),
            hovertemplate="Future %{y:,.2f} (basis %{customdata:+,.2f})<extra></extra>"))
        layout["yaxis2"] = {"title": {"text": "Future (points)", "font": {"color": FUTURE_COLOR}},
                            "overlaying": "y", "side": "right", "showgrid": False, "tickformat": ",.2~f",
                            "tickmode": "auto", "automargin": True, "ticks": "", "linecolor": GRID}
    return _day_figure(traces, layout, frame, cursor_ts, span)


def oi_series_chart(series, cursor_ts=None, *, title: str | None = None,
                    height: int = HEIGHT, span=None) -> go.Figure:
    """Total call and put OI through the day, the PCR on the right-hand axis."""
    frame = analytics.as_series_frame(series)
    if not _has(frame, "ce_oi", "pe_oi"):
        return empty_figure("No option open interest in this range", title=title, height=height)
    x = analytics.wall_clock(frame["time"])
    traces = []
    for column, name, color in (("ce_oi", "Call OI", CALL_COLOR), ("pe_oi", "Put OI", PUT_COLOR)):
        traces.append(go.Scatter(
            x=x, y=frame[column], name=name, mode="lines", line={"color": color, "width": 2},
            customdata=np.column_stack([_texts(fmt_oi, frame[column]),
                                        _texts(_oi_change, frame[f"{column}_change"])]),
            hovertemplate=f"{name} %{{customdata[0]}} (%{{customdata[1]}} today)<extra></extra>"))
    layout = _layout(title=title, height=height, hovermode="x unified", xaxis=_time_axis(),
                     yaxis={**_oi_title("Open interest"),
                            **_oi_ticks(frame[["ce_oi", "pe_oi"]].to_numpy().ravel(), from_zero=False)})
    if _has(frame, "pcr"):
        traces.append(go.Scatter(x=x, y=frame["pcr"], name="PCR", mode="lines", yaxis="y2",
                                 line={"color": PCR_COLOR, "width": 1.5, "dash": "dash"},
                                 hovertemplate="PCR %{y:.2f}<extra></extra>"))
        layout["yaxis2"] = {"title": {"text": "Put/call ratio"}, "overlaying": "y", "side": "right",
                            "showgrid": False, "tickformat": ".2f", "nticks": 6,
                            "automargin": True, "ticks": "", "linecolor": GRID,
                            **_min_span(frame["pcr"], PCR_MIN_SPAN)}
    return _day_figure(traces, layout, frame, cursor_ts, span)


def _min_span(values, span: float) -> dict:
    """An axis range at least ``span`` wide (a flat series' ticks would repeat their labels)."""
    finite = pd.to_numeric(values, errors="coerce").dropna()
    if finite.empty or finite.max() - finite.min() >= span:
        return {}
    mid = (finite.max() + finite.min()) / 2
    return {"range": [mid - span / 2, mid + span / 2]}


def atm_iv_chart(series, cursor_ts=None, *, title: str | None = None,
                 height: int = HEIGHT, span=None) -> go.Figure:
    """ATM implied volatility through the day."""
    frame = analytics.as_series_frame(series)
    if not _has(frame, "atm_iv"):
        return empty_figure("No ATM implied volatility in this range", title=title, height=height)
    trace = go.Scatter(
        x=analytics.wall_clock(frame["time"]), y=frame["atm_iv"], name="ATM IV", mode="lines",
        line={"color": IV_COLOR, "width": 2}, customdata=_texts(fmt_strike, frame["atm_strike"]),
        hovertemplate=f"{HOVER_TIME}<br>ATM IV %{{y:.2f}}% at %{{customdata}}<extra></extra>")
    layout = _layout(title=title, height=height, xaxis=_time_axis(),
                     yaxis={"title": {"text": "ATM implied volatility (%)"}, "ticksuffix": "%"})
    return _day_figure([trace], layout, frame, cursor_ts, span)


# ---------------------------------------------------------------- chain

_UPPER, _LOWER = [0.42, 1.0], [0.0, 0.33]  # panel heights of two-panel charts


def oi_bars(chain, show_change: bool = True, *, max_pain: float | None = None,
            title: str | None = None, height: int | None = None) -> go.Figure:
    """Call and put OI by strike as grouped bars, the OI change in a panel below.

    The change panel needs a chain built with ``previous``; without one it is left
    out. The spot (from ``chain.attrs``) and ``max_pain`` (when given) are marked.
    """
    if not _has(chain, "ce_oi", "pe_oi"):
        return empty_figure("No open interest for this expiry", title=title, height=height or HEIGHT)
    changes = show_change and _has(chain, "ce_oi_change", "pe_oi_change")
    strikes = chain["strike"].to_numpy(dtype=float)
    labels = _texts(fmt_strike, strikes)
    traces = []
    for prefix, name, color in (("ce", "Call", CALL_COLOR), ("pe", "Put", PUT_COLOR)):
        oi = chain[f"{prefix}_oi"]
        change = chain.get(f"{prefix}_oi_change")
        change_text = _texts(_oi_change, oi * np.nan if change is None else change)
        data = np.column_stack([labels, _texts(fmt_oi, oi), change_text])
        traces.append(go.Bar(
            x=strikes, y=oi, name=f"{name} OI", marker_color=color, offsetgroup=prefix,
            legendgroup=prefix, customdata=data,
            hovertemplate=(f"Strike %{{customdata[0]}}<br>{name} OI %{{customdata[1]}}"
                           "<br>Change %{customdata[2]}<extra></extra>")))
        if changes:
            traces.append(go.Bar(
                x=strikes, y=change, name=f"{name} OI change", yaxis="y2", marker_color=color,
                opacity=0.6, marker_pattern_shape="/", offsetgroup=prefix, legendgroup=prefix,
                customdata=data,
                hovertemplate=(f"Strike %{{customdata[0]}}<br>{name} OI change %{{customdata[2]}}"
                               "<extra></extra>")))
    layout = _layout(title=title, height=height or (TALL_HEIGHT if changes else HEIGHT), barmode="group",
                     xaxis={"title": {"text": "Strike"}, "tickformat": ",d"},
                     yaxis={**_oi_title("Open interest"),
                            **_oi_ticks(chain[["ce_oi", "pe_oi"]].to_numpy().ravel())})
    if changes:
        # One x axis for both panels (drawn under the lower one), so zoom stays shared.
        layout["xaxis"]["anchor"] = "y2"
        layout["yaxis"]["domain"] = _UPPER
        layout["yaxis2"] = {"domain": _LOWER, "anchor": "x", **_oi_title("OI change"),
                            "zeroline": True, "zerolinecolor": "#999999",
                            **_oi_ticks(chain[["ce_oi_change", "pe_oi_change"]].to_numpy().ravel())}
    spot = finite_or_none(chain.attrs.get("spot"))
    _vline(layout, spot, f"Spot {fmt_price(spot)}", SPOT_COLOR, "dash")
    pain = finite_or_none(max_pain)
    _vline(layout, pain, f"Max pain {fmt_strike(pain)}", MARKER_COLOR, "dot", left=True)
    return go.Figure(data=traces, layout=layout)


def max_pain_chart(chain, *, title: str | None = None, height: int = HEIGHT) -> go.Figure:
    """What option buyers would be paid at each settlement strike, calls and puts stacked."""
    if not _has(chain, "ce_oi", "pe_oi"):
        return empty_figure("No open interest for this expiry", title=title, height=height)
    curve = analytics.pain_curve(chain)
    labels = _texts(fmt_strike, curve["strike"])
    traces = [go.Bar(x=curve["strike"], y=curve[column], name=f"{name} payout", marker_color=color,
                     customdata=np.column_stack([labels, _texts(fmt_oi, curve[column])]),
                     hovertemplate=(f"Settle at %{{customdata[0]}}<br>{name} paid %{{customdata[1]}}"
                                    " OI × points<extra></extra>"))
              for column, name, color in (("call_payout", "Calls", CALL_COLOR),
                                          ("put_payout", "Puts", PUT_COLOR))]
    layout = _layout(title=title, height=height, barmode="stack", legend={"traceorder": "normal"},
                     xaxis={"title": {"text": "Settlement strike"}, "tickformat": ",d"},
                     yaxis={**_oi_title("Payout to buyers, OI × points"),
                            **_oi_ticks(curve["total_payout"])})
    pain = analytics.max_pain(chain)
    _vline(layout, pain, f"Max pain {fmt_strike(pain)}", MARKER_COLOR, "dot", left=True)
    spot = finite_or_none(chain.attrs.get("spot"))
    _vline(layout, spot, f"Spot {fmt_price(spot)}", SPOT_COLOR, "dash")
    return go.Figure(data=traces, layout=layout)


def buildup_bars(table, *, title: str | None = None, height: int = TALL_HEIGHT) -> go.Figure:
    """OI change by strike, calls in the upper panel and puts in the lower, each bar
    coloured by its build-up (:data:`BUILDUP_COLORS`).

    ``table`` is :func:`analytics.buildup_table` output (futures rows are skipped).
    """
    if not _has(table, "oi_change") or "buildup" not in table.columns:
        return empty_figure("No OI change to classify yet", title=title, height=height)
    traces, shown = [], set()
    for axis, kind in (("y", "CE"), ("y2", "PE")):
        side = table[table["kind"] == kind]
        for label in analytics.BUILDUPS:
            part = side[side["buildup"] == label]
            if part.empty:
                continue
            data = np.column_stack([_texts(fmt_strike, part["strike"]),
                                    _texts(_oi_change, part["oi_change"]),
                                    _texts(fmt_change, part["ltp_change"]), _texts(fmt_oi, part["oi"])])
            traces.append(go.Bar(
                x=part["strike"], y=part["oi_change"], name=label, yaxis=axis,
                marker_color=BUILDUP_COLORS[label], legendgroup=label, showlegend=label not in shown,
                customdata=data,
                hovertemplate=(f"{kind} %{{customdata[0]}}: {label}<br>OI change %{{customdata[1]}}"
                               " (OI %{customdata[3]})<br>Price change %{customdata[2]}<extra></extra>")))
            shown.add(label)

    def panel(domain, kind):
        values = table.loc[table["kind"] == kind, "oi_change"]
        return {"domain": domain, "anchor": "x", **_oi_title(f"{kind} OI change"),
                "zeroline": True, "zerolinecolor": "#999999", **_oi_ticks(values)}

    layout = _layout(title=title, height=height, barmode="relative",
                     xaxis={"title": {"text": "Strike"}, "tickformat": ",d", "anchor": "y2"},
                     yaxis=panel([0.55, 1.0], "CE"), yaxis2=panel([0.0, 0.45], "PE"))
    return go.Figure(data=traces, layout=layout)


# ---------------------------------------------------------------- volatility

def smile_chart(smile, spot: float | None = None, atm: float | None = None,
                overlays: Mapping[str, pd.DataFrame] | None = None, *, title: str | None = None,
                height: int = HEIGHT) -> go.Figure:
    """IV by strike: calls and puts as markers, the OTM smile as a line.

    ``overlays`` maps a legend label (``"09:30"``, ``"13 Jan expiry"``) to another
    smile, drawn as a dashed OTM line for comparison. ``spot`` and ``atm`` default to
    the smile's ``attrs``.
    """
    if not (_has(smile, "otm_iv") or _has(smile, "ce_iv") or _has(smile, "pe_iv")):
        return empty_figure("No implied volatility for this expiry", title=title, height=height)
    spot = finite_or_none(spot if spot is not None else smile.attrs.get("spot"))
    atm = finite_or_none(atm if atm is not None else smile.attrs.get("atm"))
    labels = _texts(fmt_strike, smile["strike"])
    traces = []
    for i, (label, other) in enumerate((overlays or {}).items()):
        if not _has(other, "strike", "otm_iv"):
            continue
        traces.append(go.Scatter(
            x=other["strike"], y=other["otm_iv"], name=str(label), mode="lines", connectgaps=True,
            line={"color": OVERLAY_COLORS[i % len(OVERLAY_COLORS)], "width": 1.5,
                  "dash": OVERLAY_DASHES[i % len(OVERLAY_DASHES)]},
            customdata=_texts(fmt_strike, other["strike"]),
            hovertemplate=f"{label}<br>Strike %{{customdata}}<br>IV %{{y:.2f}}%<extra></extra>"))
    # Call rings a size larger than put diamonds: where call and put IV coincide (the
    # simulator quotes one IV per strike) the ring still shows around the diamond.
    for column, name, color, symbol, size in (
            ("ce_iv", "Call IV", CALL_COLOR, "circle-open", CALL_MARKER_SIZE),
            ("pe_iv", "Put IV", PUT_COLOR, "diamond-open", PUT_MARKER_SIZE)):
        if column in smile.columns:
            traces.append(go.Scatter(
                x=smile["strike"], y=smile[column], name=name, mode="markers",
                marker={"color": color, "size": size, "symbol": symbol, "line": {"width": 1.5}},
                customdata=labels,
                hovertemplate=f"Strike %{{customdata}}<br>{name} %{{y:.2f}}%<extra></extra>"))
    if "otm_iv" in smile.columns:
        traces.append(go.Scatter(
            x=smile["strike"], y=smile["otm_iv"], name="OTM IV", mode="lines", connectgaps=True,
            line={"color": SMILE_COLOR, "width": 2.5}, customdata=labels,
            hovertemplate="Strike %{customdata}<br>OTM IV %{y:.2f}%<extra></extra>"))
    layout = _layout(title=title, height=height,
                     xaxis={"title": {"text": "Strike"}, "tickformat": ",d"},
                     yaxis={"title": {"text": "Implied volatility (%)"}, "ticksuffix": "%"})
    _vline(layout, spot, f"Spot {fmt_price(spot)}", SPOT_COLOR, "dash")
    if atm is not None and atm != spot:
        _vline(layout, atm, f"ATM {fmt_strike(atm)}", MARKER_COLOR, "dot", left=True)
    return go.Figure(data=traces, layout=layout)


def term_structure_chart(term, *, title: str | None = None, height: int = HEIGHT) -> go.Figure:
    """ATM IV by expiry (:func:`analytics.term_structure` output)."""
    if not _has(term, "atm_iv"):
        return empty_figure("No ATM implied volatility by expiry", title=title, height=height)
    frame = term[np.isfinite(term["atm_iv"].to_numpy(dtype=float))]
    days = _texts(lambda d: MISSING if finite_or_none(d) is None else f"{d:.1f}", frame["days_to_expiry"])
    trace = go.Scatter(
        x=_texts(fmt_expiry, frame["expiry"]), y=frame["atm_iv"], name="ATM IV", mode="lines+markers",
        line={"color": IV_COLOR, "width": 2}, marker={"size": 9},
        customdata=np.column_stack([days, _texts(fmt_pct, frame["atm_iv"]),
                                    _texts(fmt_strike, frame["atm_strike"])]),
        hovertemplate=("Expiry %{x} (%{customdata[0]} days)<br>ATM IV %{customdata[1]}"
                       " at %{customdata[2]}<extra></extra>"))
    layout = _layout(title=title, height=height,
                     xaxis={"title": {"text": "Expiry"}, "type": "category"},
                     yaxis={"title": {"text": "ATM implied volatility (%)"}, "ticksuffix": "%"})
    return go.Figure(data=[trace], layout=layout)
