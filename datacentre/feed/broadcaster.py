"""The WebSocket broadcaster: every new live row of the tick store, to every client.

:class:`Broadcaster` is a :class:`~datacentre.feed.server.FeedServer` (connections,
requests, fan-out, ``/health``, auth) fed from the store's id cursor.

How the live feed follows the store
    By id (``store.after(cursor)``), never by timestamp, so every committed row
    is seen exactly once and in order, whichever process wrote it. Only **live**
    rows go out: a row whose snapshot time is older than the newest already seen
    (a backfill, an import, a sync of a past day) is stored and counted
    (``past_rows`` in ``/health``), never broadcast; see :mod:`datacentre.feed.resume`.
    It starts at the current newest id (new clients get only new ticks), reads
    every ``poll_interval`` seconds and at once when :meth:`Broadcaster.notify` is
    called (an in-process collector calls it right after each commit). Store
    reads run in a worker thread, so a slow database never stalls pings.

Resuming
    Every welcome carries a cursor (a store id). A client that connects with
    ``?resume=CURSOR`` is sent, from the store, every live row after it, in order
    and paced by how fast it reads, then joins the live stream with nothing lost
    or repeated in between; it and clients that connect with ``?resume=now`` get a
    ``cursor`` message after each batch. Because the cursor and the live rule come
    from the store, this holds across a restart and between the broadcasters of
    one PostgreSQL database.

Push on PostgreSQL
    Every write transaction of the store sends a ``NOTIFY`` as it commits, and
    each broadcaster ``LISTEN``s on a connection of its own
    (:class:`~datacentre.store.notify.CommitListener`), which calls
    :meth:`Broadcaster.notify`: a collector in another process, or at another
    site, has its snapshot on every broadcaster's clients within milliseconds of
    the commit. While the listener is connected the poll slows to
    ``safety_poll`` seconds, a safety net that costs next to nothing; when it
    loses its connection the broadcaster polls every ``poll_interval`` again
    until it is back.

Commits on SQLite
    SQLite has no notifications, so the broadcaster asks the file every
    ``probe_interval`` seconds (2 ms) whether anything was committed (``PRAGMA
    data_version``: microseconds, no lock; :class:`~datacentre.store.notify.DataVersionProbe`)
    and reads the store only when the answer is yes, or every ``safety_poll``
    anyway. A collector in another process has its snapshot on the clients within a
    few milliseconds of the commit, and an idle feed costs next to nothing.

"""
from __future__ import annotations

import asyncio
import logging
import time
from functools import partial
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from datacentre.core.config import DEFAULT_WS_HOST, DEFAULT_WS_PORT
from datacentre.core.errors import ConfigError
from datacentre.feed import fanout, protocol, resume, slow
from datacentre.feed.server import DEFAULT_MAX_BUFFER_BYTES, Client, FeedServer, PoolClosed, in_thread
from datacentre.feed.thread import ServerThread
from datacentre.store.notify import CommitListener
from datacentre.store.tickstore import TickStore

log = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL = 0.05
#: Seconds between SQLite's commit probes (``data_version``) while the feed is idle.
DEFAULT_PROBE_INTERVAL = 0.002
#: Seconds between reads while commit notifications arrive (PostgreSQL LISTEN).
DEFAULT_SAFETY_POLL = 1.0
READ_BATCH = 10_000
#: Rows per read of a catch-up: each is sent and drained before the next is read.
CATCH_UP_BATCH = 2_000
MAX_READ_BACKOFF = 2.0
INTERNAL_ERROR = 1011


