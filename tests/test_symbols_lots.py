"""Broker symbol forms mapped to ours, and the dated lot-size table."""
from __future__ import annotations

from datetime import date

import pytest

from datacentre.core.errors import ConfigError, SymbolError
from datacentre.core.instruments import parse_symbol
from datacentre.core.lots import lot_size
from datacentre.core.symbols import monthly_expiry, to_symbol


@pytest.mark.parametrize("text, on, expected", [
    ("Nifty 50", None, "NIFTY 50"),
    ("NIFTY", None, "NIFTY 50"),
    ("nifty bank", None, "NIFTY BANK"),
    ("BANKNIFTY", None, "NIFTY BANK"),
    ("NIFTY06JAN2626500CE", date(2026, 1, 2), "NIFTY06JAN2626500CE"),  # ours / Angel One
    ("NIFTY06JAN2626500.0CE", None, "NIFTY06JAN2626500CE"),
    ("NIFTY2692223100CE", date(2026, 9, 22), "NIFTY22SEP2623100CE"),  # Kite weekly YYMDD
    ("NIFTY25O0925000PE", None, "NIFTY09OCT2525000PE"),  # October is O
    ("NIFTY25D1124000CE", None, "NIFTY11DEC2524000CE"),
    ("NIFTY26SEPFUT", None, "NIFTY29SEP26FUT"),  # Kite monthly future: last Tuesday since Sep 2025
    ("NIFTY19JULFUT", None, "NIFTY25JUL19FUT"),  # 2019: last Thursday
    ("BANKNIFTY24MARFUT", None, "BANKNIFTY27MAR24FUT"),  # BANKNIFTY: Wednesdays in 2024
    ("NIFTY26SEP23100CE", date(2026, 9, 22), "NIFTY29SEP2623100CE"),  # Kite monthly, not 26 Sep 2023
    ("OPTIDXNIFTY30-06-2022PE8300.00", None, "NIFTY30JUN228300PE"),  # NSE identifier
    ("FUTIDXBANKNIFTY28-04-2022", None, "BANKNIFTY28APR22FUT"),
])
def test_broker_forms_map_to_ours(text, on, expected):
    assert to_symbol(text, on=on) == expected
    parse_symbol(expected)


def test_monthly_form_takes_the_files_expiry_when_given():
    # 2026-03-31 was a holiday: the file says the contracts expired on Monday the 30th
    assert to_symbol("BANKNIFTY26MARFUT", expiry=date(2026, 3, 30)) == "BANKNIFTY30MAR26FUT"


def test_ambiguous_text_without_a_day_reads_as_ours():
    assert to_symbol("NIFTY26SEP23100CE") == "NIFTY26SEP23100CE"


@pytest.mark.parametrize("text", ["", "RELIANCE", "NIFTY2613223100CE", "FINNIFTY2692223100CE",
                                  "NIFTY06XYZ2626500CE"])
def test_unknown_forms_raise(text):
    with pytest.raises(SymbolError):
        to_symbol(text)


def test_a_contract_cannot_trade_after_it_expired():
    with pytest.raises(SymbolError, match="could trade on 2026-09-22"):
        to_symbol("NIFTY2592223100CE", on=date(2026, 9, 22))


def test_parse_symbol_accepts_past_expiries_on_any_weekday():
    ins = parse_symbol("NIFTY04JUL1911800CE")  # a Thursday in 2019
    assert ins.expiry == date(2019, 7, 4) and ins.strike == 11800
    assert parse_symbol("NIFTY13APR2217000PE").expiry == date(2022, 4, 13)  # a Wednesday


def test_monthly_expiry_history():
    assert monthly_expiry("NIFTY", 2025, 8) == date(2025, 8, 28)
    assert monthly_expiry("NIFTY", 2025, 9) == date(2025, 9, 30)
    assert monthly_expiry("BANKNIFTY", 2024, 11) == date(2024, 11, 27)  # Wednesdays in 2024
    assert monthly_expiry("BANKNIFTY", 2025, 1) == date(2025, 1, 30)


@pytest.mark.parametrize("base, expiry, on, lot", [
    ("NIFTY", date(2019, 7, 4), date(2019, 7, 1), 75),
    ("BANKNIFTY", date(2019, 7, 4), date(2019, 7, 1), 20),
    ("BANKNIFTY", date(2020, 5, 14), date(2020, 5, 14), 20),
    ("BANKNIFTY", date(2020, 7, 30), date(2020, 6, 1), 25),
    ("NIFTY", date(2021, 6, 24), date(2021, 5, 3), 75),  # listed before, kept its lot
    ("NIFTY", date(2021, 7, 29), date(2021, 5, 3), 50),
    ("NIFTY", date(2022, 3, 31), date(2022, 3, 28), 50),
    ("BANKNIFTY", date(2023, 5, 4), date(2023, 5, 3), 25),
    ("BANKNIFTY", date(2023, 7, 27), date(2023, 5, 3), 15),
    ("NIFTY", date(2024, 4, 25), date(2024, 4, 25), 50),
    ("NIFTY", date(2024, 5, 2), date(2024, 4, 26), 25),
    # checked against the bhavcopy's NewBrdLotQty
    ("NIFTY", date(2025, 1, 2), date(2025, 1, 1), 75),
    ("NIFTY", date(2025, 1, 30), date(2025, 1, 1), 25),
    ("NIFTY", date(2025, 2, 27), date(2025, 1, 10), 75),
    ("BANKNIFTY", date(2025, 1, 29), date(2025, 1, 1), 15),
    ("BANKNIFTY", date(2025, 2, 26), date(2025, 1, 1), 30),
    ("BANKNIFTY", date(2025, 7, 31), date(2025, 5, 2), 35),
    ("NIFTY", date(2026, 3, 30), date(2026, 3, 27), 65),
    ("BANKNIFTY", date(2026, 3, 30), date(2026, 3, 27), 30),
])
def test_lot_size_by_contract_and_day(base, expiry, on, lot):
    assert lot_size(base, expiry, on) == lot


def test_lot_size_before_the_table_needs_an_explicit_one():
    with pytest.raises(ConfigError, match="--lot-size"):
        lot_size("NIFTY", date(2017, 1, 26), date(2017, 1, 2))
    with pytest.raises(ConfigError, match="no lot sizes known"):
        lot_size("FINNIFTY", date(2026, 1, 27))


def test_instruments_of_past_contracts_carry_their_own_lot():
    assert parse_symbol("NIFTY04JUL1911800CE").lot_size == 75
    assert parse_symbol("BANKNIFTY04JUL1929000PE").lot_size == 20
    assert parse_symbol("NIFTY30JAN25FUT").lot_size == 25
    assert parse_symbol("NIFTY27JAN26FUT").lot_size == 65
    assert parse_symbol("NIFTY28DEC1710500CE").lot_size is None  # before the table
