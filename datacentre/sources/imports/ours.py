"""Our own CSV (the 14 tick fields, as written by ``export``), as :mod:`datacentre.store.csvio`
reads it: every line validated, rows grouped into snapshots by ``ts``, values kept as stored."""
from __future__ import annotations

import csv
import io

from datacentre.core.errors import ConfigError, ImportFormatError
from datacentre.core.ticks import TICK_FIELDS
from datacentre.sources.imports.common import ImportOptions, ParsedFile, text_of
from datacentre.store.csvio import _rows, _validate

FORMAT = "csv"


def looks_like(text: str) -> bool:
    header = next(csv.reader(io.StringIO(text.split("\n", 1)[0])), [])
    return all(f in header for f in TICK_FIELDS)


def parse(path: str, data: bytes, options: ImportOptions) -> ParsedFile:
    out = ParsedFile(path, FORMAT)
    try:
        handle = io.StringIO(text_of(data), newline="")
        by_ts: dict[str, list[dict]] = {}
        for line, row in _rows(handle):
            if not row:
                out.problem(line, f"expected {len(TICK_FIELDS)} fields")
                continue
            try:
                tick = _validate(row)
            except (ValueError, ConfigError) as exc:
                out.problem(line, str(exc))
                continue
            by_ts.setdefault(tick["ts"], []).append(tick)
    except ImportFormatError as exc:
        out.problems.extend(exc.problems)
    except ConfigError as exc:
        out.problem(1, str(exc))
    if out.problems:
        return out
    return out.keep(sorted(by_ts.items()))
