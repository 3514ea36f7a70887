"""NSE's UDiFF F&O bhavcopy (``BhavCopy_NSE_FO_0_0_0_YYYYMMDD_F_0000.csv``), whole or split.

One end-of-day snapshot at 15:30 IST per trading date (``TradDt``), holding the index
options (``FinInstrmTp`` ``IDO``) and futures (``IDF``) of NIFTY and BANKNIFTY; every other
row (stocks, other indices) is left out. Per contract: the settlement price ``SttlmPric``
(``--price close``: ``ClsPric``) as ``ltp``; ``OpnIntrst`` (already in shares) as OI;
``TtlTradgVol`` (contracts) times the day's lot ``NewBrdLotQty`` (``--lot-size`` overrides)
as volume; no bid/ask. The index tick comes from ``UndrlygPric``. Expiries are ``XpryDt``.

Settle or close: for a contract that traded the two are equal; for one that did not, the
close is the previous day's close while the settlement price is NSE's valuation of that
day, which is why settle is the default.
"""
from __future__ import annotations

from datetime import date

from datacentre.core.errors import ConfigError, SymbolError
from datacentre.core.instruments import UNDERLYINGS, format_future, format_option
from datacentre.sources.imports.common import (
    ImportOptions,
    ParsedFile,
    count,
    csv_rows,
    index_tick,
    ist_moment,
    make_tick,
    number,
    price,
    stamp,
    with_greeks,
)

FORMAT = "bhavcopy"
REQUIRED = ("TradDt", "FinInstrmTp", "TckrSymb", "XpryDt", "StrkPric", "OptnTp", "ClsPric",
            "SttlmPric", "UndrlygPric", "OpnIntrst", "TtlTradgVol", "NewBrdLotQty")
KINDS = {"IDO", "IDF"}
PRICES = {"settle": "SttlmPric", "close": "ClsPric"}


def looks_like(text: str) -> bool:
    header = text.split("\n", 1)[0]
    return all(name in header for name in ("TradDt", "FinInstrmTp", "TckrSymb", "XpryDt"))


def _day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(str(text).strip())
    except ValueError:
        raise ValueError(f"{name} {text!r} is not a date like 2025-01-01") from None


def parse(path: str, data: bytes, options: ImportOptions) -> ParsedFile:
    out = ParsedFile(path, FORMAT)
    if options.price not in PRICES:
        raise ConfigError(f"bhavcopy price must be {' or '.join(PRICES)}, got {options.price!r}")
    reader = csv_rows(out, data, REQUIRED, "a UDiFF F&O bhavcopy")
    if reader is None:
        return out
    by_day: dict[date, list[dict]] = {}
    spots: dict[tuple[date, str], float] = {}
    others = 0
    for row in reader:
        line = reader.line_num
        base = (row.get("TckrSymb") or "").strip().upper()
        if base not in UNDERLYINGS or (row.get("FinInstrmTp") or "").strip() not in KINDS:
            others += 1
            continue
        try:
            day, tick, spot = _row(row, base, options)
        except (ValueError, SymbolError, ConfigError) as exc:
            out.problem(line, str(exc))
            continue
        known = spots.setdefault((day, base), spot)
        if abs(known - spot) > 1e-6 * known:
            out.problem(line, f"UndrlygPric {spot:g} differs from {known:g} on an earlier line of {day}")
            continue
        if tick is not None:
            by_day.setdefault(day, []).append(tick)
    if not spots and not out.problems:
        out.problem(2, "no NIFTY or BANKNIFTY index options or futures (FinInstrmTp IDO/IDF)")
    if out.problems:
        return out
    if others:
        out.notes.append(f"{others} rows of other instruments left out")
    snapshots = []
    for day in sorted({d for d, _ in spots}):
        ts = stamp(ist_moment(day))
        ticks = [index_tick(base, ts, spot) for (d, base), spot in sorted(spots.items()) if d == day]
        ticks += [dict(t, ts=ts) for t in by_day.get(day, [])]
        snapshots.append(with_greeks(ts, ticks, options))
    return out.keep(snapshots)


def _row(row: dict, base: str, options: ImportOptions) -> tuple[date, dict | None, float]:
    day = _day(row["TradDt"], "TradDt")
    expiry = _day(row["XpryDt"], "XpryDt")
    spot = price(number(row["UndrlygPric"], "UndrlygPric"))
    if spot is None:
        raise ValueError(f"UndrlygPric must be positive, got {row['UndrlygPric']!r}")
    lot = options.lot_size or count(number(row["NewBrdLotQty"], "NewBrdLotQty"), "NewBrdLotQty")
    if not lot:
        raise ValueError(f"NewBrdLotQty must be a positive whole number, got {row['NewBrdLotQty']!r}")
    oi = count(number(row["OpnIntrst"], "OpnIntrst"), "OpnIntrst")
    volume = count(number(row["TtlTradgVol"], "TtlTradgVol"), "TtlTradgVol", lot=lot)
    value = number(row[PRICES[options.price]], PRICES[options.price])
    if row["FinInstrmTp"].strip() == "IDF":
        symbol = format_future(base, expiry)
    else:
        strike = number(row["StrkPric"], "StrkPric")
        if strike is None or strike <= 0:
            raise ValueError(f"StrkPric must be positive, got {row['StrkPric']!r}")
        right = (row["OptnTp"] or "").strip().upper()
        if right not in ("CE", "PE"):
            raise ValueError(f"OptnTp must be CE or PE, got {row['OptnTp']!r}")
        symbol = format_option(base, expiry, strike, right)
    if value is not None and value < 0:
        raise ValueError(f"{PRICES[options.price]} must not be negative, got {value:g}")
    if price(value) is None:
        return day, None, spot
    return day, make_tick(symbol, "", value, volume=volume or 0, oi=oi), spot
