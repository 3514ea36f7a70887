"""The older NSE option-chain page (``optionKeys.jsp``) saved as CSV: one snapshot per file.

Columns ``CallOI, CallChnginOI, CallVolume, CallIV, CallLTP, CallNetChng, CallBidQty,
CallBidPrice, CallAskPrice, CallAskQty, StrikePrice, PutBidQty, ..., PutOI, CurrentVal``
(an unnamed row-number column first is allowed); ``-`` is an empty cell; ``CurrentVal`` is
the index. The page showed OI in **shares** (every value is a multiple of the lot) and volume
in **contracts**; OI that is not all multiples of the lot is taken as contracts too.

What the content lacks comes from elsewhere, never from today's calendar:

* the time: ``--ts``, else the file name (``NIFTY_01-07-2019_10-00.csv``, ``10:00`` too), IST;
* the underlying: the file name's prefix (``NIFTY_``, ``BANKNIFTY_``);
* the expiry (the page showed one): ``--expiry``, else the date whose time to expiry
  reproduces the page's own ``CallIV``/``PutIV`` (NSE's convention: Black-Scholes on the
  index at 10 %, see :mod:`datacentre.core.forward`); the match must be within
  :data:`MAX_IV_ERROR` vol points, or the file is refused with a request for ``--expiry``.
"""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np

from datacentre.core import pricing
from datacentre.core.forward import NSE_RATE
from datacentre.core.instruments import format_option, time_to_expiry
from datacentre.core.ticks import IST
from datacentre.sources.imports.common import (
    ImportOptions,
    ParsedFile,
    contract_lot,
    count,
    csv_rows,
    index_tick,
    make_tick,
    number,
    price,
    stamp,
    with_greeks,
)

FORMAT = "nse-chain-csv"
REQUIRED = ("CallOI", "CallVolume", "CallLTP", "CallBidPrice", "CallAskPrice", "StrikePrice",
            "PutBidPrice", "PutAskPrice", "PutLTP", "PutVolume", "PutOI", "CurrentVal")
SIDES = {"CE": "Call", "PE": "Put"}
NAME = re.compile(r"(?i)^(BANKNIFTY|NIFTY)_(\d{2})-(\d{2})-(\d{4})_(\d{2})[-:](\d{2})")
MAX_IV_ERROR = 1.0  # vol points: median |our NSE-style IV - the page's| for an inferred expiry
SEARCH_DAYS = 45  # expiries tried after the snapshot day (the page showed the nearest one)
NEAR_MONEY = 0.05  # strikes within 5 % of the index are used for the inference


def looks_like(text: str) -> bool:
    header = text.split("\n", 1)[0]
    return all(name in header for name in ("CallOI", "StrikePrice", "PutOI"))


def name_parts(path: str) -> tuple[str | None, datetime | None]:
    m = NAME.match(Path(path).name)
    if not m:
        return None, None
    base, dd, mm, yyyy, hh, mi = m.groups()
    try:
        return base.upper(), datetime(int(yyyy), int(mm), int(dd), int(hh), int(mi), tzinfo=IST)
    except ValueError:
        return base.upper(), None


