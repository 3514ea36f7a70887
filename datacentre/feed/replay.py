"""Replay a stored time range over the WebSocket protocol, as if it were live.

``python -m datacentre replay --start ISO --end ISO [--speed X] [--port P]`` runs a
:class:`Replayer`: the same server, requests, framing and slow-client rules as
the live :class:`~datacentre.feed.broadcaster.Broadcaster` (it is the same
:class:`~datacentre.feed.server.FeedServer`), fed from ``store.timestamps(start,
end)`` and each snapshot's rows instead of the id cursor.

* Playback starts when the first client connects and is shared: every client
  sees the same position, and ``pause`` / ``resume`` / ``seek`` / ``speed`` from
  any client steer it for all of them (each answers with a ``replay_status``).
* Snapshots go out in time order, spaced by their historical gap divided by
  ``speed`` (0.1 to 100; gaps longer than ``max_gap`` seconds, such as nights,
  are shortened to ``max_gap``). ``speed=0`` sends them as fast as clients read
  them: the next snapshot waits until every client's buffer has drained, and a
  client that does not drain within ``drain_timeout`` is disconnected.
* Replayed ticks keep their historical ``ts`` and carry ``"source": "replay"``.
* The welcome says ``"mode": "replay"`` with the range, speed and state. At the
  end of the range every client gets ``{"type": "replay_end", ...}``; the server
  stays up (a ``seek`` starts again) until it is stopped.
* ``get_latest`` / ``get_latest_all`` answer with what the replay has sent so far
  (since the last seek; ``get_latest_all`` in the live broadcaster's order, contracts
  expired at the replayed moment last), so a client sees a consistent past; ``get_history`` and
  ``get_symbols`` read the store as usual.
"""
from __future__ import annotations

import asyncio
import bisect
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from datacentre.core.config import DEFAULT_WS_HOST, DEFAULT_WS_PORT
from datacentre.core.errors import ConfigError
from datacentre.core.ticks import normalize_ts, parse_ts
from datacentre.feed import protocol
from datacentre.feed.server import DEFAULT_MAX_BUFFER_BYTES, Client, FeedServer, PoolClosed, in_thread
from datacentre.feed.thread import ServerThread
from datacentre.store.tickstore import TickStore, recent_first

log = logging.getLogger(__name__)

DEFAULT_MAX_GAP = 60.0
DEFAULT_DRAIN_TIMEOUT = 10.0
#: With speed 0, the next snapshot waits until every client has less than this unsent
#: (``drain_below``), in the transport's buffer: the kernel's socket buffers come on top.
DRAIN_LOW_WATER = 64 * 1024
#: A snapshot this late (seconds) restarts the schedule instead of rushing to catch up.
MAX_LATENESS = 0.25

WAITING, PLAYING, PAUSED, ENDED = "waiting", "playing", "paused", "ended"


def check_speed(speed: float) -> float:
    if not protocol.valid_speed(speed):
        raise ConfigError(f"speed must be {protocol.SPEEDS_ALLOWED}, got {speed!r}")
    return float(speed)


