"""Command line: ``python -m datacentre <command>`` (docs/architecture.md, "Command line").

Each command opens what it needs, calls one library function and formats the
result. Library errors become one-line messages here and nowhere else: bad
arguments exit with 2, failures with 1.
"""
from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date

from datacentre import __version__
from datacentre.core.config import Settings
from datacentre.core.errors import ConfigError, DataCentreError, SymbolError

log = logging.getLogger("datacentre")


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit code 2) instead of a usage dump."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value < 65536:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, got {value}")
    return value


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date like 2026-01-02: {text!r}") from None


def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("common options")
    g.add_argument("--db", metavar="URL", help="database URL (default: $DATACENTRE_DB_URL or "
                   "sqlite:///data/nifty_local.db)")
    g.add_argument("--host", help="broadcaster host (default: $DATACENTRE_WS_HOST or 127.0.0.1)")
    g.add_argument("--port", type=_port, help="broadcaster port (default: $DATACENTRE_WS_PORT or 8765)")
    g.add_argument("--interval", type=_positive_float, metavar="SECONDS",
                   help="seconds between snapshots, 0.1 or more (default: 5)")
    g.add_argument("--seed", type=int, help="random seed of the market simulator (repeatable markets)")
    g.add_argument("--watchlist", metavar="LIST", help="default, original or e.g. 'NIFTY:weekly=10,"
                   "next-weekly=5;BANKNIFTY:monthly=8' (default: $DATACENTRE_WATCHLIST or default)")
    g.add_argument("--log-file", metavar="PATH", help="also log to this file (rotated)")
    g.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def build_parser() -> Parser:
    common = _common()
    parser = Parser(prog="python -m datacentre",
                    description="NIFTY Options Data Centre: collect, store, broadcast and export "
                                "NIFTY / BANKNIFTY options data.")
    parser.add_argument("--version", action="version", version=f"datacentre {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>", required=True, parser_class=Parser)

    def add(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], help=text, description=text)

    _source_options(add("run", "collector and broadcaster in the foreground (Ctrl-C stops both)"))
    _source_options(add("collect", "write one snapshot every interval into the store"))
    add("broadcast", "serve the store's new ticks over WebSocket")
    add("start", "start collector and broadcaster in the background (pid files and logs in data/)")
    add("stop", "stop the background services")
    add("status", "show the background services, subscribers and freshness")
    p = add("verify", "check the live feed: spot, futures, options, IV, Greeks, freshness, rate")
    p.add_argument("--timeout", type=_positive_float, default=15.0, help="seconds to watch the feed")
    p = add("backfill", "write whole past sessions (09:15-15:30 IST) from the simulator")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--days", type=int, default=None, help="the N most recent complete sessions "
                      "(default 1)")
    when.add_argument("--date", type=_day, help="one session, YYYY-MM-DD")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p = add("export", "write ticks as CSV (14 fields, ts order) to a file or stdout")
    _selection(p)
    p.add_argument("--out", metavar="FILE", help="output file (default: stdout)")
    _import_options(add("import", "import real market files or our CSV export (each file whole or not "
                                  "at all; again: nothing new)"))
    p = add("replay", "serve a stored time range over the WebSocket protocol")
    p.add_argument("--start", required=True, help="first snapshot time, ISO 8601")
    p.add_argument("--end", required=True, help="last snapshot time, ISO 8601")
    p.add_argument("--speed", type=float, default=1.0,
                   help="0.1 to 100 times real time, or 0 for as fast as clients read (default 1)")
    p = add("sync", "copy new rows from one store to another (SQLite and PostgreSQL, either way), "
                    "then compare rows per IST day and fill any gaps; again: only what is new")
    p.add_argument("--from", dest="source", required=True, metavar="URL", help="the store to copy from")
    p.add_argument("--to", dest="target", required=True, metavar="URL", help="the store to copy into")
    p.add_argument("--since", type=_day, help="only the IST days from this one on, YYYY-MM-DD")
    p.add_argument("--check", action="store_true", help="only compare the days (exit 1 on gaps)")
    p.add_argument("--follow", action="store_true", help="then keep copying new rows until Ctrl-C")
    p.add_argument("--batch", type=_positive_int, default=5000, help="rows per transaction (default 5000)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p = add("prune", "delete the ticks older than the last N IST days (whole months on PostgreSQL)")
    p.add_argument("--keep-days", type=_positive_int, required=True, metavar="N",
                   help="days to keep, today included")
    p.add_argument("--dry-run", action="store_true", help="say what would go; change nothing")
    p = add("candles", "write today's complete minutes of ohlc_1min and oi_snapshots not written yet")
    p.add_argument("--rebuild", action="store_true", help="rewrite every IST day with ticks, or --date")
    p.add_argument("--date", type=_day, action="append", help="with --rebuild: this IST day (repeatable)")
    p.add_argument("--follow", action="store_true", help="then keep them current until Ctrl-C")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _source_options(p: argparse.ArgumentParser) -> None:
    from datacentre.core.catalog import SOURCE_NAMES
    p.add_argument("--source", choices=SOURCE_NAMES, default="sim",
                   help="sim: the built-in market simulator (default); smartapi: Angel One SmartAPI "
                        "(credentials from DATACENTRE_SMARTAPI_* variables); csv: play back a CSV export")
    p.add_argument("--csv", metavar="PATH", help="with --source csv: the file to play back")
    p.add_argument("--loop", action="store_true", help="with --source csv: start again at the end")


def _import_options(p: argparse.ArgumentParser) -> None:
    from datacentre.core.catalog import IMPORT_FORMATS as FORMATS
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="files or folders (searched recursively), imported oldest first; - reads our "
                        "CSV from standard input")
    p.add_argument("--format", choices=FORMATS, help="skip detection: nse-chain (NSE option-chain API "
                   "JSON, plain or .gz), nse-chain-csv (the older option-chain page), bhavcopy (UDiFF "
                   "F&O), ticks (broker ticks or bars, CSV or Parquet), csv (our export)")
    p.add_argument("--expiry", type=_day, help="nse-chain: only this expiry; nse-chain-csv: the "
                   "page's expiry (default: inferred from the page's IVs)")
    p.add_argument("--ts", help="nse-chain-csv: the snapshot time, ISO 8601 (default: from a file "
                   "name like NIFTY_01-07-2019_10-00.csv, IST)")
    p.add_argument("--tz", help="ticks: the zone of timestamps without a UTC offset, e.g. Asia/Kolkata "
                   "(required for them)")
    p.add_argument("--map", metavar="FIELD=COLUMN,...", help="ticks: our field for each file column, "
                   "e.g. ts=timestamp,ltp=traded_price,volume=cumulative_vol,oi=open_interest,"
                   "symbol=trading_symbol (bars: bar_start=..., bar_volume=...)")
    p.add_argument("--bar-seconds", type=_positive_float, default=60.0,
                   help="ticks with bar_start: the bar length (default 60)")
    p.add_argument("--lot-size", type=int, help="shares per contract, instead of the dated lot-size "
                   "table (nse-chain, nse-chain-csv) or NewBrdLotQty (bhavcopy)")
    p.add_argument("--iv", choices=("forward", "nse"), default="forward",
                   help="forward: Black-76 on each expiry's forward, call and put IV agree (default); "
                        "nse: NSE's published convention, Black-Scholes on the index at r = 10%%")
    p.add_argument("--price", choices=("settle", "close"), default="settle",
                   help="bhavcopy: the settlement price (default) or the close as ltp")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _selection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--symbol", action="append", metavar="SYMBOL", help="a symbol (repeatable)")
    p.add_argument("--underlying", help="all symbols of NIFTY or BANKNIFTY")
    p.add_argument("--expiry", type=_day, help="with --underlying: one expiry, YYYY-MM-DD")
    p.add_argument("--start", help="from this time, ISO 8601 (UTC unless an offset is given)")
    p.add_argument("--end", help="up to this time, inclusive")


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings.from_env(db_url=args.db, ws_host=args.host, ws_port=args.port,
                             interval=args.interval, seed=args.seed, watchlist=args.watchlist)


