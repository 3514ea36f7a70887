"""What every importer shares: options, the parsed-file record, numbers, ticks, times.

A parser is pure: ``parse(path, data, options) -> ParsedFile``. It reads the whole file,
reports every bad line in ``problems`` (line number, message) and, only when there are none,
hands out the snapshots through ``ParsedFile.snapshots()`` (a fresh iterator each call, so a
large file need not be held as tick dicts). The writer never sees a file with problems.
"""
from __future__ import annotations

import csv
import gzip
import io
import math
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, tzinfo
from pathlib import Path

from datacentre.core.errors import ConfigError
from datacentre.core.forward import FORWARD, snapshot_greeks
from datacentre.core.instruments import token_for, underlying
from datacentre.core.lots import lot_size
from datacentre.core.ticks import IST, TICK_FIELDS, format_ts, trading_day

SOURCE = "csv"  # the tick source of imported rows
CLOSE_IST = time(15, 30)
MAX_PROBLEMS = 1_000

Snapshot = tuple[str, list[dict]]  # canonical ts, its ticks


@dataclass
class ImportOptions:
    """Choices of ``python -m datacentre import`` that the parsers read."""

    format: str | None = None  # None: detect from the content
    expiry: date | None = None  # nse-chain: only this expiry; nse-chain-csv: the page's expiry
    ts: datetime | None = None  # nse-chain-csv: the snapshot time when the file name has none
    tz: tzinfo | None = None  # ticks: the zone of naive timestamps
    mapping: dict[str, str] = field(default_factory=dict)  # ticks: our field -> file column
    lot_size: int | None = None  # overrides the lot-size table
    iv: str = FORWARD  # IV convention (core.forward)
    price: str = "settle"  # bhavcopy: settle or close
    bar_seconds: float = 60.0  # ticks with a bar_start column: the bar length
    risk_free_rate: float = 0.065


@dataclass
class ParsedFile:
    path: str
    format: str
    problems: list[tuple[int, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    snapshot_count: int = 0
    rows: int = 0
    symbols: set[str] = field(default_factory=set)
    days: set[date] = field(default_factory=set)
    first_ts: str | None = None
    last_ts: str | None = None
    _source: Callable[[], Iterable[Snapshot]] | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def snapshots(self) -> Iterator[Snapshot]:
        """The file's snapshots in time order (only for a file without problems)."""
        if self.problems or self._source is None:
            raise ConfigError(f"{self.path} has problems: nothing to import")
        yield from self._source()

    def accept(self, snapshots: Iterable[Snapshot], source: Callable[[], Iterable[Snapshot]]) -> ParsedFile:
        """Count ``snapshots`` (one pass) and keep ``source`` to hand them out again."""
        for ts, ticks in snapshots:
            self.snapshot_count += 1
            self.rows += len(ticks)
            self.symbols.update(t["symbol"] for t in ticks)
            self.days.add(trading_day(ts))
            self.first_ts = ts if self.first_ts is None else min(self.first_ts, ts)
            self.last_ts = ts if self.last_ts is None else max(self.last_ts, ts)
        self._source = source
        return self

    def keep(self, snapshots: list[Snapshot]) -> ParsedFile:
        return self.accept(snapshots, lambda: snapshots)

    def problem(self, line: int, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append((line, message))


def read_bytes(data: bytes) -> bytes:
    """``data`` itself, or its decompressed content when it is gzip."""
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise ConfigError(f"a damaged gzip file: {exc}") from None
    return data


def text_of(data: bytes) -> str:
    try:
        return read_bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start}): {exc.reason}") from None


def csv_rows(out: ParsedFile, data: bytes, required: Sequence[str], layout: str) -> csv.DictReader | None:
    """A reader of the file's CSV rows; None, with the problem noted in ``out``, when the file
    is not text or its header lacks a ``required`` column (it is not ``layout``)."""
    try:
        text = text_of(data)
    except ConfigError as exc:
        out.problem(1, str(exc))
        return None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        out.problem(1, f"header lacks {', '.join(missing)}: not {layout}")
        return None
    return reader


def number(text, name: str, *, empty=("", "-")) -> float | None:
    """A finite float from a cell; None for an empty one; ValueError with ``name`` otherwise."""
    if text is None:
        return None
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        raw = str(text).strip().replace(",", "")
        if raw in empty:
            return None
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"{name} is not a number: {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {text!r}")
    return value


def count(value: float | None, name: str, *, lot: int = 1) -> int | None:
    """A non-negative whole number of shares from a count in contracts (``lot`` shares each).

    NSE reports legacy positions in the current lot as fractions of a contract (1.5 lots of
    the old size), so the product is rounded to whole shares; a value that is not close to
    whole shares is an error.
    """
    if value is None:
        return None
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value:g}")
    shares = value * lot
    whole = round(shares)
    if abs(shares - whole) > 1e-6 * max(1.0, shares):
        raise ValueError(f"{name} {value:g} x lot {lot} is not a whole number of shares")
    return int(whole)


def price(value: float | None) -> float | None:
    """A positive price, else None (NSE writes 0 for 'no price')."""
    return value if value is not None and value > 0 else None


def ist_moment(day: date, at: time = CLOSE_IST) -> datetime:
    return datetime.combine(day, at, IST)


def contract_lot(base: str, expiry: date, on: date, options: ImportOptions) -> int:
    return options.lot_size or lot_size(base, expiry, on)


def make_tick(symbol: str, ts: str, ltp: float, *, bid: float | None = None, ask: float | None = None,
              volume: int | None = None, oi: int | None = None, token: str | None = None) -> dict:
    tick = dict.fromkeys(TICK_FIELDS)
    tick.update(symbol=symbol, token=token or token_for(symbol), ts=ts, ltp=ltp, bid=bid, ask=ask,
                volume=volume, oi=oi, source=SOURCE)
    return tick


def index_tick(base: str, ts: str, value: float) -> dict:
    return make_tick(underlying(base).index_symbol, ts, value, volume=0)


def with_greeks(ts: str, ticks: list[dict], options: ImportOptions) -> Snapshot:
    """The snapshot with its options' IV and Greeks computed (core.forward), sorted by symbol."""
    done = snapshot_greeks(ticks, ts, options.risk_free_rate, convention=options.iv)
    return ts, sorted(done, key=lambda t: t["symbol"])


def stamp(moment: datetime) -> str:
    return format_ts(moment)


def data_files(paths: Iterable[str | Path], suffixes: tuple[str, ...]) -> tuple[list[Path], list[Path]]:
    """Files named by ``paths`` (folders searched recursively), and the ones left out as not
    data (their suffix is none of ``suffixes``, with or without ``.gz``)."""
    chosen: list[Path] = []
    skipped: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for child in sorted(q for q in p.rglob("*") if q.is_file()):
                name = child.name.lower().removesuffix(".gz")
                (chosen if name.endswith(suffixes) else skipped).append(child)
        elif p.exists():
            chosen.append(p)
        else:
            raise ConfigError(f"no such file or folder: {raw}")
    return chosen, skipped
