"""Slow consumers: how much a client has left unsent, when that counts as stalled, and the cut.

A client that stops reading is first absorbed by the kernel (its receive buffer, then our
socket's send buffer, a few MiB on loopback), then by the transport's buffer in this
process. :func:`unsent_bytes` counts both sides that live on this machine: the
transport's buffer and the socket's send queue (``TIOCOUTQ`` on Linux; elsewhere the
transport alone). A client is **stalled** when its unsent data has not drained below
:data:`DRAINED_BELOW` for ``stall_timeout`` seconds (a client catching up on a resume,
which the server paces, counts as draining while the kernel takes its bytes); it is
**too far behind** when the transport holds more than the byte limit. Either way it is
cut: a close frame with a code and reason goes out behind the backlog (a client that is
merely slow reads it), and :data:`CLOSE_GRACE` seconds later the connection is aborted
(one that never reads never would). A client with nothing to send is never stalled;
websockets' pings notice a dead idle connection.
"""
from __future__ import annotations

import asyncio
import logging
import struct
from dataclasses import dataclass

from websockets.asyncio.server import ServerConnection
from websockets.protocol import State

try:  # Unix: the socket's send queue can be read; elsewhere only the transport's buffer
    import fcntl
    import termios
    _OUTQ = termios.TIOCOUTQ
except (ImportError, AttributeError):
    fcntl = None
    _OUTQ = None

log = logging.getLogger(__name__)

#: Seconds a client's unsent data may stay undrained before the client is cut.
DEFAULT_STALL_TIMEOUT = 5.0
#: Unsent bytes at or below which a client counts as drained (a snapshot in flight).
DRAINED_BELOW = 64 * 1024
#: Seconds between looks at every client's unsent data.
WATCH_PERIOD = 0.25
#: Seconds a cut client's close frame gets before the connection is aborted.
CLOSE_GRACE = 1.0
#: The close code of a cut client (policy violation: the feed's pace is the policy).
SLOW_CLOSE_CODE = 1008
_REASON_BYTES = 123  # RFC 6455: a close reason fits in a control frame


def kernel_unsent(transport: asyncio.BaseTransport) -> int:
    """Bytes in the socket's send queue not yet taken by the peer (0 where unknown)."""
    sock = transport.get_extra_info("socket")
    if sock is None or _OUTQ is None:
        return 0
    try:
        return struct.unpack("i", fcntl.ioctl(sock.fileno(), _OUTQ, b"\0\0\0\0"))[0]
    except (OSError, ValueError, AttributeError):
        return 0


def unsent_bytes(transport: asyncio.WriteTransport) -> int:
    """What a client has not read yet, as far as this machine knows."""
    try:
        return transport.get_write_buffer_size() + kernel_unsent(transport)
    except (OSError, RuntimeError, AttributeError):
        return 0


@dataclass(slots=True)
class DrainWatch:
    """When a client last drained, and how far its reading has got (per connection)."""

    drained_at: float
    taken: int = 0  # bytes the client had taken (written minus unsent) at the last look

    def look(self, now: float, written: int, unsent: int, *, pacing: bool) -> float:
        """Note one look; return the seconds the client has gone without draining.

        ``pacing``: the server waits for this client before writing more (a catch-up), so
        any progress counts as draining.
        """
        taken = written - unsent
        if unsent <= DRAINED_BELOW or (pacing and taken > self.taken):
            self.drained_at = now
        self.taken = max(self.taken, taken)
        return now - self.drained_at


async def drained(ws: ServerConnection, below: int = DRAINED_BELOW, poll: float = 0.005) -> None:
    """Wait until ``ws`` has at most ``below`` bytes unsent, kernel included, or is closed.

    For a catch-up, which writes the next batch only then: what it has in flight stays
    small, so the client joins the live feed with nothing of the catch-up left unsent.
    """
    await ws.drain()
    while ws.state is State.OPEN and unsent_bytes(ws.transport) > below:
        await asyncio.sleep(poll)


def verdict(undrained_s: float, buffered: int, *, stall_timeout: float, max_buffer_bytes: int,
            unsent: int = 0) -> str | None:
    """Why a client must be cut, or None (``unsent``, kernel included, only goes in the reason)."""
    if buffered > max_buffer_bytes:
        return f"too slow: {buffered:,} bytes unsent (limit {max_buffer_bytes:,})"
    if undrained_s > stall_timeout:
        return (f"too slow: {unsent:,} bytes undrained for {undrained_s:.1f} s "
                f"(limit {stall_timeout:g} s)")
    return None


def close_behind_backlog(ws: ServerConnection, code: int, reason: str, grace: float | None = None) -> None:
    """Queue a close frame after whatever is unsent, then abort the connection ``grace`` s
    (default :data:`CLOSE_GRACE`) later.

    Not ``ws.close()``: that waits for the backlog to drain before it starts its own timeout.
    """
    try:
        if ws.protocol.state is State.OPEN:
            ws.protocol.send_close(code, reason.encode()[:_REASON_BYTES].decode(errors="ignore"))
            ws.send_data()
    except Exception:
        log.debug("could not queue a close frame", exc_info=True)
    transport = ws.transport
    asyncio.get_running_loop().call_later(CLOSE_GRACE if grace is None else grace, transport.abort)