class Replayer(FeedServer):
    """Serves the snapshots stored between ``start_ts`` and ``end_ts`` at ``speed``."""

    mode = "replay"

    def __init__(self, store: TickStore, start_ts: Any, end_ts: Any, *, speed: float = 1.0,
                 host: str = DEFAULT_WS_HOST, port: int = DEFAULT_WS_PORT, token: str | None = None,
                 max_gap: float | None = DEFAULT_MAX_GAP, drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
                 drain_below: int = DRAIN_LOW_WATER, max_buffer_bytes: int = DEFAULT_MAX_BUFFER_BYTES,
                 **options: Any) -> None:
        super().__init__(store, host=host, port=port, token=token,
                         max_buffer_bytes=max_buffer_bytes, **options)
        self.start_ts = normalize_ts(start_ts)
        self.end_ts = normalize_ts(end_ts)
        if self.start_ts > self.end_ts:
            raise ConfigError(f"replay start {self.start_ts} is after its end {self.end_ts}")
        self.speed = check_speed(speed)
        self.max_gap = max_gap
        self.drain_timeout = drain_timeout
        self.drain_below = drain_below
        self.state = WAITING
        self.position: str | None = None  # ts of the last snapshot sent
        self.snapshots_sent = 0
        self.ended = threading.Event()  # set at every end of the range
        self._timestamps: list[str] = []
        self._seconds: list[float] = []
        self._index = 0
        self._due = 0.0  # loop time at which snapshot _index is due
        self._remaining = 0.0  # historical seconds to the next snapshot, kept while paused
        self._replayed: dict[str, dict[str, Any]] = {}  # symbol -> last tick sent
        self._joined: asyncio.Event | None = None
        self._control: asyncio.Event | None = None
        self._prefetch: tuple[int, asyncio.Task] | None = None

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        return {"state": self.state, "speed": self.speed, "position": self.position,
                "start_ts": self.start_ts, "end_ts": self.end_ts,
                "index": self._index, "snapshots": len(self._timestamps)}

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), "replay": self.status(), "snapshots_sent": self.snapshots_sent}

    def _welcome_fields(self) -> dict[str, Any]:
        status = self.status()
        if status["state"] == WAITING:  # this very client starts the playback
            status["state"] = PLAYING
        return {"mode": self.mode, **status}

    # ------------------------------------------------------------------ requests

    def _on_join(self, client: Client) -> None:
        if self._joined is not None:
            self._joined.set()

    async def _dispatch(self, client: Client, request: protocol.Request) -> str:
        if request.type not in protocol.REPLAY_REQUESTS:
            return await super()._dispatch(client, request)
        loop = asyncio.get_running_loop()
        now = loop.time()
        if request.type == "pause":
            if self.state == PLAYING:
                self._remaining = max(0.0, self._due - now) * self.speed
                self.state = PAUSED
        elif request.type == "resume":
            if self.state == PAUSED:
                self._due = now + (self._remaining / self.speed if self.speed else 0.0)
                self.state = PLAYING
        elif request.type == "speed":
            new = request.speed or 0.0
            if self.state == PLAYING:
                left = max(0.0, self._due - now) * self.speed
                self._due = now + (left / new if new else 0.0)
            self.speed = new
        elif request.type == "seek":
            self._index = bisect.bisect_left(self._timestamps, request.ts)
            self._replayed.clear()
            self._remaining = 0.0
            self._due = now
            if self.state == ENDED:
                self.state = PLAYING
                self.ended.clear()
        log.info("replay %s by %s: %s", request.type, client.peer, self.status())
        self._signal()
        return protocol.replay_status_message(self.status(), request.id)

    async def _latest(self, symbol: str) -> Mapping[str, Any] | None:
        return self._replayed.get(symbol)

    async def _latest_all(self, limit: int | None) -> Sequence[Mapping[str, Any]]:
        # as the live broadcaster orders them, with "expired" judged at the replayed moment
        newest = {s: t["ts"] for s, t in self._replayed.items()}
        moment = max((parse_ts(ts) for ts in newest.values()), default=None)
        if moment is None:
            return []
        return [self._replayed[s] for s in recent_first(newest, moment)][:limit]

    def _signal(self) -> None:
        if self._control is not None:
            self._control.set()

    # ------------------------------------------------------------------ playback

    async def _listen(self) -> None:
        self._joined = asyncio.Event()
        self._control = asyncio.Event()
        self._timestamps = await in_thread(self.store.timestamps, self.start_ts, self.end_ts)
        self._seconds = [parse_ts(ts).timestamp() for ts in self._timestamps]
        await super()._listen()

    async def _feed(self) -> None:
        joined, control = self._joined, self._control
        assert joined is not None and control is not None  # set by _listen()
        loop = asyncio.get_running_loop()
        log.info("replay of %s .. %s: %d snapshots at %gx; waiting for a client", self.start_ts,
                 self.end_ts, len(self._timestamps), self.speed)
        await joined.wait()
        self.state = PLAYING
        self._due = loop.time()
        try:
            while True:
                control.clear()
                if self.state != PLAYING:
                    await control.wait()
                    continue
                if self._index >= len(self._timestamps):
                    self._finish()
                    continue
                delay = self._due - loop.time()
                if delay > 0:
                    try:
                        async with asyncio.timeout(delay):
                            await control.wait()
                    except TimeoutError:
                        pass
                    continue
                index = self._index
                try:
                    rows = await self._rows(index)
                except PoolClosed:
                    raise
                except Exception as exc:
                    log.warning("replay: reading snapshot %s failed; retrying",
                                self._timestamps[index], exc_info=True)
                    self.store_error = str(exc) or type(exc).__name__
                    await asyncio.sleep(1.0)
                    continue
                self.store_error = None
                if self.state != PLAYING or self._index != index:
                    continue  # paused or seeked while reading
                self._send(index, rows)
                await self._schedule_next(index, loop)
        finally:
            if self._prefetch is not None:
                _abandon(self._prefetch[1])

    async def _rows(self, index: int) -> list[dict[str, Any]]:
        pending = self._prefetch
        self._prefetch = None
        if pending is not None and pending[0] == index:
            task = pending[1]
        else:
            if pending is not None:
                _abandon(pending[1])
            task = asyncio.create_task(self._read(index))
        rows = await task
        if index + 1 < len(self._timestamps):
            self._prefetch = (index + 1, asyncio.create_task(self._read(index + 1)))
        return rows

    async def _read(self, index: int) -> list[dict[str, Any]]:
        ts = self._timestamps[index]
        return await in_thread(_replay_rows, self.store, ts)

    def _send(self, index: int, rows: list[dict[str, Any]]) -> None:
        self._publish(rows)
        for row in rows:
            self._replayed[row["symbol"]] = row
        self.position = self._timestamps[index]
        self._index = index + 1
        self.snapshots_sent += 1

    async def _schedule_next(self, index: int, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        if self.speed == 0:
            await self._drained(loop)
            self._due = loop.time()
            return
        if index + 1 >= len(self._seconds):
            return
        gap = self._seconds[index + 1] - self._seconds[index]
        if self.max_gap is not None:
            gap = min(gap, self.max_gap)
        base = self._due if now - self._due < MAX_LATENESS else now
        self._due = base + gap / self.speed

    async def _drained(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait until every client has (almost) nothing unsent; drop those that never drain."""
        deadline = loop.time() + self.drain_timeout
        while True:
            behind = [c for c in list(self._clients) if _unsent(c) >= self.drain_below]
            if not behind:
                return
            if loop.time() >= deadline:
                for client in behind:
                    self._drop(client, f"did not read for {self.drain_timeout:g} s")
                return
            await asyncio.sleep(0.002)

    def _finish(self) -> None:
        self.state = ENDED
        log.info("replay reached its end (%d snapshots sent)", self.snapshots_sent)
        self._publish_text(protocol.replay_end_message(
            start_ts=self.start_ts, end_ts=self.end_ts, position=self.position,
            snapshots=self.snapshots_sent, ticks=self.ticks_sent))
        self.ended.set()


def _abandon(task: asyncio.Task) -> None:
    """Cancel a prefetch nobody will await; a failure it already had is dropped with it
    (else asyncio logs "Task exception was never retrieved")."""
    task.cancel()
    if task.done() and not task.cancelled():
        task.exception()


def _unsent(client: Client) -> int:
    try:
        return client.ws.transport.get_write_buffer_size()
    except Exception:
        return 0


def _replay_rows(store: TickStore, ts: str) -> list[dict[str, Any]]:
    return [{**row, "source": "replay"} for row in store.iter_ticks(start_ts=ts, end_ts=ts)]


class ReplayThread(ServerThread):
    """A :class:`Replayer` on a daemon thread, with the interface of ``BroadcasterThread``.

    >>> replay = ReplayThread(store, "2026-01-02T03:45:00+00:00", "2026-01-02T10:00:00+00:00",
    ...                       speed=10, port=0).start()
    >>> replay.wait_ended(); replay.stop()
    """

    server: Replayer

    def __init__(self, store: TickStore, start_ts: Any, end_ts: Any, *, speed: float = 1.0,
                 host: str = DEFAULT_WS_HOST, port: int = DEFAULT_WS_PORT, token: str | None = None,
                 **options: Any) -> None:
        super().__init__(Replayer(store, start_ts, end_ts, speed=speed, host=host, port=port,
                                  token=token, **options))

    def start(self, timeout: float = 10) -> ReplayThread:
        super().start(timeout)
        return self

    def notify(self) -> None:
        """Nothing to do: a replay does not follow new commits (kept for interface parity)."""

    def status(self) -> dict[str, Any]:
        return self.server.status()

    def wait_ended(self, timeout: float | None = None) -> bool:
        """Block until the replay reaches the end of its range (True) or ``timeout`` passes."""
        return self.server.ended.wait(timeout)
