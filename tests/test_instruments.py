"""Symbols, expiry calendar, strikes and tokens."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from datacentre.core.errors import SymbolError
from datacentre.core.instruments import (
    CE,
    FUT,
    INDEX,
    PE,
    atm_strike,
    current_future_expiry,
    format_future,
    format_option,
    has_expired,
    is_valid_symbol,
    last_complete_session,
    last_tuesday,
    monthly_expiries,
    nearest_future,
    nearest_option_expiry,
    next_session_open,
    parse_expiry,
    parse_symbol,
    session_of,
    strike_window,
    time_to_expiry,
    token_for,
    underlying,
    weekly_expiries,
)
from datacentre.core.ticks import IST, UTC


@pytest.mark.parametrize("symbol, base, kind, expiry, strike", [
    ("NIFTY 50", "NIFTY", INDEX, None, None),
    ("NIFTY BANK", "BANKNIFTY", INDEX, None, None),
    ("NIFTY27JAN26FUT", "NIFTY", FUT, date(2026, 1, 27), None),
    ("BANKNIFTY27JAN26FUT", "BANKNIFTY", FUT, date(2026, 1, 27), None),
    ("NIFTY06JAN2626500CE", "NIFTY", CE, date(2026, 1, 6), 26500.0),
    ("NIFTY06JAN2626050PE", "NIFTY", PE, date(2026, 1, 6), 26050.0),
    ("BANKNIFTY27JAN2659000PE", "BANKNIFTY", PE, date(2026, 1, 27), 59000.0),
])
def test_parse(symbol, base, kind, expiry, strike):
    ins = parse_symbol(symbol)
    assert (ins.underlying, ins.kind, ins.expiry, ins.strike) == (base, kind, expiry, strike)
    assert ins.token == token_for(symbol)


@pytest.mark.parametrize("bad", [
    "", "NIFTY", "NIFTY50", "FINNIFTY27JAN26FUT", "NIFTY27JAN26", "NIFTY27XYZ26FUT", "NIFTY31FEB26FUT",
    "NIFTY06JAN2626500XX", "NIFTY06JAN26CE", "nifty06jan2626500ce", "XBANKNIFTY27JAN26FUT",
    "NIFTY06JAN2626500CE ", "NIFTY06JAN260CE",
])
def test_parse_rejects(bad):
    with pytest.raises(SymbolError):
        parse_symbol(bad)
    assert not is_valid_symbol(bad)


def test_banknifty_is_never_nifty():
    # The substring trap: "NIFTY" in "BANKNIFTY27JAN26FUT" is True, the parsed base is not NIFTY.
    assert "NIFTY" in "BANKNIFTY27JAN26FUT"
    assert parse_symbol("BANKNIFTY27JAN26FUT").underlying == "BANKNIFTY"
    assert parse_symbol("NIFTY27JAN26FUT").underlying == "NIFTY"


def test_format_round_trip():
    exp = date(2026, 1, 6)
    assert format_option("NIFTY", exp, 26500, "CE") == "NIFTY06JAN2626500CE"
    assert format_option("NIFTY 50", exp, 26500.0, "pe") == "NIFTY06JAN2626500PE"
    assert format_future("NIFTY BANK", date(2026, 1, 27)) == "BANKNIFTY27JAN26FUT"
    assert parse_expiry("06JAN26") == exp
    with pytest.raises(SymbolError):
        format_option("NIFTY", exp, 26500, "XX")


def test_tokens_are_stable_and_indices_real():
    assert token_for("NIFTY 50") == "99926000"
    assert token_for("NIFTY BANK") == "99926009"
    assert token_for("NIFTY06JAN2626500CE") == token_for("NIFTY06JAN2626500CE")
    assert token_for("NIFTY06JAN2626500CE") != token_for("NIFTY06JAN2626500PE")


JAN_FUT, FEB_FUT, MAR_FUT = "NIFTY27JAN26FUT", "NIFTY24FEB26FUT", "NIFTY31MAR26FUT"
FUTURES = [MAR_FUT, FEB_FUT, JAN_FUT, "BANKNIFTY27JAN26FUT", "NIFTY 50", "NIFTY27JAN2626000CE", "junk"]


@pytest.mark.parametrize("moment, expected", [
    (datetime(2026, 1, 27, 9, 15, tzinfo=IST), JAN_FUT),  # expiry day, session open
    (datetime(2026, 1, 27, 15, 29, 59, tzinfo=IST), JAN_FUT),  # last second of trading
    (datetime(2026, 1, 27, 15, 30, tzinfo=IST), FEB_FUT),  # 15:30 IST: January has expired
    (datetime(2026, 1, 27, 15, 30, 1, tzinfo=IST), FEB_FUT),
    ("2026-01-27T09:59:59+00:00", JAN_FUT),  # store text, UTC: 15:29:59 IST
    ("2026-01-27T10:00:00+00:00", FEB_FUT),
    (datetime(2026, 1, 27, 23, 0, tzinfo=IST), FEB_FUT),  # evening, same IST date
    (datetime(2026, 1, 26, 20, 0, tzinfo=UTC), JAN_FUT),  # 01:30 IST on expiry day
    (datetime(2026, 2, 24, 15, 30, tzinfo=IST), MAR_FUT),
])
def test_nearest_future_at_the_expiry_boundary(moment, expected):
    found = nearest_future(FUTURES, moment, "NIFTY")
    assert found is not None and found.symbol == expected
    assert nearest_future(FUTURES, moment, "NIFTY 50") == found


def test_nearest_future_only_expired_is_none():
    # The rule never falls back to an expired contract: its last price is not the future's.
    after = datetime(2026, 2, 24, 15, 30, tzinfo=IST)
    assert nearest_future([JAN_FUT, FEB_FUT], after) is None
    assert nearest_future([JAN_FUT, FEB_FUT], after - timedelta(seconds=1)).symbol == FEB_FUT
    assert nearest_future([], after) is None
    assert nearest_future(["NIFTY 50", "NIFTY27JAN2626000CE", "junk"], after) is None


def test_nearest_future_by_parsed_base():
    moment = datetime(2026, 1, 5, 4, 0, tzinfo=UTC)
    symbols = ["BANKNIFTY27JAN26FUT", FEB_FUT]  # BANKNIFTY... contains NIFTY
    assert nearest_future(symbols, moment, "NIFTY").symbol == FEB_FUT
    assert nearest_future(symbols, moment, "BANKNIFTY").symbol == "BANKNIFTY27JAN26FUT"
    assert nearest_future(symbols, moment).symbol == "BANKNIFTY27JAN26FUT"  # any base
    with pytest.raises(SymbolError):
        nearest_future(symbols, moment, "FINNIFTY")


def test_has_expired_at_1530_ist():
    expiry = date(2026, 1, 27)
    assert not has_expired(expiry, datetime(2026, 1, 27, 15, 29, 59, 999999, tzinfo=IST))
    assert has_expired(expiry, datetime(2026, 1, 27, 15, 30, tzinfo=IST))
    assert has_expired(expiry, "2026-01-28T03:45:00+00:00")


def test_underlyings():
    assert underlying("NIFTY 50").strike_step == 50
    assert underlying("banknifty").strike_step == 100
    with pytest.raises(SymbolError, match="unknown underlying"):
        underlying("FINNIFTY")


@pytest.mark.parametrize("year, month, expected", [
    (2026, 1, date(2026, 1, 27)), (2026, 3, date(2026, 3, 31)), (2026, 6, date(2026, 6, 30)),
    (2026, 12, date(2026, 12, 29)), (2027, 2, date(2027, 2, 23)), (2024, 2, date(2024, 2, 27)),
])
def test_last_tuesday(year, month, expected):
    assert last_tuesday(year, month) == expected
    assert expected.weekday() == 1


@pytest.mark.parametrize("moment, expected", [
    (datetime(2026, 1, 5, 12, 0, tzinfo=UTC), date(2026, 1, 6)),  # Monday -> Tuesday
    (datetime(2026, 1, 6, 9, 59, tzinfo=UTC), date(2026, 1, 6)),  # expiry day before 15:30 IST
    (datetime(2026, 1, 6, 10, 0, tzinfo=UTC), date(2026, 1, 13)),  # at the cut-off it has expired
    (datetime(2026, 1, 10, 3, 0, tzinfo=UTC), date(2026, 1, 13)),  # Saturday
    (datetime(2026, 1, 6, 19, 30, tzinfo=UTC), date(2026, 1, 13)),  # 01:00 IST on the 7th
    (datetime(2026, 1, 5, 18, 30, tzinfo=UTC), date(2026, 1, 6)),  # IST midnight into expiry day
])
def test_weekly(moment, expected):
    assert nearest_option_expiry("NIFTY", moment) == expected
    assert weekly_expiries(moment, 3)[1] == date.fromordinal(expected.toordinal() + 7)


@pytest.mark.parametrize("moment, expected", [
    (datetime(2026, 1, 27, 9, 0, tzinfo=UTC), date(2026, 1, 27)),
    (datetime(2026, 1, 27, 10, 0, tzinfo=UTC), date(2026, 2, 24)),  # monthly rolls after expiry
    (datetime(2026, 12, 30, 0, 0, tzinfo=UTC), date(2027, 1, 26)),  # across the year end
])
def test_monthly(moment, expected):
    assert current_future_expiry(moment) == expected
    assert nearest_option_expiry("BANKNIFTY", moment) == expected
    assert monthly_expiries(moment, 2)[0] == expected


def test_time_to_expiry():
    assert time_to_expiry(date(2026, 1, 6), datetime(2026, 1, 5, 10, 0, tzinfo=UTC)) == pytest.approx(1 / 365)
    assert time_to_expiry(date(2026, 1, 6), datetime(2026, 1, 7, tzinfo=UTC)) == 0.0


@pytest.mark.parametrize("moment, expected", [
    (datetime(2026, 11, 30, 15, 0, tzinfo=UTC), date(2026, 11, 30)),  # Monday after the close
    (datetime(2026, 11, 30, 5, 0, tzinfo=UTC), date(2026, 11, 27)),  # Monday during the session
    (datetime(2026, 11, 29, 5, 0, tzinfo=UTC), date(2026, 11, 27)),  # Sunday
    (datetime(2026, 12, 1, 19, 30, tzinfo=UTC), date(2026, 12, 1)),  # 01:00 IST Wednesday
    (datetime(2026, 12, 4, 20, 0, tzinfo=UTC), date(2026, 12, 4)),  # 01:30 IST Saturday
    (datetime(2026, 12, 7, 3, 0, tzinfo=UTC), date(2026, 12, 4)),  # Monday before the open
])
def test_last_complete_session(moment, expected):
    assert last_complete_session(moment) == expected


@pytest.mark.parametrize("moment, session, next_open", [
    (datetime(2026, 12, 1, 10, 0, tzinfo=UTC), date(2026, 12, 1), datetime(2026, 12, 2, 3, 45, tzinfo=UTC)),
    (datetime(2026, 12, 1, 19, 30, tzinfo=UTC), None, datetime(2026, 12, 2, 3, 45, tzinfo=UTC)),
    (datetime(2026, 12, 4, 19, 0, tzinfo=UTC), None, datetime(2026, 12, 7, 3, 45, tzinfo=UTC)),  # Sat 00:30
    (datetime(2026, 12, 7, 3, 0, tzinfo=UTC), None, datetime(2026, 12, 7, 3, 45, tzinfo=UTC)),
])
def test_sessions_by_the_ist_trading_day(moment, session, next_open):
    assert session_of(moment) == session
    assert next_session_open(moment) == next_open


def test_strikes():
    assert atm_strike(26024.9, 50) == 26000
    assert atm_strike(26025.1, 50) == 26050
    assert atm_strike(59049, 100) == 59000
    window = strike_window(26010, 50, 2)
    assert window == [25900, 25950, 26000, 26050, 26100]


@pytest.mark.parametrize("symbol", ["NIFTY06JAN26026500CE", "NIFTY06JAN2626500.0PE",
                                    "NIFTY06JAN2626500.50CE"])
def test_one_spelling_per_contract(symbol):
    # Two spellings of one contract would store it as two symbols (two rows per snapshot).
    with pytest.raises(SymbolError, match="strike"):
        parse_symbol(symbol)


def test_fractional_strike_round_trips():
    from datacentre.core.instruments import format_option
    symbol = format_option("BANKNIFTY", date(2026, 1, 27), 126500.5, "CE")
    assert symbol == "BANKNIFTY27JAN26126500.5CE"
    assert parse_symbol(symbol).strike == 126500.5
