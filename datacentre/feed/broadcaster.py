"""The WebSocket broadcaster: every new row of the tick store, live, to every client.

:class:`Broadcaster` is a :class:`~datacentre.feed.server.FeedServer` (connections,
requests, fan-out, ``/health``, auth) fed from the store's id cursor.

How the live feed follows the store
    By id (``store.after(cursor)``), never by timestamp, so every committed row
    goes out exactly once and in order, whichever process wrote it. It starts at
    the current ``max_id()`` (new clients get only new ticks), reads every
    ``poll_interval`` seconds and at once when :meth:`Broadcaster.notify` is
    called (an in-process collector calls it right after each commit). Store
    reads run in a worker thread, so a slow database never stalls pings.

Push on PostgreSQL
    Every write transaction of the store sends a ``NOTIFY`` as it commits, and
    each broadcaster ``LISTEN``s on a connection of its own
    (:class:`~datacentre.store.notify.CommitListener`), which calls
    :meth:`Broadcaster.notify`: a collector in another process, or at another
    site, has its snapshot on every broadcaster's clients within milliseconds of
    the commit. While the listener is connected the poll slows to
    ``safety_poll`` seconds, a safety net that costs next to nothing; when it
    loses its connection the broadcaster polls every ``poll_interval`` again
    until it is back. SQLite has no notifications: there it polls.

"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from datacentre.core.config import DEFAULT_WS_HOST, DEFAULT_WS_PORT
from datacentre.core.errors import ConfigError
from datacentre.feed.server import DEFAULT_MAX_BUFFER_BYTES, FeedServer, PoolClosed, in_thread
from datacentre.feed.thread import ServerThread
from datacentre.store.notify import CommitListener
from datacentre.store.tickstore import TickStore

log = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL = 0.05
#: Seconds between reads while commit notifications arrive (PostgreSQL LISTEN).
DEFAULT_SAFETY_POLL = 1.0
READ_BATCH = 10_000
MAX_READ_BACKOFF = 2.0


class Broadcaster(FeedServer):
    """The live feed: follows the store's id cursor and fans new rows out at once.

    >>> asyncio.run(Broadcaster(TickStore()).serve())
    """

    mode = "live"

    def __init__(self, store: TickStore, *, host: str = DEFAULT_WS_HOST, port: int = DEFAULT_WS_PORT,
                 token: str | None = None, poll_interval: float = DEFAULT_POLL_INTERVAL,
                 max_buffer_bytes: int = DEFAULT_MAX_BUFFER_BYTES, read_batch: int = READ_BATCH,
                 listen: bool = True, safety_poll: float = DEFAULT_SAFETY_POLL,
                 **options: Any) -> None:
        super().__init__(store, host=host, port=port, token=token,
                         max_buffer_bytes=max_buffer_bytes, **options)
        if not poll_interval > 0:
            raise ConfigError(f"poll_interval must be positive, got {poll_interval}")
        self.poll_interval = float(poll_interval)
        self.listen = listen
        self.safety_poll = max(float(safety_poll), self.poll_interval)
        self._listener: CommitListener | None = None
        self.read_batch = int(read_batch)
        self.cursor: int | None = None
        self._wake: asyncio.Event | None = None

    def notify(self) -> None:
        """Read the store now instead of at the next poll. Safe from any thread."""
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(wake.set)
        except RuntimeError:  # the loop closed in between: nothing left to wake
            pass

    @property
    def listening(self) -> bool:
        """True while commit notifications arrive (the poll is only a safety net then)."""
        return self._listener is not None and self._listener.listening

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), "cursor": self.cursor, "listening": self.listening}

    async def _listen(self) -> None:
        self._wake = asyncio.Event()
        if self.listen:
            self._listener = self.store.commit_listener(self.notify)
            if self._listener is not None:
                # LISTEN is active before the starting cursor is read: no commit falls between.
                await in_thread(self._listener.start)
        # The starting point is fixed before anyone can connect or start() returns, so a row
        # committed right after start() is never mistaken for an old one.
        self.cursor = await self._read(self.store.max_id)
        await super()._listen()

    async def _feed(self) -> None:
        wake = self._wake
        assert wake is not None  # set by _listen()
        while self.cursor is None:
            await self._pause(wake)
            self.cursor = await self._read(self.store.max_id)
        log.info("following the store from id %d", self.cursor)
        while True:
            # Cleared before reading: a notify() during the read makes the next wait return at once.
            wake.clear()
            rows = await self._read(self.store.after, self.cursor, self.read_batch)
            if rows:
                self.cursor = rows[-1]["id"]
                self._publish(rows)
                if len(rows) >= self.read_batch:
                    await asyncio.sleep(0)  # let pings and requests through between big batches
                    continue
            if rows is None:
                await self._pause(wake)
                continue
            try:
                async with asyncio.timeout(self.safety_poll if self.listening else self.poll_interval):
                    await wake.wait()
            except TimeoutError:
                pass

    async def _close(self) -> None:
        try:
            await super()._close()
        finally:
            listener, self._listener = self._listener, None
            if listener is not None:
                try:
                    await in_thread(listener.stop)
                except PoolClosed:  # the interpreter is exiting: tell the thread, do not wait
                    listener.stop(timeout=0)

    async def _read(self, func, *args):
        """Run a store read in a worker thread; None (logged once per outage) if it fails."""
        try:
            result = await in_thread(func, *args)
        except PoolClosed:
            raise
        except Exception as exc:
            if self.store_error is None:
                log.warning("store read failed; retrying until it works", exc_info=True)
            self.store_error = str(exc) or type(exc).__name__
            return None
        if self.store_error is not None:
            log.info("store readable again")
            self.store_error = None
        return result

    async def _pause(self, wake: asyncio.Event) -> None:
        """Back off after a failed read (a notify() does not cut it short)."""
        await asyncio.sleep(min(MAX_READ_BACKOFF, max(self.poll_interval * 10, 0.5)))
        wake.clear()


class BroadcasterThread(ServerThread):
    """A :class:`Broadcaster` on a daemon thread (the CLI, the Streamlit app, tests).

    >>> feed = BroadcasterThread(store, port=0).start()
    >>> feed.url, feed.notify(), feed.stop()
    """

    server: Broadcaster

    def __init__(self, store: TickStore, *, host: str = DEFAULT_WS_HOST, port: int = DEFAULT_WS_PORT,
                 token: str | None = None, **options: Any) -> None:
        super().__init__(Broadcaster(store, host=host, port=port, token=token, **options))

    def start(self, timeout: float = 10) -> BroadcasterThread:
        super().start(timeout)
        return self

    def notify(self) -> None:
        """Push newly committed rows now (thread-safe; call it right after a commit)."""
        self.server.notify()
