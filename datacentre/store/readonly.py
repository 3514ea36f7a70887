"""Read-only raw SQL against the store: what :meth:`TickStore.query` runs.

Clients' own SQL (the guide's ``?``, the original data centre's ``%s``, or ``:name``
placeholders, on either engine: :func:`bind_style`) must never change the store, whatever it
says. On SQLite the statement runs on a connection of its own opened with ``mode=ro`` and
``query_only``, behind an authorizer that also refuses ATTACH, setting pragmas and loading
extensions; on PostgreSQL it runs in a ``READ ONLY`` transaction on a connection that is
closed afterwards. Both stop a statement after ``timeout`` seconds and return at most
``max_rows`` rows, and both take exactly one statement.
"""
from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Sequence
from contextlib import closing
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from datacentre.core.errors import ReadOnlyError, StoreError
from datacentre.core.ticks import format_ts
from datacentre.store.schema import BUSY_TIMEOUT_MS

QUERY_TIMEOUT_S = 10.0
QUERY_MAX_ROWS = 100_000

Params = Sequence[Any] | dict


_NAMED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PYFORMAT_NAMED = re.compile(r"%\(([A-Za-z_][A-Za-z0-9_]*)\)s")


def _tokens(sql: str) -> list[tuple[str, str]]:
    """``sql`` as ``("text", ...)``, ``("positional", "")`` and ``("named", name)`` pieces.

    Placeholders are recognised outside quotes only: ``?`` and ``%s`` (positional),
    ``:name`` and ``%(name)s`` (named; ``::type`` casts are not placeholders). ``%%`` is a
    literal ``%`` (the psycopg habit), as is any other ``%``.
    """
    out: list[tuple[str, str]] = []
    text: list[str] = []
    quote = None
    i, n = 0, len(sql)

    def flush() -> None:
        if text:
            out.append(("text", "".join(text)))
            text.clear()

    while i < n:
        ch = sql[i]
        if quote:
            if ch == "%" and sql.startswith("%%", i):
                text.append("%")
                i += 2
                continue
            text.append(ch)
            if ch == quote:
                quote = None
            i += 1
            continue
        if ch in ("'", '"'):
            quote = ch
        elif ch == "?":
            flush()
            out.append(("positional", ""))
            i += 1
            continue
        elif ch == "%":
            if sql.startswith("%s", i):
                flush()
                out.append(("positional", ""))
                i += 2
                continue
            named = _PYFORMAT_NAMED.match(sql, i)
            if named:
                flush()
                out.append(("named", named.group(1)))
                i = named.end()
                continue
            text.append("%")
            i += 2 if sql.startswith("%%", i) else 1
            continue
        elif ch == ":" and not sql.startswith("::", i) and (i == 0 or sql[i - 1] != ":"):
            named = _NAMED.match(sql, i + 1)
            if named:
                flush()
                out.append(("named", named.group(0)))
                i = named.end()
                continue
        text.append(ch)
        i += 1
    flush()
    return out


def bind_style(sql: str, params: Params, dialect: str) -> tuple[str, Params]:
    """``sql`` with its placeholders (``?``, ``%s``, ``:name`` or ``%(name)s``) written the
    way ``dialect``'s driver reads them, and ``params`` as a tuple or a dict.

    SQLite gets ``?`` / ``:name``; PostgreSQL (psycopg) ``%s`` / ``%(name)s`` with every
    literal ``%`` doubled. Raises :class:`StoreError` for mixed styles, or parameters
    that do not match them (a list for names, a dict for ``?``).
    """
    tokens = _tokens(sql)
    kinds = {kind for kind, _ in tokens if kind != "text"}
    if len(kinds) > 1:
        raise StoreError("query mixes positional (? or %s) and named (:name) placeholders: use one kind")
    named = kinds == {"named"}
    if isinstance(params, dict):
        if kinds == {"positional"}:
            raise StoreError("query has positional placeholders (? or %s) but its parameters are a "
                             "dict: pass a tuple, or write :name placeholders")
        args: Params = dict(params)
    else:
        if isinstance(params, (str, bytes)):
            raise StoreError(f"query parameters must be a tuple or a list, not a single string "
                             f"{params!r}: write ({params!r},)")
        if named:
            raise StoreError("query has named placeholders (:name) but its parameters are not a "
                             "dict: pass {'name': value, ...}")
        args = tuple(params)
    pieces = []
    for kind, value in tokens:
        if kind == "text":
            pieces.append(value.replace("%", "%%") if dialect == "postgresql" else value)
        elif kind == "positional":
            pieces.append("%s" if dialect == "postgresql" else "?")
        else:
            pieces.append(f"%({value})s" if dialect == "postgresql" else f":{value}")
    return "".join(pieces), args


