"""The importers of real files, on small files the tests write: each parser, then whole imports
into a real store, SQLite and PostgreSQL (line-numbered errors, nothing half imported, re-import
a no-op)."""
from __future__ import annotations

import csv
import gzip
import json
import math
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from datacentre.__main__ import main
from datacentre.core import pricing
from datacentre.core.errors import ImportFormatError
from datacentre.core.forward import NSE_RATE
from datacentre.core.instruments import time_to_expiry
from datacentre.core.ticks import IST
from datacentre.sources.imports import ImportOptions, detect_format, import_files, parse_file

IST_ZONE = ZoneInfo("Asia/Kolkata")
MOMENT = datetime(2022, 3, 28, 10, 47, 19, tzinfo=IST)
SPOT = 17022.5
EXPIRIES = (date(2022, 3, 31), date(2022, 4, 7))
CARRY, R, VOL = 0.03, 0.065, 0.17


@pytest.fixture
def db_url(any_db_url):
    """Every whole import runs on both engines."""
    return any_db_url


def fair(right: str, strike: float, expiry: date, moment=MOMENT, spot=SPOT, vol=VOL) -> float:
    t = time_to_expiry(expiry, moment)
    forward = spot * math.exp(CARRY * t)
    return round(float(pricing.bs_price(right, forward * math.exp(-R * t), strike, t, R, vol)), 2)


def nse_leg(right, strike, expiry, **extra) -> dict:
    price = fair(right, strike, expiry)
    leg = {"strikePrice": strike, "expiryDate": expiry.strftime("%d-%b-%Y"), "underlying": "NIFTY",
           "identifier": f"OPTIDXNIFTY{expiry:%d-%m-%Y}{right}{strike:.2f}", "openInterest": 1200.5,
           "changeinOpenInterest": 10, "totalTradedVolume": 300, "impliedVolatility": 17.1,
           "lastPrice": price, "bidprice": round(price - 0.05, 2), "askPrice": round(price + 0.05, 2),
           "underlyingValue": SPOT}
    leg.update(extra)
    return leg


def nse_chain_doc(strikes=(16900, 16950, 17000, 17050, 17100), **overrides) -> dict:
    data = [{"strikePrice": k, "expiryDate": e.strftime("%d-%b-%Y"), "CE": nse_leg("CE", k, e),
             "PE": nse_leg("PE", k, e)} for e in EXPIRIES for k in strikes]
    records = {"expiryDates": [e.strftime("%d-%b-%Y") for e in EXPIRIES], "data": data,
               "timestamp": MOMENT.strftime("%d-%b-%Y %H:%M:%S"), "underlyingValue": SPOT,
               "strikePrices": list(strikes)}
    records.update(overrides)
    return {"records": records, "filtered": {"data": [], "CE": {}, "PE": {}}}


def write_json(path, doc, *, gz=False, python_repr=False):
    text = repr(doc) if python_repr else json.dumps(doc)
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    return path


def one_snapshot(parsed):
    assert parsed.ok, parsed.problems
    (ts, ticks), = list(parsed.snapshots())
    return ts, {t["symbol"]: t for t in ticks}


# ---------------------------------------------------------------- nse-chain

@pytest.mark.parametrize("gz, python_repr", [(False, False), (True, False), (True, True)])
def test_nse_chain_one_snapshot_in_shares(tmp_path, gz, python_repr):
    path = write_json(tmp_path / "chain.json", nse_chain_doc(), gz=gz, python_repr=python_repr)
    assert detect_format(path.read_bytes()) == "nse-chain"
    parsed = parse_file(path, ImportOptions())
    ts, ticks = one_snapshot(parsed)
    assert ts == "2022-03-28T05:17:19+00:00"
    assert ticks["NIFTY 50"]["ltp"] == SPOT and ticks["NIFTY 50"]["oi"] is None
    call = ticks["NIFTY31MAR2217000CE"]  # a Thursday expiry, from the file
    assert call["oi"] == 60025 and call["volume"] == 15000  # contracts x 50 (the 2022 lot)
    assert call["bid"] == round(call["ltp"] - 0.05, 2) and call["source"] == "csv"
    assert call["iv"] == pytest.approx(VOL * 100, abs=0.1)  # on the forward, not NSE's 17.1
    put = ticks["NIFTY31MAR2217000PE"]
    assert abs(call["iv"] - put["iv"]) < 0.1
    assert call["delta"] > 0 > put["delta"] and call["theta"] < 0
    assert len(ticks) == 1 + 2 * 2 * 5


