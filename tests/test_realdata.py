"""The real NSE and broker files of the folder named by ``DATACENTRE_REALDATA``: all of them
import (into SQLite and into PostgreSQL), the lot-size table agrees with the bhavcopy, and
call/put IVs agree on the forward."""
from __future__ import annotations

import csv
import gzip
import json
import os
import time
from contextlib import ExitStack
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from conftest import ENGINES, fresh_schema

from datacentre.core import pricing
from datacentre.core.forward import NSE_RATE
from datacentre.core.instruments import parse_symbol, time_to_expiry
from datacentre.core.lots import lot_size
from datacentre.core.ticks import IST
from datacentre.sources.imports import ImportOptions, import_files, parse_file
from datacentre.store.tickstore import TickStore

FOLDER = os.environ.get("DATACENTRE_REALDATA")
pytestmark = pytest.mark.skipif(not FOLDER, reason="DATACENTRE_REALDATA is not set (the folder of real "
                                                   "market files)")
CHAIN_FOLDERS = ("nse_option_chain_json", "nse_oc_2019_intraday", "bhavcopy_udiff")
TAPE = ("intraday_ticks/ridhamgsheth_nifty_tape_2026-09-22_excerpt.csv",
        {"ts": "timestamp", "ltp": "traded_price", "volume": "cumulative_vol", "oi": "open_interest",
         "symbol": "trading_symbol"})
BARS = ("intraday_ticks/ridhamgsheth_nifty_1min_bars_2026-09-22_excerpt.csv",
        {"bar_start": "timestamp_minute", "ltp": "close", "bar_volume": "volume", "symbol": "trading_symbol"})
KOLKATA = ZoneInfo("Asia/Kolkata")


def real(*parts: str) -> Path:
    return Path(FOLDER, *parts)


