"""Watch lists: which underlyings, expiries and strikes a source collects.

A watch list names, per underlying, the option chains to collect and how many strikes
either side of the money each one covers. Every underlying always brings its index and
its current monthly future. Expiries are named by rule and resolved at a moment:

==============  ===========================================================
``weekly``      the nearest weekly expiry (NIFTY: the next Tuesday trading)
``next-weekly`` the weekly after it
``monthly``     the nearest monthly expiry (last Tuesday of the month)
==============  ===========================================================

Two presets, and a compact text form for anything else (``DATACENTRE_WATCHLIST`` or
``--watchlist``)::

    default    NIFTY weekly at ATM +- N and next-weekly at ATM +- 5, BANKNIFTY monthly at
               ATM +- N (N = DATACENTRE_ATM_WINDOW, default 10): about 110 symbols
    original   NIFTY 50, the current NIFTY future, the nearest NIFTY weekly at ATM +- 5
               (the original data centre's two dozen symbols)

    NIFTY:weekly=5                          one chain
    NIFTY:weekly=10,next-weekly=5;BANKNIFTY:monthly=8
    NIFTY;BANKNIFTY                         each one's nearest expiry at ATM +- N

Two rules that land on the same expiry (the last weekly of a month is also the monthly)
are one chain with the wider window. BANKNIFTY lists monthly options only, so
``BANKNIFTY:weekly`` is refused rather than silently collected as the monthly.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from datacentre.core.errors import ConfigError, SymbolError
from datacentre.core.instruments import (
    CE,
    PE,
    current_future_expiry,
    format_future,
    format_option,
    monthly_expiries,
    strike_window,
    underlying,
    weekly_expiries,
)

WATCHLIST_ENV = "DATACENTRE_WATCHLIST"
DEFAULT_PRESET = "default"
ORIGINAL_PRESET = "original"
PRESETS = (DEFAULT_PRESET, ORIGINAL_PRESET)
#: The window of NIFTY's next weekly in the default watch list (term structure, fewer strikes).
NEXT_WEEKLY_WINDOW = 5
#: The original data centre's ATM window.
ORIGINAL_WINDOW = 5

WEEKLY, NEXT_WEEKLY, MONTHLY = "weekly", "next-weekly", "monthly"
EXPIRY_RULES = (WEEKLY, NEXT_WEEKLY, MONTHLY)
_RULE_ALIASES = {"weekly": WEEKLY, "nearest": WEEKLY, "next-weekly": NEXT_WEEKLY,
                 "next_weekly": NEXT_WEEKLY, "nextweekly": NEXT_WEEKLY, "monthly": MONTHLY}


@dataclass(frozen=True)
class ChainRule:
    """Options of one expiry rule at ATM +- ``window`` strikes."""

    rule: str
    window: int


@dataclass(frozen=True)
class Chain:
    """A chain resolved at a moment: ``base``'s options expiring on ``expiry``.

    ``rule`` is the first rule that named this expiry (``weekly`` before ``next-weekly``
    before ``monthly``), which sources use to size the chain's activity.
    """

    base: str
    expiry: date
    window: int
    rule: str


@dataclass(frozen=True)
class UnderlyingWatch:
    """One underlying: its index, its current future and its option chains."""

    base: str
    chains: tuple[ChainRule, ...]

    def resolve(self, moment: datetime | date) -> list[Chain]:
        """The chains at ``moment``, one per expiry (the widest window wins), nearest first."""
        weeklies = weekly_expiries(moment, 2) if underlying(self.base).weekly else []
        by_rule = {MONTHLY: monthly_expiries(moment, 1)[0]}
        if weeklies:
            by_rule[WEEKLY], by_rule[NEXT_WEEKLY] = weeklies
        found: dict[date, Chain] = {}
        for spec in sorted(self.chains, key=lambda c: EXPIRY_RULES.index(c.rule)):
            expiry = by_rule[spec.rule]
            known = found.get(expiry)
            if known is None:
                found[expiry] = Chain(self.base, expiry, spec.window, spec.rule)
            elif spec.window > known.window:
                found[expiry] = Chain(self.base, expiry, spec.window, known.rule)
        return sorted(found.values(), key=lambda c: c.expiry)


@dataclass(frozen=True)
class WatchList:
    """What to collect. Build one with :func:`parse_watchlist` or :func:`configured_watchlist`."""

    name: str = field(compare=False)
    underlyings: tuple[UnderlyingWatch, ...]

    def __post_init__(self) -> None:
        if not self.underlyings:
            raise ConfigError("a watch list needs at least one underlying")

    def __str__(self) -> str:
        return self.name

    @property
    def bases(self) -> tuple[str, ...]:
        """The underlyings' bases (``NIFTY``, ``BANKNIFTY``) in watch-list order."""
        return tuple(u.base for u in self.underlyings)

    @property
    def spec(self) -> str:
        """The text form, which :func:`parse_watchlist` reads back to an equal watch list."""
        return ";".join(f"{u.base}:" + ",".join(f"{c.rule}={c.window}" for c in u.chains)
                        for u in self.underlyings)

    def chains(self, moment: datetime | date) -> list[Chain]:
        """Every option chain at ``moment``, underlying by underlying, nearest expiry first."""
        return [chain for u in self.underlyings for chain in u.resolve(moment)]

    def futures(self, moment: datetime | date) -> list[str]:
        """The current future of each underlying at ``moment``."""
        expiry = current_future_expiry(moment)
        return [format_future(base, expiry) for base in self.bases]

    def symbols(self, moment: datetime | date, spots: Mapping[str, float]) -> list[str]:
        """Every symbol to collect at ``moment`` when the indices stand at ``spots``
        (keyed by base or index symbol): indices, futures, then each chain's CE/PE by strike.

        An underlying without a spot in ``spots`` contributes its index and future only.
        """
        prices = {underlying(k).base: float(v) for k, v in spots.items()}
        out = [underlying(b).index_symbol for b in self.bases] + self.futures(moment)
        for chain in self.chains(moment):
            spot = prices.get(chain.base)
            if spot is None:
                continue
            step = underlying(chain.base).strike_step
            out += [format_option(chain.base, chain.expiry, k, right)
                    for k in strike_window(spot, step, chain.window) for right in (CE, PE)]
        return out


