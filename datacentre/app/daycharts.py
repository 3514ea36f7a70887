"""Plotly figures of the traders' day charts: the straddle, leg premiums, OI of chosen
strikes, PCR and max pain, the future against its OI and basis, gamma exposure, candles
with VWAP and IV rank.

The look is :mod:`datacentre.app.charts`' (its template, colours and helpers): calls in
:data:`~datacentre.app.charts.CALL_COLOR`, puts in :data:`~datacentre.app.charts.PUT_COLOR`,
green and red only for up and down, axes with units, IST wall-clock time, formatted hover
values. Inputs are the frames of :mod:`datacentre.analytics.intraday`; empty input gives
an empty figure that says why.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from datacentre import analytics
from datacentre.app.charts import (
    CALL_COLOR,
    GRID,
    HEIGHT,
    IV_COLOR,
    MARKER_COLOR,
    PCR_COLOR,
    PUT_COLOR,
    SMILE_COLOR,
    SPOT_COLOR,
    TALL_HEIGHT,
    _day_figure,
    _has,
    _layout,
    _oi_ticks,
    _oi_title,
    _texts,
    _time_axis,
    _vline,
    empty_figure,
)
from datacentre.app.formatting import MISSING, fmt_day, fmt_expiry, fmt_pct, fmt_price, fmt_strike
from datacentre.core.instruments import CE

PREMIUM_COLOR = SMILE_COLOR  # a premium of calls and puts together: neither side's colour
FUTURE_LINE_COLOR = "#0F766E"
BASIS_COLOR = PCR_COLOR
MAX_PAIN_COLOR = "#B45309"
UP_COLOR = "#15803D"  # green and red: up and down only
DOWN_COLOR = "#B91C1C"
VWAP_COLOR = "#7C3AED"
VOLUME_COLOR = "#94A3B8"
LEG_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
CRORE = 1e7
MAX_POINTS = 1_500  # snapshots a day chart draws
LAKH = 100_000
SHORT_SPAN = pd.Timedelta(minutes=15)
RUPEE = "\u20b9"


def _lakhs(*columns) -> np.ndarray:
    """Shares in lakhs, as numbers for plotly to format in the hover (``%{customdata:,.2f} L``):
    formatting a day's points one by one in Python costs more than the rest of the chart."""
    return np.column_stack([np.asarray(c, dtype=float) / LAKH for c in columns])


