"""Numbers the way Indian traders read them: lakhs, crores and Indian digit grouping.

Every formatter takes one value and returns text; missing values (``None``, NaN,
``pd.NA``, infinities) become :data:`MISSING` (an en dash), so a column can be
formatted with ``df[col].map(fmt_oi)`` without checking first.

>>> fmt_price(26150.3)         # '26,150.30'
>>> fmt_price(123456.5)        # '1,23,456.50'  (Indian grouping above 99,999)
>>> fmt_oi(12_900_000)         # '129.00 L'
>>> fmt_oi(4_520_000)          # '45.20 L'
>>> fmt_lakh(4_520_000)        # '45.20'    (a column whose header says "(L)")
>>> fmt_change(-3.1)           # '-3.10'
>>> fmt_change(250_000, kind="oi")  # '+2.50 L'
>>> fmt_delta(11.5, 11.25)     # '+0.25'    (a metric's delta; None when either is missing)
>>> fmt_delta(1.2, 1.2)        # 'unchanged'
>>> fmt_pct(11.25)             # '11.25%'   (the value is already in percent)

Open interest and volume (shares) are always in **lakhs**, one unit everywhere, so a
column, an axis or two cards can be compared at a glance: ``fmt_oi`` with the unit,
``fmt_lakh`` for a column or axis whose header carries it (:data:`LAKH_UNIT`).

Percentages take values in percent points (``iv`` in the ticks is in percent), never
fractions: ``fmt_pct(0.12)`` is ``'0.12%'``.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import date, datetime
from numbers import Real
from typing import Literal

from datacentre.app.days import today
from datacentre.core.numbers import finite_or_none
from datacentre.core.ticks import IST, parse_ts

MISSING = "–"
UNCHANGED = "unchanged"
LAKH = 100_000
LAKH_UNIT = "L"  # in headers and axis titles: "OI (L)"


def group_indian(digits: str) -> str:
    """``'12345678'`` -> ``'1,23,45,678'`` (last three digits, then pairs)."""
    if len(digits) <= 3:
        return digits
    head, tail = digits[:-3], digits[-3:]
    pairs = []
    while len(head) > 2:
        pairs.insert(0, head[-2:])
        head = head[:-2]
    return ",".join([head, *pairs, tail])


def _grouped(value: float, decimals: int) -> str:
    text = f"{abs(value):.{decimals}f}"
    whole, _, frac = text.partition(".")
    sign = "-" if value < 0 and float(text) != 0 else ""
    return sign + group_indian(whole) + (f".{frac}" if frac else "")


def fmt_number(x, decimals: int = 0) -> str:
    """Any number with Indian digit grouping: ``fmt_number(1234567)`` -> ``'12,34,567'``."""
    value = finite_or_none(x)
    return MISSING if value is None else _grouped(value, decimals)


def fmt_price(x, decimals: int = 2) -> str:
    """A price: two decimals, Indian grouping (``'26,150.30'``, ``'1,23,456.50'``)."""
    return fmt_number(x, decimals)


def fmt_strike(x) -> str:
    """A strike: no decimals unless it has some (``'26,000'``, ``'26,012.5'``)."""
    value = finite_or_none(x)
    if value is None:
        return MISSING
    return _grouped(value, 0 if value.is_integer() else 1)


def fmt_lakh(x, decimals: int = 2, *, signed: bool = False) -> str:
    """Shares (OI, volume) in lakhs, without the unit: ``'45.20'``, ``'1,290.00'``,
    ``'0.00'`` for none; an amount too small to show is ``'<0.01'`` (never a false 0).
    ``signed`` writes rises with a ``+``."""
    value = finite_or_none(x)
    if value is None:
        return MISSING
    lakhs = value / LAKH
    smallest = 10 ** -decimals
    if value and abs(lakhs) < smallest / 2:
        return f"{'-' if value < 0 else '+' if signed else ''}<{smallest:.{decimals}f}"
    text = _grouped(lakhs, decimals)
    return f"+{text}" if signed and round(lakhs, decimals) > 0 else text


def fmt_oi(x) -> str:
    """Open interest or volume in lakhs, with the unit: ``'45.20 L'``, ``'129.00 L'``."""
    text = fmt_lakh(x)
    return text if text == MISSING else f"{text} {LAKH_UNIT}"


def fmt_pct(x, decimals: int = 2, *, signed: bool = False) -> str:
    """A value already in percent points: ``fmt_pct(11.254)`` -> ``'11.25%'``."""
    value = finite_or_none(x)
    if value is None:
        return MISSING
    sign = "+" if signed and round(value, decimals) > 0 else ""
    return f"{sign}{value:.{decimals}f}%"


def fmt_change(x, decimals: int = 2, *, kind: Literal["price", "oi", "lakh", "pct"] = "price") -> str:
    """A change with its sign: ``'+12.35'``, ``'-3.10'``, ``'0.00'``.

    ``kind="oi"`` is in lakhs with the unit (``'+2.50 L'``), ``kind="lakh"`` without it
    (a column headed "(L)"); ``kind="pct"`` appends ``%``.
    """
    value = finite_or_none(x)
    if value is None:
        return MISSING
    if kind in ("oi", "lakh"):
        text = fmt_lakh(value, signed=True)
        return f"{text} {LAKH_UNIT}" if kind == "oi" else text
    if kind == "pct":
        return fmt_pct(value, decimals, signed=True)
    if kind != "price":
        raise ValueError(f"kind must be 'price', 'oi', 'lakh' or 'pct', not {kind!r}")
    text = _grouped(value, decimals)
    return f"+{text}" if round(value, decimals) > 0 else text


def fmt_delta(now, then, decimals: int = 2, *, kind: Literal["price", "oi", "lakh", "pct"] = "price",
              suffix: str = "") -> str | None:
    """The change from ``then`` to ``now`` as ``st.metric`` takes its delta.

    None (no delta shown) when either is missing; :data:`UNCHANGED` when the change
    rounds to nothing (draw it grey and without an arrow: ``ui.metric`` does); else
    :func:`fmt_change` and ``suffix``.

    >>> fmt_delta(26010.5, 26000, suffix=" pts")  # '+10.50 pts'
    """
    a, b = finite_or_none(now), finite_or_none(then)
    if a is None or b is None:
        return None
    text = fmt_change(a - b, decimals, kind=kind)
    if not any(c in "123456789" for c in text):
        return UNCHANGED
    return text + suffix


def fmt_from_spot(strike, spot) -> str | None:
    """How far a strike (max pain, a wall) is from the spot, for a metric's delta (short,
    so a card at 1280 pixels shows it whole): ``'+213.65 vs spot'``; None when either is
    missing."""
    a, b = finite_or_none(strike), finite_or_none(spot)
    return None if a is None or b is None else f"{fmt_change(a - b)} vs spot"


def fmt_ratio(x, decimals: int = 2) -> str:
    """A plain ratio such as the PCR: ``'0.87'``."""
    value = finite_or_none(x)
    return MISSING if value is None else f"{value:.{decimals}f}"


def fmt_bytes(n) -> str:
    """A size for people: ``'512 B'``, ``'1.5 KB'``, ``'123.1 MB'``, ``'2.0 GB'`` (powers of 1,024)."""
    value = finite_or_none(n)
    if value is None:
        return MISSING
    for unit in ("B", "KB", "MB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def _ist(ts) -> datetime | None:
    """``ts`` (store text or a datetime) in IST; None when missing or not a time."""
    if ts is None or (isinstance(ts, Real) and not isinstance(ts, bool) and math.isnan(ts)):
        return None
    try:
        return parse_ts(ts).astimezone(IST)
    except (ValueError, TypeError):
        return None


def fmt_time(ts, *, seconds: bool = True) -> str:
    """A store timestamp (or datetime) as IST wall-clock time: ``'13:43:05'``."""
    moment = _ist(ts)
    return MISSING if moment is None else moment.strftime("%H:%M:%S" if seconds else "%H:%M")


def fmt_moment(ts) -> str:
    """A tick or snapshot time for people, to the second: ``'13:45:05 IST'`` today (IST),
    ``'Fri 27 Nov 13:45:05 IST'`` on another day."""
    moment = _ist(ts)
    if moment is None:
        return MISSING
    return moment.strftime("%H:%M:%S IST" if moment.date() == today() else "%a %d %b %H:%M:%S IST")


def fmt_day(day: date) -> str:
    """A session day: ``'Fri 02 Jan 2026'``."""
    return day.strftime("%a %d %b %Y")


def fmt_expiry(expiry) -> str:
    """An expiry date as traders write it: ``'06 Jan 2026'`` (accepts a date or ISO text)."""
    if isinstance(expiry, datetime):
        expiry = expiry.date()
    if isinstance(expiry, str):
        try:
            expiry = date.fromisoformat(expiry)
        except ValueError:
            return MISSING
    if not isinstance(expiry, date):
        return MISSING
    return expiry.strftime("%d %b %Y")


def _column_formatter(name: str) -> Callable[[object], str] | None:
    if name.endswith("oi_change") or name.endswith("volume_change"):
        return lambda x: fmt_change(x, kind="lakh")
    if name.endswith("_change_pct"):
        return lambda x: fmt_change(x, kind="pct")
    if name.endswith("_change"):
        return fmt_change
    if name.endswith(("_oi", "_volume")) or name in ("oi", "volume"):
        return fmt_lakh
    if name.endswith("iv") or name == "moneyness_pct":
        return fmt_pct
    if name.endswith("strike") or name == "strike":
        return fmt_strike
    if name.endswith(("ltp", "bid", "ask", "spot", "future", "theta", "vega")) or name in (
            "ltp", "bid", "ask"):
        return fmt_price
    if name.endswith("delta"):
        return lambda x: fmt_number(x, 2)
    if name.endswith("gamma"):
        return lambda x: fmt_number(x, 5)
    if name == "pcr":
        return fmt_ratio
    return None


def column_formatters(columns: Iterable[str]) -> dict[str, Callable[[object], str]]:
    """Formatters by column name for ``df.style.format(...)`` on a chain or build-up table.

    Chosen by name: ``*_oi``/``*_volume`` -> lakhs (:func:`fmt_lakh`: the header carries
    the unit), ``*_oi_change`` -> signed lakhs, ``*_change`` -> signed price, ``*iv`` ->
    percent, ``*strike`` -> strike, prices and theta/vega -> 2 decimals, delta 2 and
    gamma 4 decimals. Columns it does not recognise are left out.
    """
    found = {}
    for name in columns:
        formatter = _column_formatter(str(name))
        if formatter is not None:
            found[name] = formatter
    return found
