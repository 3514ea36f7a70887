"""CSV export and import: the client guide's 14 fields, ts order, validation with line numbers."""
from __future__ import annotations

import csv
import io

import pytest
from test_store import T1, T3, fill

from datacentre.core.errors import ImportFormatError
from datacentre.core.ticks import TICK_FIELDS
from datacentre.store.csvio import check_csv, csv_lines, export_csv, import_csv, select_symbols
from datacentre.store.tickstore import TickStore


def exported(store, **kw) -> str:
    out = io.StringIO()
    export_csv(store, out, **kw)
    return out.getvalue()


def test_export_header_order_and_nulls(store, sample_ticks):
    fill(store, sample_ticks)
    text = exported(store)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert text.splitlines()[0] == ",".join(TICK_FIELDS)
    assert len(rows) == 3 * len(sample_ticks)
    assert [r["ts"] for r in rows] == sorted(r["ts"] for r in rows)
    index = next(r for r in rows if r["symbol"] == "NIFTY 50")
    assert index["oi"] == "" and index["delta"] == "" and index["volume"] == "0"


def test_export_selection(store, sample_ticks):
    fill(store, sample_ticks)
    rows = list(csv.DictReader(io.StringIO(exported(store, symbols=["NIFTY 50"], start_ts=T3))))
    assert [(r["symbol"], r["ts"]) for r in rows] == [("NIFTY 50", T3)]
    nifty = select_symbols(store, "NIFTY")
    assert "NIFTY BANK" not in nifty and "BANKNIFTY27JAN2659000CE" not in nifty
    # one expiry comes with the index and the future its chain is read against
    assert set(select_symbols(store, "NIFTY", "2026-01-06")) == {
        "NIFTY 50", "NIFTY27JAN26FUT", "NIFTY06JAN2626000CE", "NIFTY06JAN2626000PE"}
    assert "NIFTY27JAN26FUT" not in select_symbols(store, "NIFTY", "2026-02-03")  # expired before it


def test_round_trip(store, sample_ticks, tmp_path):
    fill(store, sample_ticks)
    text = exported(store)
    other = TickStore(f"sqlite:///{tmp_path / 'other.db'}")
    result = import_csv(other, io.StringIO(text))
    assert (result.rows, result.inserted, result.skipped) == (18, 18, 0)
    assert exported(other) == text
    again = import_csv(other, io.StringIO(text))
    assert (again.inserted, again.skipped) == (0, 18)


def test_quoting_survives(store):
    lines = list(csv_lines([{"symbol": "NIFTY 50", "ts": T1, "ltp": 1.5, "source": "a,b"}]))
    assert lines[1].endswith('"a,b"\r\n')


def test_bad_lines_are_reported_and_nothing_is_committed(store):
    good = f"NIFTY 50,99926000,{T1},26000.5,,,0,,,,,,,sim"
    text = "\n".join([
        ",".join(TICK_FIELDS),
        good,
        f"FINNIFTY 50,1,{T1},1,,,0,,,,,,,sim",
        "NIFTY 50,99926000,yesterday,1,,,0,,,,,,,sim",
        f"NIFTY 50,99926000,{T3},abc,,,0,,,,,,,sim",
        f"NIFTY 50,99926000,{T3},1,,,-5,,,,,,,sim",
        f"NIFTY 50,99926000,{T3},1,,,0,,,,,,,hacker",
        f"NIFTY 50,99926000,{T3},nan,,,0,,,,,,,sim",
        "NIFTY 50,too,few",
    ])
    with pytest.raises(ImportFormatError) as info:
        import_csv(store, io.StringIO(text))
    lines = [n for n, _msg in info.value.problems]
    assert lines == [3, 4, 5, 6, 7, 8, 9]
    assert "line 3" in str(info.value) and "nothing imported" in str(info.value)
    assert store.count() == 0


def test_header_must_have_the_fields(store):
    with pytest.raises(ImportFormatError, match="header lacks"):
        check_csv(io.StringIO("symbol,ts,ltp\nNIFTY 50,2026-01-02,1\n"))