@pytest.fixture(scope="module", params=ENGINES)
def imported(request, tmp_path_factory):
    """Every file of the folder, imported once per engine: (store, summaries, seconds)."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('real') / 'real.db'}"
        else:
            url = stack.enter_context(fresh_schema(request.getfixturevalue("pg_database")))
        store = stack.enter_context(TickStore(url))
        started = time.monotonic()
        summaries = [import_files(store, [real(f) for f in CHAIN_FOLDERS], ImportOptions(), progress=False)]
        for name, mapping in (TAPE, BARS):
            summaries.append(import_files(store, [real(name)], ImportOptions(tz=KOLKATA, mapping=mapping),
                                          progress=False))
        yield store, summaries, time.monotonic() - started


def test_every_file_imports(imported):
    store, summaries, seconds = imported
    files = [f for s in summaries for f in s.files]
    on_disk = sorted(p for p in Path(FOLDER).rglob("*") if p.is_file() and p.name != "provenance.txt")
    assert sorted(Path(f.path) for f in files) == on_disk
    counts = {}
    for s in summaries:
        for fmt, t in s.by_format().items():
            c = counts.setdefault(fmt, [0, 0, 0])
            c[0] += t.files
            c[1] += t.snapshots
            c[2] += t.rows
    print(f"\nimported in {seconds:.1f} s: {counts}")
    assert counts["nse-chain"][:2] == [21, 21]
    assert counts["nse-chain-csv"][:2] == [54, 54]
    assert counts["bhavcopy"][:2] == [6, 6]
    assert counts["ticks"][:2] == [2, 3]
    assert store.count() == sum(c[2] for c in counts.values())
    # the 54 snapshots of 1 July 2019, every 15 minutes from 09:15 to 15:45 IST
    day = store.snapshot_times("NIFTY", "2019-07-01T00:00:00+00:00", "2019-07-01T23:59:59+00:00")
    assert len(day) == 27 and day[0] == "2019-07-01T03:45:00+00:00" and day[-1] == "2019-07-01T10:15:00+00:00"


def test_reimport_adds_nothing(imported):
    store, _, _ = imported
    before = store.count()
    again = import_files(store, [real(CHAIN_FOLDERS[1])], ImportOptions(), progress=False)
    assert sum(again.inserted.values()) == 0 and store.count() == before


def test_past_expiries_come_from_the_files(imported):
    store, _, _ = imported
    expiries = store.option_expiries("NIFTY")
    assert "2019-07-04" in expiries  # a Thursday weekly (the page's, inferred from its IVs)
    assert "2022-04-13" in expiries  # a Wednesday (a holiday moved it), from the API's expiryDates
    assert "2026-03-30" in expiries  # a Monday, from the bhavcopy


def test_lot_table_agrees_with_the_bhavcopy():
    checked = 0
    for path in sorted(real("bhavcopy_udiff").glob("*.csv")):
        for row in csv.DictReader(path.open()):
            if row["FinInstrmTp"] not in ("IDO", "IDF"):
                continue
            expiry, day = date.fromisoformat(row["XpryDt"]), date.fromisoformat(row["TradDt"])
            expected = int(row["NewBrdLotQty"])
            assert lot_size(row["TckrSymb"], expiry, day) == expected, (path.name, row["XpryDt"])
            checked += 1
    assert checked > 8000


def _gaps(snapshots) -> list[float]:
    out = []
    for _ts, ticks in snapshots:
        spot = next(t["ltp"] for t in ticks if t["symbol"] in ("NIFTY 50", "NIFTY BANK"))
        by: dict[tuple, dict] = {}
        for t in ticks:
            ins = parse_symbol(t["symbol"])
            if ins.kind in ("CE", "PE") and t["iv"] is not None and abs(ins.strike / spot - 1) <= 0.02:
                by.setdefault((ins.expiry, ins.strike), {})[ins.kind] = t["iv"]
        out += [abs(v["CE"] - v["PE"]) for v in by.values() if len(v) == 2]
    return out


def _snapshots(folder: str, options=None):
    for path in sorted(real(folder).iterdir()):
        yield from parse_file(path, options or ImportOptions()).snapshots()


def test_call_and_put_iv_agree_near_the_money():
    api, pages = _gaps(_snapshots("nse_option_chain_json")), _gaps(_snapshots("nse_oc_2019_intraday"))
    both = float(np.median(api + pages))
    print(f"\nmedian |IV(CE) - IV(PE)| within 2% of spot: API {np.median(api):.2f} ({len(api)} strikes), "
          f"2019 pages {np.median(pages):.2f} ({len(pages)}), all {both:.2f} vol points")
    assert both <= 0.5
    assert np.median(api) <= 0.5


def _published(path: Path) -> dict[tuple, float]:
    raw = path.read_bytes()
    doc = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    out = {}
    for row in doc["records"]["data"]:
        for right in ("CE", "PE"):
            leg = row.get(right)
            if leg and leg["impliedVolatility"] > 0 and leg["lastPrice"] > 0:
                expiry = datetime.strptime(leg["expiryDate"], "%d-%b-%Y").date()
                out[(expiry, float(leg["strikePrice"]), right)] = leg["impliedVolatility"]
    return out


def test_nse_convention_reproduces_nses_published_iv():
    errors = []
    for path in sorted(real("nse_option_chain_json").iterdir()):
        published = _published(path)
        (ts, ticks), = parse_file(path, ImportOptions(iv="nse")).snapshots()
        spot = next(t["ltp"] for t in ticks if t["symbol"] in ("NIFTY 50", "NIFTY BANK"))
        for t in ticks:
            ins = parse_symbol(t["symbol"])
            key = (ins.expiry, ins.strike, ins.kind)
            if key in published and t["iv"] is not None and abs(ins.strike / spot - 1) <= 0.05:
                errors.append(abs(t["iv"] - published[key]))
    print(f"\nmedian |our NSE-style IV - NSE's| within 5% of spot: {np.median(errors):.2f} ({len(errors)})")
    assert np.median(errors) <= 0.3


def test_the_2019_pages_expiry_reproduces_their_ivs():
    path = real("nse_oc_2019_intraday", "NIFTY_01-07-2019_12-00.csv")
    moment = datetime(2019, 7, 1, 12, 0, tzinfo=IST)
    rows = list(csv.DictReader(path.open()))
    t = time_to_expiry(date(2019, 7, 4), moment)
    spot = float(rows[0]["CurrentVal"])
    errors = [abs(float(pricing.implied_vol(float(r["CallLTP"]), "c", spot, float(r["StrikePrice"]), t,
                                            NSE_RATE)) * 100 - float(r["CallIV"]))
              for r in rows if r["CallLTP"] != "-" and r["CallIV"] != "-"
              and abs(float(r["StrikePrice"]) / spot - 1) < 0.03]
    assert np.median(errors) < 1.0
