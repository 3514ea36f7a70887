"""Symbols, the expiry calendar, strikes and tokens (docs/architecture.md, "Symbols").

Symbol formats:

* index    ``NIFTY 50`` / ``NIFTY BANK``
* future   ``{BASE}{DDMMMYY}FUT``              e.g. ``NIFTY27JAN26FUT``
* option   ``{BASE}{DDMMMYY}{STRIKE}{CE|PE}``  e.g. ``NIFTY06JAN2626500CE``

``BANKNIFTY06JAN26...`` contains ``NIFTY``, so symbols are always parsed, never
matched by substring.

Expiries follow the current NSE calendar without exchange holidays: NIFTY options
expire every Tuesday, BANKNIFTY options and all futures on the last Tuesday of the
month. A contract trades until 15:30 IST (10:00 UTC) on its expiry day.
"""
from __future__ import annotations

import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache

from datacentre.core.errors import ConfigError, SymbolError
from datacentre.core.lots import lot_size as dated_lot_size
from datacentre.core.ticks import UTC, parse_ts, trading_day

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
TUESDAY = 1
EXPIRY_CUTOFF_UTC = time(10, 0)  # 15:30 IST
SESSION_OPEN_UTC = time(3, 45)  # 09:15 IST
SESSION_CLOSE_UTC = time(10, 0)  # 15:30 IST
YEAR_SECONDS = 365.0 * 86400.0

INDEX, FUT, CE, PE = "INDEX", "FUT", "CE", "PE"


@dataclass(frozen=True)
class Underlying:
    base: str  # NIFTY, BANKNIFTY
    index_symbol: str  # NIFTY 50, NIFTY BANK
    index_token: str
    strike_step: int
    lot_size: int
    weekly: bool  # options expire every Tuesday (else monthly)


UNDERLYINGS: dict[str, Underlying] = {
    "NIFTY": Underlying("NIFTY", "NIFTY 50", "99926000", 50, 65, weekly=True),
    "BANKNIFTY": Underlying("BANKNIFTY", "NIFTY BANK", "99926009", 100, 30, weekly=False),
}
_BY_INDEX = {u.index_symbol: u for u in UNDERLYINGS.values()}


def underlying(name: str) -> Underlying:
    """Look an underlying up by base (``NIFTY``) or index symbol (``NIFTY 50``)."""
    key = name.strip().upper()
    found = UNDERLYINGS.get(key) or _BY_INDEX.get(key)
    if found is None:
        known = ", ".join(sorted([*UNDERLYINGS, *_BY_INDEX]))
        raise SymbolError(name, f"unknown underlying; known: {known}")
    return found


@dataclass(frozen=True)
class Instrument:
    symbol: str
    token: str
    underlying: str  # base, e.g. NIFTY
    kind: str  # INDEX, FUT, CE, PE
    expiry: date | None = None
    strike: float | None = None
    lot_size: int | None = None

    @property
    def is_option(self) -> bool:
        return self.kind in (CE, PE)


_DERIV = re.compile(r"^(BANKNIFTY|NIFTY)(\d{2})([A-Z]{3})(\d{2})(?:(FUT)|(\d+(?:\.\d+)?)(CE|PE))$")


def format_expiry(expiry: date) -> str:
    return f"{expiry.day:02d}{MONTHS[expiry.month - 1]}{expiry.year % 100:02d}"


def parse_expiry(text: str) -> date:
    """``06JAN26`` -> date(2026, 1, 6)."""
    m = re.fullmatch(r"(\d{2})([A-Za-z]{3})(\d{2})", text.strip())
    if not m or m.group(2).upper() not in MONTHS:
        raise SymbolError(text, "not an expiry like 06JAN26")
    try:
        return date(2000 + int(m.group(3)), MONTHS.index(m.group(2).upper()) + 1, int(m.group(1)))
    except ValueError:
        raise SymbolError(text, "not a real date") from None


def _strike_text(strike: float) -> str:
    # str(), not :g, which keeps 6 digits and would write 126500.5 as 126500
    return str(int(strike)) if float(strike).is_integer() else str(float(strike))


