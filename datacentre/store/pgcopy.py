"""Tick rows into PostgreSQL through COPY (psycopg 3), keeping ``ON CONFLICT DO NOTHING``.

COPY has no conflict clause, so a batch is first copied straight into ``ltp_ticks``
inside a savepoint. If a row is already stored (a re-sync, a re-import, a snapshot
written twice) the savepoint is rolled back and the batch goes through a staging
table instead: COPY into it, then ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``.
After the first conflict a writer stays on the staging path for the rest of its
transaction, since more conflicts are then likely.

Measured with ``bench/bench_postgres.py`` on this project's 2-core machine (shared,
so absolute times are noisy; both paths timed interleaved in the same run):

=====================================  ==========  ===========  ===============
one transaction of                     COPY        executemany  Core + RETURNING
=====================================  ==========  ===========  ===============
a 110-row snapshot (median commit)     14.5 ms     16.0 ms      44.2 ms
49,500 new rows (bulk)                 13.0 k/s    10.2 k/s     1.2 k/s
49,500 rows already stored             20.8 k/s    6.1 k/s      1.1 k/s
=====================================  ==========  ===========  ===============

COPY is ahead everywhere, most when rows are already stored (re-syncs, re-imports);
a snapshot's commit is dominated by the commit itself. The Core insert with RETURNING
is what the store used before.
"""
from __future__ import annotations

from collections.abc import Sequence

import psycopg
import sqlalchemy as sa

from datacentre.core.ticks import TICK_FIELDS

STAGING = "ltp_ticks_incoming"
_COLUMNS = ", ".join(TICK_FIELDS)


class CopyWriter:
    """Writes tick rows (tuples in TICK_FIELDS order) within one SQLAlchemy transaction."""

    def __init__(self, conn: sa.Connection, staging_columns_ddl: str) -> None:
        self._raw: psycopg.Connection = conn.connection.driver_connection
        self._staging_ddl = staging_columns_ddl
        self._direct = True
        self._staging_ready = False

    def write(self, rows: Sequence[tuple]) -> int:
        """Store ``rows``; return how many were new."""
        if not rows:
            return 0
        with self._raw.cursor() as cur:
            if self._direct:
                cur.execute("SAVEPOINT copy_rows")
                try:
                    self._copy(cur, "ltp_ticks", rows)
                except psycopg.errors.UniqueViolation:
                    cur.execute("ROLLBACK TO SAVEPOINT copy_rows")
                    self._direct = False
                else:
                    written = cur.rowcount
                    cur.execute("RELEASE SAVEPOINT copy_rows")
                    return written
            if not self._staging_ready:
                # A temporary table lives as long as the pooled connection; its rows only
                # as long as the transaction.
                cur.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGING} ({self._staging_ddl}) "
                            f"ON COMMIT DELETE ROWS")
                self._staging_ready = True
            cur.execute(f"TRUNCATE {STAGING}")
            self._copy(cur, STAGING, rows)
            cur.execute(f"INSERT INTO ltp_ticks ({_COLUMNS}) SELECT {_COLUMNS} FROM {STAGING} "
                        f"ON CONFLICT DO NOTHING")
            return max(cur.rowcount, 0)

    @staticmethod
    def _copy(cur: psycopg.Cursor, table: str, rows: Sequence[tuple]) -> None:
        with cur.copy(f"COPY {table} ({_COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