def _setup_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.verbose else logging.INFO
    from datacentre.ops.services import setup_logging
    setup_logging(args.log_file, level)


def _wait_for_signal() -> threading.Event:
    stop = threading.Event()

    def handler(signum, _frame):
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def _store(settings: Settings):
    from datacentre.store.tickstore import TickStore
    return TickStore(settings.db_url)


# ---------------------------------------------------------------- commands

def _source(args, settings: Settings, store):
    from datacentre.sources import make_source
    if args.source == "sim":
        return make_source("sim", settings, resume_from=store.latest_all(limit=None))
    if args.source == "csv" and not args.csv:
        raise ConfigError("--source csv needs --csv PATH")
    return make_source(args.source, settings, path=args.csv, loop=args.loop or None)


def _serve(start, describe) -> int:
    """Start a service, say what it does, run until Ctrl-C or SIGTERM, then stop it cleanly."""
    stop = _wait_for_signal()
    service = start()
    print(f"{describe(service)}; Ctrl-C stops", flush=True)
    try:
        stop.wait()
    finally:
        service.stop()
    return 0


def cmd_run(args, settings: Settings) -> int:
    from datacentre.ops.embedded import DataCentre
    store = _store(settings)
    centre = DataCentre(settings, source=_source(args, settings, store), store=store)
    return _serve(lambda: centre.start(backfill_if_empty=False),
                  lambda c: f"data centre running: {c.ws_url}, store {c.store.url}")


