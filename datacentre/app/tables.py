"""Styled tables: one look for every table laid out calls | strike | puts.

The strike column grey, the ATM row blue, the in-the-money side shaded, rises green
and falls red, OI and volume in lakhs with the unit in the header, numbers as
:func:`column_formatters` writes them. Data cells are never bold: a column is sized
to its regular-weight text, and a bold value wider than that loses its first digits. Builders
(:func:`chain_view`, :func:`buildup_view`, :func:`futures_view`, :func:`skew_view`)
return a pandas ``Styler`` for ``st.dataframe``, the ``*_column_config`` functions
its headers.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import streamlit as st

from datacentre import analytics
from datacentre.app import charts
from datacentre.app.formatting import LAKH_UNIT, MISSING, column_formatters, fmt_change, fmt_pct, fmt_strike


def mirrored(fields: Sequence[str]) -> list[str]:
    """Columns ``ce_<field>``, the strike, then ``pe_<field>`` in reverse order: the
    calls read outwards from the strike and the puts mirror them."""
    return [*(f"ce_{f}" for f in fields), "strike", *(f"pe_{f}" for f in reversed(fields))]


CHAIN_COLUMNS = mirrored(("oi", "oi_change", "volume", "iv", "ltp", "ltp_change"))
# The exchange's chain: as mirrored, but bid comes before ask on both sides.
EXCHANGE_CALLS = ("oi", "oi_change", "volume", "iv", "ltp", "ltp_change", "bid", "ask")
EXCHANGE_PUTS = ("bid", "ask", "ltp_change", "ltp", "iv", "volume", "oi_change", "oi")
# With the Greeks: gamma, theta and vega at the outer edges, delta by the IV, in place of
# volume, the price change and the quotes (so the table still fits a 1600-pixel screen).
GREEK_CALLS = ("gamma", "theta", "vega", "oi", "oi_change", "iv", "delta", "ltp")
BUILDUP_FIELDS = ("buildup", "oi", "oi_change", "oi_change_pct", "ltp_change", "ltp")
BUILDUP_COLUMNS = mirrored(BUILDUP_FIELDS)
FUTURE_COLUMNS = ("symbol", "ltp", "ltp_change", "ltp_change_pct", "oi", "oi_change", "oi_change_pct",
                  "volume", "buildup")

ITM_CSS = "background-color: #fbf3d5"
ATM_CSS = "background-color: #bcd4fa"
STRIKE_CSS = "background-color: #eef1f6; font-weight: 700"
STRIKE_WIDTH = 92  # pixels: the strike is bold, so its column is sized here, not from its text
UP_CSS = "color: #15803d"
DOWN_CSS = "color: #b91c1c"
NEUTRAL_CSS = "color: #777777"
ROW_HEIGHT = 32
IN_LAKHS = f"in lakhs of shares ({LAKH_UNIT})"
FIELD_LABELS = {"oi": (f"OI ({LAKH_UNIT})", f"open interest, {IN_LAKHS}"),
                "oi_change": (f"Chg OI ({LAKH_UNIT})", f"change in OI, {IN_LAKHS}"),
                "volume": (f"Vol ({LAKH_UNIT})", f"shares traded today, {IN_LAKHS}"),
                "iv": ("IV", "implied volatility"),
                "delta": ("Delta", "delta"), "gamma": ("Gamma", "gamma"),
                "theta": ("Theta", "theta per calendar day"), "vega": ("Vega", "vega per vol point"),
                "ltp": ("LTP", "last traded price"), "ltp_change": ("Chg", "change in LTP"),
                "bid": ("Bid", "best bid"), "ask": ("Ask", "best ask")}


def exchange_columns(*, greeks: bool = False) -> list[str]:
    """The option-chain page's columns, eight a side: OI, its change, volume, IV, LTP, its
    change, bid and ask, or with ``greeks`` the four Greeks beside OI, IV and LTP; either
    way the table fits a 1600-pixel screen with both OI columns in view."""
    calls = GREEK_CALLS if greeks else EXCHANGE_CALLS
    puts = tuple(reversed(GREEK_CALLS)) if greeks else EXCHANGE_PUTS
    return [*(f"ce_{f}" for f in calls), "strike", *(f"pe_{f}" for f in puts)]


def tint(color: str, share: float = 0.28) -> str:
    """``color`` (``#rrggbb``) mixed into white: a background light enough for dark text."""
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return "#" + "".join(f"{round(255 - (255 - c) * share):02x}" for c in (r, g, b))


RESISTANCE_CSS = f"color: {charts.CALL_COLOR}; background-color: {tint(charts.CALL_COLOR, 0.18)}"
SUPPORT_CSS = f"color: {charts.PUT_COLOR}; background-color: {tint(charts.PUT_COLOR, 0.18)}"
BUILDUP_CSS = {label: f"background-color: {tint(color)}"
               for label, color in charts.BUILDUP_COLORS.items() if label != analytics.NEUTRAL}
BUILDUP_BADGES = {analytics.LONG_BUILDUP: "green", analytics.SHORT_BUILDUP: "red",
                  analytics.SHORT_COVERING: "green", analytics.LONG_UNWINDING: "orange"}


def change_css(value) -> str:
    """Green for a rise, red for a fall, nothing for no change or no number."""
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value == 0:
        return ""
    return UP_CSS if value > 0 else DOWN_CSS


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    # Streamlit would try to serialise attrs (dates among them) with the table, and warn.
    frame.attrs = {}
    return frame


def chain_view(chain: pd.DataFrame, columns: Sequence[str] = CHAIN_COLUMNS, *,
               peaks: analytics.SupportResistance | None = None):
    """The chain's ``columns`` styled: the in-the-money side shaded (from the spot, else
    the future, in ``chain.attrs``), the ATM row blue, changes green or red.

    ``peaks`` (the whole chain's support and resistance, as the page's cards show
    them: :func:`analytics.oi_summary`) marks the call OI at the resistance strike and
    the put OI at the support strike in the call and put colours.
    """
    spot = chain.attrs.get("spot") or chain.attrs.get("future")
    atm = chain.attrs.get("atm")
    view = _plain(chain[list(columns)].copy())
    calls = [c for c in columns if c.startswith("ce_")]
    puts = [c for c in columns if c.startswith("pe_")]

    def shade(frame: pd.DataFrame) -> pd.DataFrame:
        css = pd.DataFrame("", index=frame.index, columns=frame.columns)
        strikes = frame["strike"]
        if spot is not None:
            css.loc[strikes < spot, calls] = ITM_CSS
            css.loc[strikes > spot, puts] = ITM_CSS
        css["strike"] = STRIKE_CSS
        if atm is not None:
            css.loc[strikes == atm, :] = ATM_CSS
            css.loc[strikes == atm, "strike"] = f"{ATM_CSS}; font-weight: 700"
        if peaks is not None:
            for column, strike, peak_css in (("ce_oi", peaks.resistance, RESISTANCE_CSS),
                                             ("pe_oi", peaks.support, SUPPORT_CSS)):
                if column in css.columns and strike is not None:
                    at = strikes == strike
                    css.loc[at, column] = (css.loc[at, column] + "; " + peak_css).str.lstrip("; ")
        return css

    changes = [c for c in columns if c.endswith("_change")]
    return (view.style.apply(shade, axis=None).map(change_css, subset=changes)
            .format(column_formatters(columns)))


def side_column_config(labels: dict[str, tuple[str, str]], *, centred: Sequence[str] = ()) -> dict:
    """Headers for a calls | strike | puts table: ``labels`` maps a field to its header
    and meaning; the side goes in the help text."""
    config = {"strike": st.column_config.Column("Strike", help="ATM row in blue", alignment="center",
                                                width=STRIKE_WIDTH)}
    for prefix, side in (("ce_", "Call"), ("pe_", "Put")):
        for name, (label, meaning) in labels.items():
            config[prefix + name] = st.column_config.Column(
                label, help=f"{side} {meaning}", alignment="center" if name in centred else "right")
    return config


def chain_column_config(change_ref: str | None = None) -> dict:
    """Headers as on the exchange's chain; changes say what they are measured from."""
    since = f" since {change_ref}" if change_ref else ""
    return side_column_config({name: (label, meaning + since if name.endswith("_change") else meaning)
                               for name, (label, meaning) in FIELD_LABELS.items()})


def calls_puts_header() -> None:
    """CALLS and PUTS over the two halves of the table below."""
    head = st.columns(2)
    head[0].markdown(":blue[**CALLS**]", text_alignment="center")
    head[1].markdown(":orange[**PUTS**]", text_alignment="center")


def buildup_strikes(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`analytics.buildup_table`'s options as one row per strike, in
    :data:`BUILDUP_COLUMNS` (calls | strike | puts)."""
    options = table[table["kind"].isin(["CE", "PE"])]
    frame = pd.DataFrame({"strike": sorted(options["strike"].unique())})
    for kind, prefix in (("CE", "ce_"), ("PE", "pe_")):
        side = options[options["kind"] == kind].set_index("strike")
        for name in BUILDUP_FIELDS:
            frame[prefix + name] = frame["strike"].map(side[name]) if len(side) else math.nan
    return frame[BUILDUP_COLUMNS]


def buildup_view(frame: pd.DataFrame, atm: float | None):
    """:func:`buildup_strikes` styled: each build-up in its colour, changes green or red."""

    def shade(view: pd.DataFrame) -> pd.DataFrame:
        css = pd.DataFrame("", index=view.index, columns=view.columns)
        css["strike"] = STRIKE_CSS
        if atm is not None:
            css.loc[view["strike"] == atm, "strike"] = ATM_CSS
        for column in ("ce_buildup", "pe_buildup"):
            css[column] = view[column].map(lambda b: BUILDUP_CSS.get(b, NEUTRAL_CSS))
        return css

    changes = [c for c in frame.columns if "_change" in c]
    return (_plain(frame).style.apply(shade, axis=None).map(change_css, subset=changes)
            .format(column_formatters(frame.columns))
            .format(lambda b: b if isinstance(b, str) else MISSING, subset=["ce_buildup", "pe_buildup"]))


def buildup_column_config(since: str) -> dict:
    return side_column_config(
        {"buildup": ("Build-up", "classified from the change in price and OI"),
         "oi": FIELD_LABELS["oi"],
         "oi_change": (f"Chg OI ({LAKH_UNIT})", f"OI change since {since}, {IN_LAKHS}"),
         "oi_change_pct": ("Chg OI %", f"OI change since {since}, percent"),
         "ltp_change": ("Chg", f"price change since {since}"), "ltp": ("LTP", "last traded price")},
        centred=("buildup",))


def futures_view(table: pd.DataFrame):
    """The futures rows of :func:`analytics.buildup_table`, styled; None without any."""
    futures = table[table["kind"] == "FUT"]
    if futures.empty:
        return None
    view = _plain(futures[list(FUTURE_COLUMNS)].reset_index(drop=True))
    return (view.style.map(change_css, subset=[c for c in FUTURE_COLUMNS if "_change" in c])
            .map(lambda b: BUILDUP_CSS.get(b, ""), subset=["buildup"])
            .format(column_formatters(view.columns)))


def futures_column_config(since: str) -> dict:
    def number(label: str, help: str | None = None):
        return st.column_config.Column(label, alignment="right", help=help)

    after = f"Since {since}"
    return {"symbol": "Future", "ltp": number("LTP"), "ltp_change": number("Chg", after),
            "ltp_change_pct": number("Chg %", after), "oi": number(f"OI ({LAKH_UNIT})", IN_LAKHS),
            "oi_change": number(f"Chg OI ({LAKH_UNIT})", f"{after}, {IN_LAKHS}"),
            "oi_change_pct": number("Chg OI %", after), "volume": number(f"Vol ({LAKH_UNIT})", IN_LAKHS),
            "buildup": st.column_config.Column("Build-up", alignment="center")}


def skew_view(table: pd.DataFrame):
    """:func:`analytics.equidistant_skew` styled: put figures in the put colour, call figures
    in the call colour."""
    view = _plain(table.rename(columns={"distance": "distance_strike"}))
    return (view.style.format({"distance_strike": lambda d: f"±{fmt_strike(d)}", "put_strike": fmt_strike,
                               "call_strike": fmt_strike, "put_iv": fmt_pct, "call_iv": fmt_pct,
                               "put_minus_call": lambda x: f"{fmt_change(x)} pts"})
            .map(lambda _: f"color: {charts.PUT_COLOR}", subset=["put_strike", "put_iv"])
            .map(lambda _: f"color: {charts.CALL_COLOR}", subset=["call_strike", "call_iv"]))


SKEW_COLUMN_CONFIG = {
    "distance_strike": st.column_config.Column("From ATM", help="Points either side of ATM"),
    "put_strike": st.column_config.Column("Put strike", alignment="right"),
    "put_iv": st.column_config.Column("Put IV", alignment="right"),
    "call_strike": st.column_config.Column("Call strike", alignment="right"),
    "call_iv": st.column_config.Column("Call IV", alignment="right"),
    "put_minus_call": st.column_config.Column(
        "Put − call", alignment="right",
        help="OTM put IV minus OTM call IV at the same distance: positive = put skew"),
}


def table_height(rows: int) -> int:
    """A table's height showing all ``rows`` without a scroll bar."""
    return (rows + 1) * ROW_HEIGHT + 3



def has_changes(chain: pd.DataFrame) -> bool:
    """Whether the chain carries any non-zero OI change (none at the day's first snapshot)."""
    changes = chain.reindex(columns=["ce_oi_change", "pe_oi_change"]).to_numpy(dtype=float)
    return bool((np.nan_to_num(changes) != 0).any())