def test_nse_chain_expiry_filter_lot_override_and_nse_iv(tmp_path):
    path = write_json(tmp_path / "chain.json", nse_chain_doc())
    _, ticks = one_snapshot(parse_file(path, ImportOptions(expiry=date(2022, 4, 7), lot_size=40, iv="nse")))
    assert {s[5:12] for s in ticks if s != "NIFTY 50"} == {"07APR22"}
    call = ticks["NIFTY07APR2217000CE"]
    assert call["oi"] == 48020
    t = time_to_expiry(date(2022, 4, 7), MOMENT)
    expected = float(pricing.implied_vol(call["ltp"], "c", SPOT, 17000, t, NSE_RATE)) * 100
    assert call["iv"] == pytest.approx(expected, abs=1e-3)
    missing = parse_file(path, ImportOptions(expiry=date(2022, 4, 14)))
    assert "no contracts expire on 2022-04-14" in missing.problems[0][1]


def test_nse_chain_leaves_out_untraded_contracts(tmp_path):
    doc = nse_chain_doc()
    doc["records"]["data"][0]["CE"]["lastPrice"] = 0
    parsed = parse_file(write_json(tmp_path / "c.json", doc), ImportOptions())
    _, ticks = one_snapshot(parsed)
    assert "NIFTY31MAR2216900CE" not in ticks and "NIFTY31MAR2216900PE" in ticks
    assert parsed.notes == ["1 contracts without a trade (lastPrice 0) left out"]


def test_nse_chain_bad_records_are_all_reported(tmp_path):
    doc = nse_chain_doc()
    doc["records"]["data"][1]["CE"]["openInterest"] = -4
    doc["records"]["data"][3]["PE"]["expiryDate"] = "31/03/2022"
    doc["records"]["data"][4]["CE"]["openInterest"] = 0.33  # 16.5 shares at lot 50
    parsed = parse_file(write_json(tmp_path / "bad.json", doc), ImportOptions())
    assert [where for where, _ in parsed.problems] == ["records.data[1].CE", "records.data[3].PE",
                                                        "records.data[4].CE"]
    assert "must not be negative" in parsed.problems[0][1]
    with pytest.raises(Exception, match="problems"):
        list(parsed.snapshots())


def test_nse_chain_without_timestamp(tmp_path):
    path = write_json(tmp_path / "c.json", nse_chain_doc(timestamp="yesterday"))
    parsed = parse_file(path, ImportOptions())
    assert parsed.problems == [("records.timestamp", "'yesterday' is not a time like 28-Mar-2022 10:47:19")]


# ---------------------------------------------------------------- nse-chain-csv

PAGE_COLUMNS = ["", "CallOI", "CallChnginOI", "CallVolume", "CallIV", "CallLTP", "CallNetChng", "CallBidQty",
                "CallBidPrice", "CallAskPrice", "CallAskQty", "StrikePrice", "PutBidQty", "PutBidPrice",
                "PutAskPrice", "PutAskQty", "PutNetChng", "PutLTP", "PutIV", "PutVolume", "PutChnginOI",
                "PutOI", "CurrentVal"]
PAGE_MOMENT = datetime(2019, 7, 1, 10, 0, tzinfo=IST)
PAGE_EXPIRY = date(2019, 7, 4)
PAGE_SPOT = 11850.3


def page_row(i: int, strike: float, *, traded=True) -> list[str]:
    t = time_to_expiry(PAGE_EXPIRY, PAGE_MOMENT)
    cells = {}
    for side, flag in (("Call", "c"), ("Put", "p")):
        price = round(float(pricing.bs_price(flag, PAGE_SPOT, strike, t, NSE_RATE, 0.15)), 2)
        cells.update({f"{side}OI": "75,000" if side == "Call" else "150000", f"{side}ChnginOI": "-",
                      f"{side}Volume": "120", f"{side}IV": "15.00" if traded else "-",
                      f"{side}LTP": f"{price:.2f}" if traded else "-", f"{side}NetChng": "-",
                      f"{side}BidQty": "75", f"{side}BidPrice": f"{price - 0.05:.2f}",
                      f"{side}AskPrice": f"{price + 0.05:.2f}", f"{side}AskQty": "75"})
    cells.update({"": str(i), "StrikePrice": f"{strike:.2f}", "CurrentVal": str(PAGE_SPOT)})
    return [cells[c] for c in PAGE_COLUMNS]