def cmd_collect(args, settings: Settings) -> int:
    from datacentre.ops.collector import Collector
    from datacentre.ops.services import service_files
    store = _store(settings)
    source = _source(args, settings, store)
    stop = _wait_for_signal()
    Collector(store, source, interval=settings.interval,
              state_file=service_files(settings, "collector").state_file).run(stop)
    return 0


def cmd_broadcast(args, settings: Settings) -> int:
    from datacentre.feed.broadcaster import BroadcasterThread
    server = BroadcasterThread(_store(settings), host=settings.ws_host, port=settings.ws_port,
                               token=settings.ws_token)
    return _serve(server.start, lambda s: f"broadcasting on {s.url}")


def cmd_replay(args, settings: Settings) -> int:
    from datacentre.core.ticks import normalize_ts
    from datacentre.feed.protocol import SPEEDS_ALLOWED, valid_speed
    from datacentre.feed.replay import ReplayThread
    if not valid_speed(args.speed):
        raise ConfigError(f"--speed must be {SPEEDS_ALLOWED}, got {args.speed:g}")
    start, end = normalize_ts(args.start), normalize_ts(args.end)
    if start > end:
        raise ConfigError(f"--start {start} is after --end {end}")
    server = ReplayThread(_store(settings), start, end, speed=args.speed, host=settings.ws_host,
                          port=settings.ws_port, token=settings.ws_token)
    return _serve(server.start, lambda s: f"replaying {start} .. {end} at {args.speed:g}x on {s.url}; "
                                          f"playback starts when the first client connects")


def cmd_start(args, settings: Settings) -> int:
    from datacentre.ops.services import start_services
    results = start_services(settings)
    for svc in results:
        print(f"{svc['name']:<12} {svc.get('result', '')}")
    return 1 if any(svc.get("state") == "failed" for svc in results) else 0


def cmd_stop(args, settings: Settings) -> int:
    from datacentre.ops.services import stop_services
    for svc in stop_services(settings):
        print(f"{svc['name']:<12} {svc.get('result', 'stopped')}")
    return 0


def cmd_status(args, settings: Settings) -> int:
    from datacentre.ops.services import format_status, service_status
    rows = service_status(settings)
    print(format_status(rows))
    return 0 if all(r.get("alive") for r in rows) else 1


def cmd_verify(args, settings: Settings) -> int:
    from datacentre.ops.verify import format_table, run_verify
    checks = run_verify(settings.ws_url, timeout=args.timeout, db_url=args.db, interval=settings.interval)
    print(format_table(checks))
    return 0 if all(c.ok for c in checks) else 1


