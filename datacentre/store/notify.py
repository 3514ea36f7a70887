"""How readers learn of commits: ``NOTIFY``/``LISTEN`` on PostgreSQL, ``data_version`` on SQLite.

On SQLite, :class:`DataVersionProbe` tells in microseconds whether any other connection
(another process included) has committed since it last looked, so a broadcaster can look
every few milliseconds and read the store only when there is something to read.

On PostgreSQL, push instead of poll: ``NOTIFY`` at each commit, ``LISTEN`` in every broadcaster.

Each write transaction of the store queues ``pg_notify('datacentre_ticks', <schema>)``
before it commits. PostgreSQL delivers a notification only when (and if) its
transaction commits, in commit order, to every session listening on the channel
in that database: so any number of broadcasters, at any number of sites, hear of
a snapshot the moment it is readable, and never of one that was rolled back.

The payload is the writer's schema, so stores living side by side in one
database (one schema each) ignore each other's commits. A notification carries
no rows: the listener only wakes its broadcaster, which reads the rows by id as
it always does. Notifications are a hint, never the record: a listener that
loses its connection says so (the broadcaster goes back to fast polling) and
reconnects with backoff, and the broadcaster keeps a slow poll running anyway.
"""
from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import psycopg
import sqlalchemy as sa

from datacentre.store.readonly import connect_read_only

log = logging.getLogger(__name__)

CHANNEL = "datacentre_ticks"
#: How listener sessions show in ``pg_stat_activity``: this, a space and the store's schema.
APPLICATION_NAME = "datacentre-listen"
#: How long one wait for notifications lasts before the thread checks for a stop.
WAIT_SLICE_S = 0.2
MAX_RECONNECT_DELAY_S = 5.0


class DataVersionProbe:
    """``changed()`` is True when a commit reached the SQLite file at ``path`` since the last
    call (and on the first): ``PRAGMA data_version`` on a read-only connection of its own,
    which changes with every commit made by any other connection. About 12 microseconds
    a call (measured beside a writer), without a lock: cheap enough for an event loop to
    call every few milliseconds.
    When the probe cannot tell (the file is busy or gone), it says True: the reader reads.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._version: int | None = None

    def __repr__(self) -> str:
        return f"DataVersionProbe({str(self.path)!r}, version={self._version})"

    def changed(self) -> bool:
        try:
            if self._conn is None:
                self._conn = connect_read_only(self.path, timeout=0, check_same_thread=False)
            version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error:
            self.close()
            return True
        changed, self._version = version != self._version, version
        return changed

    def close(self) -> None:
        conn, self._conn, self._version = self._conn, None, None
        if conn is not None:
            conn.close()


def notify_commit(conn: sa.Connection) -> None:
    """Queue the commit notification in ``conn``'s transaction (sent when it commits)."""
    conn.execute(sa.text("SELECT pg_notify(:channel, current_schema())"), {"channel": CHANNEL})


def libpq_url(url: str | sa.URL) -> str:
    """A SQLAlchemy PostgreSQL URL as a libpq connection URI (what psycopg.connect takes)."""
    u = sa.engine.make_url(url).set(drivername="postgresql")
    return u.render_as_string(hide_password=False)


class CommitListener:
    """A daemon thread that LISTENs on its own connection and calls ``on_commit()`` per commit.

    ``on_commit`` runs on the listener's thread and must be quick and thread-safe
    (a broadcaster's ``notify``). It is also called once after every (re)connect,
    so commits made while the listener was away are picked up.

    >>> listener = CommitListener(store.url, broadcaster.notify).start()
    >>> listener.listening, listener.stop()
    """

    def __init__(self, url: str | sa.URL, on_commit: Callable[[], None], *,
                 connect_timeout: float = 5.0) -> None:
        self._conninfo = libpq_url(url)
        self._on_commit = on_commit
        self._connect_timeout = connect_timeout
        self._stop = threading.Event()
        self._up = threading.Event()
        self._thread: threading.Thread | None = None
        self.notifications = 0

    def __repr__(self) -> str:
        return f"CommitListener(listening={self.listening}, notifications={self.notifications})"

    @property
    def listening(self) -> bool:
        """True while LISTEN is active on a live connection."""
        return self._up.is_set()

    def start(self, wait: float = 5.0) -> CommitListener:
        """Start the thread; wait up to ``wait`` seconds for LISTEN to be active."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="datacentre-listen", daemon=True)
            self._thread.start()
        self._up.wait(wait)
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        self._up.clear()

    def _run(self) -> None:
        delay = 0.1
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True, application_name=APPLICATION_NAME,
                                     connect_timeout=max(1, round(self._connect_timeout))) as conn:
                    schema = conn.execute("SELECT current_schema()").fetchone()[0]
                    conn.execute("SELECT set_config('application_name', %s, false)",
                                 (f"{APPLICATION_NAME} {schema}"[:63],))
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._up.set()
                    delay = 0.1
                    self._on_commit()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=WAIT_SLICE_S):
                            if note.payload == schema:
                                self.notifications += 1
                                self._on_commit()
            except Exception as exc:
                if self._up.is_set():
                    log.warning("LISTEN connection lost (%s); polling until it is back", exc)
                else:
                    log.debug("LISTEN connect failed: %s", exc)
                self._up.clear()
                self._on_commit()  # the caller falls back to polling: let it look now
                self._stop.wait(delay)
                delay = min(delay * 2, MAX_RECONNECT_DELAY_S)
            finally:
                self._up.clear()
