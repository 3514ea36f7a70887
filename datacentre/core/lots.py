"""Lot sizes of NIFTY and BANKNIFTY derivatives, by contract and trading day.

NSE revises index lot sizes a few times a year, and a revision rarely applies to every
contract at once: contracts already listed usually keep the old lot until they expire, and
only those expiring on or after a given date take the new one. So the lot of a contract
depends on its expiry *and* the day it traded, and is looked up here whenever a file counts
open interest or volume in contracts (NSE's option-chain API and pages, the bhavcopy's traded
contracts) and has to be converted to shares.

A :class:`Revision` says: from ``effective`` (the first trading day of the new contracts) on,
contracts expiring on or after ``first_expiry`` trade in lots of ``lot``, except the expiries
in ``kept`` (listed before the revision, they keep the previous lot until they expire).
Before the first revision of an underlying the table knows nothing: such days need an
explicit lot size (``--lot-size``).

Simplification: NSE converted long-dated contracts (quarterly and half-yearly) already listed
at a revision some weeks after ``effective`` (e.g. NIFTY's on 26 Dec 2024 for the 20 Nov 2024
revision); here they take the new lot from ``effective``. Their open interest during those
weeks is off by the ratio of the two lots; pass ``--lot-size`` when that matters.

Sources (NSE F&O circulars, as reported on the dates given):

* BANKNIFTY 40 -> 20 from 26 Oct 2018, all contracts (Zerodha bulletin "Change in Bank Nifty
  F&O Lot Size", 26 Oct 2018). NIFTY was 75 on that day (it had been since 2015).
* BANKNIFTY 20 -> 25 for contracts expiring on or after 30 Jul 2020; the July 2020 contracts
  were listed on 29 May 2020 (tradingqna "Lot size changed for Bank Nifty ... from July
  expiry", 2020).
* NIFTY 75 -> 50, circular NSE/FAOP/47856 of 31 Mar 2021, effective 30 Apr 2021: July 2021
  expiry and beyond; May and June 2021 contracts unchanged (cnbctv18, moneycontrol, Apr 2021).
* BANKNIFTY 25 -> 15, effective 28 Apr 2023: July 2023 monthly expiry and beyond (livemint,
  1 Apr 2023; tradingqna).
* NIFTY 50 -> 25, effective 26 Apr 2024: every contract expiring after that day, first weekly
  2 May 2024 (Zerodha bulletin, 2 Apr 2024; business-standard, 3 Apr 2024).
* NIFTY 25 -> 75 and BANKNIFTY 15 -> 30, circular of 18 Oct 2024, effective 20 Nov 2024 for
  new contracts; existing weekly and monthly contracts kept their lot until expiry
  (business-standard, 19 Oct 2024). Checked against the UDiFF bhavcopy of 1 and 10 Jan 2025
  (``NewBrdLotQty``): NIFTY 2 Jan 2025 weekly at 75, 30 Jan 2025 monthly still at 25;
  BANKNIFTY 29/30 Jan 2025 monthly at 15, February on at 30.
* BANKNIFTY 30 -> 35, effective 25 Apr 2025: first monthly expiry 31 Jul 2025 (fyers,
  capitalmarket, Mar 2025).
* NIFTY 75 -> 65 and BANKNIFTY 35 -> 30, effective after 28 Oct 2025: weekly and monthly
  contracts from the January 2026 expiries (ndtvprofit, venturasecurities, Oct 2025).
  Checked against the bhavcopy of 27 Mar 2026: every contract at 65 / 30.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from datacentre.core.errors import ConfigError


@dataclass(frozen=True)
class Revision:
    effective: date  # first trading day of the revised contracts
    lot: int
    first_expiry: date  # contracts expiring earlier keep the previous lot until they expire
    kept: tuple[date, ...] = ()  # later expiries that were listed before and kept the old lot


REVISIONS: dict[str, tuple[Revision, ...]] = {
    "NIFTY": (
        Revision(date(2018, 10, 26), 75, date(2018, 10, 26)),  # in force since 2015
        Revision(date(2021, 4, 30), 50, date(2021, 7, 29)),
        Revision(date(2024, 4, 26), 25, date(2024, 5, 2)),
        Revision(date(2024, 11, 20), 75, date(2025, 1, 2), kept=(date(2025, 1, 30),)),
        Revision(date(2025, 10, 29), 65, date(2026, 1, 6)),
    ),
    "BANKNIFTY": (
        Revision(date(2018, 10, 26), 20, date(2018, 10, 26)),
        Revision(date(2020, 5, 29), 25, date(2020, 7, 30)),
        Revision(date(2023, 4, 28), 15, date(2023, 7, 27)),
        Revision(date(2024, 11, 20), 30, date(2025, 2, 26)),
        Revision(date(2025, 4, 25), 35, date(2025, 7, 31)),
        Revision(date(2025, 10, 29), 30, date(2026, 1, 27)),
    ),
}
FIRST_COVERED = date(2018, 10, 26)


def lot_size(base: str, expiry: date, on: date | None = None) -> int:
    """Shares per contract of ``base``'s contract expiring on ``expiry``, traded on ``on``.

    ``on`` defaults to the expiry day itself (the lot the contract ended with). Raises
    :class:`ConfigError` for an unknown underlying or a day before the table's first entry.
    """
    revisions = REVISIONS.get(base.strip().upper())
    if revisions is None:
        raise ConfigError(f"no lot sizes known for {base!r}: known are {', '.join(REVISIONS)}")
    day = expiry if on is None else on
    if day < revisions[0].effective:
        raise ConfigError(f"no {base} lot size known for {day.isoformat()} (the table starts on "
                          f"{revisions[0].effective.isoformat()}): pass the lot size explicitly "
                          f"(--lot-size)")
    lot = revisions[0].lot
    for revision in revisions[1:]:
        if day < revision.effective:
            break
        if expiry >= revision.first_expiry and expiry not in revision.kept:
            lot = revision.lot
    return lot
