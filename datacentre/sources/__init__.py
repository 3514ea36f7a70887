"""Market-data sources: anything with a ``name`` and a ``snapshot(moment)`` method.

The simulator is the default source, so a fresh machine shows a live market with no broker
account. A source returns one snapshot's ticks, each a dict with exactly the 14 fields of
:data:`datacentre.ticks.TICK_FIELDS`, all sharing ``ts = format_ts(moment)``.
"""
from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from .simulator import MarketSimulator


@runtime_checkable
class Source(Protocol):
    """What the collector needs from a market-data source."""

    name: str  # the tick ``source`` field, e.g. "sim"

    def snapshot(self, moment: datetime) -> list[dict]:
        """One snapshot's ticks at the aware-UTC ``moment``; raise ``SourceError`` on failure."""
        ...


__all__ = ["MarketSimulator", "Source"]
