"""The simulator's day against the shape of real NSE days (see sources/market_model)."""
from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest

from datacentre.core.instruments import parse_symbol
from datacentre.core.ticks import IST, parse_ts
from datacentre.ops.backfill import backfill
from datacentre.sources.market_model import SESSION_OPEN_UTC_SECONDS, SESSION_SECONDS, intraday_activity

OPEN = datetime(2026, 11, 27, 3, 45, tzinfo=UTC).timestamp()
# share of the day's option volume traded by each IST time on 1 July 2019 (NSE's option chain
# every 15 minutes, NIFTY and BANKNIFTY nearest expiry)
REAL_PROFILE = {"09:30": (0.103, 0.115), "10:00": (0.207, 0.217), "12:00": (0.44, 0.484),
                "14:00": (0.632, 0.666), "15:00": (0.858, 0.893)}


def test_intraday_activity_is_u_shaped_with_mean_one():
    seconds = OPEN + np.arange(0.0, SESSION_SECONDS, 1.0)
    rate = intraday_activity(seconds)
    assert abs(rate.mean() - 1.0) < 1e-3
    opening, midday, closing = rate[:900].mean(), rate[9000:12000].mean(), rate[-1800:].mean()
    assert opening > closing > 1.0 > midday
    # outside the session: the nearer edge (before the open, the open's rate)
    assert intraday_activity(np.array([OPEN - 600.0]))[0] == rate[0]
    after_close = intraday_activity(np.array([OPEN + SESSION_SECONDS + 3600.0]))[0]
    assert after_close == pytest.approx(rate[-1], rel=1e-3)
    assert SESSION_OPEN_UTC_SECONDS == 3 * 3600 + 45 * 60


def test_simulated_day_volume_follows_the_real_profile(store):
    day = date(2026, 11, 27)
    backfill(store, [day], interval=60, seed=11)
    totals: dict[str, float] = {}
    last: dict[str, int] = {}
    for tick in store.iter_ticks():
        ins = parse_symbol(tick["symbol"])
        if ins.underlying == "NIFTY" and ins.is_option:
            last[tick["symbol"]] = tick["volume"]
            totals[parse_ts(tick["ts"]).astimezone(IST).strftime("%H:%M")] = sum(last.values())
    day_total = totals[max(totals)]
    for clock, (low, high) in REAL_PROFILE.items():
        share = totals[clock] / day_total
        assert low - 0.06 <= share <= high + 0.06, (clock, share)
