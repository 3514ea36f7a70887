"""Broker and exchange spellings of NIFTY / BANKNIFTY instruments, mapped to ours.

Ours (:mod:`datacentre.core.instruments`): ``NIFTY 50``, ``NIFTY BANK``,
``NIFTY27JAN26FUT``, ``NIFTY06JAN2626500CE``. Also read:

===========================  ==========================  =====================================
form                         example                     notes
===========================  ==========================  =====================================
index names                  ``Nifty 50``, ``NIFTY``,    any case; a bare base has no expiry,
                             ``Nifty Bank``,             so it can only be the index
                             ``BANKNIFTY``, ``NIFTY50``
Angel One (SmartAPI)         ``NIFTY06JAN2626500CE``     our form (strike may carry ``.0``)
Kite / Zerodha weekly        ``NIFTY2692223100CE``       ``YY M DD``: M is 1-9, O, N, D
Kite / Zerodha monthly       ``NIFTY26SEP23100CE``,      ``YY MMM``: no day, see below
                             ``NIFTY26SEPFUT``
NSE contract identifier      ``OPTIDXNIFTY30-06-2022``   as in the option-chain API
                             ``PE8300.00``,
                             ``FUTIDXNIFTY30-06-2022``
===========================  ==========================  =====================================

The NSE bhavcopy's ``FinInstrmNm`` uses the Kite forms.

Monthly Kite forms carry no expiry day. An ``expiry`` given by the caller (an expiry column of
the file) wins; otherwise :func:`monthly_expiry` places it on the last expiry weekday of that
month in NSE's history (NIFTY: Thursday until August 2025, then Tuesday; BANKNIFTY:
Thursday, Wednesday from March to December 2024, Thursday again, Tuesday from September 2025).
Exchange holidays, which move an expiry to the day before, are not modelled.

Our form and the Kite monthly form can spell the same text two ways (``NIFTY26SEP23100CE`` is
26 Sep 2023 strike 100 in ours, September 2026 strike 23100 in Kite's). Given the trading day
``on``, the reading whose expiry lies between ``on`` and :data:`MAX_LISTING_YEARS` later wins;
without it, ours does.
"""
from __future__ import annotations

import re
from datetime import date, timedelta

from datacentre.core.errors import SymbolError
from datacentre.core.instruments import (
    MONTHS,
    UNDERLYINGS,
    format_future,
    format_option,
    parse_symbol,
)

MAX_LISTING_YEARS = 6  # NIFTY's longest-dated options run about five years
_KITE_MONTH_CODES = {**{str(m): m for m in range(1, 10)}, "O": 10, "N": 11, "D": 12}
_INDEX_NAMES = {
    "NIFTY 50": "NIFTY 50", "NIFTY50": "NIFTY 50", "NIFTY": "NIFTY 50", "NIFTY_50": "NIFTY 50",
    "NIFTY BANK": "NIFTY BANK", "NIFTYBANK": "NIFTY BANK", "BANKNIFTY": "NIFTY BANK",
    "BANK NIFTY": "NIFTY BANK", "NIFTY_BANK": "NIFTY BANK",
}
_BASE = r"(BANKNIFTY|NIFTY)"
_STRIKE = r"(\d+(?:\.\d+)?)"
_OURS = re.compile(rf"^{_BASE}(\d{{2}})([A-Z]{{3}})(\d{{2}})(?:(FUT)|{_STRIKE}(CE|PE))$")
_KITE_WEEKLY = re.compile(rf"^{_BASE}(\d{{2}})([1-9OND])(\d{{2}}){_STRIKE}(CE|PE)$")
_KITE_MONTHLY = re.compile(rf"^{_BASE}(\d{{2}})([A-Z]{{3}})(?:(FUT)|{_STRIKE}(CE|PE))$")
_NSE_ID = re.compile(rf"^(OPT|FUT)IDX{_BASE}(\d{{2}})-(\d{{2}})-(\d{{4}})(?:(CE|PE){_STRIKE})?$")

# (first month the rule applies, weekday: Monday = 0) for each base's monthly expiry
_MONTHLY_WEEKDAY: dict[str, tuple[tuple[tuple[int, int], int], ...]] = {
    "NIFTY": (((2000, 1), 3), ((2025, 9), 1)),
    "BANKNIFTY": (((2000, 1), 3), ((2024, 3), 2), ((2025, 1), 3), ((2025, 9), 1)),
}


