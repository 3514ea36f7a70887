"""NSE market hours: sessions of 09:15-15:30 IST on weekdays that are not trading holidays.

The holidays come from ``nse_holidays.csv`` beside this module (dated, with the NSE
circulars they come from) and from any files named by ``DATACENTRE_HOLIDAYS``
(separated by the system's path separator, ``:`` or ``;``), in the same ``date,description``
format. A year that no file covers is taken as having no holidays (with a warning for the
years around now): add its rows when NSE publishes them (each December for the next year).

Real sources (SmartAPI) collect only while :func:`market_state` says the market is open;
the simulator runs at any hour. Both session ends are included, as in
:func:`datacentre.core.instruments.session_of`; that module's session functions
(``is_session_day``, ``session_of``, ``next_session_open``, ``last_complete_session``)
skip these holidays too, through :func:`is_trading_day`.
"""
from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

from datacentre.core.errors import ConfigError
from datacentre.core.instruments import next_session_open, session_bounds
from datacentre.core.ticks import IST, now_utc, parse_ts, trading_day

log = logging.getLogger(__name__)

HOLIDAYS_FILE = Path(__file__).with_name("nse_holidays.csv")
HOLIDAYS_ENV = "DATACENTRE_HOLIDAYS"


def read_holidays(path: Path | str) -> dict[date, str]:
    """``date -> description`` from one holiday file (``#`` lines are comments)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read the holiday file {path}: {exc.strerror}") from None
    rows = csv.reader(line for line in lines if line.strip() and not line.lstrip().startswith("#"))
    found: dict[date, str] = {}
    for number, row in enumerate(rows, 1):
        if number == 1 and row and row[0].strip().lower() == "date":
            continue
        try:
            day = date.fromisoformat(row[0].strip())
        except (IndexError, ValueError):
            raise ConfigError(f"{path}: row {row!r} is not 'YYYY-MM-DD,description'") from None
        found[day] = ",".join(row[1:]).strip() or "trading holiday"
    return found


@lru_cache(maxsize=8)
def _holidays(extra: str) -> dict[date, str]:
    found = read_holidays(HOLIDAYS_FILE)
    for name in filter(None, (p.strip() for p in extra.split(os.pathsep))):
        found.update(read_holidays(name))
    return found


def holidays() -> dict[date, str]:
    """Every known NSE trading holiday: the package's file and ``DATACENTRE_HOLIDAYS``'s."""
    return _holidays(os.environ.get(HOLIDAYS_ENV, ""))


@lru_cache(maxsize=64)
def _warn_uncovered(year: int) -> None:
    log.warning("no NSE holiday list for %d: every weekday counts as a trading day. Add the year's "
                "holidays to %s or a file named by %s", year, HOLIDAYS_FILE, HOLIDAYS_ENV)


def holiday(day: date) -> str | None:
    """What closes the exchange on ``day`` (a weekday holiday), or None.

    A year the files do not cover has none; for the years around now, where collection
    happens, that is logged once as a warning.
    """
    known = holidays()
    if abs(day.year - now_utc().year) <= 1 and not any(d.year == day.year for d in known):
        _warn_uncovered(day.year)
    return known.get(day)


def is_trading_day(day: date) -> bool:
    """A weekday that is not an NSE trading holiday."""
    return day.weekday() < 5 and holiday(day) is None


@dataclass(frozen=True)
class MarketState:
    """The market at a moment: ``open``, why not (``reason``) and when it next opens.

    ``next_open`` is the opening (09:15 IST, aware UTC) of the next session after the
    moment, or of the current one while it is open; ``closes_at`` is 15:30 IST of the
    current session while open, else None.
    """

    open: bool
    reason: str
    next_open: datetime
    closes_at: datetime | None = None

    def describe(self) -> str:
        """``open until 15:30 IST`` or ``closed (holiday: Holi) until Wed 04 Mar 09:15 IST``."""
        if self.open:
            return f"open until {self.closes_at.astimezone(IST):%H:%M} IST"
        return f"closed ({self.reason}) until {self.next_open.astimezone(IST):%a %d %b %Y %H:%M} IST"


def market_state(moment: datetime | str) -> MarketState:
    """Whether NSE is open at ``moment`` (sessions include both ends), and if not, why."""
    m = parse_ts(moment)
    day = trading_day(m)
    opens, closes = session_bounds(day)
    if day.weekday() >= 5:
        return MarketState(False, "weekend", next_session_open(m))
    name = holiday(day)
    if name is not None:
        return MarketState(False, f"holiday: {name}", next_session_open(m))
    if opens <= m <= closes:
        return MarketState(True, "open", opens, closes)
    return MarketState(False, "before the open" if m < opens else "after the close", next_session_open(m))


def next_open(moment: datetime | str) -> datetime:
    """The opening of the session in progress at ``moment``, else of the next one."""
    return market_state(moment).next_open
