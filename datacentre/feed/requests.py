"""Answering client requests (``ping``, ``get_latest``, ``get_history``, ...) off the event loop.

:class:`RequestAnswers` is mixed into :class:`~datacentre.feed.server.FeedServer`; it
uses ``store``. Store reads run in the loop's worker threads (:func:`in_thread`), so a
slow database never stalls the feed or pings; big replies are encoded there too.
"""
from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from datacentre.core.errors import ProtocolError, StoreError
from datacentre.feed import protocol

if TYPE_CHECKING:
    from datacentre.feed.server import Client
    from datacentre.store.tickstore import TickStore

log = logging.getLogger(__name__)


class PoolClosed(Exception):
    """The worker threads take no more work: the interpreter is exiting."""


async def in_thread(func, /, *args):
    """``func(*args)`` in the loop's worker threads, so blocking store I/O never stalls the loop.

    Raises :class:`PoolClosed`, not the pool's ``RuntimeError``, when the pool
    refuses the work: ``concurrent.futures`` does that from the start of
    interpreter exit (before ``atexit`` handlers run), and it is no store failure.
    """
    loop = asyncio.get_running_loop()
    try:
        future = loop.run_in_executor(None, functools.partial(func, *args))
    except RuntimeError as exc:
        raise PoolClosed(str(exc)) from exc
    return await future


class RequestAnswers:
    """A client's text in, the reply's text out (None: no reply)."""

    store: TickStore

    async def _answer(self, client: Client, message: str | bytes) -> str | None:
        rid = None
        try:
            client.state.admit(message)
            request = protocol.parse_request(message)
            rid = request.id
            return await self._dispatch(client, request)
        except ProtocolError as exc:
            return protocol.error_reply(exc)
        except PoolClosed:
            return protocol.error_message("internal_error", "the server is shutting down; "
                                                            "reconnect in a moment", rid)
        except StoreError as exc:
            log.warning("client %s: store failed answering a request", client.peer, exc_info=True)
            return protocol.error_message("internal_error", f"the store failed: {exc}; try again",
                                          rid)
        except Exception:
            log.error("client %s: request %.200r failed", client.peer, message, exc_info=True)
            return protocol.error_message("internal_error", "the server failed to answer; see its log",
                                          rid)

    async def _dispatch(self, client: Client, request: protocol.Request) -> str:
        kind, rid = request.type, request.id
        if kind == "ping":
            return protocol.pong_message(rid)
        if kind in ("subscribe", "unsubscribe", "set_format"):
            return client.state.apply(request)
        if kind == "get_latest":
            tick = await self._latest(request.symbol)
            if tick is None:
                return protocol.error_message("unknown_symbol", f"no ticks stored for {request.symbol!r}",
                                              rid)
            return protocol.latest_message(tick, rid)
        if kind == "get_symbols":
            return protocol.symbols_message(await in_thread(self.store.symbols), rid)
        if kind == "get_latest_all":
            return protocol.latest_all_message(await self._latest_all(request.limit), rid)
        if kind == "get_history":
            return await self._history(request)
        return protocol.error_message("unknown_type", f"{kind!r} is only available in replay mode "
                                                      f"(python -m datacentre replay)", rid)

    async def _latest(self, symbol: str) -> Mapping[str, Any] | None:
        return await in_thread(self.store.latest, symbol)

    async def _latest_all(self, limit: int | None) -> Sequence[Mapping[str, Any]]:
        return await in_thread(self.store.latest_all, limit)

    async def _history(self, request: protocol.Request) -> str:
        # Encoded in the worker thread too: 10,000 ticks take ~50 ms to encode, which on the
        # loop would hold up every other client's ticks.
        return await in_thread(self._history_reply, request)

    def _history_reply(self, request: protocol.Request) -> str:
        limit = request.limit or protocol.DEFAULT_HISTORY_LIMIT
        rows = self.store.history(request.symbol, request.start_ts, request.end_ts, limit + 1)
        if not rows and not self.store.has_symbol(request.symbol):
            return protocol.error_message("unknown_symbol", f"no ticks stored for {request.symbol!r}",
                                          request.id)
        return protocol.history_message(request.symbol, rows[:limit], start_ts=request.start_ts,
                                        end_ts=request.end_ts, truncated=len(rows) > limit,
                                        request_id=request.id)
