"""Market-data sources: anything with a ``name`` and a ``snapshot(moment)`` method.

The simulator is the default source, so a fresh machine shows a live market with no broker
account. A source returns one snapshot's ticks, each a dict with exactly the 14 fields of
:data:`datacentre.core.ticks.TICK_FIELDS`, all sharing ``ts = format_ts(moment)``.

=============  ========================  ======  ===========================================
name           class                     ticks   options of :func:`make_source` (keyword)
=============  ========================  ======  ===========================================
``sim``        :class:`MarketSimulator`  sim     resume_from, underlyings, watchlist
``smartapi``   :class:`SmartApiSource`   api     underlyings, watchlist, broker_greeks,
                                                 min_request_interval, connect, totp
``csv``        :class:`CsvFileSource`    csv     path (required), loop
=============  ========================  ======  ===========================================

:func:`make_source` builds one by name for the command line.

A source that keeps NSE market hours says so with ``market_hours = True`` (the collector
then asks it for snapshots only while the exchange is open); without it, it runs at any hour.
"""
from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from datacentre.core.catalog import SOURCE_NAMES
from datacentre.core.config import Settings
from datacentre.core.errors import ConfigError
from datacentre.sources.csvfile import CsvFileSource
from datacentre.sources.simulator import MarketSimulator
from datacentre.sources.smartapi import SmartApiSource


@runtime_checkable
class Source(Protocol):
    """What the collector needs from a market-data source."""

    name: str  # the tick ``source`` field, e.g. "sim"

    def snapshot(self, moment: datetime) -> list[dict]:
        """One snapshot's ticks at the aware-UTC ``moment``; raise ``SourceError`` on failure."""
        ...


_OPTIONS = {
    "sim": {"resume_from", "underlyings", "watchlist"},
    "smartapi": {"underlyings", "watchlist", "broker_greeks", "min_request_interval", "connect", "totp"},
    "csv": {"path", "loop"},
}


def make_source(name: str, settings: Settings | None = None, **options) -> Source:
    """The source called ``name`` (one of :data:`SOURCE_NAMES`), configured from ``settings``.

    ``sim`` takes seed, ATM window, rate and watch list from ``settings``; ``smartapi`` reads
    its credentials from the environment (:meth:`SmartApiSource.from_env`) and window and rate
    from ``settings``, and the watch list when one is configured (else the nearest expiry of
    each underlying: fewer broker requests a snapshot); ``csv`` needs ``path``. A
    ``watchlist`` option, or ``underlyings``, replaces the configured watch list. Options
    whose value is ``None`` are ignored; one the source does not take raises
    :class:`ConfigError`, as does an unknown name.
    """
    key = str(name).strip().lower()
    if key not in _OPTIONS:
        raise ConfigError(f"unknown source {name!r}: choose one of {', '.join(SOURCE_NAMES)}")
    options = {k: v for k, v in options.items() if v is not None}
    unexpected = sorted(set(options) - _OPTIONS[key])
    if unexpected:
        raise ConfigError(f"the {key} source does not take {', '.join(unexpected)}; it takes "
                          f"{', '.join(sorted(_OPTIONS[key]))}")
    settings = settings or Settings.from_env()
    if key != "csv" and "underlyings" not in options and (key == "sim" or settings.watchlist):
        options.setdefault("watchlist", settings.watch_list)
    if key == "sim":
        return MarketSimulator(seed=settings.seed, atm_window=settings.atm_window,
                               risk_free_rate=settings.risk_free_rate, **options)
    if key == "smartapi":
        return SmartApiSource.from_env(settings, **options)
    if "path" not in options:
        raise ConfigError("the csv source needs the path of a CSV export to play back")
    return CsvFileSource(options["path"], loop=options.get("loop", False),
                         risk_free_rate=settings.risk_free_rate)


__all__ = ["SOURCE_NAMES", "CsvFileSource", "MarketSimulator", "SmartApiSource", "Source", "make_source"]
