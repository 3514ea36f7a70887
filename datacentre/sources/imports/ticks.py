"""Broker tick or bar files (CSV or Parquet) with a column mapping.

``--map ts=timestamp,ltp=traded_price,volume=cumulative_vol,oi=open_interest,symbol=trading_symbol``
names, for each of our fields, the file's column; a field whose column has our name needs no
entry. Fields:

=============  ==============================================================================
``symbol``     required; any form of :mod:`datacentre.core.symbols` (ours, Angel One, Kite,
               NSE, ``Nifty 50``)
``ts``         the moment the row's values held; or ``bar_start``: the start of a bar whose
               values are known at its end, stored at ``bar_start + --bar-seconds`` (60), so no
               snapshot shows a bar's close before the bar has closed
``ltp``        required (for bars: the close)
``volume``     cumulative day volume in shares; or ``bar_volume``: shares traded in the row's
               bar or trade, added up per symbol and IST day from the first row of the file
``oi``, ``bid``, ``ask``, ``iv``, ``delta``, ``gamma``, ``theta``, ``vega``, ``token``
``expiry``     the contract's expiry date, for monthly symbol forms that carry no day
=============  ==============================================================================

Timestamps with a UTC offset are taken as they are. Naive ones need ``--tz`` (e.g.
``Asia/Kolkata``); without it the file is refused: a zone is never guessed.

Rows sharing a timestamp form one snapshot; two rows of one symbol at one time keep the later
line. IV and Greeks missing from the file are computed per snapshot from the latest price of
every contract seen up to that moment (nothing later), on the forward of each expiry.
"""
from __future__ import annotations

import io
from datetime import date

import numpy as np
import pandas as pd

from datacentre.core.errors import ConfigError, SymbolError
from datacentre.core.forward import snapshot_greeks
from datacentre.core.instruments import INDEX, parse_symbol, token_for
from datacentre.core.symbols import to_symbol
from datacentre.core.ticks import IST, TICK_FIELDS, format_ts
from datacentre.sources.imports.common import SOURCE, ImportOptions, ParsedFile, read_bytes

FORMAT = "ticks"
FIELDS = ("symbol", "ts", "bar_start", "ltp", "bid", "ask", "volume", "bar_volume", "oi", "iv",
          "delta", "gamma", "theta", "vega", "token", "expiry")
NUMERIC = ("ltp", "bid", "ask", "volume", "bar_volume", "oi", "iv", "delta", "gamma", "theta", "vega")
PARQUET_MAGIC = b"PAR1"
SHOWN = 5  # bad lines listed per kind of problem


def parse_mapping(text: str | None) -> dict[str, str]:
    """``ts=timestamp,ltp=traded_price`` -> ``{"ts": "timestamp", "ltp": "traded_price"}``."""
    mapping: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        ours, sep, theirs = part.partition("=")
        ours, theirs = ours.strip().lower(), theirs.strip()
        if not sep or not theirs:
            raise ConfigError(f"--map takes FIELD=COLUMN pairs separated by commas, got {part.strip()!r}")
        if ours not in FIELDS:
            raise ConfigError(f"--map: {ours!r} is not one of our fields ({', '.join(FIELDS)})")
        mapping[ours] = theirs
    return mapping


def _frame(data: bytes) -> tuple[pd.DataFrame, int]:
    """The file as text columns and the line number of its first data row (Parquet: row 1)."""
    raw = read_bytes(data)
    if raw[:4] == PARQUET_MAGIC:
        try:
            frame = pd.read_parquet(io.BytesIO(raw))
        except Exception as exc:  # pyarrow raises several kinds for a damaged file
            raise ConfigError(f"not a readable Parquet file: {exc}") from None
        return frame, 1
    try:
        frame = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise ConfigError(f"not a readable CSV file: {' '.join(str(exc).split())}") from None
    return frame, 2


def _where(first_line: int, positions, parquet: bool) -> list[int | str]:
    return [f"row {p + 1}" if parquet else int(p) + first_line for p in positions]


