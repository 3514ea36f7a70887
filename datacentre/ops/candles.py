"""``python -m datacentre candles``: ``ohlc_1min`` and ``oi_snapshots`` kept or rebuilt.

The collector fills both tables as minutes complete (see :mod:`datacentre.ops.collector`).
This is for the rest: days written by backfill, import or sync (``--rebuild``), and a store
that another program writes, such as the original data centre's collector (``--follow``).
"""
from __future__ import annotations

import logging
import threading

from datacentre.core.ticks import now_utc
from datacentre.store.compat import MINUTE_GRACE
from datacentre.store.tickstore import TickStore

log = logging.getLogger(__name__)

#: Seconds between two looks at the store while following.
FOLLOW_EVERY_S = 10.0


def update(store: TickStore) -> int:
    """Write the minutes of today (IST) that are complete and not written yet."""
    return store.update_minutes(now_utc() - MINUTE_GRACE)


def follow(store: TickStore, stop: threading.Event, every: float = FOLLOW_EVERY_S) -> int:
    """:func:`update` every ``every`` seconds until ``stop`` is set; the candles written."""
    written = 0
    while not stop.is_set():
        try:
            written += update(store)
        except Exception:
            log.warning("ohlc_1min update failed; retrying in %.0f s", every, exc_info=True)
        stop.wait(every)
    return written
