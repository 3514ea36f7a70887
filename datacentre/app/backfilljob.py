"""A backfill of past sessions run from the app, in a background thread; no Streamlit in here.

The IV rank page offers it when the store holds too few sessions to rank against. The
thread only records its progress numbers and outcome for the page to draw; one job runs
at a time per store, and asking again while it runs returns the same job.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import date

from datacentre.core.config import Settings

log = logging.getLogger(__name__)

RUNNING, DONE, FAILED = "running", "done", "failed"


@dataclass
class BackfillJob:
    """``status`` goes ``running`` -> ``done`` (``sessions`` written) or ``failed`` (``error``)."""

    settings: Settings
    days: int
    interval: float
    status: str = RUNNING
    progress: tuple[int, int] = (0, 0)
    sessions: list[date] = field(default_factory=list)
    skipped: list[date] = field(default_factory=list)
    error: str | None = None
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    def start(self) -> BackfillJob:
        threading.Thread(target=self._run, name="datacentre-app-backfill", daemon=True).start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def _progress(self, done: int, total: int) -> None:
        self.progress = (int(done), int(total))

    def _run(self) -> None:
        # imported here: the simulator is not light, and most app runs never backfill
        from datacentre.ops.backfill import backfill, recent_sessions
        from datacentre.store.tickstore import TickStore

        s = self.settings
        try:
            with TickStore(s.db_url) as store:
                result = backfill(store, recent_sessions(self.days), interval=self.interval, seed=s.seed,
                                  atm_window=s.atm_window, risk_free_rate=s.risk_free_rate,
                                  progress=self._progress)
            self.sessions, self.skipped, self.status = result.sessions, result.skipped, DONE
        except Exception as exc:
            self.status, self.error = FAILED, f"{exc.__class__.__name__}: {exc}"
            log.error("backfill from the app failed", exc_info=True)
        finally:
            self._done.set()


_JOBS: dict[str, BackfillJob] = {}
_LOCK = threading.Lock()


def start_backfill(settings: Settings, days: int, interval: float) -> BackfillJob:
    """Backfill the ``days`` most recent complete sessions at ``interval`` seconds into the
    configured store, unless a job for that store is still running (then that job)."""
    with _LOCK:
        job = _JOBS.get(settings.db_url)
        if job is None or job.status != RUNNING:
            job = _JOBS[settings.db_url] = BackfillJob(settings, days, interval).start()
        return job


def current_job(settings: Settings) -> BackfillJob | None:
    """The last job started for the configured store, if any."""
    with _LOCK:
        return _JOBS.get(settings.db_url)
