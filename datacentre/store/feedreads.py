"""The reads that keep the live feed exact: where the feed stands and the newest snapshot at a cursor.

:class:`FeedReads` is mixed into :class:`~datacentre.store.tickstore.TickStore` (it
uses ``_all`` and ``_scalar``). The live feed follows the store by id; a row is *live*
when its snapshot time is at or after the newest one among the rows before it
(:mod:`datacentre.feed.resume`).
These queries let any broadcaster, after any restart, work that rule out at any cursor
from the store alone, each in one index seek or one short index range whatever the size
of the store:

* the id and ``ts`` indexes are read separately (two scalar subqueries in one statement,
  so one consistent view), never ``max(id), max(ts)`` over the whole table;
* "the newest ``ts`` at or before id N" walks the ``ts`` index down from the top and stops
  at the first row at or before N. ``+id`` keeps SQLite from choosing the id range
  instead (that is a scan of every row before N and a sort).
"""
from __future__ import annotations

import sqlalchemy as sa

from datacentre.core.ticks import normalize_ts
from datacentre.store.schema import ltp_ticks

# Unary plus: the planners must not use the primary key for these conditions (see above).
_id_unindexed = sa.literal_column("+id")


class FeedReads:
    """Cursor-side reads of ``ltp_ticks`` for the broadcaster and its resumes."""

    def feed_head(self) -> tuple[int, str | None]:
        """``(newest id, newest snapshot time)``: where a broadcaster starting now stands."""
        stmt = sa.select(sa.select(sa.func.max(ltp_ticks.c.id)).scalar_subquery().label("id"),
                         sa.select(sa.func.max(ltp_ticks.c.ts)).scalar_subquery().label("ts"))
        (head,) = self._all(stmt)
        return int(head["id"] or 0), head["ts"]

    def newest_ts_through(self, last_id: int) -> str | None:
        """The newest snapshot time among the rows with ``id <= last_id`` (None if none)."""
        stmt = (sa.select(ltp_ticks.c.ts).where(_id_unindexed <= int(last_id))
                .order_by(ltp_ticks.c.ts.desc()).limit(1))
        return self._scalar(stmt)

    def first_id_since(self, ts) -> int | None:
        """The smallest id of a row whose snapshot time is at or after ``ts``."""
        stmt = sa.select(sa.func.min(_id_unindexed)).where(ltp_ticks.c.ts >= normalize_ts(ts))
        found = self._scalar(stmt)
        return None if found is None else int(found)

    def first_ts_between(self, after_id: int, through_id: int, since_ts=None) -> str | None:
        """The earliest snapshot time at or after ``since_ts`` (any, if None) among the rows
        with ``after_id < id <= through_id``; None when there is no such row."""
        stmt = sa.select(ltp_ticks.c.ts).where(_id_unindexed > int(after_id),
                                               _id_unindexed <= int(through_id))
        if since_ts is not None:
            stmt = stmt.where(ltp_ticks.c.ts >= normalize_ts(since_ts))
        return self._scalar(stmt.order_by(ltp_ticks.c.ts).limit(1))
