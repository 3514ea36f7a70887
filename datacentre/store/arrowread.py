"""Tick rows as Arrow record batches: what the CSV export writes, at the speed of C.

On a SQLite file the rows go from SQLite into Arrow through ADBC's SQLite driver, with no
Python object per value; on PostgreSQL (and a SQLite store in memory) they come from
:meth:`TickStore.iter_rows <datacentre.store.tickstore.TickStore.iter_rows>` and are
converted a batch at a time. Either way every batch has :data:`TICK_SCHEMA`, so one writer
formats both engines' numbers alike.

ADBC's driver takes each column's type from the first batch it reads, and fails when a later
value has another one; a column that is NULL all through that batch (the Greeks of a
selection that starts with the index) would be taken as integers. So the query gives each
value its type (``CAST``) and puts a sentinel of that type in place of NULL (``-inf`` for
numbers, a NUL character for text: no source writes either), and each batch turns the
sentinels back into NULL.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa
import sqlalchemy as sa

from datacentre.core.errors import StoreError
from datacentre.core.ticks import FLOAT_FIELDS, INT_FIELDS, TICK_FIELDS
from datacentre.store.readonly import read_only_uri
from datacentre.store.schema import BUSY_TIMEOUT_MS, STREAM_CACHE_KIB, ltp_ticks, sqlite_path

#: The Arrow type of each tick field, in :data:`TICK_FIELDS` order.
TICK_SCHEMA = pa.schema([(name, pa.float64() if name in FLOAT_FIELDS else
                          pa.int64() if name in INT_FIELDS else pa.string()) for name in TICK_FIELDS])
BATCH_ROWS = 8_192

_NULL_NUMBER = -math.inf
_NULL_TEXT = "\x00"
_NULLABLE_TEXT = {name for name in TICK_FIELDS if ltp_ticks.c[name].nullable
                  and name not in FLOAT_FIELDS + INT_FIELDS}


def tick_batches(store, symbols: Sequence[str] | None = None, start_ts=None, end_ts=None,
                 batch: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """The ticks of :meth:`TickStore.iter_rows` as record batches of :data:`TICK_SCHEMA`."""
    path = sqlite_path(store.url) if store.dialect == "sqlite" else None
    if path is not None and path.exists():
        columns = [_typed(ltp_ticks.c[name]) for name in TICK_FIELDS]
        stmt = store.range_select(columns, symbols, start_ts, end_ts)
        sql = str(stmt.compile(dialect=store.engine.dialect, compile_kwargs={"literal_binds": True}))
        yield from _adbc_batches(path, sql, batch)
        return
    for rows in store.iter_rows(symbols, start_ts, end_ts, batch):
        columns = zip(*rows)
        yield pa.RecordBatch.from_arrays([pa.array(c, type=f.type) for c, f in zip(columns, TICK_SCHEMA)],
                                         schema=TICK_SCHEMA)


def _typed(column: sa.Column):
    """``column`` with one type in every row and no NULL (see the module's docstring)."""
    if column.name in INT_FIELDS:
        return sa.cast(column, sa.Integer).label(column.name)  # all NULL reads as int64: right
    if not column.nullable:
        return sa.cast(column, sa.Text).label(column.name)
    if column.name in FLOAT_FIELDS:
        return sa.func.ifnull(sa.cast(column, sa.Float), sa.literal_column("-9e999")).label(column.name)
    return sa.func.ifnull(sa.cast(column, sa.Text), sa.func.char(0)).label(column.name)


def _adbc_batches(path, sql: str, batch: int) -> Iterator[pa.RecordBatch]:
    import adbc_driver_manager as adbc
    import adbc_driver_sqlite

    database = adbc_driver_sqlite.connect(read_only_uri(path))
    conn = statement = reader = None
    try:
        conn = adbc.AdbcConnection(database)
        for pragma in (f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}", f"PRAGMA cache_size=-{STREAM_CACHE_KIB}"):
            with adbc.AdbcStatement(conn) as setup:
                setup.set_sql_query(pragma)
                setup.execute_update()
        statement = adbc.AdbcStatement(conn)
        statement.set_options(**{"adbc.sqlite.query.batch_rows": str(batch)})
        statement.set_sql_query(sql)
        handle, _ = statement.execute_query()
        reader = pa.RecordBatchReader.from_stream(handle)
        for raw in reader:
            yield _restore_nulls(raw)
    except (adbc.Error, OSError) as exc:
        raise StoreError(f"read failed: {exc}") from exc
    finally:
        for resource in (reader, statement, conn, database):
            if resource is not None:
                resource.close()


def _restore_nulls(raw: pa.RecordBatch) -> pa.RecordBatch:
    arrays = []
    for column, field in zip(raw.columns, TICK_SCHEMA):
        if column.type != field.type:
            column = column.cast(field.type)
        if field.name in FLOAT_FIELDS:
            column = _with_validity(column, np.frombuffer(column.buffers()[1], np.float64, len(column),
                                                          8 * column.offset) != _NULL_NUMBER)
        elif field.name in _NULLABLE_TEXT:
            column = _with_validity(column, ~is_nul(column))
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, schema=TICK_SCHEMA)


def is_nul(column: pa.Array) -> np.ndarray:
    """Where a string array holds exactly one NUL character, read off its buffers."""
    _, offsets, data = column.buffers()
    starts = np.frombuffer(offsets, np.int32, len(column) + 1, 4 * column.offset)
    first = np.frombuffer(data, np.uint8) if data is not None and data.size else np.zeros(1, np.uint8)
    return (np.diff(starts) == 1) & (first[np.minimum(starts[:-1], len(first) - 1)] == 0)


def _with_validity(column: pa.Array, valid: np.ndarray) -> pa.Array:
    """``column`` (no NULL yet) with NULL where ``valid`` is False: the values stay in their
    buffers (no copy), only a validity bitmap is added."""
    if valid.all():
        return column
    bits = np.concatenate([np.ones(column.offset, bool), valid]) if column.offset else valid
    bitmap = pa.py_buffer(np.packbits(bits, bitorder="little"))
    return pa.Array.from_buffers(column.type, len(column), [bitmap, *column.buffers()[1:]],
                                 offset=column.offset)


__all__ = ["BATCH_ROWS", "TICK_SCHEMA", "tick_batches"]