def write_page(path, strikes=(11750, 11800, 11850, 11900, 11950), traded=True, extra=()):
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(PAGE_COLUMNS)
        for i, k in enumerate(strikes):
            writer.writerow(page_row(i, k, traded=traded))
        for row in extra:
            writer.writerow(row)
    return path


def test_nse_chain_csv_time_from_name_expiry_from_the_pages_iv(tmp_path):
    path = write_page(tmp_path / "NIFTY_01-07-2019_10-00.csv")
    assert detect_format(path.read_bytes()) == "nse-chain-csv"
    parsed = parse_file(path, ImportOptions())
    ts, ticks = one_snapshot(parsed)
    assert ts == "2019-07-01T04:30:00+00:00"
    assert "expiry 2019-07-04 inferred" in parsed.notes[0]
    call = ticks["NIFTY04JUL1911850CE"]
    assert call["oi"] == 75000 and call["volume"] == 120 * 75  # OI shown in shares, volume in contracts
    assert ticks["NIFTY 50"]["ltp"] == PAGE_SPOT


def test_nse_chain_csv_needs_time_and_expiry_it_cannot_infer(tmp_path):
    path = write_page(tmp_path / "page.csv")
    parsed = parse_file(path, ImportOptions())
    assert "no snapshot time" in parsed.problems[0][1]
    named = write_page(tmp_path / "BANKNIFTY_01-07-2019_10-00.csv")  # NIFTY-level prices: IVs do not fit
    parsed = parse_file(named, ImportOptions(ts=datetime(2019, 7, 1, 4, 30, tzinfo=UTC)))
    assert parsed.ok or "pass --expiry" in parsed.problems[0][1]
    forced = parse_file(named, ImportOptions(expiry=PAGE_EXPIRY))
    _, ticks = one_snapshot(forced)
    assert ticks["BANKNIFTY04JUL1911850CE"]["oi"] == 75000


def test_nse_chain_csv_before_the_first_trade_keeps_the_index(tmp_path):
    parsed = parse_file(write_page(tmp_path / "NIFTY_01-07-2019_09-15.csv", traded=False), ImportOptions())
    _, ticks = one_snapshot(parsed)
    assert list(ticks) == ["NIFTY 50"]


def test_nse_chain_csv_bad_lines_by_number(tmp_path):
    bad = page_row(9, 12000)
    bad[PAGE_COLUMNS.index("CallLTP")] = "abc"
    worse = page_row(10, 12050)
    worse[PAGE_COLUMNS.index("StrikePrice")] = "-"
    parsed = parse_file(write_page(tmp_path / "NIFTY_01-07-2019_10-00.csv", extra=[bad, worse]),
                        ImportOptions())
    assert parsed.problems == [(7, "CallLTP is not a number: 'abc'"),
                               (8, "StrikePrice must be positive, got '-'")]


# ---------------------------------------------------------------- bhavcopy

BHAV_COLUMNS = [
    "TradDt", "BizDt", "Sgmt", "Src", "FinInstrmTp", "FinInstrmId", "ISIN", "TckrSymb", "SctySrs", "XpryDt",
    "FininstrmActlXpryDt", "StrkPric", "OptnTp", "FinInstrmNm", "OpnPric", "HghPric", "LwPric", "ClsPric",
    "LastPric", "PrvsClsgPric", "UndrlygPric", "SttlmPric", "OpnIntrst", "ChngInOpnIntrst", "TtlTradgVol",
    "TtlTrfVal", "TtlNbOfTxsExctd", "SsnId", "NewBrdLotQty", "Rmks", "Rsvd1", "Rsvd2", "Rsvd3", "Rsvd4"]


