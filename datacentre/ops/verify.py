"""``python -m datacentre verify``: the client guide's ``verify_data_reception.py``.

Connects to the broadcaster like any client program would (a
:class:`~datacentre.clients.reader.WebSocketDataReader`), and checks what arrives:

=============  ===========================================================
connection     the broadcaster answers at the URL
spot           ``NIFTY 50`` and ``NIFTY BANK`` have a positive price
futures        each index has a future (any expiry) with a positive price
options        each index has calls and puts
iv             at least 80 % of options carry an IV, all within 0-300 %
greeks         at least 80 % carry Greeks; call delta in [0, 1], put delta in
               [-1, 0], gamma and vega not negative
freshness      the newest tick is younger than 3 intervals, at least 15 s
               (``config.stale_after``, the app's rule for a stale feed)
rate           snapshots per minute, from the store when it holds the same
               feed, else counted live, at least half the configured rate
=============  ===========================================================

The CLI prints :func:`format_table` and exits 0 only when every check passes.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from datacentre.clients.reader import WebSocketDataReader, live_instruments, nearest_future
from datacentre.core.config import DEFAULT_INTERVAL, load_settings, stale_after
from datacentre.core.errors import DataCentreError
from datacentre.core.instruments import CE, UNDERLYINGS, Instrument
from datacentre.core.ticks import format_ts, now_utc, parse_ts
from datacentre.store import open_existing_store

log = logging.getLogger(__name__)

MIN_COVERAGE = 0.8
IV_RANGE = (0.0, 300.0)
MIN_RATE_SHARE = 0.5
RATE_WINDOW = timedelta(minutes=5)
#: Live snapshots to count when the rate cannot be read from the store.
LIVE_SNAPSHOTS = 3
_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Check:
    """One line of the verification: what was checked, whether it passed, and why."""

    name: str
    ok: bool
    detail: str


def _fmt(price: float) -> str:
    return f"{price:,.2f}"


def _options(snap: dict[str, dict]) -> dict[str, list[tuple[Instrument, dict]]]:
    return {base: [(ins, t) for ins, t in live_instruments(snap, base) if ins.is_option]
            for base in UNDERLYINGS}


def _check_spot(snap: dict[str, dict]) -> Check:
    found, missing = [], []
    for u in UNDERLYINGS.values():
        ltp = (snap.get(u.index_symbol) or {}).get("ltp")
        if ltp is not None and ltp > 0:
            found.append(f"{u.index_symbol} {_fmt(ltp)}")
        else:
            missing.append(u.index_symbol)
    if missing:
        return Check("spot", False, f"no price for {', '.join(missing)}: is the collector running? "
                                    f"(python -m datacentre status)")
    return Check("spot", True, "; ".join(found))


def _check_futures(snap: dict[str, dict]) -> Check:
    found, missing = [], []
    for base in UNDERLYINGS:
        future = nearest_future(snap, base)
        ltp = future[1].get("ltp") if future else None
        if future and ltp is not None and ltp > 0:
            found.append(f"{future[0].symbol} {_fmt(ltp)}")
        else:
            missing.append(base)
    if missing:
        return Check("futures", False, f"no future with a price for {', '.join(missing)}: see the "
                                       f"collector's log for quotes it could not get")
    return Check("futures", True, "; ".join(found))


def _check_options(options: dict[str, list[tuple[Instrument, dict]]]) -> Check:
    parts, problems = [], []
    for base, items in options.items():
        calls = sum(1 for ins, _ in items if ins.kind == CE)
        puts = len(items) - calls
        parts.append(f"{base} {calls} CE / {puts} PE")
        if not calls or not puts:
            problems.append(base)
    if problems:
        return Check("options", False,
                     f"missing calls or puts for {', '.join(problems)} ({'; '.join(parts)}): see the "
                     f"collector's log for quotes it could not get")
    return Check("options", True, "; ".join(parts))


def _check_iv(items: list[tuple[Instrument, dict]]) -> Check:
    if not items:
        return Check("iv", False, "no options to check")
    values = [(ins.symbol, t.get("iv")) for ins, t in items]
    present = [(s, v) for s, v in values if v is not None]
    bad = [f"{s} {v:g}%" for s, v in present if not IV_RANGE[0] < v < IV_RANGE[1]]
    share = len(present) / len(values)
    detail = f"{len(present)}/{len(values)} options have an IV"
    if present:
        ivs = [v for _, v in present]
        detail += f", {min(ivs):.2f}-{max(ivs):.2f}%"
    if bad:
        return Check("iv", False, f"{detail}; outside {IV_RANGE[0]:g}-{IV_RANGE[1]:g}%: {', '.join(bad[:3])}")
    if share < MIN_COVERAGE:
        return Check("iv", False, f"{detail} (need {MIN_COVERAGE:.0%})")
    return Check("iv", True, detail)


def _greek_problems(ins: Instrument, tick: dict) -> list[str]:
    delta, gamma, vega = tick.get("delta"), tick.get("gamma"), tick.get("vega")
    problems = []
    low, high = (0.0, 1.0) if ins.kind == CE else (-1.0, 0.0)
    if not low - _TOLERANCE <= delta <= high + _TOLERANCE:
        problems.append(f"{ins.symbol} delta {delta:g}")
    if gamma < -_TOLERANCE:
        problems.append(f"{ins.symbol} gamma {gamma:g}")
    if vega < -_TOLERANCE:
        problems.append(f"{ins.symbol} vega {vega:g}")
    return problems


def _check_greeks(items: list[tuple[Instrument, dict]]) -> Check:
    if not items:
        return Check("greeks", False, "no options to check")
    complete = [(ins, t) for ins, t in items
                if all(t.get(g) is not None for g in ("delta", "gamma", "theta", "vega"))]
    problems = [p for ins, t in complete for p in _greek_problems(ins, t)]
    detail = f"{len(complete)}/{len(items)} options have delta, gamma, theta and vega"
    if problems:
        return Check("greeks", False, f"{detail}; out of range: {', '.join(problems[:3])}"
                                      + (f" and {len(problems) - 3} more" if len(problems) > 3 else ""))
    if len(complete) / len(items) < MIN_COVERAGE:
        return Check("greeks", False, f"{detail} (need {MIN_COVERAGE:.0%})")
    return Check("greeks", True, detail + ", all in range")


def _check_freshness(newest: str | None, interval: float) -> Check:
    limit = stale_after(interval)
    if newest is None:
        return Check("freshness", False, "no ticks received: is the collector running? "
                                         "(python -m datacentre status)")
    age = (now_utc() - parse_ts(newest)).total_seconds()
    detail = f"newest tick {newest}, {age:,.1f} s old (limit {limit:g} s)"
    if age >= limit:
        return Check("freshness", False, detail + ": the collector is not writing; "
                                                  "check `python -m datacentre status`")
    return Check("freshness", True, detail)


def _rate(times: list[str]) -> float | None:
    """Snapshots per minute over distinct, sorted ``times`` (None with fewer than two)."""
    if len(times) < 2:
        return None
    span = (parse_ts(times[-1]) - parse_ts(times[0])).total_seconds()
    return (len(times) - 1) / span * 60 if span > 0 else None


def _store_times(db_url: str | None, newest: str | None, interval: float) -> list[str] | None:
    """Recent snapshot times from the store, if it holds the same feed as the broadcaster."""
    try:
        store = open_existing_store(db_url)
    except DataCentreError as exc:
        log.info("not reading the store: %s", exc)
        return None
    if store is None:
        return None
    try:
        last = store.last_ts()
        limit = stale_after(interval)
        same_feed = (last is not None and newest is not None
                     and abs((parse_ts(last) - parse_ts(newest)).total_seconds()) <= limit)
        if not same_feed:
            log.info("the store at %r is not the one this broadcaster serves; counting live", store)
            return None
        now = now_utc()
        return store.timestamps(format_ts(now - RATE_WINDOW), format_ts(now))
    except DataCentreError as exc:
        log.info("could not read snapshot times from the store: %s", exc)
        return None
    finally:
        store.close()


def _check_rate(times: list[str], where: str, interval: float) -> Check:
    expected = 60.0 / interval
    rate = _rate(times)
    if rate is None:
        return Check("rate", False, f"fewer than 2 snapshots {where}: the collector is not writing; "
                                    f"check `python -m datacentre status`")
    detail = f"{rate:.1f} snapshots/min {where} (expected {expected:.1f})"
    if rate < MIN_RATE_SHARE * expected:
        return Check("rate", False, detail + ": the collector is falling behind or stopped")
    return Check("rate", True, detail)


def run_verify(ws_url: str | None = None, *, timeout: float = 15, db_url: str | None = None,
               interval: float | None = None) -> list[Check]:
    """Watch the feed at ``ws_url`` for up to ``timeout`` s and check what arrives.

    ``db_url`` names the store for the collection rate (default: the configured
    store, if it exists and holds the same feed); without one, the rate is counted
    live, which takes a few intervals. ``interval`` is the collector's configured
    interval (default: ``DATACENTRE_INTERVAL``, 5 s).
    """
    if interval is None:
        settings = load_settings()
        interval = settings.interval if settings else DEFAULT_INTERVAL
    deadline = time.monotonic() + timeout
    reader = WebSocketDataReader(ws_url)
    try:
        reader.wait_for_data(timeout)
        if reader._feed.connections == 0:
            return [Check("connection", False, f"no broadcaster answered at {reader.ws_url} within "
                                               f"{timeout:g} s: start it with `python -m datacentre start`")]
        checks = [Check("connection", True, f"connected to {reader.ws_url}")]
        snap = reader._data_cache.copy()
        newest = max((t.get("ts") or "" for t in snap.values()), default="") or None
        times, where = _store_times(db_url, newest, interval), "in the store over the last 5 min"
        if times is None or len(times) < 2:
            while len(reader._snapshot_times) < LIVE_SNAPSHOTS and time.monotonic() < deadline:
                time.sleep(0.1)
            times = sorted({ts for ts, _ in reader._snapshot_times})
            where = "received live"
            snap = reader._data_cache.copy()
            newest = max((t.get("ts") or "" for t in snap.values()), default="") or None
        options = _options(snap)
        every_option = [item for items in options.values() for item in items]
        checks += [_check_spot(snap), _check_futures(snap), _check_options(options),
                   _check_iv(every_option), _check_greeks(every_option),
                   _check_freshness(newest, interval), _check_rate(times, where, interval)]
        return checks
    finally:
        reader.close()


def format_table(checks: list[Check]) -> str:
    """The checks as a PASS/FAIL table with a summary line."""
    width = max([len(c.name) for c in checks] + [5])
    lines = [f"{'CHECK':<{width}}  RESULT  DETAIL"]
    lines += [f"{c.name:<{width}}  {'PASS' if c.ok else 'FAIL':<6}  {c.detail}" for c in checks]
    passed = sum(c.ok for c in checks)
    verdict = "healthy" if passed == len(checks) else "NOT healthy"
    lines.append(f"{passed} of {len(checks)} checks passed: {verdict}")
    return "\n".join(lines)
