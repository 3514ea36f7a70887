"""CSV export and import of ticks: the 14 seed fields, one row per tick, in ts order.

Export streams from the store in constant memory. Import reads the file twice:
first it validates every line (and reports all bad lines with their numbers),
then it writes everything in one transaction, so a file is imported whole or not
at all. Rows already stored for ``(symbol, ts)`` are skipped, so re-importing is
harmless.
"""
from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from datacentre.core.errors import ConfigError, ImportFormatError, SymbolError
from datacentre.core.instruments import parse_symbol, underlying
from datacentre.core.ticks import FLOAT_FIELDS, INT_FIELDS, SOURCES, TICK_FIELDS, normalize_ts
from datacentre.store.arrowread import tick_batches
from datacentre.store.tickstore import TickStore

MAX_PROBLEMS = 1_000
LINE_END = "\r\n"
HEADER = ",".join(TICK_FIELDS) + LINE_END


def export_csv(store: TickStore, out: IO[str], *, symbols: Sequence[str] | None = None,
               start_ts=None, end_ts=None) -> int:
    """Write the selected ticks as CSV to ``out`` (text, opened with ``newline=""``).

    Streams from the store in Arrow batches (:mod:`datacentre.store.arrowread`): constant
    memory whatever the range. Empty fields are NULLs; numbers are written in their shortest
    form that reads back as the stored value. Returns the number of data rows.
    """
    out.write(HEADER)
    binary = getattr(out, "buffer", None)  # a text file's bytes underneath: no decode, no encode
    if binary is not None:
        out.flush()
    rows = 0
    for batch in tick_batches(store, symbols, start_ts, end_ts):
        data = csv_bytes(batch)
        if binary is not None:
            binary.write(data)
        else:
            out.write(data.to_pybytes().decode())
        rows += batch.num_rows
    return rows


def csv_bytes(batch: pa.RecordBatch) -> pa.Buffer:
    """The CSV lines of ``batch`` (no header), UTF-8. Text is quoted only in a batch that has
    a value needing it (a comma, a quote or a line break), as the csv module would."""
    sink = pa.BufferOutputStream()
    options = pacsv.WriteOptions(include_header=False, eol=LINE_END,
                                 quoting_style="needed" if _needs_quotes(batch) else "none")
    pacsv.write_csv(batch, sink, options)
    return sink.getvalue()


#: Bytes that make a CSV field need quotes: the quote, the delimiter, a line break.
_STRUCTURAL = np.frombuffer(b'",\r\n', np.uint8)


def _needs_quotes(batch: pa.RecordBatch) -> bool:
    return any(np.isin(np.frombuffer(data, np.uint8), _STRUCTURAL).any() for column in batch.columns
               if pa.types.is_string(column.type) and (data := column.buffers()[2]) is not None)


def select_symbols(store: TickStore, underlying_name: str, expiry: str | None = None) -> list[str]:
    """All stored symbols of an underlying (index, futures, options), or of one option
    ``expiry`` (ISO date) with the index and the future a trader reads that chain
    against: the nearest stored one expiring on or after it."""
    base = underlying(underlying_name).base
    rows = store.instruments(base)
    if not expiry:
        return [r["symbol"] for r in rows]
    futures = sorted((r["expiry"], r["symbol"]) for r in rows if r["kind"] == "FUT" and r["expiry"] >= expiry)
    future = futures[0][1] if futures else None
    return [r["symbol"] for r in rows if r["kind"] == "INDEX" or r["symbol"] == future
            or (r["kind"] in ("CE", "PE") and r["expiry"] == expiry)]


def _float(name: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {text!r}") from None


def _validate(row: dict[str, str]) -> dict:
    tick: dict = {}
    try:
        tick["symbol"] = parse_symbol(row["symbol"].strip()).symbol
    except SymbolError as exc:
        raise ValueError(str(exc)) from None
    tick["token"] = row["token"].strip() or None
    tick["ts"] = normalize_ts(row["ts"])
    for name in FLOAT_FIELDS:
        text = row[name].strip()
        if text:
            value = _float(name, text)
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {text!r}")
            tick[name] = value
        else:
            tick[name] = None
    for name in INT_FIELDS:
        text = row[name].strip()
        if text:
            value = _float(name, text)
            if not value.is_integer() or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0, got {text!r}")
            tick[name] = int(value)
        else:
            tick[name] = None
    if tick["ltp"] is None:
        raise ValueError("ltp is required")
    source = row["source"].strip() or "csv"
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    tick["source"] = source
    return tick


def _rows(handle: IO[str]) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(handle)
    missing = [f for f in TICK_FIELDS if f not in (reader.fieldnames or [])]
    if missing:
        raise ImportFormatError([(1, f"header lacks {', '.join(missing)}; expected "
                                     f"{','.join(TICK_FIELDS)}")])
    for row in reader:
        if None in row or any(v is None for v in row.values()):
            yield reader.line_num, {}
        else:
            yield reader.line_num, row


_FIELD_COUNT = f"expected {len(TICK_FIELDS)} fields"

#: A further check of each valid tick, in file order: a problem with it, or None.
TickCheck = Callable[[dict], str | None]


def check_csv(handle: IO[str], check: TickCheck | None = None) -> int:
    """Validate every line (and pass each valid tick to ``check``, if given); return the
    number of data lines.

    Raises :class:`ImportFormatError` listing the bad lines (at most ``MAX_PROBLEMS``).
    """
    problems: list[tuple[int, str]] = []
    count = 0
    for line, row in _rows(handle):
        count += 1
        problem = None
        if not row:
            problem = _FIELD_COUNT
        else:
            try:
                tick = _validate(row)
            except (ValueError, ConfigError) as exc:
                problem = str(exc)
            else:
                problem = check(tick) if check is not None else None
        if problem is not None:
            problems.append((line, problem))
            if len(problems) >= MAX_PROBLEMS:
                break
    if problems:
        raise ImportFormatError(problems)
    return count


def read_ticks(handle: IO[str]) -> Iterator[dict]:
    """The ticks of a CSV file in file order, validated line by line (after :func:`check_csv`).

    A bad line raises ``ValueError`` naming it: the file changed since it was checked.
    """
    for line, row in _rows(handle):
        if not row:
            raise ValueError(f"line {line}: {_FIELD_COUNT}")
        try:
            yield _validate(row)
        except (ValueError, ConfigError) as exc:
            raise ValueError(f"line {line}: {exc}") from None


@dataclass
class ImportResult:
    rows: int
    inserted: int

    @property
    def skipped(self) -> int:
        return self.rows - self.inserted


def import_csv(store: TickStore, handle: IO[str]) -> ImportResult:
    """Validate, then import a whole CSV file in one transaction (``handle`` must be seekable)."""
    rows = check_csv(handle)
    handle.seek(0)
    inserted = store.insert_ticks(read_ticks(handle))
    return ImportResult(rows, inserted)
