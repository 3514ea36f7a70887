"""Importers of real market files: NSE option chains, the bhavcopy, broker ticks, our CSV.

=================  ===================================  ==========================================
format             module                               content
=================  ===================================  ==========================================
``nse-chain``      :mod:`.nse_chain`                    NSE option-chain API JSON (plain or gzip)
``nse-chain-csv``  :mod:`.nse_chain_csv`                the older NSE option-chain page as CSV
``bhavcopy``       :mod:`.bhavcopy`                     NSE UDiFF F&O bhavcopy
``ticks``          :mod:`.ticks`                        broker tick/bar CSV or Parquet, ``--map``
``csv``            :mod:`.ours`                         our own export (the 14 tick fields)
=================  ===================================  ==========================================

:func:`detect_format` tells them apart by content. :func:`parse_file` runs one pure parser;
:func:`import_files` checks every file first and writes nothing unless all are clean, then
writes them oldest first, each in one transaction (:mod:`.writer`), so a file is imported
whole or not at all, and importing it again adds nothing (the store is unique on
``(symbol, ts)``).
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from datacentre.core.catalog import IMPORT_FORMATS
from datacentre.core.errors import ConfigError, ImportFormatError
from datacentre.sources.imports import bhavcopy, nse_chain, nse_chain_csv, ours, ticks
from datacentre.sources.imports.common import ImportOptions, ParsedFile, data_files, read_bytes

PARSERS: dict[str, Callable[[str, bytes, ImportOptions], ParsedFile]] = {
    nse_chain.FORMAT: nse_chain.parse,
    nse_chain_csv.FORMAT: nse_chain_csv.parse,
    bhavcopy.FORMAT: bhavcopy.parse,
    ticks.FORMAT: ticks.parse,
    ours.FORMAT: ours.parse,
}
FORMATS = IMPORT_FORMATS
if tuple(PARSERS) != FORMATS:  # the catalog names them for the option parser
    raise ImportError(f"datacentre.core.catalog lists {FORMATS}, the parsers are {tuple(PARSERS)}")
DATA_SUFFIXES = (".json", ".csv", ".parquet", ".txt")
PROGRESS_BYTES = 2_000_000  # inputs at least this big get a progress bar


def detect_format(data: bytes) -> str:
    """The format of a file's content (see the module docstring)."""
    raw = read_bytes(data)
    if raw[:4] == ticks.PARQUET_MAGIC:
        return ticks.FORMAT
    head = raw[:65536].decode("utf-8-sig", errors="replace")
    if head.lstrip().startswith("{"):
        if nse_chain.looks_like(raw[:300_000].decode("utf-8", errors="replace")):
            return nse_chain.FORMAT
        raise ConfigError("a JSON file without records.data: not an NSE option-chain reply")
    for module in (bhavcopy, nse_chain_csv, ours):
        if module.looks_like(head):
            return module.FORMAT
    return ticks.FORMAT


def parse_file(path: str | Path, options: ImportOptions) -> ParsedFile:
    """Read and parse one file (the format forced by ``options.format`` or detected)."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {name}: {exc.strerror or exc}") from None
    try:
        fmt = options.format or detect_format(data)
    except ConfigError as exc:
        return ParsedFile(name, "?", problems=[(1, str(exc))])
    if fmt not in PARSERS:
        raise ConfigError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    return PARSERS[fmt](name, data, options)


@dataclass
class FormatTotals:
    files: int = 0
    snapshots: int = 0
    rows: int = 0
    inserted: int = 0
    symbols: set[str] = field(default_factory=set)
    days: set[date] = field(default_factory=set)


@dataclass
class ImportSummary:
    files: list[ParsedFile]
    inserted: dict[str, int]  # path -> new rows
    skipped_paths: list[Path]
    seconds: float

    def by_format(self) -> dict[str, FormatTotals]:
        totals: dict[str, FormatTotals] = {}
        for f in self.files:
            t = totals.setdefault(f.format, FormatTotals())
            t.files += 1
            t.snapshots += f.snapshot_count
            t.rows += f.rows
            t.inserted += self.inserted.get(f.path, 0)
            t.symbols |= f.symbols
            t.days |= f.days
        return totals

    def lines(self, *, notes: bool = True) -> list[str]:
        """The summary: skipped paths, the parsers' notes (``notes``), one line per format."""
        out = [f"skipped {p}: not a data file ({', '.join(DATA_SUFFIXES)}, optionally .gz)"
               for p in self.skipped_paths]
        if notes:
            out += [f"{f.path}: {note}" for f in self.files for note in f.notes]
        everything = FormatTotals()
        for fmt, t in sorted(self.by_format().items()):
            out.append(_line(fmt, t))
            everything.files += t.files
            everything.snapshots += t.snapshots
            everything.rows += t.rows
            everything.inserted += t.inserted
            everything.symbols |= t.symbols
            everything.days |= t.days
        out.append(_line("total", everything) + f" in {self.seconds:.1f} s")
        return out


def _line(label: str, t: FormatTotals) -> str:
    days = sorted(t.days)
    span = f"{days[0]}" if len(days) == 1 else (f"{days[0]} .. {days[-1]}" if days else "-")
    return (f"{label}: {t.files} file(s), {t.snapshots} snapshots, {t.rows} rows ({t.inserted} new, "
            f"{t.rows - t.inserted} already stored), {len(t.symbols)} symbols, {len(t.days)} day(s) {span}")


def import_files(store, paths: Sequence[str | Path], options: ImportOptions, *,
                 progress: bool | None = None) -> ImportSummary:
    """Check every file, then write them oldest first, one transaction per file.

    Raises :class:`ImportFormatError` listing every bad line of every file, and then nothing
    is written. ``progress`` None shows a bar (on stderr) for inputs of :data:`PROGRESS_BYTES`
    or more.
    """
    from datacentre.sources.imports.writer import write_file

    started = time.monotonic()
    chosen, skipped = data_files(paths, DATA_SUFFIXES)
    if not chosen:
        raise ConfigError("no data files to import")
    size = sum(p.stat().st_size for p in chosen)
    show = size >= PROGRESS_BYTES if progress is None else progress
    parsed: list[ParsedFile] = []
    with _bar(show, size, "check", "B") as bar:
        for path in chosen:
            parsed.append(parse_file(path, options))
            bar.update(path.stat().st_size)
    bad = [f for f in parsed if f.problems]
    if bad:
        if len(bad) == 1:
            raise ImportFormatError(bad[0].problems, source=bad[0].path)
        problems = [(f"{f.path} {'line ' if isinstance(n, int) else ''}{n}", message)
                    for f in bad for n, message in f.problems]
        raise ImportFormatError(problems, source=f"{len(bad)} of {len(parsed)} files")
    parsed.sort(key=lambda f: (f.first_ts or "~", f.path))
    inserted: dict[str, int] = {}
    with _bar(show, sum(f.rows for f in parsed), "import", "row") as bar:
        for f in parsed:
            inserted[f.path] = write_file(store, f, on_rows=bar.update)
    return ImportSummary(parsed, inserted, skipped, time.monotonic() - started)


def _bar(show: bool, total: int, desc: str, unit: str):
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, disable=not show, file=sys.stderr,
                leave=False)


__all__ = ["FORMATS", "ImportOptions", "ImportSummary", "ParsedFile", "detect_format", "import_files",
           "parse_file"]