def bhav_row(day, kind, symbol, expiry, strike, right, close, settle, spot, oi, volume, lot) -> dict:
    row = dict.fromkeys(BHAV_COLUMNS, "")
    row.update(TradDt=day, BizDt=day, Sgmt="FO", Src="NSE", FinInstrmTp=kind, TckrSymb=symbol, XpryDt=expiry,
               FininstrmActlXpryDt=expiry, StrkPric=strike, OptnTp=right, ClsPric=close, SttlmPric=settle,
               UndrlygPric=spot, OpnIntrst=oi, TtlTradgVol=volume, NewBrdLotQty=lot)
    return row


def write_bhav(path, rows):
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, BHAV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def bhav_rows(day="2025-01-01"):
    spot = "23742.90"
    return [
        bhav_row(day, "IDF", "NIFTY", "2025-01-30", "", "", "23897.85", "23897.85", spot, "13270450",
                 "175729", "25"),
        bhav_row(day, "IDO", "NIFTY", "2025-01-30", "23700.00", "CE", "420.00", "420.00", spot, "500000",
                 "1000", "25"),
        bhav_row(day, "IDO", "NIFTY", "2025-01-30", "23700.00", "PE", "250.00", "251.00", spot, "400000",
                 "0", "25"),
        bhav_row(day, "IDO", "NIFTY", "2025-01-02", "22400.00", "PE", "1.70", "1.70", spot, "4510350",
                 "204521", "75"),
        bhav_row(day, "STO", "RELIANCE", "2025-01-30", "1300.00", "CE", "20", "20", "1290", "1000", "1",
                 "500"),
    ]


def test_bhavcopy_end_of_day_snapshot(tmp_path):
    path = write_bhav(tmp_path / "fo.csv", bhav_rows())
    assert detect_format(path.read_bytes()) == "bhavcopy"
    parsed = parse_file(path, ImportOptions())
    ts, ticks = one_snapshot(parsed)
    assert ts == "2025-01-01T10:00:00+00:00"  # 15:30 IST
    assert ticks["NIFTY 50"]["ltp"] == 23742.90
    fut = ticks["NIFTY30JAN25FUT"]
    assert fut["oi"] == 13270450 and fut["volume"] == 175729 * 25 and fut["iv"] is None
    weekly = ticks["NIFTY02JAN2522400PE"]
    assert weekly["volume"] == 204521 * 75 and weekly["bid"] is None
    assert ticks["NIFTY30JAN2523700PE"]["ltp"] == 251.00  # settle by default
    assert ticks["NIFTY30JAN2523700CE"]["iv"] is not None  # on the same-expiry future
    assert parsed.notes == ["1 rows of other instruments left out"]
    _, closes = one_snapshot(parse_file(path, ImportOptions(price="close")))
    assert closes["NIFTY30JAN2523700PE"]["ltp"] == 250.00


def test_bhavcopy_bad_lines(tmp_path):
    rows = bhav_rows()
    rows[1]["OpnIntrst"] = "many"
    rows[3]["UndrlygPric"] = "23000"
    parsed = parse_file(write_bhav(tmp_path / "fo.csv", rows), ImportOptions())
    assert [n for n, _ in parsed.problems] == [3, 5]
    assert "OpnIntrst is not a number" in parsed.problems[0][1]
    assert "differs" in parsed.problems[1][1]


# ---------------------------------------------------------------- ticks

TAPE = """timestamp,asset,instrument_type,strike,trading_symbol,traded_price,traded_qty,aggressor_side,\
cumulative_vol,open_interest
2026-09-22 14:17:50.245,NIFTY,FUT,0.0,NIFTY26SEPFUT,23393.2,390,SELL,1952990,16802110
2026-09-22 14:17:50.245,NIFTY,CE,23350.0,NIFTY2692223350CE,47.0,4420,BUY,7608185,480025
2026-09-22 14:17:50.245,NIFTY,PE,23350.0,NIFTY2692223350PE,9.0,41405,SELL,375980735,12265370
2026-09-22 14:17:50.245,NIFTY,CE,23400.0,NIFTY2692223400CE,12.5,3315,BUY,12260820,455585
2026-09-22 14:17:50.245,NIFTY,PE,23400.0,NIFTY2692223400PE,24.0,1300,BUY,1226080,45585
2026-09-22 14:18:02.000,NIFTY,CE,23350.0,NIFTY2692223350CE,48.5,650,BUY,7608835,480100
"""
TAPE_MAP = {"ts": "timestamp", "ltp": "traded_price", "volume": "cumulative_vol", "oi": "open_interest",
            "symbol": "trading_symbol"}