# What a read-only query may do beyond mode=ro and query_only, which already refuse
# writes to the store: no ATTACH (reads other files; VACUUM INTO creates one), no
# pragma that changes a setting or runs a checkpoint, no extension loading.
_READ_PRAGMAS = frozenset({
    "application_id", "collation_list", "compile_options", "data_version", "database_list",
    "encoding", "foreign_key_check", "foreign_key_list", "freelist_count", "function_list",
    "index_info", "index_list", "index_xinfo", "integrity_check", "journal_mode",
    "module_list", "page_count", "page_size", "pragma_list", "quick_check", "schema_version",
    "table_info", "table_list", "table_xinfo", "user_version",
})
_PRAGMAS_WITH_ARGUMENT = frozenset({
    "foreign_key_check", "foreign_key_list", "index_info", "index_list", "index_xinfo",
    "integrity_check", "quick_check", "table_info", "table_list", "table_xinfo",
})


def _authorize_read(action, arg1, arg2, _db, _trigger) -> int:
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA:
        name = arg1.lower()
        allowed = name in _READ_PRAGMAS and (arg2 is None or name in _PRAGMAS_WITH_ARGUMENT)
        return sqlite3.SQLITE_OK if allowed else sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and arg2 and arg2.lower() == "load_extension":
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def check_statement(sql: Any) -> None:
    """Refuse what is not SQL text before any connection is opened."""
    if not isinstance(sql, str) or not sql.strip():
        raise StoreError("query needs an SQL statement")


def connect_read_only(path: Path, *, timeout: float = BUSY_TIMEOUT_MS / 1000,
                      check_same_thread: bool = True) -> sqlite3.Connection:
    """A ``mode=ro`` connection to the SQLite file at ``path``: it never creates or changes it.

    Raises ``sqlite3.OperationalError`` when the file does not exist.
    """
    return sqlite3.connect(read_only_uri(path), uri=True, timeout=timeout,
                           check_same_thread=check_same_thread)


def read_only_uri(path: Path) -> str:
    """The ``file:`` URI that opens the SQLite file at ``path`` read-only (``mode=ro``)."""
    # as_uri() escapes '#', '?' and '%' in folder names, which a bare file: URI would cut at
    return f"{path.resolve().as_uri()}?mode=ro"


def query_sqlite(path: Path, sql: str, params: Params = (), *, timeout: float = QUERY_TIMEOUT_S,
                 max_rows: int = QUERY_MAX_ROWS) -> list[dict]:
    """Run one statement read-only against the SQLite file at ``path``; rows as dicts."""
    conn = connect_read_only(path)
    try:
        deadline = time.monotonic() + timeout
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        conn.execute("PRAGMA query_only=ON")
        conn.set_authorizer(_authorize_read)
        statement, args = bind_style(sql, params, "sqlite")
        cur = conn.execute(statement, args)
        names = [d[0] for d in cur.description or ()]
        return [dict(zip(names, row)) for row in cur.fetchmany(max_rows)]
    except (sqlite3.Error, ValueError) as exc:
        msg = str(exc)
        if any(word in msg for word in ("readonly", "read-only", "query_only", "authoriz")):
            raise ReadOnlyError(f"queries are read-only (no ATTACH, no pragma changes, "
                                f"no extensions): {msg}") from exc
        if "interrupted" in msg:
            raise StoreError(f"query took longer than {timeout:g} s and was stopped") from exc
        if "one statement" in msg:
            raise StoreError("query takes one SQL statement at a time") from exc
        raise StoreError(f"query failed: {msg}") from exc
    finally:
        conn.close()


def query_postgres(engine: Engine, sql: str, params: Params = (), *,
                   timeout: float = QUERY_TIMEOUT_S, max_rows: int = QUERY_MAX_ROWS) -> list[dict]:
    """Run one statement in a read-only transaction on a fresh connection of ``engine``."""
    statement, args = bind_style(sql, params, "postgresql")
    try:
        # A connection of its own, closed afterwards: whatever the statement leaves in its
        # session (an advisory lock on the writers' key, SET, prepared statements) dies
        # with it instead of going back to the pool the writers use.
        raw = engine.raw_connection()
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"query failed: {getattr(exc, 'orig', None) or exc}") from exc
    try:
        cur = raw.cursor()
        # psycopg has opened the transaction already (so no BEGIN here): make it read-only.
        cur.execute("SET TRANSACTION READ ONLY")
        cur.execute(f"SET LOCAL statement_timeout = {int(timeout * 1000)}")
        # Always with parameters: the extended protocol takes exactly one statement, so
        # "COMMIT; DELETE ..." is refused. stream() reads row by row: a huge result is
        # cut at max_rows on the client instead of being buffered whole.
        with closing(cur.stream(statement, args)) as stream:
            rows = list(islice(stream, max_rows))
            names = [d[0] for d in cur.description or ()]
        return [{k: format_ts(v) if isinstance(v, datetime) else v for k, v in zip(names, r)}
                for r in rows]
    except Exception as exc:
        msg = str(exc).strip()
        if "read-only transaction" in msg:
            raise ReadOnlyError(f"queries are read-only: {msg}") from exc
        if "statement timeout" in msg:
            raise StoreError(f"query took longer than {timeout:g} s and was stopped") from exc
        if "multiple commands" in msg:
            raise StoreError("query takes one SQL statement at a time") from exc
        if "didn't produce a result" in msg:
            raise StoreError("query takes a statement that returns rows, such as SELECT") from exc
        raise StoreError(f"query failed: {msg}") from exc
    finally:
        raw.close()
