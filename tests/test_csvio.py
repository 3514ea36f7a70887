"""CSV export and import: the client guide's 14 fields, ts order, validation with line numbers."""
from __future__ import annotations

import csv
import io
import sqlite3

import pytest
from test_store import T1, T3, fill

from datacentre.core.errors import ImportFormatError
from datacentre.core.ticks import TICK_FIELDS
from datacentre.store.arrowread import TICK_SCHEMA, tick_batches
from datacentre.store.csvio import check_csv, export_csv, import_csv, select_symbols
from datacentre.store.schema import sqlite_path
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


def test_quoting_survives(store, sample_ticks, tmp_path):
    fill(store, sample_ticks)
    with sqlite3.connect(sqlite_path(store.url)) as raw:  # what another program could have written
        raw.execute("UPDATE ltp_ticks SET token = 'a,\"b' WHERE symbol = 'NIFTY 50' AND ts = ?", (T1,))
    text = exported(store)
    assert '"a,""b"' in text and "NIFTY 50" in text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["token"] for r in rows if r["symbol"] == "NIFTY 50"][0] == 'a,"b'
    assert len(rows) == 18


def test_export_streams_batches_whose_columns_start_null(store, sample_ticks, tmp_path):
    """The driver types a column from its first batch: batches of two rows, where the first
    ones (both indices) have no Greeks, OI or token, must still read the later numbers."""
    fill(store, sample_ticks)
    with sqlite3.connect(sqlite_path(store.url)) as raw:
        raw.execute("UPDATE ltp_ticks SET token = NULL WHERE symbol LIKE 'NIFTY %'")
    selection = ["NIFTY 50", "NIFTY BANK", "NIFTY06JAN2626000CE"]
    batches = list(tick_batches(store, selection, batch=2))
    assert {len(b) for b in batches} <= {1, 2} and sum(len(b) for b in batches) == 9
    assert all(b.schema == TICK_SCHEMA for b in batches)
    rows = [r for b in batches for r in b.to_pylist()]
    expected = [dict(zip(TICK_FIELDS, r)) for rows_ in store.iter_rows(selection) for r in rows_]
    assert rows == expected
    first = batches[0].to_pylist()  # both indices: no Greeks, no OI, no token in the whole batch
    assert [r["symbol"] for r in first] == ["NIFTY 50", "NIFTY BANK"]
    assert all(r[f] is None for r in first for f in ("delta", "iv", "oi", "token"))
    assert any(r["delta"] == 0.52 for r in rows) and any(r["token"] is None for r in rows)


def test_a_hostile_symbol_is_only_a_value(store, sample_ticks):
    fill(store, sample_ticks)
    hostile = ["NIFTY 50' OR '1'='1", "x'); DROP TABLE ltp_ticks; --"]
    assert exported(store, symbols=hostile).splitlines() == [",".join(TICK_FIELDS)]
    assert store.count() == 18


def test_both_engines_write_the_same_bytes(any_store, sample_ticks, tmp_path):
    fill(any_store, sample_ticks)
    other = TickStore(f"sqlite:///{tmp_path / 'other.db'}")
    fill(other, sample_ticks)
    assert exported(any_store) == exported(other)
    memory = TickStore("sqlite://")  # no file for the fast path: rows converted batch by batch
    fill(memory, sample_ticks)
    assert exported(memory) == exported(other)


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