def monthly_expiry(base: str, year: int, month: int) -> date:
    """The last expiry weekday of ``month`` for ``base`` in NSE's history (no holidays)."""
    rules = _MONTHLY_WEEKDAY[base]
    weekday = [wd for start, wd in rules if (year, month) >= start][-1]
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _contract(base: str, expiry: date, fut: str | None, strike: str | None, right: str | None) -> str:
    if fut:
        return format_future(base, expiry)
    value = float(strike)
    if value <= 0:
        raise SymbolError(strike, "strike must be positive")
    return format_option(base, expiry, value, right)


def _plausible(expiry: date, on: date | None) -> bool:
    return on is None or on <= expiry <= date(on.year + MAX_LISTING_YEARS, on.month, min(on.day, 28))


def _month(text: str) -> int | None:
    return MONTHS.index(text) + 1 if text in MONTHS else None


def _ours(m: re.Match) -> tuple[str, date] | None:
    base, dd, mon, yy, fut, strike, right = m.groups()
    month = _month(mon)
    if month is None:
        return None
    try:
        expiry = date(2000 + int(yy), month, int(dd))
    except ValueError:
        return None
    return _contract(base, expiry, fut, strike, right), expiry


def _kite_monthly(m: re.Match, expiry_hint: date | None) -> tuple[str, date] | None:
    base, yy, mon, fut, strike, right = m.groups()
    month = _month(mon)
    if month is None:
        return None
    year = 2000 + int(yy)
    if expiry_hint is not None and (expiry_hint.year, expiry_hint.month) == (year, month):
        expiry = expiry_hint
    else:
        expiry = monthly_expiry(base, year, month)
    return _contract(base, expiry, fut, strike, right), expiry


def _readings(raw: str, text: str, expiry_hint: date | None) -> list[tuple[str, date]]:
    """Every way ``raw`` reads as a contract, ours first: ``(symbol, expiry)``."""
    m = _NSE_ID.match(raw)
    if m:
        kind, base, dd, mm, yyyy, right, strike = m.groups()
        try:
            day = date(int(yyyy), int(mm), int(dd))
        except ValueError:
            raise SymbolError(text, "not a real expiry date") from None
        return [(_contract(base, day, "FUT" if kind == "FUT" else None, strike, right), day)]
    m = _KITE_WEEKLY.match(raw)
    if m:
        base, yy, mcode, dd, strike, right = m.groups()
        try:
            day = date(2000 + int(yy), _KITE_MONTH_CODES[mcode], int(dd))
        except ValueError:
            raise SymbolError(text, "not a real expiry date (Kite weekly form YYMDD)") from None
        return [(_contract(base, day, None, strike, right), day)]
    readings = []
    for pattern, read in ((_OURS, _ours), (_KITE_MONTHLY, lambda mm: _kite_monthly(mm, expiry_hint))):
        m = pattern.match(raw)
        found = read(m) if m else None
        if found is not None:
            readings.append(found)
    return readings


def to_symbol(text: str, *, on: date | None = None, expiry: date | None = None) -> str:
    """Our symbol for ``text`` in any form of the module docstring.

    ``on`` is the day the row traded (it settles the two readings of an ambiguous form);
    ``expiry`` is the contract's expiry when the file states it (it gives monthly Kite forms
    their day). Raises :class:`SymbolError` when nothing matches.
    """
    if not isinstance(text, str) or not text.strip():
        raise SymbolError(repr(text), "symbol must be non-empty text")
    raw = " ".join(text.split()).upper()
    if raw in _INDEX_NAMES:
        return _INDEX_NAMES[raw]
    readings = _readings(raw, text, expiry)
    for symbol, day in readings:
        if _plausible(day, on):
            return parse_symbol(symbol).symbol
    if readings:
        symbol, day = readings[0]
        raise SymbolError(text, f"read as {symbol}, which expires on {day.isoformat()}, "
                                f"not a contract that could trade on {on.isoformat()}")
    raise SymbolError(text, f"not a {'/'.join(UNDERLYINGS)} index, future or option in our, "
                            f"Angel One, Kite or NSE form")
