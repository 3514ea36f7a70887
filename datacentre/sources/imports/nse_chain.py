"""NSE option-chain API JSON (``/api/option-chain-indices``): one snapshot per file.

Layout: ``records.timestamp`` (``28-Mar-2022 10:47:19``, IST), ``records.underlyingValue``
(the index), ``records.data[]`` with ``strikePrice``, ``expiryDate`` (``31-Mar-2022``) and a
``CE`` and/or ``PE`` object: ``openInterest`` and ``totalTradedVolume`` in **contracts**,
``lastPrice``, ``bidprice``, ``askPrice`` (0 when none), ``underlying``. Plain or gzipped;
dumps saved as a Python ``repr`` (single quotes) are read too.

Mapping: the index tick from ``underlyingValue``; one option tick per side with a last price
(a contract that has not traded has ``lastPrice`` 0 and is left out, as the live sources leave
out contracts without a trade); OI and volume times the lot size of that contract on that day
(:mod:`datacentre.core.lots`, or ``--lot-size``); bid/ask None when 0. NSE's
``impliedVolatility`` is not stored: IV and Greeks are computed (:mod:`datacentre.core.forward`,
``--iv``). Expiries are the file's own dates, whatever weekday they fall on.
"""
from __future__ import annotations

import ast
import json
from datetime import date, datetime

from datacentre.core.errors import ConfigError, SymbolError
from datacentre.core.instruments import format_option, underlying
from datacentre.core.ticks import IST
from datacentre.sources.imports.common import (
    ImportOptions,
    ParsedFile,
    contract_lot,
    count,
    index_tick,
    make_tick,
    number,
    price,
    stamp,
    text_of,
    with_greeks,
)

FORMAT = "nse-chain"
TS_FORMAT = "%d-%b-%Y %H:%M:%S"
EXPIRY_FORMAT = "%d-%b-%Y"


def looks_like(text: str) -> bool:
    head = text[:4096]
    return head.lstrip().startswith("{") and "records" in head and ("data" in text[:200_000])


def load(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        try:
            return ast.literal_eval(text)  # a dump saved with Python's str(dict)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise ConfigError(f"not JSON (nor a Python dict): {exc.msg} at line {exc.lineno}, "
                              f"column {exc.colno}") from None


def parse_expiry(text) -> date:
    try:
        return datetime.strptime(str(text).strip(), EXPIRY_FORMAT).date()
    except ValueError:
        raise ValueError(f"expiryDate {text!r} is not a date like 31-Mar-2022") from None


def parse(path: str, data: bytes, options: ImportOptions) -> ParsedFile:
    out = ParsedFile(path, FORMAT)
    try:
        doc = load(text_of(data))
    except ConfigError as exc:
        out.problem(1, str(exc))
        return out
    records = doc.get("records") if isinstance(doc, dict) else None
    if not isinstance(records, dict) or not isinstance(records.get("data"), list):
        out.problem("records", "no records.data list: not an NSE option-chain API reply")
        return out
    try:
        moment = datetime.strptime(str(records.get("timestamp", "")).strip(), TS_FORMAT).replace(tzinfo=IST)
    except ValueError:
        out.problem("records.timestamp", f"{records.get('timestamp')!r} is not a time like "
                                         f"28-Mar-2022 10:47:19")
        return out
    ts, day = stamp(moment), moment.date()
    spot = None
    try:
        spot = price(number(records.get("underlyingValue"), "underlyingValue"))
    except ValueError as exc:
        out.problem("records.underlyingValue", str(exc))
    bases: set[str] = set()
    ticks: list[dict] = []
    expiries: set[date] = set()
    skipped = 0
    for i, row in enumerate(records["data"]):
        where = f"records.data[{i}]"
        if not isinstance(row, dict):
            out.problem(where, "not an object")
            continue
        for right in ("CE", "PE"):
            leg = row.get(right)
            if leg is None:
                continue
            try:
                tick, base, expiry = _leg(leg, row, right, ts, day, options)
            except (ValueError, SymbolError, ConfigError, TypeError) as exc:
                out.problem(f"{where}.{right}", str(exc))
                continue
            bases.add(base)
            expiries.add(expiry)
            if options.expiry is not None and expiry != options.expiry:
                continue
            if tick is None:
                skipped += 1
            else:
                ticks.append(tick)
    if len(bases) > 1:
        out.problem("records.data", f"more than one underlying in one file: {', '.join(sorted(bases))}")
    if spot is None and not out.problems:
        out.problem("records.underlyingValue", "the index value is missing or not positive")
    if options.expiry is not None and expiries and options.expiry not in expiries:
        listed = ", ".join(e.isoformat() for e in sorted(expiries))
        out.problem("records.data", f"no contracts expire on {options.expiry.isoformat()}; "
                                    f"the file has {listed}")
    if not bases and not out.problems:
        out.problem("records.data", "no CE or PE contracts")
    if out.problems:
        return out
    base = bases.pop()
    if skipped:
        out.notes.append(f"{skipped} contracts without a trade (lastPrice 0) left out")
    snapshot = with_greeks(ts, [index_tick(base, ts, spot), *ticks], options)
    return out.keep([snapshot])


def _leg(leg: dict, row: dict, right: str, ts: str, day: date,
         options: ImportOptions) -> tuple[dict | None, str, date]:
    if not isinstance(leg, dict):
        raise ValueError("not an object")
    base = underlying(str(leg.get("underlying") or "").strip() or "?").base
    strike = number(leg.get("strikePrice", row.get("strikePrice")), "strikePrice")
    if strike is None or strike <= 0:
        raise ValueError(f"strikePrice must be positive, got {leg.get('strikePrice')!r}")
    expiry = parse_expiry(leg.get("expiryDate", row.get("expiryDate")))
    ltp = number(leg.get("lastPrice"), "lastPrice")
    bid = number(leg.get("bidprice"), "bidprice")
    ask = number(leg.get("askPrice"), "askPrice")
    for name, value in (("lastPrice", ltp), ("bidprice", bid), ("askPrice", ask)):
        if value is not None and value < 0:
            raise ValueError(f"{name} must not be negative, got {value:g}")
    lot = contract_lot(base, expiry, day, options)
    oi = count(number(leg.get("openInterest"), "openInterest"), "openInterest", lot=lot)
    volume = count(number(leg.get("totalTradedVolume"), "totalTradedVolume"), "totalTradedVolume", lot=lot)
    symbol = format_option(base, expiry, strike, right)
    if price(ltp) is None:
        return None, base, expiry
    return make_tick(symbol, ts, ltp, bid=price(bid), ask=price(ask), volume=volume, oi=oi), base, expiry