def parse(path: str, data: bytes, options: ImportOptions) -> ParsedFile:
    out = ParsedFile(path, FORMAT)
    try:
        frame, first_line = _frame(data)
    except ConfigError as exc:
        out.problem(1, str(exc))
        return out
    parquet = first_line == 1
    columns = dict(options.mapping)
    rivals = {"ts": "bar_start", "bar_start": "ts", "volume": "bar_volume", "bar_volume": "volume"}
    for f in FIELDS:  # a column named like one of our fields maps to it, unless taken or rivalled
        if (f not in columns and f in frame.columns and f not in options.mapping.values()
                and rivals.get(f) not in options.mapping):
            columns[f] = f
    absent = [f"{f}={c}" for f, c in options.mapping.items() if c not in frame.columns]
    if absent:
        out.problem(1, f"--map names columns the file does not have: {', '.join(absent)} "
                       f"(it has {', '.join(map(str, frame.columns))})")
        return out
    for need, hint in (("symbol", "symbol=COLUMN"), ("ltp", "ltp=COLUMN")):
        if need not in columns:
            out.problem(1, f"no {need} column: map one with --map {hint}")
    if "ts" not in columns and "bar_start" not in columns:
        out.problem(1, "no time column: map one with --map ts=COLUMN (or bar_start=COLUMN for bars)")
    if {"ts", "bar_start"} <= set(columns) or {"volume", "bar_volume"} <= set(columns):
        out.problem(1, "map either ts or bar_start, and either volume or bar_volume, not both")
    if out.problems:
        return out
    if frame.empty:
        out.problem(first_line, "the file has a header but no rows")
        return out

    def bad(mask, message: str) -> None:
        positions = np.flatnonzero(np.asarray(mask))
        for where in _where(first_line, positions[:SHOWN], parquet):
            out.problem(where, message)
        if len(positions) > SHOWN:
            out.problem(_where(first_line, positions[SHOWN:SHOWN + 1], parquet)[0],
                        f"{message} (and {len(positions) - SHOWN - 1} more lines like it)")

    moments = _times(frame[columns.get("ts") or columns["bar_start"]], options, bad, out)
    if moments is not None and "bar_start" in columns:
        moments = moments + pd.Timedelta(seconds=options.bar_seconds)
    values, empty = {}, {}
    for name in NUMERIC:
        if name in columns:
            text = frame[columns[name]].astype(str).str.strip().str.replace(",", "", regex=False)
            empty[name] = text.isin(["", "-", "nan", "None"])
            parsed = pd.to_numeric(text.where(~empty[name]), errors="coerce")
            bad(parsed.isna() & ~empty[name], f"{columns[name]} is not a number")
            finite = parsed.where(np.isfinite(parsed))
            bad(parsed.notna() & finite.isna(), f"{columns[name]} must be finite")
            if name in ("ltp", "volume", "bar_volume", "oi", "bid", "ask"):
                bad(finite < 0, f"{columns[name]} must not be negative")
            values[name] = finite
    bad(empty["ltp"] | (values["ltp"] <= 0), f"{columns['ltp']} (the price) must be positive")
    expiries = None
    if "expiry" in columns:
        expiries = pd.to_datetime(frame[columns["expiry"]], errors="coerce", format="mixed").dt.date
        bad(expiries.isna() & frame[columns["expiry"]].astype(str).str.strip().ne(""),
            f"{columns['expiry']} is not a date")
    # without valid times the symbols are still checked, as of no particular day
    days = moments.dt.tz_convert(IST).dt.date if moments is not None else pd.Series([None] * len(frame))
    symbols = _symbols(frame[columns["symbol"]].astype(str), days, expiries, bad)
    if out.problems:
        return out
    table = pd.DataFrame({"ts": moments, "symbol": symbols, "line": np.arange(len(frame))})
    for name, series in values.items():
        table[name] = series
    if "token" in columns:
        table["token"] = frame[columns["token"]].astype(str).str.strip()
    table = table.sort_values(["ts", "line"], kind="stable")
    duplicates = table.duplicated(["ts", "symbol"], keep="last")
    if duplicates.any():
        out.notes.append(f"{int(duplicates.sum())} rows repeat a symbol at the same time: "
                         f"the later line kept")
        table = table[~duplicates]
    if "bar_volume" in table:
        day = table["ts"].dt.tz_convert(IST).dt.date
        table["volume"] = table["bar_volume"].fillna(0).groupby([table["symbol"], day]).cumsum()
    records = [_tick(row) for row in table.drop(columns=["line"]).to_dict("records")]
    return out.accept(_snapshots(records, options), lambda: _snapshots(records, options))