def test_ticks_with_a_column_mapping(tmp_path):
    path = tmp_path / "tape.csv"
    path.write_text(TAPE)
    assert detect_format(path.read_bytes()) == "ticks"
    parsed = parse_file(path, ImportOptions(tz=IST_ZONE, mapping=TAPE_MAP))
    assert parsed.ok, parsed.problems
    (ts1, first), (ts2, second) = list(parsed.snapshots())
    assert ts1 == "2026-09-22T08:47:50.245+00:00" and ts2 == "2026-09-22T08:48:02+00:00"
    by = {t["symbol"]: t for t in first}
    assert set(by) == {"NIFTY29SEP26FUT", "NIFTY22SEP2623350CE", "NIFTY22SEP2623350PE",
                       "NIFTY22SEP2623400CE", "NIFTY22SEP2623400PE"}
    assert by["NIFTY22SEP2623350CE"]["volume"] == 7608185 and by["NIFTY22SEP2623350CE"]["oi"] == 480025
    assert by["NIFTY22SEP2623350CE"]["iv"] is not None  # parity of this snapshot's pairs
    later, = second
    assert later["symbol"] == "NIFTY22SEP2623350CE" and later["iv"] is not None  # from the as-of book


def test_ticks_naive_timestamps_are_refused_without_tz(tmp_path):
    path = tmp_path / "tape.csv"
    path.write_text(TAPE)
    parsed = parse_file(path, ImportOptions(mapping=TAPE_MAP))
    assert len(parsed.problems) == 1 and "pass --tz" in parsed.problems[0][1]
    assert "never guessed" in parsed.problems[0][1]


def test_ticks_offsets_in_the_file_need_no_tz(tmp_path):
    path = tmp_path / "ticks.csv"
    path.write_text("ts,symbol,ltp\n2026-01-02T09:15:00+05:30,Nifty 50,26000.5\n"
                    "2026-01-02T03:45:05Z,NIFTY BANK,59000\n")
    parsed = parse_file(path, ImportOptions())
    assert [ts for ts, _ in parsed.snapshots()] == ["2026-01-02T03:45:00+00:00", "2026-01-02T03:45:05+00:00"]


def test_ticks_bars_are_stored_at_their_end_with_cumulative_volume(tmp_path):
    path = tmp_path / "bars.parquet"
    pd.DataFrame({
        "minute": ["2026-09-22 14:17:00", "2026-09-22 14:17:00", "2026-09-22 14:18:00"],
        "sym": ["Nifty 50", "NIFTY26SEPFUT", "NIFTY26SEPFUT"],
        "close": [23385.35, 23400.0, 23401.0], "volume": [0, 10205, 300],
    }).to_parquet(path)
    assert detect_format(path.read_bytes()) == "ticks"
    options = ImportOptions(tz=IST_ZONE, mapping={"bar_start": "minute", "symbol": "sym", "ltp": "close",
                                                  "bar_volume": "volume"})
    parsed = parse_file(path, options)
    assert parsed.ok, parsed.problems
    snaps = list(parsed.snapshots())
    assert [ts for ts, _ in snaps] == ["2026-09-22T08:48:00+00:00", "2026-09-22T08:49:00+00:00"]
    assert snaps[1][1][0]["volume"] == 10505
    assert {t["symbol"]: t["volume"] for t in snaps[0][1]} == {"NIFTY 50": 0, "NIFTY29SEP26FUT": 10205}


def test_ticks_bad_values_by_line(tmp_path):
    path = tmp_path / "ticks.csv"
    path.write_text("ts,symbol,ltp,oi\n2026-01-02T09:15:00+05:30,NIFTY06JAN2626000CE,12,5\n"
                    "2026-01-02T09:15:00+05:30,NIFTY06JAN2626000XX,12,5\n"
                    "2026-01-02T09:15:00+05:30,NIFTY06JAN2626000PE,x,5\n"
                    "someday,NIFTY 50,26000,\n")
    parsed = parse_file(path, ImportOptions())
    assert sorted(n for n, _ in parsed.problems) == [3, 4, 5]
    missing = parse_file(path, ImportOptions(mapping={"ltp": "price"}))
    assert "--map names columns the file does not have: ltp=price" in missing.problems[0][1]


