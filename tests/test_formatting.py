"""Trader number formats: Indian grouping, lakhs and crores, signs, missing values."""
from __future__ import annotations

import math
from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest

from datacentre.analytics import CHAIN_COLUMNS
from datacentre.app.formatting import (
    MISSING,
    UNCHANGED,
    column_formatters,
    fmt_bytes,
    fmt_change,
    fmt_day,
    fmt_delta,
    fmt_expiry,
    fmt_lakh,
    fmt_moment,
    fmt_number,
    fmt_oi,
    fmt_pct,
    fmt_price,
    fmt_ratio,
    fmt_strike,
    fmt_time,
    group_indian,
)

MISSING_VALUES = [None, math.nan, np.nan, pd.NA, math.inf, -math.inf, "abc", np.float64("nan")]


@pytest.mark.parametrize("formatter", [fmt_price, fmt_oi, fmt_lakh, fmt_pct, fmt_change, fmt_strike,
                                       fmt_ratio, fmt_number, fmt_time, fmt_moment, fmt_expiry])
@pytest.mark.parametrize("value", MISSING_VALUES)
def test_missing_values_become_a_dash(formatter, value):
    assert formatter(value) == MISSING == "–"


@pytest.mark.parametrize("digits, grouped", [
    ("0", "0"), ("999", "999"), ("1000", "1,000"), ("99999", "99,999"), ("100000", "1,00,000"),
    ("12345678", "1,23,45,678"), ("1234567890", "1,23,45,67,890"),
])
def test_indian_grouping(digits, grouped):
    assert group_indian(digits) == grouped


@pytest.mark.parametrize("value, text", [
    (26150.3, "26,150.30"), (59020.5, "59,020.50"), (123456.5, "1,23,456.50"), (0, "0.00"),
    (0.05, "0.05"), (-1234.567, "-1,234.57"), (-0.001, "0.00"), (np.float32(99.5), "99.50"),
    (12_34_56_789, "12,34,56,789.00"),
])
def test_fmt_price(value, text):
    assert fmt_price(value) == text


@pytest.mark.parametrize("value, text", [
    (0, "0.00 L"), (12_500, "0.12 L"), (99_960, "1.00 L"), (1_00_000, "1.00 L"), (45_20_000, "45.20 L"),
    (99_99_999, "100.00 L"), (1_29_00_000, "129.00 L"), (1_23_45_67_890, "12,345.68 L"),
    (-2_50_000, "-2.50 L"), (np.int64(4_520_000), "45.20 L"),
    (65, "<0.01 L"), (-65, "-<0.01 L"),  # one lot is never shown as a false 0
])
def test_fmt_oi_is_always_lakhs(value, text):
    assert fmt_oi(value) == text


@pytest.mark.parametrize("value, kwargs, text", [
    (4_520_000, {}, "45.20"), (0, {}, "0.00"), (2_50_000, {"signed": True}, "+2.50"),
    (-2_50_000, {"signed": True}, "-2.50"), (0, {"signed": True}, "0.00"), (65, {"signed": True}, "+<0.01"),
    (1_29_00_000, {"decimals": 1}, "129.0"),
])
def test_fmt_lakh_leaves_the_unit_to_the_header(value, kwargs, text):
    assert fmt_lakh(value, **kwargs) == text


@pytest.mark.parametrize("value, kwargs, text", [
    (11.254, {}, "11.25%"), (0.12, {}, "0.12%"), (12.5, {"decimals": 1}, "12.5%"),
    (3.2, {"signed": True}, "+3.20%"), (-3.2, {"signed": True}, "-3.20%"), (0, {"signed": True}, "0.00%"),
])
def test_fmt_pct_takes_percent_points(value, kwargs, text):
    assert fmt_pct(value, **kwargs) == text


