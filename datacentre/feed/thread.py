"""Running a feed server on a daemon thread: the CLI, the Streamlit app and tests use it.

:class:`ServerThread` gives any :class:`~datacentre.feed.server.FeedServer` its own event
loop on a daemon thread; :meth:`ServerThread.start` returns once the port is open.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from datacentre.core.errors import ConfigError, FeedError
from datacentre.feed.server import FeedServer

log = logging.getLogger(__name__)


class ServerThread:
    """Runs a :class:`FeedServer` in its own event loop on a daemon thread."""

    def __init__(self, server: FeedServer) -> None:
        self.server = server
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r}, running={self.is_running()})"

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def url(self) -> str:
        return self.server.url

    def stats(self) -> dict[str, Any]:
        return self.server.stats()

    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 10) -> ServerThread:
        """Start serving; return once listening. Raise :class:`FeedError` if it cannot listen."""
        if self.is_running():
            return self
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._main, name=f"datacentre-{self.server.mode}",
                                        daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise FeedError(f"the {self.server.mode} server did not start within {timeout:g} s")
        if self._error is not None:
            self._thread.join(timeout)
            error = self._error
            if isinstance(error, FeedError | ConfigError):
                raise error
            raise FeedError(f"the {self.server.mode} server failed to start: {error}") from error
        return self

    def stop(self, timeout: float = 5) -> None:
        """Close every connection and stop the thread (idempotent).

        Clients get a close frame and ``STOP_GRACE`` seconds to answer it, then their
        connections are cut; ``timeout`` bounds the wait for the thread.
        """
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:
                pass
        thread.join(timeout)
        if thread.is_alive():
            log.warning("%r did not stop within %g s", self, timeout)
        else:
            self._thread = None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server thread ends (True) or ``timeout`` passes (False)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _main(self) -> None:
        try:
            asyncio.run(self._amain())
        except BaseException as exc:
            if self._ready.is_set():
                log.error("%s server stopped by an error", self.server.mode, exc_info=True)
            else:
                self._error = exc
        finally:
            self._ready.set()
            self._loop = None

    async def _amain(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        await self.server.serve(self._stop, listening=self._ready.set)
