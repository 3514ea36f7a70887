"""The whole data centre in one process: simulator -> collector -> store -> broadcaster.

Used by ``python -m datacentre run`` and by the Streamlit app when no broadcaster
answers at the configured local URL. On an empty store it first backfills the most
recent complete session, so history, replay and the day's charts have data at any
hour; the live simulator then carries on from the stored close.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from datacentre.core.config import Settings
from datacentre.feed.broadcaster import BroadcasterThread
from datacentre.ops.backfill import backfill, recent_sessions
from datacentre.ops.collector import Collector, CollectorThread
from datacentre.sources import MarketSimulator, Source
from datacentre.store.tickstore import TickStore

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


class DataCentre:
    """Collector and broadcaster threads around one store."""

    def __init__(self, settings: Settings, *, source: Source | None = None,
                 store: TickStore | None = None) -> None:
        self.settings = settings
        self._owns_store = store is None
        self.store = store or TickStore(settings.db_url)
        self._source = source
        self.broadcaster: BroadcasterThread | None = None
        self.collector: CollectorThread | None = None
        self.backfilled = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DataCentre({self.store!r}, {self.settings.ws_url})"

    @property
    def running(self) -> bool:
        return self.collector is not None and self.collector.alive

    @property
    def ws_url(self) -> str:
        return self.broadcaster.url if self.broadcaster else self.settings.ws_url

    def start(self, *, backfill_if_empty: bool = True, progress: Progress | None = None) -> DataCentre:
        """Backfill an empty store, then start broadcasting and collecting."""
        with self._lock:
            if self.running:
                return self
            s = self.settings
            if backfill_if_empty and self.store.max_id() == 0:
                result = backfill(self.store, recent_sessions(1), interval=s.interval, seed=s.seed,
                                  atm_window=s.atm_window, risk_free_rate=s.risk_free_rate,
                                  progress=progress, watchlist=s.watch_list)
                self.backfilled = result.rows
                log.info("backfilled %s: %d rows in %.1f s", result.sessions, result.rows, result.seconds)
            source = self._source or MarketSimulator(
                seed=s.seed, atm_window=s.atm_window, risk_free_rate=s.risk_free_rate,
                resume_from=self.store.latest_all(limit=None), watchlist=s.watch_list)
            self.broadcaster = BroadcasterThread(self.store, host=s.ws_host, port=s.ws_port,
                                                 token=s.ws_token).start()
            collector = Collector(self.store, source, interval=s.interval,
                                  on_commit=lambda _ts, _rows: self.broadcaster.notify())
            try:
                collector.collect_if_open()  # a first snapshot now, not one interval from now
            except Exception:
                log.warning("first snapshot failed; the collector will retry", exc_info=True)
            self.collector = CollectorThread(collector).start()
            log.info("data centre running: %r", self)
            return self

    def stop(self) -> None:
        """Stop collecting first, so the broadcaster outlives the last commit, then close the
        store if this data centre opened it (a later start() opens connections again)."""
        with self._lock:
            if self.collector is not None:
                self.collector.stop()
            if self.broadcaster is not None:
                self.broadcaster.stop()
            if self._owns_store:
                self.store.close()

    def status(self) -> dict:
        collector = self.collector.collector if self.collector else None
        return {
            "running": self.running,
            "ws_url": self.ws_url,
            "db_url": self.store.url,
            "backfilled_rows": self.backfilled,
            "snapshots": collector.snapshots if collector else 0,
            "failures": collector.failures if collector else 0,
            "last_ts": collector.last_ts if collector else None,
            "broadcaster": self.broadcaster.stats() if self.broadcaster else None,
        }