# ---------------------------------------------------------------- whole imports

def test_many_files_oldest_first_and_again_a_no_op(tmp_path, store):
    later = write_json(tmp_path / "b.json.gz", nse_chain_doc(timestamp="28-Mar-2022 11:00:00"), gz=True)
    earlier = write_json(tmp_path / "a.json", nse_chain_doc())
    folder = tmp_path / "more"
    folder.mkdir()
    write_bhav(folder / "fo.csv", bhav_rows())
    (folder / "readme.md").write_text("notes")
    summary = import_files(store, [later, earlier, folder], ImportOptions(), progress=False)
    assert [f.path for f in summary.files] == [str(earlier), str(later), str(folder / "fo.csv")]
    assert [p.name for p in summary.skipped_paths] == ["readme.md"]
    totals = summary.by_format()
    assert totals["nse-chain"].snapshots == 2 and totals["bhavcopy"].snapshots == 1
    rows = sum(f.rows for f in summary.files)
    assert sum(summary.inserted.values()) == rows == store.count()
    ids = [r["ts"] for r in store.query("SELECT ts FROM ltp_ticks ORDER BY id")]
    assert ids == sorted(ids)  # written in time order
    again = import_files(store, [earlier, later, folder], ImportOptions(), progress=False)
    assert sum(again.inserted.values()) == 0 and store.count() == rows


def test_a_bad_file_stops_the_whole_import(tmp_path, store):
    good = write_json(tmp_path / "a.json", nse_chain_doc())
    rows = bhav_rows()
    rows[2]["TtlTradgVol"] = "-5"
    bad = write_bhav(tmp_path / "fo.csv", rows)
    with pytest.raises(ImportFormatError) as caught:
        import_files(store, [good, bad], ImportOptions(), progress=False)
    assert caught.value.problems == [(4, "TtlTradgVol must not be negative, got -5")]
    assert str(bad) in str(caught.value) and "line 4" in str(caught.value)
    assert store.count() == 0


def test_cli_import_summary_and_errors(tmp_path, db_url, capsys):
    path = tmp_path / "tape.csv"
    path.write_text(TAPE)
    mapping = ",".join(f"{k}={v}" for k, v in TAPE_MAP.items())
    assert main(["import", str(path), "--db", db_url, "--map", mapping]) == 1
    err = capsys.readouterr().err
    assert "pass --tz" in err and "nothing imported" in err
    assert main(["import", str(path), "--db", db_url, "--map", mapping, "--tz", "Asia/Kolkata"]) == 0
    out = capsys.readouterr().out
    assert "imported 6 new rows (0 already stored)" in out
    assert ("ticks: 1 file(s), 2 snapshots, 6 rows (6 new, 0 already stored), 5 symbols, "
            "1 day(s) 2026-09-22") in out
    assert main(["import", str(path), "--db", db_url, "--map", mapping, "--tz", "Asia/Kolkata"]) == 0
    assert "imported 0 new rows (6 already stored)" in capsys.readouterr().out
    assert main(["import", str(path), "--db", db_url, "--tz", "Mars/Olympus"]) == 2
    assert "unknown time zone" in capsys.readouterr().err
    assert main(["import", str(path), "--db", db_url, "--map", "when"]) == 2
    assert "FIELD=COLUMN" in capsys.readouterr().err


def test_progress_bar_only_for_big_inputs(tmp_path, store, capsys):
    path = write_json(tmp_path / "a.json", nse_chain_doc())
    import_files(store, [path], ImportOptions())
    assert "check:" not in capsys.readouterr().err  # tqdm writes "<desc>: <percent>|<bar>|"
    import_files(store, [path], ImportOptions(), progress=True)
    assert "import:" in capsys.readouterr().err


def test_imported_moments_are_the_files(tmp_path, store):
    """An old snapshot stays where it was in time, whatever the wall clock says now."""
    path = write_json(tmp_path / "a.json", nse_chain_doc())
    import_files(store, [path], ImportOptions(), progress=False)
    assert store.last_ts() == (MOMENT - timedelta(0)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
