"""Live rows and resuming: which stored rows are live, and what a reconnecting client is owed.

The live rule
    The broadcaster follows the store in id order. A row is **live** when its snapshot
    time is at or after the newest snapshot time among the rows before it (so rows of the
    current snapshot that commit late are live). Rows written with older times (a backfill,
    an import or a sync of a past day) are stored, counted, and never broadcast. The rule
    depends on the store alone, never on a broadcaster's memory, so every broadcaster on
    one database, before and after any restart, agrees on which rows are live: that is
    what lets a client resume at another broadcaster, or after a crash, exactly.
    (A store's very first rows are live whatever their time: there is nothing before them.)

Cursors
    A cursor is a store id: "every row up to here is accounted for". Ids are store-wide
    and never reused, so a cursor outlives broadcasters. A client connects with
    ``?resume=CURSOR`` (or ``?resume=now`` to receive cursors from the start) and gets,
    before the live stream, every live row after its cursor, in order.

How far back
    A resume reaches back :data:`DEFAULT_RESUME_WINDOW_S` seconds of snapshot time before
    the newest live row, and at most :data:`DEFAULT_RESUME_ROWS` ids. A cursor older than
    that gets a ``resume_gap`` notice naming the live rows it will not be sent (their
    snapshot times and ids), then everything within reach. :func:`plan_resume` works it
    out from the store.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from datacentre.core.errors import ProtocolError
from datacentre.core.ticks import format_ts, parse_ts

#: The value of ``?resume=`` that asks for cursors without resuming (a first connection).
RESUME_NOW = "now"
#: Seconds of snapshot time a resume reaches back from the newest live row.
DEFAULT_RESUME_WINDOW_S = 3600.0
#: The most store ids a resume reaches back (a watch list of thousands of symbols fills an
#: hour with millions of rows; this keeps a catch-up to a few hundred MB at worst).
DEFAULT_RESUME_ROWS = 500_000
MAX_CURSOR = 2**63 - 1


def split_live(rows: Sequence[Mapping[str, Any]], newest: str | None
               ) -> tuple[list[Mapping[str, Any]], str | None, int]:
    """``(live rows, newest snapshot time after them, rows that are not live)``.

    ``rows`` come in id order; ``newest`` is the newest snapshot time among the rows
    before them (None: there are none). Canonical timestamps compare correctly as text.
    """
    live = []
    for row in rows:
        ts = row["ts"]
        if newest is None or ts >= newest:
            live.append(row)
            newest = ts
    return live, newest, len(rows) - len(live)


def parse_resume(value: str) -> int | None:
    """A ``?resume=`` value: a cursor (a whole number from a welcome or cursor message), or
    None for :data:`RESUME_NOW`. Raises :class:`ProtocolError` (``bad_request``) otherwise."""
    text = value.strip()
    if text == RESUME_NOW:
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 19 or int(text) > MAX_CURSOR:
        raise ProtocolError("bad_request", f"resume must be a cursor (the whole number of a welcome "
                                           f"or cursor message) or {RESUME_NOW!r}, got {value[:40]!r}")
    return int(text)


class CursorStore(Protocol):
    def max_id(self) -> int: ...
    def newest_ts_through(self, last_id: int) -> str | None: ...
    def first_id_since(self, ts: str) -> int | None: ...
    def first_ts_between(self, after_id: int, through_id: int, since_ts: str | None = None) -> str | None: ...


@dataclass(frozen=True, slots=True)
class ResumePlan:
    """Where a resume starts: rows with ``id > start`` are sent; ``newest`` is the newest
    snapshot time at ``start`` (the live rule's state there); ``gap`` holds the fields of a
    ``resume_gap`` notice, or None when nothing live is out of reach."""

    start: int
    newest: str | None
    gap: dict[str, Any] | None = None


def plan_resume(store: CursorStore, cursor: int, *, head: int, newest: str | None,
                window_s: float = DEFAULT_RESUME_WINDOW_S,
                max_rows: int = DEFAULT_RESUME_ROWS) -> ResumePlan:
    """Plan the resume of a client at ``cursor`` for a broadcaster at ``head`` (its cursor)
    whose newest live snapshot time is ``newest``. Store reads: run it off the event loop."""
    top = store.max_id() if cursor > head else head
    if cursor > top:
        return ResumePlan(head, newest, {
            "cursor": cursor, "resume_cursor": head, "start_ts": None, "end_ts": None,
            "message": f"cursor {cursor} is ahead of this store (newest id {top}): it comes from "
                       f"another store; live from now on"})
    at = store.newest_ts_through(cursor)
    start = max(cursor, head - max_rows)
    if newest is not None:
        reach_ts = format_ts(parse_ts(newest) - timedelta(seconds=window_s))
        if at is None or at < reach_ts:
            first = store.first_id_since(reach_ts)
            start = max(start, head if first is None else first - 1)
    if start == cursor:
        return ResumePlan(cursor, at)
    # The first row after the cursor that is at least as new as ``at`` is live: if there
    # is one before ``start``, live rows are out of reach.
    missed_from = store.first_ts_between(cursor, start, at)
    newest_at_start = store.newest_ts_through(start)
    if missed_from is None:
        return ResumePlan(start, newest_at_start)
    return ResumePlan(start, newest_at_start, {
        "cursor": cursor, "resume_cursor": start, "start_ts": missed_from, "end_ts": newest_at_start,
        "message": f"live rows from {missed_from} to {newest_at_start} are older than a resume "
                   f"reaches ({window_s:g} s or {max_rows:,} rows): read them with get_history "
                   f"or from the store"})