def format_future(base: str, expiry: date) -> str:
    return f"{underlying(base).base}{format_expiry(expiry)}FUT"


def format_option(base: str, expiry: date, strike: float, right: str) -> str:
    right = right.upper()
    if right not in (CE, PE):
        raise SymbolError(right, "option right must be CE or PE")
    return f"{underlying(base).base}{format_expiry(expiry)}{_strike_text(strike)}{right}"


def token_for(symbol: str) -> str:
    """A stable broker-style token for a symbol (the real index tokens for indices)."""
    idx = _BY_INDEX.get(symbol)
    if idx is not None:
        return idx.index_token
    return str(35000 + zlib.crc32(symbol.encode()) % 900000)


def _contract_lot(base: str, expiry: date) -> int | None:
    """The lot a contract ended its life with (core.lots); None before the table's first day."""
    try:
        return dated_lot_size(base, expiry)
    except ConfigError:
        return None


@lru_cache(maxsize=65536)
def parse_symbol(symbol: str) -> Instrument:
    """Parse any index, future or option symbol; raise :class:`SymbolError` otherwise."""
    if not isinstance(symbol, str):
        raise SymbolError(repr(symbol), "symbol must be text")
    idx = _BY_INDEX.get(symbol)
    if idx is not None:
        return Instrument(symbol, token_for(symbol), idx.base, INDEX)
    m = _DERIV.match(symbol)
    if not m:
        raise SymbolError(symbol, "expected 'NIFTY 50', 'NIFTY BANK', {BASE}{DDMMMYY}FUT "
                                  "or {BASE}{DDMMMYY}{STRIKE}{CE|PE}")
    base, dd, mon, yy, fut, strike, right = m.groups()
    expiry = parse_expiry(dd + mon + yy)
    if fut:
        return Instrument(symbol, token_for(symbol), base, FUT, expiry, None, _contract_lot(base, expiry))
    value = float(strike)
    if value <= 0:
        raise SymbolError(symbol, "strike must be positive")
    if strike != _strike_text(value):
        raise SymbolError(symbol, f"write the strike as {_strike_text(value)}")
    return Instrument(symbol, token_for(symbol), base, right, expiry, value, _contract_lot(base, expiry))


def is_valid_symbol(symbol: str) -> bool:
    try:
        parse_symbol(symbol)
    except SymbolError:
        return False
    return True


# ---------------------------------------------------------------- expiry calendar

def last_tuesday(year: int, month: int) -> date:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - TUESDAY) % 7)


def _as_utc(moment: datetime | date) -> datetime:
    if isinstance(moment, datetime):
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return datetime.combine(moment, time(0), UTC)


def expiry_moment(expiry: date) -> datetime:
    """The instant a contract expiring on ``expiry`` stops trading (15:30 IST)."""
    return datetime.combine(expiry, EXPIRY_CUTOFF_UTC, UTC)


def _first_live_day(moment: datetime | date) -> date:
    """The earliest expiry date still trading at ``moment``: its trading day, or the next
    day once that day's 15:30 IST has passed."""
    m = _as_utc(moment)
    day = trading_day(m)
    return day + timedelta(days=1) if expiry_moment(day) <= m else day


def monthly_expiries(moment: datetime | date, count: int = 3) -> list[date]:
    """The next ``count`` monthly expiries still trading at ``moment``."""
    day = _first_live_day(moment)
    year, month = day.year, day.month
    out: list[date] = []
    while len(out) < count:
        exp = last_tuesday(year, month)
        if exp >= day:
            out.append(exp)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def weekly_expiries(moment: datetime | date, count: int = 4) -> list[date]:
    """The next ``count`` Tuesdays still trading at ``moment``."""
    day = _first_live_day(moment)
    first = day + timedelta(days=(TUESDAY - day.weekday()) % 7)
    return [first + timedelta(weeks=i) for i in range(count)]


def option_expiries(base: str, moment: datetime | date, count: int = 4) -> list[date]:
    u = underlying(base)
    return weekly_expiries(moment, count) if u.weekly else monthly_expiries(moment, count)


