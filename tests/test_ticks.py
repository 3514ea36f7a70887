"""The tick record's projection: exactly the 14 fields, in contract order."""
from __future__ import annotations

from datacentre.core.ticks import TICK_FIELDS, tick_dict, tick_values

TICK = {"symbol": "NIFTY 50", "token": "99926000", "ts": "2026-01-02T08:13:05+00:00", "ltp": 26000.5,
        "bid": None, "ask": None, "volume": 0, "oi": None, "delta": None, "gamma": None,
        "theta": None, "vega": None, "iv": None, "source": "sim"}


def test_tick_dict_keeps_the_fields_in_order_and_drops_the_rest():
    message = {"type": "latest", "id": 7, **dict(reversed(TICK.items()))}
    assert list(tick_dict(message)) == list(TICK_FIELDS)
    assert tick_dict(message) == TICK


def test_missing_fields_are_none():
    assert tick_dict({"symbol": "NIFTY 50"}) == {f: "NIFTY 50" if f == "symbol" else None
                                                  for f in TICK_FIELDS}


def test_tick_values_is_the_row_and_can_restamp():
    assert tick_values(TICK) == tuple(TICK[f] for f in TICK_FIELDS)
    row = tick_values(TICK, "2026-01-02T08:13:10+00:00")
    assert row[TICK_FIELDS.index("ts")] == "2026-01-02T08:13:10+00:00"
    assert row[:2] == ("NIFTY 50", "99926000") and row[3:] == tick_values(TICK)[3:]
