"""Opening a tick store that already exists, without ever creating one.

Clients, ``status`` and ``verify`` read whatever store the collector writes, if there
is one: a missing SQLite file, or one without the ``ltp_ticks`` table, means "no store
yet" and must stay untouched (no file, no folder, no table is created). The check
opens SQLite read-only, through the same URI as :meth:`TickStore.query
<datacentre.store.tickstore.TickStore.query>`, so a folder named like ``C# ticks?100%``
is found.
"""
from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import sqlalchemy as sa

from datacentre.core.config import default_db_url
from datacentre.core.errors import StoreError
from datacentre.store.readonly import connect_read_only
from datacentre.store.schema import sqlite_path
from datacentre.store.tickstore import TickStore

log = logging.getLogger(__name__)

#: Seconds the existence check waits for a store that a writer holds locked.
CHECK_TIMEOUT_S = 5.0


def _sqlite_has_ticks(path: Path) -> bool:
    try:
        conn = connect_read_only(path, timeout=CHECK_TIMEOUT_S)
        try:
            found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                                 "AND name = 'ltp_ticks'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        log.warning("cannot read the tick store %s: %s", path, exc)
        return False
    return found is not None


def open_existing_store(db_url: str | None = None) -> TickStore | None:
    """Open the tick store at ``db_url`` (default: the configured one) if it already exists.

    Returns None when there is no such store: for SQLite when the file is missing or
    holds no ``ltp_ticks`` table, for other databases when they cannot be reached.
    Never creates a database or a table.
    """
    url = db_url or default_db_url()
    try:
        backend = sa.engine.make_url(url).get_backend_name()
    except sa.exc.ArgumentError as exc:
        raise StoreError(f"invalid database URL {url!r}: use sqlite:///path/to/file.db or "
                         f"postgresql://user@host/db") from exc
    if backend == "sqlite":
        path = sqlite_path(url)
        if path is None or not path.is_file() or not _sqlite_has_ticks(path):
            return None
        return TickStore(url, create=False)
    store = TickStore(url, create=False)
    try:
        if sa.inspect(store.engine).has_table("ltp_ticks"):
            return store
    except sa.exc.SQLAlchemyError as exc:
        log.warning("cannot reach the tick store %r: %s", store, getattr(exc, "orig", None) or exc)
    store.close()
    return None
