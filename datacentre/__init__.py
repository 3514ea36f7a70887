"""NIFTY Options Data Centre: collect, store, broadcast and analyse index options data."""
from __future__ import annotations

__version__ = "0.1.0"
