"""NIFTY Options Data Centre: collect, store, broadcast and analyse index options data."""
from __future__ import annotations

from .client import RealtimeDataClient as RealtimeDataClient
from .reader import WebSocketDataReader as WebSocketDataReader

__version__ = "0.1.0"