def nearest_chains(bases, atm_window: int, next_weekly_window: int | None = None,
                   name: str = DEFAULT_PRESET) -> WatchList:
    """Each of ``bases``' nearest chain at ATM +- ``atm_window``, plus the next weekly at
    ATM +- ``next_weekly_window`` for underlyings with weekly options (None: no next weekly)."""
    window = _window(atm_window, "ATM window")
    watches = []
    for base in dict.fromkeys(underlying(b).base for b in bases):
        chains = [ChainRule(_nearest_rule(base), window)]
        if next_weekly_window is not None and underlying(base).weekly:
            chains.append(ChainRule(NEXT_WEEKLY, _window(next_weekly_window, "next weekly window")))
        watches.append(UnderlyingWatch(base, tuple(chains)))
    return WatchList(name, tuple(watches))


def default_watchlist(atm_window: int) -> WatchList:
    """This data centre's own watch list, with ``atm_window`` strikes on each nearest chain."""
    return nearest_chains(("NIFTY", "BANKNIFTY"), atm_window, NEXT_WEEKLY_WINDOW)


def original_watchlist() -> WatchList:
    """The original data centre's: NIFTY 50, the current NIFTY future, the nearest weekly at ATM +- 5."""
    return WatchList(ORIGINAL_PRESET, (UnderlyingWatch("NIFTY", (ChainRule(WEEKLY, ORIGINAL_WINDOW),)),))


def _window(value, what: str) -> int:
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, str) and text.isdigit():
        text = int(text)
    if isinstance(text, bool) or not isinstance(text, int) or text < 1:
        raise ConfigError(f"{what} must be a whole number of strikes, 1 or more; got {value!r}")
    return text


def _nearest_rule(base: str) -> str:
    return WEEKLY if underlying(base).weekly else MONTHLY


def _parse_entry(entry: str, atm_window: int) -> UnderlyingWatch:
    name, _, rules = entry.partition(":")
    try:
        u = underlying(name)
    except SymbolError as exc:
        raise ConfigError(f"watch list: {exc}") from None
    if not rules.strip():
        return UnderlyingWatch(u.base, (ChainRule(_nearest_rule(u.base), atm_window),))
    chains: list[ChainRule] = []
    for part in rules.split(","):
        rule_text, eq, window_text = part.partition("=")
        rule = _RULE_ALIASES.get(rule_text.strip().lower())
        if rule is None:
            raise ConfigError(f"watch list: unknown expiry {rule_text.strip()!r} for {u.base}: use "
                              f"{', '.join(EXPIRY_RULES)} (e.g. {u.base}:{_nearest_rule(u.base)}=5)")
        if rule != MONTHLY and not u.weekly:
            raise ConfigError(f"watch list: {u.base} has monthly options only: use {u.base}:monthly=N")
        window = _window(window_text.strip(), f"watch list: the window of {u.base} {rule}") if eq \
            else atm_window
        if any(c.rule == rule for c in chains):
            raise ConfigError(f"watch list: {u.base} {rule} is given twice")
        chains.append(ChainRule(rule, window))
    return UnderlyingWatch(u.base, tuple(chains))


def parse_watchlist(text: str | None, atm_window: int = 10) -> WatchList:
    """A watch list from a preset name or the text form in the module docstring.

    ``atm_window`` is the window of the default preset's nearest chains and of a chain
    written without ``=N``. Raises :class:`ConfigError` naming what is wrong.
    """
    window = _window(atm_window, "ATM window")
    raw = (text or "").strip()
    if raw.lower() in ("", DEFAULT_PRESET):
        return default_watchlist(window)
    if raw.lower() == ORIGINAL_PRESET:
        return original_watchlist()
    entries = [e.strip() for e in raw.split(";") if e.strip()]
    watches = [_parse_entry(e, window) for e in entries]
    bases = [w.base for w in watches]
    twice = sorted({b for b in bases if bases.count(b) > 1})
    if twice:
        raise ConfigError(f"watch list: {', '.join(twice)} is given twice; put its expiries in one "
                          f"entry, e.g. NIFTY:weekly=10,next-weekly=5")
    return WatchList(raw, tuple(watches))


def configured_watchlist(atm_window: int = 10, text: str | None = None) -> WatchList:
    """``text`` if given, else ``DATACENTRE_WATCHLIST``, else the default preset."""
    return parse_watchlist(text if text is not None else os.environ.get(WATCHLIST_ENV), atm_window)