def _times(raw: pd.Series, options: ImportOptions, bad, out: ParsedFile) -> pd.Series | None:
    """UTC times of the rows, or None (with the problems reported)."""
    text = raw.astype(str).str.strip()
    has_offset = text.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$", regex=True)
    if has_offset.any() and not has_offset.all():
        bad(~has_offset, "this timestamp has no UTC offset while others have one: use one form")
        return None
    parsed = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=bool(has_offset.all()))
    before = len(out.problems)
    bad(parsed.isna(), "not a timestamp (use ISO 8601, e.g. 2026-09-22 14:17:50.245)")
    if len(out.problems) > before:
        return None
    if parsed.dt.tz is None:
        if options.tz is None:
            out.problem(1, f"timestamps carry no UTC offset (e.g. {text.iloc[0]!r}): pass --tz with "
                           f"their zone, e.g. --tz Asia/Kolkata; a zone is never guessed")
            return None
        try:
            parsed = parsed.dt.tz_localize(options.tz, ambiguous="raise", nonexistent="raise")
        except (ValueError, TypeError) as exc:
            out.problem(1, f"timestamps cannot be placed in {options.tz}: {exc}")
            return None
    return parsed.dt.tz_convert("UTC")


def _symbols(raw: pd.Series, days: pd.Series, expiries, bad) -> pd.Series:
    """Our symbol per row (the same text can read differently on another day)."""
    hints = expiries if expiries is not None else pd.Series([None] * len(raw), index=raw.index)
    cache: dict[tuple, tuple[str | None, str | None]] = {}
    result, messages = [], []
    for text, day, expiry in zip(raw, days, hints):
        key = (text, day, expiry)
        if key not in cache:
            try:
                hint = expiry if isinstance(expiry, date) else None
                cache[key] = (to_symbol(text, on=day, expiry=hint), None)
            except SymbolError as exc:
                cache[key] = (None, str(exc))
        symbol, message = cache[key]
        result.append(symbol)
        messages.append(message)
    messages = pd.Series(messages)
    for message in messages.dropna().unique():
        bad(messages == message, message)
    return pd.Series(result, index=raw.index)


def _none(value):
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else value


def _tick(row: dict) -> dict:
    tick = dict.fromkeys(TICK_FIELDS)
    symbol = row["symbol"]
    tick.update(symbol=symbol, token=_none(row.get("token")) or token_for(symbol),
                ts=format_ts(row["ts"].to_pydatetime()), source=SOURCE)
    for name in ("ltp", "bid", "ask", "iv", "delta", "gamma", "theta", "vega"):
        tick[name] = _none(row.get(name))
    for name in ("bid", "ask"):
        if tick[name] is not None and tick[name] <= 0:
            tick[name] = None  # no quote: NULL, never 0
    for name in ("volume", "oi"):
        value = _none(row.get(name))
        tick[name] = None if value is None else int(round(value))
    if parse_symbol(symbol).kind == INDEX:
        tick["volume"], tick["oi"], tick["bid"], tick["ask"] = 0, None, None, None
    return tick


def _snapshots(records: list[dict], options: ImportOptions):
    """Rows grouped by time, with IV and Greeks from the as-of book of latest prices."""
    book: dict[str, dict] = {}
    group: list[dict] = []
    for tick in records:
        if group and tick["ts"] != group[0]["ts"]:
            yield _priced(group, book, options)
            group = []
        group.append(tick)
    if group:
        yield _priced(group, book, options)


def _priced(group: list[dict], book: dict[str, dict], options: ImportOptions) -> tuple[str, list[dict]]:
    ts = group[0]["ts"]
    for tick in group:
        book[tick["symbol"]] = tick
    here = {t["symbol"] for t in group}
    if any(parse_symbol(s).kind in ("CE", "PE") and book[s]["iv"] is None for s in here):
        computed = snapshot_greeks(list(book.values()), ts, options.risk_free_rate,
                                   convention=options.iv, missing_only=True)
        by_symbol = {t["symbol"]: t for t in computed}
        group = [by_symbol[t["symbol"]] | {"ts": ts} for t in group]
        for tick in group:
            book[tick["symbol"]] = tick
    return ts, sorted(group, key=lambda t: t["symbol"])