def cmd_backfill(args, settings: Settings) -> int:
    from datacentre.ops.backfill import backfill, check_session, recent_sessions
    days = 1 if args.days is None else args.days
    sessions = [check_session(args.date)] if args.date else recent_sessions(days)
    store = _store(settings)
    with _progress_bar(args, "snap") as progress:
        result = backfill(store, sessions, interval=settings.interval, seed=settings.seed,
                          atm_window=settings.atm_window, risk_free_rate=settings.risk_free_rate,
                          progress=progress, watchlist=settings.watch_list)
    for day in result.skipped:
        print(f"skipped {day}: the store already holds ticks of that session")
    if result.sessions:
        days = ", ".join(str(d) for d in result.sessions)
        print(f"backfilled {days}: {result.snapshots} snapshots, {result.rows} new rows in "
              f"{result.seconds:.1f} s ({result.rows_per_second:,.0f} rows/s)")
        built = store.rebuild_candles(result.sessions)
        print(f"ohlc_1min: {sum(built.values()):,} candles for {days}")
    return 0


def cmd_candles(args, settings: Settings) -> int:
    from datacentre.ops.candles import follow, update
    if args.date and not args.rebuild:
        raise ConfigError("--date goes with --rebuild")
    store = _store(settings)
    with _progress_bar(args, "day") as progress:
        built = store.rebuild_candles(args.date, progress=progress) if args.rebuild else {}
    print(f"rebuilt {sum(built.values()):,} candles over {len(built)} day(s)" if args.rebuild
          else f"ohlc_1min: {update(store):,} new candles")
    if args.follow:
        stop = _wait_for_signal()
        print("following new minutes; Ctrl-C stops", flush=True)
        print(f"ohlc_1min: {follow(store, stop):,} more candles")
    return 0


@contextmanager
def _progress_bar(args, unit: str) -> Iterator[Callable[[int, int], None]]:
    """``progress(done, total)`` drawing a bar on stderr (nothing with --no-progress)."""
    bar = None
    if not args.no_progress:
        from tqdm import tqdm
        bar = tqdm(total=None, unit=unit, desc=args.command, file=sys.stderr)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.update(done - bar.n)

    try:
        yield progress
    finally:
        if bar is not None:
            bar.close()


def cmd_sync(args, settings: Settings) -> int:
    from datacentre.ops.sync import follow, sync
    from datacentre.store.existing import open_existing_store
    from datacentre.store.tickstore import TickStore
    source = open_existing_store(args.source)
    if source is None:
        raise ConfigError(f"no tick store at --from {args.source} (a missing file, or a database "
                          f"without ltp_ticks or out of reach)")
    if args.follow and args.check:
        raise ConfigError("--check only compares: it cannot --follow")
    target = TickStore(args.target)
    with _progress_bar(args, "row") as progress:
        report = sync(source, target, since=args.since, check_only=args.check, batch=args.batch,
                      progress=progress)
    for line in report.lines():
        print(line)
    if args.follow:
        stop = _wait_for_signal()
        print(f"following {source.store_key}; Ctrl-C stops", flush=True)
        copied = follow(source, target, stop, since=args.since, batch=args.batch)
        print(f"copied {copied:,} more rows")
    return 1 if report.gaps else 0


def cmd_prune(args, settings: Settings) -> int:
    result = _store(settings).prune(args.keep_days, dry_run=args.dry_run)
    for line in result.lines():
        print(line)
    return 0


def _symbols(args, store) -> list[str] | None:
    from datacentre.core.instruments import parse_symbol
    from datacentre.store.csvio import select_symbols
    symbols = [parse_symbol(s).symbol for s in args.symbol or []]
    if args.underlying:
        symbols += select_symbols(store, args.underlying, args.expiry.isoformat() if args.expiry else None)
    elif args.expiry:
        raise ConfigError("--expiry needs --underlying")
    return symbols or None


def cmd_export(args, settings: Settings) -> int:
    from datacentre.core.ticks import normalize_ts
    from datacentre.store.csvio import export_csv
    store = _store(settings)
    symbols = _symbols(args, store)
    start = normalize_ts(args.start) if args.start else None
    end = normalize_ts(args.end) if args.end else None
    if args.out:
        try:
            out = open(args.out, "w", newline="", encoding="utf-8")  # noqa: SIM115 (closed below)
        except OSError as exc:
            raise ConfigError(f"cannot write {args.out}: {exc.strerror}") from None
        with out:
            rows = export_csv(store, out, symbols=symbols, start_ts=start, end_ts=end)
        print(f"exported {rows} rows to {args.out}", file=sys.stderr)
    else:
        export_csv(store, sys.stdout, symbols=symbols, start_ts=start, end_ts=end)
    return 0