def nearest_option_expiry(base: str, moment: datetime | date) -> date:
    return option_expiries(base, moment, 1)[0]


def current_future_expiry(moment: datetime | date) -> date:
    return monthly_expiries(moment, 1)[0]


def has_expired(expiry: date, moment: datetime | str) -> bool:
    """True once a contract expiring on ``expiry`` has stopped trading at ``moment``
    (15:30 IST on its expiry date, that instant included)."""
    return expiry_moment(expiry) <= parse_ts(moment)


def nearest_future(symbols: Iterable[str], moment: datetime | str,
                   base: str | None = None) -> Instrument | None:
    """The future among ``symbols`` with the earliest expiry that has not expired at ``moment``.

    ``moment`` is an aware datetime or store text, usually the time of the ticks the
    symbols come from. A future expires at 15:30 IST on its expiry date (see
    :func:`has_expired`): until then it is the nearest, from then on the next month's is.
    Text that is not a symbol, indices, options and, with ``base`` (``NIFTY`` or
    ``NIFTY 50``), other underlyings' futures are ignored. When none of the futures is
    live at ``moment`` (all expired, or none given) the answer is None: an expired
    contract's last price is not the future's.
    """
    at = parse_ts(moment)
    wanted = None if base is None else underlying(base).base
    best: Instrument | None = None
    for symbol in symbols:
        try:
            ins = parse_symbol(symbol)
        except SymbolError:
            continue
        if ins.kind != FUT or (wanted is not None and ins.underlying != wanted):
            continue
        if has_expired(ins.expiry, at):
            continue
        if best is None or ins.expiry < best.expiry:
            best = ins
    return best


def time_to_expiry(expiry: date, moment: datetime | date) -> float:
    """Years of 365 days from ``moment`` to 15:30 IST on ``expiry`` (never negative)."""
    seconds = (expiry_moment(expiry) - _as_utc(moment)).total_seconds()
    return max(seconds, 0.0) / YEAR_SECONDS


def is_session_day(day: date) -> bool:
    """Monday to Friday, except NSE trading holidays (:mod:`datacentre.core.calendar`)."""
    from datacentre.core.calendar import is_trading_day  # it builds on this module
    return is_trading_day(day)


def session_bounds(day: date) -> tuple[datetime, datetime]:
    """09:15 and 15:30 IST of ``day`` as UTC datetimes."""
    return datetime.combine(day, SESSION_OPEN_UTC, UTC), datetime.combine(day, SESSION_CLOSE_UTC, UTC)


def last_complete_session(moment: datetime) -> date:
    """The most recent weekday whose session had closed by ``moment``."""
    m = _as_utc(moment)
    day = trading_day(m)
    if session_bounds(day)[1] > m:
        day -= timedelta(days=1)
    while not is_session_day(day):
        day -= timedelta(days=1)
    return day


def session_of(moment: datetime | str) -> date | None:
    """The trading day whose session (09:15-15:30 IST, both ends included) holds ``moment``;
    None for a moment after hours (evenings, nights, weekends)."""
    m = parse_ts(moment)
    day = trading_day(m)
    if not is_session_day(day):
        return None
    start, end = session_bounds(day)
    return day if start <= m <= end else None


def in_session(moment: datetime | str) -> bool:
    """True while the exchange is open at ``moment`` (see :func:`session_of`)."""
    return session_of(moment) is not None


def next_session_open(moment: datetime | str) -> datetime:
    """When the next session opens after ``moment`` (09:15 IST, as UTC)."""
    m = parse_ts(moment)
    day = trading_day(m)
    while not (is_session_day(day) and session_bounds(day)[0] > m):
        day += timedelta(days=1)
    return session_bounds(day)[0]


# ---------------------------------------------------------------- strikes

def atm_strike(spot: float, step: float) -> float:
    """The listed strike nearest to ``spot``."""
    return float(round(spot / step) * step)


def strike_window(spot: float, step: float, n: int) -> list[float]:
    """ATM and ``n`` strikes either side, ascending."""
    atm = atm_strike(spot, step)
    return [atm + i * step for i in range(-n, n + 1)]