@pytest.mark.parametrize("value, kwargs, text", [
    (12.345, {}, "+12.35"), (-3.1, {}, "-3.10"), (0, {}, "0.00"), (0.001, {}, "0.00"),
    (123456.0, {}, "+1,23,456.00"), (5, {"decimals": 0}, "+5"),
    (2_50_000, {"kind": "oi"}, "+2.50 L"), (-45_20_000, {"kind": "oi"}, "-45.20 L"),
    (0, {"kind": "oi"}, "0.00 L"), (12_900_000, {"kind": "oi"}, "+129.00 L"),
    (2_50_000, {"kind": "lakh"}, "+2.50"),
    (4.567, {"kind": "pct"}, "+4.57%"), (-4.567, {"kind": "pct"}, "-4.57%"),
])
def test_fmt_change_carries_a_sign(value, kwargs, text):
    assert fmt_change(value, **kwargs) == text


@pytest.mark.parametrize("now, then, kwargs, delta", [
    (26010.5, 26000, {}, "+10.50"), (11.0, 11.25, {"suffix": " vol pts"}, "-0.25 vol pts"),
    (1.2, 1.2, {}, UNCHANGED), (1.2001, 1.2, {}, "unchanged"),  # never a bare "0"
    (7_50_000, 5_00_000, {"kind": "oi"}, "+2.50 L"), (5, 5, {"kind": "oi", "suffix": " OI"}, UNCHANGED),
    (None, 1.0, {}, None), (1.0, math.nan, {}, None), (pd.NA, 1.0, {}, None),
])
def test_fmt_delta_for_a_metric(now, then, kwargs, delta):
    assert fmt_delta(now, then, **kwargs) == delta


@pytest.mark.parametrize("size, text", [(0, "0 B"), (512, "512 B"), (1536, "1.5 KB"),
                                        (123.1 * 1024 ** 2, "123.1 MB"), (2 * 1024 ** 3, "2.0 GB"),
                                        (5 * 1024 ** 4, "5120.0 GB"), (None, MISSING)])
def test_fmt_bytes(size, text):
    assert fmt_bytes(size) == text


def test_fmt_change_rejects_unknown_kind():
    with pytest.raises(ValueError, match="kind"):
        fmt_change(1.0, kind="lots")


@pytest.mark.parametrize("value, text", [(26000.0, "26,000"), (26012.5, "26,012.5"), (59000, "59,000")])
def test_fmt_strike(value, text):
    assert fmt_strike(value) == text


def test_fmt_time_is_ist_and_fmt_expiry():
    assert fmt_time("2026-01-02T08:13:05+00:00") == "13:43:05"
    assert fmt_time(datetime(2026, 1, 2, 3, 45), seconds=False) == "09:15"
    assert fmt_time("not a time") == MISSING
    # another day than today (IST) carries its date, still to the second
    assert fmt_moment("2020-01-03T08:13:05+00:00") == "Fri 03 Jan 13:43:05 IST"
    assert fmt_day(date(2026, 1, 2)) == "Fri 02 Jan 2026"
    assert fmt_expiry(date(2026, 1, 6)) == "06 Jan 2026"
    assert fmt_expiry("2026-01-27") == "27 Jan 2026"
    assert fmt_expiry("27JAN26") == MISSING
    assert fmt_ratio(0.8712) == "0.87"


def test_column_formatters_cover_the_chain():
    formatters = column_formatters(CHAIN_COLUMNS)
    assert "ce_symbol" not in formatters and "pe_symbol" not in formatters
    assert formatters["strike"](26000.0) == "26,000"
    assert formatters["ce_oi"](4_520_000) == "45.20"  # lakhs: the header says "(L)"
    assert formatters["pe_oi_change"](-2_50_000) == "-2.50"
    assert formatters["ce_ltp_change"](3.5) == "+3.50"
    assert formatters["pe_iv"](11.25) == "11.25%"
    assert formatters["ce_ltp"](120.5) == "120.50"
    assert formatters["ce_delta"](0.5234) == "0.52"
    assert formatters["pe_gamma"](0.00112) == "0.00112"
    assert formatters["ce_volume"](65_000) == "0.65"
    assert formatters["pe_bid"](None) == MISSING
    built = column_formatters(["oi_change_pct", "pcr", "buildup"])
    assert built["oi_change_pct"](12.345) == "+12.35%" and built["pcr"](1.234) == "1.23"
    assert "buildup" not in built