def _thinned(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with at most about :data:`MAX_POINTS` of its snapshots (every n-th and the
    last, :func:`analytics.thin`) and its gap rows: a 1,600-pixel chart shows no more, and
    hover texts are formatted per point."""
    if "ts" not in frame.columns or frame["ts"].nunique() <= MAX_POINTS:
        return frame
    keep = set(analytics.thin(sorted(frame["ts"].dropna().unique()), MAX_POINTS))
    out = frame[frame["ts"].isna() | frame["ts"].isin(keep)].reset_index(drop=True)
    out.attrs = dict(frame.attrs)
    return out


def _axis2(title: str, color: str, **extra) -> dict:
    """A right-hand axis over the first."""
    return {"title": {"text": title, "font": {"color": color}}, "overlaying": "y", "side": "right",
            "showgrid": False, "automargin": True, "ticks": "", "linecolor": GRID, **extra}


def _finish(traces: list, layout: dict, frame: pd.DataFrame, span) -> go.Figure:
    """A day figure on the session's time axis (``span``: two moments, or None to fit the data)."""
    if span is not None:
        layout["xaxis"]["range"] = [analytics.wall_moment(m).isoformat() for m in span]
    else:
        times = frame["time"].dropna()
        if len(times) and times.max() - times.min() < SHORT_SPAN:
            layout["xaxis"]["tickformat"] = "%H:%M:%S"  # minutes alone would repeat on every tick
    return _day_figure(traces, layout, frame, None)


def _panels(layout: dict, domains: Sequence[Sequence[float]]) -> None:
    """Stack ``y``, ``y2``, ... in ``domains`` (top first) over one time axis drawn under
    the lowest, so zooming one panel zooms them all."""
    for n, domain in enumerate(domains, start=1):
        name = "yaxis" if n == 1 else f"yaxis{n}"
        layout.setdefault(name, {}).update({"domain": list(domain), "anchor": "x"})
    layout["xaxis"]["anchor"] = f"y{len(domains)}"


# ---------------------------------------------------------------- premiums

def straddle_chart(frame: pd.DataFrame, *, span=None, title: str | None = None,
                   height: int = HEIGHT) -> go.Figure:
    """The straddle premium through the day (call + put, at the strike of each point),
    its call and put legs, and the spot on the right-hand axis."""
    if not _has(frame, "premium"):
        return empty_figure("No straddle prices in this range", title=title, height=height)
    frame = _thinned(frame)
    x = analytics.wall_clock(frame["time"])
    strikes = frame["strike"].to_numpy(dtype=float)
    traces = [
        go.Scatter(x=x, y=frame["premium"], name="Straddle", mode="lines",
                   line={"color": PREMIUM_COLOR, "width": 2.5}, customdata=strikes,
                   hovertemplate="Straddle %{y:,.2f} at %{customdata:,.0f}<extra></extra>"),
        go.Scatter(x=x, y=frame["ce"], name="Call", mode="lines", line={"color": CALL_COLOR, "width": 1.2},
                   customdata=strikes, hovertemplate="%{customdata:,.0f} CE %{y:,.2f}<extra></extra>"),
        go.Scatter(x=x, y=frame["pe"], name="Put", mode="lines", line={"color": PUT_COLOR, "width": 1.2},
                   customdata=strikes, hovertemplate="%{customdata:,.0f} PE %{y:,.2f}<extra></extra>"),
        go.Scatter(x=x, y=frame["spot"], name="Spot", mode="lines", yaxis="y2",
                   line={"color": SPOT_COLOR, "width": 1, "dash": "dot"},
                   hovertemplate="Spot %{y:,.2f}<extra></extra>"),
    ]
    layout = _layout(title=title, height=height, hovermode="x unified", xaxis=_time_axis(),
                     yaxis={"title": {"text": "Premium (points)"}, "tickformat": ",.0f",
                            "rangemode": "tozero"},
                     yaxis2=_axis2("Spot (points)", SPOT_COLOR, tickformat=",.0f"))
    return _finish(traces, layout, frame, span)


def legs_chart(frame: pd.DataFrame, legs: Sequence[tuple[str, str, str]], *, span=None,
               title: str | None = None, height: int = HEIGHT) -> go.Figure:
    """Each leg's price and the legs' combined premium through the day.

    ``legs`` are ``(symbol, label, kind)``: a call leg is drawn in the call colour, a put
    leg in the put colour, a second leg of the same kind dashed.
    """
    if not _has(frame, "premium"):
        return empty_figure("No prices of these legs in this range", title=title, height=height)
    frame = _thinned(frame)
    x = analytics.wall_clock(frame["time"])
    traces = [go.Scatter(x=x, y=frame["premium"], name="Combined", mode="lines",
                         line={"color": PREMIUM_COLOR, "width": 2.5},
                         hovertemplate="Combined %{y:,.2f}<extra></extra>")]
    seen: dict[str, int] = {}
    for symbol, label, kind in legs:
        n = seen[kind] = seen.get(kind, -1) + 1
        traces.append(go.Scatter(
            x=x, y=frame[symbol], name=label, mode="lines",
            line={"color": CALL_COLOR if kind == CE else PUT_COLOR, "width": 1.3,
                  "dash": LEG_DASHES[n % len(LEG_DASHES)]},
            hovertemplate=f"{label} %{{y:,.2f}}<extra></extra>"))
    layout = _layout(title=title, height=height, hovermode="x unified", xaxis=_time_axis(),
                     yaxis={"title": {"text": "Premium (points)"}, "tickformat": ",.0f",
                            "rangemode": "tozero"})
    return _finish(traces, layout, frame, span)


# ---------------------------------------------------------------- open interest

def oi_history_chart(frame: pd.DataFrame, labels: dict[str, tuple[str, str]], *, change: bool = False,
                     span=None, title: str | None = None, height: int = HEIGHT) -> go.Figure:
    """OI (or, with ``change``, OI change since the day's first snapshot) of each contract
    through the day, from :func:`analytics.intraday.oi_history`.

    ``labels`` maps a symbol to ``(label, kind)``: calls in the call colour, puts in the
    put colour, the n-th strike of a side with the n-th dash, so a strike's call and put
    share a dash.
    """
    column = "oi_change" if change else "oi"
    if not _has(frame, column):
        return empty_figure("No open interest of these strikes in this range", title=title, height=height)
    frame = _thinned(frame)
    traces, dash_of = [], {}
    for symbol, (label, kind) in labels.items():
        part = frame[frame["symbol"] == symbol]
        if part.empty:
            continue
        part = analytics.break_gaps(part.reset_index(drop=True))
        strike = label.rsplit(" ", 1)[0]
        dash = dash_of.setdefault(strike, LEG_DASHES[len(dash_of) % len(LEG_DASHES)])
        data = _lakhs(part["oi"], part["oi_change"])
        traces.append(go.Scatter(
            x=analytics.wall_clock(part["time"]), y=part[column], name=label, mode="lines",
            line={"color": CALL_COLOR if kind == CE else PUT_COLOR, "width": 1.8, "dash": dash},
            customdata=data,
            hovertemplate=f"{label} OI %{{customdata[0]:,.2f}} L (%{{customdata[1]:+,.2f}} L today)"
                          "<extra></extra>"))
    layout = _layout(title=title, height=height, hovermode="x unified", xaxis=_time_axis(),
                     yaxis={**_oi_title("OI change since the open" if change else "Open interest"),
                            "zeroline": change, "zerolinecolor": "#999999",
                            **_oi_ticks(frame[column], from_zero=change)})
    return _finish(traces, layout, frame, span)


def pain_pcr_chart(frame: pd.DataFrame, spot: pd.DataFrame | None = None, *, span=None,
                   title: str | None = None, height: int = HEIGHT) -> go.Figure:
    """PCR (left axis) and max pain (right axis, a step at each snapshot) through the day,
    with the spot on the max pain's axis: both are index points."""
    if not (_has(frame, "pcr") or _has(frame, "max_pain")):
        return empty_figure("No option open interest in this range", title=title, height=height)
    frame = _thinned(frame)
    spot = _thinned(spot) if spot is not None else None
    x = analytics.wall_clock(frame["time"])
    data = _lakhs(frame["ce_oi"], frame["pe_oi"])
    traces = [
        go.Scatter(x=x, y=frame["pcr"], name="PCR", mode="lines", line={"color": PCR_COLOR, "width": 2},
                   customdata=data,
                   hovertemplate=("PCR %{y:.2f} (puts %{customdata[1]:,.2f} L / calls "
                                  "%{customdata[0]:,.2f} L)<extra></extra>")),
        go.Scatter(x=x, y=frame["max_pain"], name="Max pain", mode="lines", yaxis="y2",
                   line={"color": MAX_PAIN_COLOR, "width": 2, "shape": "hv"},
                   hovertemplate="Max pain %{y:,.0f}<extra></extra>"),
    ]
    if spot is not None and _has(spot, "spot"):
        traces.append(go.Scatter(x=analytics.wall_clock(spot["time"]), y=spot["spot"], name="Spot",
                                 mode="lines", yaxis="y2",
                                 line={"color": SPOT_COLOR, "width": 1, "dash": "dot"},
                                 hovertemplate="Spot %{y:,.2f}<extra></extra>"))
    layout = _layout(title=title, height=height, hovermode="x unified", xaxis=_time_axis(),
                     yaxis={"title": {"text": "Put/call ratio (OI)", "font": {"color": PCR_COLOR}},
                            "tickformat": ".2f"},
                     yaxis2=_axis2("Max pain and spot (points)", MAX_PAIN_COLOR, tickformat=",.0f"))
    return _finish(traces, layout, frame, span)


# ---------------------------------------------------------------- futures

def futures_chart(frame: pd.DataFrame, label: str, *, span=None, title: str | None = None,
                  height: int = TALL_HEIGHT) -> go.Figure:
    """The future's price against the spot, its basis and its OI, three panels on one
    time axis (:func:`analytics.intraday.futures_frame`)."""
    if not _has(frame, "future"):
        return empty_figure("No ticks of this future in this range", title=title, height=height)
    frame = _thinned(frame)
    x = analytics.wall_clock(frame["time"])
    oi_data = _lakhs(frame["oi"], frame["oi_change"])
    traces = [
        go.Scatter(x=x, y=frame["future"], name=label, mode="lines",
                   line={"color": FUTURE_LINE_COLOR, "width": 2},
                   hovertemplate=f"{label} %{{y:,.2f}}<extra></extra>"),
        go.Scatter(x=x, y=frame["spot"], name="Spot", mode="lines", line={"color": SPOT_COLOR, "width": 1.2},
                   hovertemplate="Spot %{y:,.2f}<extra></extra>"),
        go.Scatter(x=x, y=frame["basis"], name="Basis", mode="lines", yaxis="y2",
                   line={"color": BASIS_COLOR, "width": 1.6},
                   customdata=frame["basis_pct"].to_numpy(dtype=float),
                   hovertemplate="Basis %{y:+,.2f} (%{customdata:.2f}% of spot)<extra></extra>"),
        go.Scatter(x=x, y=frame["oi"], name="Future OI", mode="lines", yaxis="y3", fill="tozeroy",
                   line={"color": FUTURE_LINE_COLOR, "width": 1.4}, fillcolor="rgba(15,118,110,0.12)",
                   customdata=oi_data,
                   hovertemplate="OI %{customdata[0]:,.2f} L (%{customdata[1]:+,.2f} L today)"
                                 "<extra></extra>"),
    ]
    oi = frame["oi"].to_numpy(dtype=float)
    finite = oi[np.isfinite(oi)]
    oi_range = {}
    if len(finite):
        pad = max((finite.max() - finite.min()) * 0.1, finite.max() * 0.002)
        oi_range = {"range": [finite.min() - pad, finite.max() + pad]}
    layout = _layout(title=title, height=height, hovermode="x unified", xaxis=_time_axis(),
                     yaxis={"title": {"text": "Price (points)"}, "tickformat": ",.0f"},
                     yaxis2={"title": {"text": "Basis (points)"}, "tickformat": "+,.0f", "zeroline": True,
                             "zerolinecolor": "#999999"},
                     yaxis3={**_oi_title("Open interest"), **_oi_ticks(finite, from_zero=False),
                             **oi_range})
    _panels(layout, [(0.52, 1.0), (0.28, 0.46), (0.0, 0.22)])
    return _finish(traces, layout, frame, span)


# ---------------------------------------------------------------- gamma exposure

def gex_chart(table: pd.DataFrame, summary, *, title: str | None = None, height: int = HEIGHT) -> go.Figure:
    """Gamma exposure by strike: calls up, puts down (the sign convention of
    :func:`analytics.intraday.gex_table`), the net of each strike as a marker; the spot
    and the strikes of the largest net exposure either way are marked."""
    if table.empty or not np.isfinite(table["net_gex"].to_numpy(dtype=float)).any():
        return empty_figure("No gamma and open interest for this expiry", title=title, height=height)
    strikes = table["strike"].to_numpy(dtype=float)
    labels = _texts(fmt_strike, strikes)
    crores = {c: table[c].to_numpy(dtype=float) / CRORE for c in ("call_gex", "put_gex", "net_gex")}
    data = np.column_stack([labels, *(_texts(_rupee_crore, crores[c])
                                      for c in ("call_gex", "put_gex", "net_gex"))])
    hover = ("Strike %{customdata[0]}<br>Calls %{customdata[1]}<br>Puts %{customdata[2]}"
             "<br>Net %{customdata[3]}<extra></extra>")
    traces = [go.Bar(x=strikes, y=crores["call_gex"], name="Calls", marker_color=CALL_COLOR,
                     customdata=data, hovertemplate=hover),
              go.Bar(x=strikes, y=crores["put_gex"], name="Puts", marker_color=PUT_COLOR,
                     customdata=data, hovertemplate=hover),
              go.Scatter(x=strikes, y=crores["net_gex"], name="Net", mode="markers+lines",
                         line={"color": SMILE_COLOR, "width": 1}, marker={"symbol": "diamond", "size": 8},
                         customdata=data, hovertemplate=hover)]
    layout = _layout(title=title, height=height, barmode="relative",
                     xaxis={"title": {"text": "Strike"}, "tickformat": ",d"},
                     yaxis={"title": {"text": f"Gamma exposure ({RUPEE} Cr per 1% move)"}, "zeroline": True,
                            "zerolinecolor": "#999999", "tickformat": ",.0f"})
    spot = table.attrs.get("spot")
    _vline(layout, spot, f"Spot {fmt_price(spot)}", SPOT_COLOR, "dash")
    if summary.call_wall is not None and summary.call_wall != spot:
        _vline(layout, summary.call_wall, f"Most + {fmt_strike(summary.call_wall)}", MARKER_COLOR, "dot",
               left=True)
    if summary.put_wall is not None and summary.put_wall not in (spot, summary.call_wall):
        _vline(layout, summary.put_wall, f"Most − {fmt_strike(summary.put_wall)}", MARKER_COLOR, "dot",
               left=True)
    return go.Figure(data=traces, layout=layout)


def _rupee_crore(value) -> str:
    if value is None or not np.isfinite(value):
        return MISSING
    text = f"{abs(value):,.0f}" if abs(value) >= 100 else f"{abs(value):,.2f}"
    sign = "" if text.strip("0.,") == "" else "+" if value > 0 else "−"
    return f"{sign}{RUPEE}{text} Cr"


def rupee_crore(rupees) -> str:
    """Rupees as ``'+₹12.34 Cr'``, ``'−₹1,476 Cr'`` (a gamma exposure; whole crores from 100)."""
    return _rupee_crore(None if rupees is None else float(rupees) / CRORE)


# ---------------------------------------------------------------- candles

def candles_chart(candles: pd.DataFrame, label: str, *, span=None, title: str | None = None,
                  height: int = TALL_HEIGHT) -> go.Figure:
    """Candlesticks (green up, red down) with the day's VWAP, and the volume traded in
    each candle below (``candles``: ``time``, ``open``, ``high``, ``low``, ``close``,
    ``volume``, ``vwap``)."""
    if not _has(candles, "close"):
        return empty_figure("No ticks of this contract in this range", title=title, height=height)
    x = analytics.wall_clock(candles["time"])
    traces = [go.Candlestick(x=x, open=candles["open"], high=candles["high"], low=candles["low"],
                             close=candles["close"], name=label,
                             increasing={"line": {"color": UP_COLOR}, "fillcolor": UP_COLOR},
                             decreasing={"line": {"color": DOWN_COLOR}, "fillcolor": DOWN_COLOR})]
    if _has(candles, "vwap"):
        traces.append(go.Scatter(x=x, y=candles["vwap"], name="VWAP", mode="lines",
                                 line={"color": VWAP_COLOR, "width": 1.6},
                                 hovertemplate="VWAP %{y:,.2f}<extra></extra>"))
    volume = candles["volume"].to_numpy(dtype=float) if "volume" in candles else np.array([])
    panels = _has(candles, "volume") and np.nansum(volume) > 0
    layout = _layout(title=title, height=height if panels else HEIGHT, hovermode="x unified",
                     xaxis={**_time_axis(), "rangeslider": {"visible": False}},
                     yaxis={"title": {"text": "Price (points)"}, "tickformat": ",.2f"})
    if panels:
        up = (candles["close"] >= candles["open"]).to_numpy()
        traces.append(go.Bar(x=x, y=volume, name="Volume", yaxis="y2", marker_color=np.where(
            up, "rgba(21,128,61,0.45)", "rgba(185,28,28,0.45)").tolist(),
            customdata=volume / LAKH, hovertemplate="Volume %{customdata:,.2f} L<extra></extra>"))
        layout["yaxis2"] = {**_oi_title("Volume"), **_oi_ticks(volume)}
        _panels(layout, [(0.3, 1.0), (0.0, 0.22)])
    return _finish(traces, layout, candles, span)


# ---------------------------------------------------------------- IV rank

def iv_rank_chart(history: pd.DataFrame, current=None, *, title: str | None = None,
                  height: int = HEIGHT) -> go.Figure:
    """Each stored session's closing ATM IV, the range it spans, and ``current``
    (``(label, iv)``, e.g. the moment shown) as a star."""
    if not _has(history, "atm_iv") and current is None:
        return empty_figure("No stored session has an ATM IV yet", title=title, height=height)
    days = [f"{d:%d %b %y}" for d in history["day"]]
    data = np.column_stack([_texts(fmt_strike, history["strike"]), _texts(fmt_expiry, history["expiry"]),
                            _texts(fmt_day, history["day"])]) \
        if len(history) else None
    traces = [go.Scatter(x=days, y=history["atm_iv"], name="ATM IV at the close", mode="lines+markers",
                         line={"color": IV_COLOR, "width": 2}, marker={"size": 6}, customdata=data,
                         hovertemplate="%{customdata[2]}<br>ATM IV %{y:.2f}% at %{customdata[0]}"
                                       " (%{customdata[1]} expiry)<extra></extra>")]
    values = history["atm_iv"].to_numpy(dtype=float)
    if current is not None and current[1] is not None and np.isfinite(current[1]):
        traces.append(go.Scatter(x=[current[0]], y=[current[1]], name="Now", mode="markers",
                                 marker={"color": IV_COLOR, "size": 16, "symbol": "star",
                                         "line": {"color": SMILE_COLOR, "width": 1}},
                                 hovertemplate="%{x}<br>ATM IV %{y:.2f}%<extra></extra>"))
        values = np.append(values, current[1])
    layout = _layout(title=title, height=height, hovermode="closest",
                     xaxis={"title": {"text": "Session"}, "type": "category"},
                     yaxis={"title": {"text": "ATM implied volatility (%)"}, "ticksuffix": "%"})
    finite = values[np.isfinite(values)]
    for level, name in ((finite.min(), "low"), (finite.max(), "high")) if len(finite) > 1 else ():
        layout["shapes"].append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": level, "y1": level,
                                 "line": {"color": MARKER_COLOR, "dash": "dot", "width": 1}})
        layout["annotations"].append({"text": f"{name} {fmt_pct(level)}", "xref": "paper", "x": 1, "y": level,
                                      "xanchor": "right", "yanchor": "bottom", "showarrow": False,
                                      "font": {"size": 11, "color": MARKER_COLOR}})
    return go.Figure(data=traces, layout=layout)