def _import_settings(args, settings: Settings):
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from datacentre.core.ticks import parse_ts
    from datacentre.sources.imports import ImportOptions
    from datacentre.sources.imports.ticks import parse_mapping
    tz = None
    if args.tz:
        try:
            tz = ZoneInfo(args.tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"unknown time zone {args.tz!r}: use a name like Asia/Kolkata or UTC") from None
    if args.lot_size is not None and args.lot_size < 1:
        raise ConfigError(f"--lot-size must be at least 1, got {args.lot_size}")
    ts = None
    if args.ts:
        from datetime import datetime
        try:
            raw = datetime.fromisoformat(args.ts)
        except ValueError:
            raise ConfigError(f"--ts {args.ts!r} is not ISO 8601, e.g. 2019-07-01T10:00+05:30") from None
        if raw.tzinfo is None:
            raise ConfigError(f"--ts {args.ts!r} has no UTC offset: add one, e.g. +05:30 for IST")
        ts = parse_ts(raw)
    return ImportOptions(format=args.format, expiry=args.expiry, ts=ts, tz=tz,
                         mapping=parse_mapping(args.map), lot_size=args.lot_size, iv=args.iv,
                         price=args.price, bar_seconds=args.bar_seconds,
                         risk_free_rate=settings.risk_free_rate)


def cmd_import(args, settings: Settings) -> int:
    from pathlib import Path

    from datacentre.sources.imports import import_files
    options = _import_settings(args, settings)
    store = _store(settings)
    progress = False if args.no_progress else None
    with tempfile.TemporaryDirectory() as spool_dir:
        paths = list(args.files)
        if "-" in paths:
            spool = Path(spool_dir) / "stdin.csv"
            spool.write_text(sys.stdin.read(), encoding="utf-8")
            paths = [str(spool) if p == "-" else p for p in paths]
            options.format = options.format or "csv"
        for p in paths:
            if not Path(p).exists():
                raise ConfigError(f"cannot read {p}: no such file or folder")
        summary = import_files(store, paths, options, progress=progress)
    new = sum(summary.inserted.values())
    rows = sum(f.rows for f in summary.files)
    names = ", ".join(args.files) if len(args.files) <= 3 else f"{len(args.files)} paths"
    print(f"imported {new} new rows ({rows - new} already stored) from {names}")
    # every file's notes for a few files, or with -v; a folder of snapshots would repeat them
    for line in summary.lines(notes=args.verbose or len(summary.files) <= 3):
        print(line)
    return 0


COMMANDS = {
    "run": cmd_run, "collect": cmd_collect, "broadcast": cmd_broadcast, "start": cmd_start,
    "stop": cmd_stop, "status": cmd_status, "verify": cmd_verify, "backfill": cmd_backfill,
    "export": cmd_export, "import": cmd_import, "replay": cmd_replay, "sync": cmd_sync,
    "prune": cmd_prune, "candles": cmd_candles,
}


def _error(parser: argparse.ArgumentParser, args: argparse.Namespace, exc: Exception) -> None:
    # One line: driver messages (psycopg's "connection refused ... Is the server running?") wrap.
    print(f"{parser.prog} {args.command}: error: {' '.join(str(exc).split())}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    root_level = logging.getLogger().level
    try:
        settings = settings_from(args)
        _setup_logging(args)
        return COMMANDS[args.command](args, settings)
    except (ConfigError, SymbolError) as exc:
        _error(parser, args, exc)
        return 2
    except DataCentreError as exc:
        _error(parser, args, exc)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    finally:
        # main() called in-process (a script, a test) leaves the logging as it found it
        from datacentre.ops.services import setup_logging
        setup_logging(None, None)
        logging.getLogger().setLevel(root_level)


if __name__ == "__main__":
    sys.exit(main())
