"""The embedded data centre the app may start; no Streamlit in here.

:func:`ensure_data_centre` starts the embedded data centre (collector +
broadcaster, :mod:`datacentre.ops.embedded`) when nothing answers at a local
broadcaster URL, at most once per process, in a thread that only records the
backfill's progress numbers for the caller to show.
"""
from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from datacentre.app.livefeed import EMBEDDED
from datacentre.clients.health import broadcaster_health
from datacentre.core.config import Settings, is_loopback

if TYPE_CHECKING:
    from datacentre.ops.embedded import DataCentre

log = logging.getLogger(__name__)


def _at_exit(stop: Callable[[], None]) -> None:
    """Run ``stop`` when the interpreter exits, before thread pools are shut down.

    The broadcaster reads the store through ``asyncio.to_thread``; plain ``atexit``
    handlers run after the interpreter has closed the thread pools to new work, so
    the broadcaster would fail its last reads. ``threading._register_atexit`` (what
    ``concurrent.futures`` itself uses) runs earlier; fall back to ``atexit``.
    """
    register = getattr(threading, "_register_atexit", None)
    try:
        if register is None:
            raise RuntimeError
        register(stop)
    except RuntimeError:
        atexit.register(stop)


CHECKING = "checking"
STARTING = "starting"
EXTERNAL = "external"
OFF = "off"
FAILED = "failed"
RETRY_FAILED_AFTER_S = 30.0


class DataCentreLauncher:
    """Decides whether this process must run the data centre, and starts it in a thread.

    ``status`` goes ``checking`` -> one of:

    * ``external``: a broadcaster answers at the URL; nothing to start;
    * ``off``: nothing answers, but the URL is not local or autostart is off (``reason`` says which);
    * ``starting`` -> ``embedded``: this process runs the data centre (``data_centre``);
    * ``failed``: starting it raised (``error``).

    ``progress`` is the backfill's ``(done, total)``, recorded by the thread for the
    app to draw; the thread itself never touches the UI.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.status = CHECKING
        self.reason = ""
        self.progress: tuple[int, int] | None = None
        self.data_centre: DataCentre | None = None
        self.error: BaseException | None = None
        self.health: dict | None = None
        self.finished_at: float | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="datacentre-autostart", daemon=True)

    def __repr__(self) -> str:
        return f"DataCentreLauncher({self.settings.ws_url!r}, status={self.status!r})"

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def embedded(self) -> bool:
        return self.status == EMBEDDED

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a decision (and the start, with its backfill); True when done."""
        return self._done.wait(timeout)

    def start(self) -> DataCentreLauncher:
        self._thread.start()
        return self

    def _record_progress(self, done: int, total: int) -> None:
        self.progress = (int(done), int(total))

    def _run(self) -> None:
        s = self.settings
        try:
            self.health = broadcaster_health(s.ws_url, token=s.ws_token)
            if self.health is not None:
                self.status, self.reason = EXTERNAL, f"a broadcaster answers at {s.ws_url}"
                return
            parts = urlsplit(s.ws_url)
            host = parts.hostname or ""
            if not s.autostart:
                self.status, self.reason = OFF, "DATACENTRE_AUTOSTART is off"
                return
            if not is_loopback(host):
                self.status, self.reason = OFF, f"{host} is not this machine; start the data centre there"
                return
            from datacentre.ops.embedded import DataCentre  # imported late: the simulator is not light

            self.status = STARTING
            local = s.with_(ws_host=host.strip("[]"), ws_port=parts.port or s.ws_port)
            dc = DataCentre(local)
            self.data_centre = dc.start(backfill_if_empty=True, progress=self._record_progress)
            # only now: a stop during the backfill would wait for it (a daemon thread, it just ends)
            _at_exit(dc.stop)
            self.status, self.reason = EMBEDDED, f"this process runs the data centre on {dc.ws_url}"
        except BaseException as exc:
            self.status, self.error = FAILED, exc
            self.reason = f"could not start the embedded data centre: {exc}"
            log.error("%s", self.reason, exc_info=True)
        finally:
            self.finished_at = time.monotonic()
            self._done.set()

    def stop(self) -> None:
        if self.data_centre is not None:
            self.data_centre.stop()


_LAUNCHERS: dict[tuple[str, str], DataCentreLauncher] = {}
_LAUNCHERS_LOCK = threading.Lock()


def ensure_data_centre(settings: Settings, *, wait: float | None = 0.0) -> DataCentreLauncher:
    """Make sure a broadcaster serves ``settings.ws_url``, starting one here if needed.

    Once per process for a given URL and database: later calls return the same
    launcher (a failed start is retried after 30 s). The start happens in a thread;
    ``wait`` seconds are spent waiting for it (None waits until it is done), and the
    caller can watch ``launcher.progress`` meanwhile.
    """
    key = (settings.ws_url, settings.db_url)
    with _LAUNCHERS_LOCK:
        launcher = _LAUNCHERS.get(key)
        stale = (launcher is not None and launcher.status == FAILED
                 and time.monotonic() - (launcher.finished_at or 0.0) > RETRY_FAILED_AFTER_S)
        if launcher is None or stale:
            launcher = _LAUNCHERS[key] = DataCentreLauncher(settings).start()
    if wait is None or wait > 0:
        launcher.wait(wait)
    return launcher


def stop_data_centres() -> None:
    """Stop every data centre this process started (tests; atexit does it at exit)."""
    with _LAUNCHERS_LOCK:
        launchers = list(_LAUNCHERS.values())
        _LAUNCHERS.clear()
    for launcher in launchers:
        launcher.wait(60)
        launcher.stop()
