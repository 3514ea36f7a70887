"""NIFTY Options Data Centre: collect, store, broadcast and analyse index options data."""
from __future__ import annotations

from datacentre.clients.reader import WebSocketDataReader as WebSocketDataReader
from datacentre.clients.realtime import RealtimeDataClient as RealtimeDataClient

__version__ = "0.1.0"