def parse(path: str, data: bytes, options: ImportOptions) -> ParsedFile:
    out = ParsedFile(path, FORMAT)
    reader = csv_rows(out, data, REQUIRED, "the NSE option-chain page layout")
    if reader is None:
        return out
    base, named_at = name_parts(path)
    moment = options.ts.astimezone(IST) if options.ts else named_at
    if moment is None:
        out.problem(1, "no snapshot time: pass --ts, or name the file like NIFTY_01-07-2019_10-00.csv")
    if base is None:
        out.problem(1, "no underlying: name the file NIFTY_... or BANKNIFTY_...")
    if out.problems:
        return out
    rows, spots = [], set()
    for row in reader:
        line = reader.line_num
        try:
            parsed = _row(row)
            parsed["line"] = line
        except ValueError as exc:
            out.problem(line, str(exc))
            continue
        if parsed["spot"] is not None:
            spots.add(parsed["spot"])
        rows.append(parsed)
    if len(spots) > 1:
        out.problem(2, f"CurrentVal differs between lines: {', '.join(map(str, sorted(spots)))}")
    elif not spots and not out.problems:
        out.problem(2, "CurrentVal (the index) is empty on every line")
    if not rows and not out.problems:
        out.problem(2, "no strikes")
    if out.problems:
        return out
    spot = spots.pop()
    ts = stamp(moment)
    if not any(price(r[f"{side}LTP"]) for r in rows for side in SIDES.values()):
        # nothing traded yet (the page at 09:15): the index is all there is, no expiry needed
        out.notes.append("no contract has a last price: only the index is imported")
        return out.keep([(ts, [index_tick(base, ts, spot)])])
    expiry = options.expiry
    if expiry is None:
        expiry, error = infer_expiry(rows, spot, moment)
        if expiry is None:
            out.problem(1, "the expiry is not in the file and the page's IVs do not settle it: pass --expiry")
            return out
        out.notes.append(f"expiry {expiry.isoformat()} inferred from the page's IVs "
                         f"(median error {error:.2f} vol points)")
    day = moment.date()
    lot = contract_lot(base, expiry, day, options)
    ois = [r[f"{side}OI"] for r in rows for side in SIDES.values() if r[f"{side}OI"]]
    oi_lot = 1 if all(abs(v / lot - round(v / lot)) < 1e-9 for v in ois) else lot
    if oi_lot != 1:
        out.notes.append("OI not all in multiples of the lot: read as contracts")
    ticks = [index_tick(base, ts, spot)]
    for r in rows:
        for right, side in SIDES.items():
            ltp = r[f"{side}LTP"]
            if price(ltp) is None:
                continue
            try:
                oi = count(r[f"{side}OI"], f"{side}OI", lot=oi_lot)
                volume = count(r[f"{side}Volume"], f"{side}Volume", lot=lot)
            except ValueError as exc:
                out.problem(r["line"], str(exc))
                continue
            ticks.append(make_tick(format_option(base, expiry, r["strike"], right), ts, ltp,
                                   bid=price(r[f"{side}BidPrice"]), ask=price(r[f"{side}AskPrice"]),
                                   volume=volume or 0, oi=oi))
    if out.problems:
        return out
    return out.keep([with_greeks(ts, ticks, options)])


_NUMERIC = ("CallOI", "CallVolume", "CallIV", "CallLTP", "CallBidPrice", "CallAskPrice",
            "PutBidPrice", "PutAskPrice", "PutLTP", "PutIV", "PutVolume", "PutOI")


def _row(row: dict) -> dict:
    if None in row:
        raise ValueError("more cells than the header has")
    out = {name: number(row.get(name), name) for name in _NUMERIC if name in row}
    for name, value in out.items():
        if value is not None and value < 0:
            raise ValueError(f"{name} must not be negative, got {value:g}")
    strike = number(row.get("StrikePrice"), "StrikePrice")
    if strike is None or strike <= 0:
        raise ValueError(f"StrikePrice must be positive, got {row.get('StrikePrice')!r}")
    out["strike"] = strike
    spot = number(row.get("CurrentVal"), "CurrentVal")
    out["spot"] = price(spot)
    out.setdefault("CallIV", None)
    out.setdefault("PutIV", None)
    return out


def infer_expiry(rows: list[dict], spot: float, moment: datetime) -> tuple[date | None, float]:
    """The expiry (a day after the snapshot) whose NSE-style IVs best match the page's."""
    samples = [(r["strike"], flag, r[f"{side}LTP"], r[f"{side}IV"]) for r in rows
               for flag, side in (("c", "Call"), ("p", "Put"))
               if r[f"{side}IV"] and price(r[f"{side}LTP"]) and abs(r["strike"] / spot - 1) <= NEAR_MONEY]
    if len(samples) < 3:
        return None, float("nan")
    strikes = np.array([s[0] for s in samples])
    flags = np.array([s[1] for s in samples])
    prices = np.array([s[2] for s in samples])
    published = np.array([s[3] for s in samples])
    best, best_error = None, float("inf")
    for offset in range(SEARCH_DAYS):
        candidate = moment.date() + timedelta(days=offset)
        t = time_to_expiry(candidate, moment)
        if t <= 0:
            continue
        ours = np.asarray(pricing.implied_vol(prices, flags, spot, strikes, t, NSE_RATE)) * 100
        fits = np.isfinite(ours)
        if fits.sum() < 3:
            continue
        error = float(np.median(np.abs(ours[fits] - published[fits])))
        if error < best_error:
            best, best_error = candidate, error
    if best is None or best_error > MAX_IV_ERROR:
        return None, best_error
    return best, best_error