class Broadcaster(FeedServer):
    """The live feed: follows the store's id cursor and fans new rows out at once.

    >>> asyncio.run(Broadcaster(TickStore()).serve())
    """

    mode = "live"

    def __init__(self, store: TickStore, *, host: str = DEFAULT_WS_HOST, port: int = DEFAULT_WS_PORT,
                 token: str | None = None, poll_interval: float = DEFAULT_POLL_INTERVAL,
                 max_buffer_bytes: int = DEFAULT_MAX_BUFFER_BYTES, read_batch: int = READ_BATCH,
                 listen: bool = True, safety_poll: float = DEFAULT_SAFETY_POLL,
                 probe_interval: float = DEFAULT_PROBE_INTERVAL,
                 resume_window: float = resume.DEFAULT_RESUME_WINDOW_S,
                 resume_rows: int = resume.DEFAULT_RESUME_ROWS, **options: Any) -> None:
        super().__init__(store, host=host, port=port, token=token,
                         max_buffer_bytes=max_buffer_bytes, **options)
        if not poll_interval > 0:
            raise ConfigError(f"poll_interval must be positive, got {poll_interval}")
        self.poll_interval = float(poll_interval)
        self.listen = listen
        self.safety_poll = max(float(safety_poll), self.poll_interval)
        self._listener: CommitListener | None = None
        self.probe_interval = min(float(probe_interval), self.poll_interval)
        self._probe = store.change_probe() if listen else None
        self._probe_timer: asyncio.TimerHandle | None = None
        self.read_batch = int(read_batch)
        if not resume_window > 0 or resume_rows < 1:
            raise ConfigError(f"resume_window and resume_rows must be positive, got {resume_window}, "
                              f"{resume_rows}")
        self.resume_window = float(resume_window)
        self.resume_rows = int(resume_rows)
        self.cursor: int | None = None
        self.newest_ts: str | None = None  # the newest snapshot time seen: the live rule's state
        self.past_rows = 0
        self.resumes = 0
        self.resume_gaps = 0
        self.resent_rows = 0
        self._catch_ups: set[asyncio.Task] = set()
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
        return {**super().stats(), "cursor": self.cursor, "listening": self.listening,
                "newest_ts": self.newest_ts, "past_rows": self.past_rows, "resumes": self.resumes,
                "resume_gaps": self.resume_gaps, "resent_rows": self.resent_rows,
                "resume_window_s": self.resume_window}

    async def _listen(self) -> None:
        self._wake = asyncio.Event()
        if self.listen:
            self._listener = self.store.commit_listener(self.notify)
            if self._listener is not None:
                # LISTEN is active before the starting cursor is read: no commit falls between.
                await in_thread(self._listener.start)
        # The starting point is fixed before anyone can connect or start() returns, so a row
        # committed right after start() is never mistaken for an old one.
        await self._start_position()
        self._look_for_commits()
        await super()._listen()

    async def _start_position(self) -> None:
        head = await self._read(self.store.feed_head)
        if head is not None:
            self.cursor, self.newest_ts = head
            # the welcome and /health say where the market comes from before the next row does
            newest = await self._read(self.store.after, max(self.cursor - 1, 0), 1) if self.cursor else None
            if newest:
                self.last_source = newest[-1].get("source")

    async def _feed(self) -> None:
        wake = self._wake
        assert wake is not None  # set by _listen()
        while self.cursor is None:
            await self._pause(wake)
            await self._start_position()
        log.info("following the store from id %d", self.cursor)
        while True:
            # Cleared before reading: a notify() during the read makes the next wait return at once.
            wake.clear()
            rows = await self._read(self.store.after, self.cursor, self.read_batch)
            if rows:
                self.cursor = rows[-1]["id"]
                live, self.newest_ts, past = resume.split_live(rows, self.newest_ts)
                self.past_rows += past
                self._publish(live, cursor=self.cursor)
                if len(rows) >= self.read_batch:
                    await asyncio.sleep(0)  # let pings and requests through between big batches
                    continue
            if rows is None:
                await self._pause(wake)
                continue
            await self._idle(wake)

    async def _idle(self, wake: asyncio.Event) -> None:
        """Wait for a reason to read: a notify() (a commit pushed by LISTEN or seen by the
        probe included), or the poll's time: only a safety net while commits are watched."""
        watched = self.listening or self._probe is not None
        try:
            async with asyncio.timeout(self.safety_poll if watched else self.poll_interval):
                await wake.wait()
        except TimeoutError:
            pass

    def _look_for_commits(self) -> None:
        """Every ``probe_interval`` on the event loop: wake the feed when a commit reached the file."""
        if self._probe is None:
            return
        if self._probe.changed() and self._wake is not None:
            self._wake.set()
        self._probe_timer = asyncio.get_running_loop().call_later(self.probe_interval, self._look_for_commits)

    # ------------------------------------------------------------------ resuming

    def _accept(self, query: dict[str, list[str]]) -> None:
        for value in query.get("resume", ()):
            resume.parse_resume(value)

    def _prepare(self, client: Client) -> dict[str, Any]:
        request = client.ws.request
        values = parse_qs(urlsplit(request.path).query).get("resume") if request is not None else None
        if not values:
            return {"cursor": self.cursor}
        client.resume = True
        client.resume_from = resume.parse_resume(values[-1])
        return {"cursor": self.cursor if client.resume_from is None else client.resume_from}

    def _admit(self, client: Client) -> None:
        if client.resume_from is None:
            super()._admit(client)
            return
        self.resumes += 1
        task = asyncio.create_task(self._catch_up(client), name=f"catch-up {client.peer}")
        self._catch_ups.add(task)
        task.add_done_callback(self._catch_ups.discard)

    async def _catch_up(self, client: Client) -> None:
        """Send ``client`` the live rows after its cursor from the store, then let it join the feed.

        Each batch is drained before the next is read, so a client that reads slowly is
        paced, not cut off (while it keeps reading). The join happens in the step that
        sees the catch-up reach the feed's cursor: no row can be published in between.
        """
        ws, sent = client.ws, 0
        try:
            while self.cursor is None:  # the store has been unreadable since the start
                await asyncio.sleep(self.poll_interval)
            plan = await in_thread(partial(resume.plan_resume, self.store, client.resume_from,
                                           head=self.cursor, newest=self.newest_ts,
                                           window_s=self.resume_window, max_rows=self.resume_rows))
            if plan.gap is not None:
                self.resume_gaps += 1
                log.info("client %s resumes from %s: %s", client.peer, client.resume_from,
                         plan.gap["message"])
                self._send_text(client, protocol.resume_message("resume_gap", **plan.gap))
            position, newest = plan.start, plan.newest
            while ws.state is State.OPEN and not client.dropped:
                head = self.cursor
                if position == head:
                    client.resume_from = None
                    client.drain.drained_at = time.monotonic()  # live from here: the stall clock starts
                    self._send_text(client, protocol.resume_message("resumed", cursor=position, rows=sent))
                    super()._admit(client)
                    return
                if position > head:  # a cursor from another broadcaster that is ahead of this one
                    self.notify()
                    await asyncio.sleep(self.poll_interval)
                    continue
                rows = await self._read(self.store.after, position, CATCH_UP_BATCH, head)
                if rows is None:
                    await asyncio.sleep(MAX_READ_BACKOFF)
                    continue
                live, newest, _ = resume.split_live(rows, newest)
                position = rows[-1]["id"] if rows else head
                blob, count = fanout.blobs_for(live, [client.state.key])[client.state.key]
                marker = protocol.text_frame(protocol.resume_message("cursor", cursor=position).encode())
                self._write(client, blob + marker, count + 1)
                sent += len(live)
                self.resent_rows += len(live)
                await slow.drained(ws)
        except (ConnectionClosed, OSError):
            pass
        except PoolClosed:
            log.info("the interpreter is exiting: catch-up of %s abandoned", client.peer)
        except Exception:
            log.error("catch-up of client %s failed; disconnecting it", client.peer, exc_info=True)
            self._drop(client, "the server failed to resume this connection", code=INTERNAL_ERROR)

    async def _close(self) -> None:
        for task in list(self._catch_ups):
            task.cancel()
        try:
            await super()._close()
        finally:
            if self._probe_timer is not None:
                self._probe_timer.cancel()
            if self._probe is not None:
                self._probe.close()
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
