"""The command line, run as a real subprocess: help, errors, backfill, export, import."""
from __future__ import annotations

import csv
import io
import os
import subprocess
import sys

import pytest
from support import PortInUse, on_free_port, wait_until

from datacentre.core.ticks import TICK_FIELDS
from datacentre.store.tickstore import TickStore

COMMANDS = ["run", "collect", "broadcast", "start", "stop", "status", "verify", "backfill",
            "export", "import", "replay"]


def cli(*args, env=None, input=None, timeout=120):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "datacentre", *args], capture_output=True, text=True,
                          env=full_env, input=input, timeout=timeout)


def test_help_lists_every_command():
    out = cli("--help")
    assert out.returncode == 0
    for name in COMMANDS:
        assert name in out.stdout


@pytest.mark.parametrize("name", COMMANDS)
def test_each_command_has_help(name):
    out = cli(name, "--help")
    assert out.returncode == 0
    assert "--db" in out.stdout and "usage:" in out.stdout


@pytest.mark.parametrize("args, message", [
    (["nonsense"], "invalid choice"),
    (["collect", "--interval", "0"], "must be greater than 0"),
    (["collect", "--interval", "abc"], "not a number"),
    (["collect", "--interval", "0.05"], "at least 0.1"),
    (["broadcast", "--port", "70000"], "port must be"),
    (["backfill", "--date", "2026-13-01"], "not a date"),
    (["backfill", "--date", "2026-11-28"], "Saturday"),
    (["backfill", "--date", "2099-01-02"], "has not closed"),
    (["backfill", "--days", "0"], "at least 1"),
    (["export", "--start", "yesterday"], "invalid time"),
    (["export", "--symbol", "NIFTYXX"], "NIFTYXX"),
    (["export", "--expiry", "2026-01-06"], "--expiry needs --underlying"),
    (["export", "--underlying", "FINNIFTY"], "unknown underlying"),
    (["import", "/no/such/file.csv"], "cannot read"),
    (["collect", "--source", "csv"], "--source csv needs --csv"),
    (["collect", "--source", "csv", "--csv", "/no/such.csv"], "no/such.csv"),
    (["collect", "--source", "smartapi"], "DATACENTRE_SMARTAPI_"),
    (["run", "--source", "bloomberg"], "invalid choice"),
    (["replay", "--start", "2026-01-02T09:00:00Z", "--end", "2026-01-02T08:00:00Z"], "after --end"),
    (["replay", "--start", "2026-01-02", "--end", "2026-01-03", "--speed", "500"], "--speed"),
    (["backfill", "--seed", "-1"], "seed"),
    (["collect", "--interval", "inf"], "finite"),
    (["export", "--out", "/no/such/folder/ticks.csv"], "cannot write"),
])
def test_bad_arguments_one_line_exit_2(args, message, db_url):
    out = cli(*args, "--db", db_url) if args[0] != "nonsense" else cli(*args)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("url", ["sqlite:////proc/no/such/ticks.db",
                                 "postgresql://nobody@127.0.0.1:1/nothing"])
def test_store_that_cannot_open_fails_in_one_line(url):
    out = cli("export", "--db", url)
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_backfill_export_import_round_trip(tmp_path, db_url):
    out = cli("backfill", "--date", "2026-11-27", "--interval", "300", "--seed", "3", "--db", db_url,
              "--no-progress")
    assert out.returncode == 0, out.stderr
    assert "backfilled 2026-11-27" in out.stdout and "rows/s" in out.stdout
    store = TickStore(db_url)
    stamps = store.timestamps()
    assert stamps[0] == "2026-11-27T03:45:00+00:00" and stamps[-1] == "2026-11-27T10:00:00+00:00"
    assert len(stamps) == 76
    again = cli("backfill", "--date", "2026-11-27", "--interval", "300", "--db", db_url, "--no-progress")
    assert "skipped 2026-11-27: the store already holds ticks" in again.stdout  # idempotent
    assert TickStore(db_url).timestamps() == stamps

    exported = cli("export", "--db", db_url, "--symbol", "NIFTY 50", "--start", "2026-11-27T09:15:00+05:30",
                   "--end", "2026-11-27T04:00:00Z")
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [r["ts"] for r in rows] == stamps[:4]
    assert exported.stdout.splitlines()[0] == ",".join(TICK_FIELDS)

    target = tmp_path / "all.csv"
    out = cli("export", "--db", db_url, "--underlying", "NIFTY", "--out", str(target))
    assert out.returncode == 0 and target.exists()
    symbols = {r["symbol"] for r in csv.DictReader(target.open())}
    assert "NIFTY 50" in symbols and "NIFTY BANK" not in symbols
    assert not any(s.startswith("BANKNIFTY") for s in symbols)

    other = f"sqlite:///{tmp_path / 'other.db'}"
    imported = cli("import", str(target), "--db", other)
    assert imported.returncode == 0, imported.stderr
    assert f"imported {sum(1 for _ in target.open()) - 1} new rows" in imported.stdout
    piped = cli("import", "-", "--db", other, input=target.read_text())
    assert "imported 0 new rows" in piped.stdout


def test_import_bad_file_reports_lines(tmp_path, db_url):
    bad = tmp_path / "bad.csv"
    bad.write_text(",".join(TICK_FIELDS) + "\nNIFTY 50,1,2026-01-02T08:00:00Z,abc,,,0,,,,,,,sim\n")
    out = cli("import", str(bad), "--db", db_url)
    assert out.returncode == 1
    assert "line 2" in out.stderr and "nothing imported" in out.stderr
    assert TickStore(db_url).count() == 0


def _start(*args, env=None) -> subprocess.Popen:
    """Start a long-running command."""
    return subprocess.Popen([sys.executable, "-m", "datacentre", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


def _serve(*args, env=None):
    """Start a server command on a free port, once its own ``/health`` answers there;
    return (process, port). A port someone took in the meantime is given up for another."""
    from datacentre.clients.health import broadcaster_health

    def start(port: int) -> tuple[subprocess.Popen, int]:
        proc = _start(*args, "--port", str(port), env=env)
        url = f"ws://127.0.0.1:{port}"
        assert wait_until(lambda: proc.poll() is not None
                          or (broadcaster_health(url) or {}).get("pid") == proc.pid, 60)
        if proc.poll() is None:
            return proc, port
        _out, err = proc.communicate()
        if "already in use" in err:
            raise PortInUse(err)
        raise AssertionError(f"the server exited at start-up ({proc.returncode}): {err}")

    return on_free_port(start)


def _messages(port: int, count: int, *, timeout: float = 30.0, until: str | None = None) -> list[dict]:
    """The first ``count`` messages (or all up to one of type ``until``)."""
    import json
    import time

    import websocket
    deadline = time.monotonic() + timeout
    while True:
        try:
            ws = websocket.create_connection(f"ws://127.0.0.1:{port}", timeout=timeout)
            break
        except OSError:
            assert time.monotonic() < deadline, "the server never started listening"
            time.sleep(0.1)
    try:
        out: list[dict] = []
        while len(out) < count and time.monotonic() < deadline:
            out.append(json.loads(ws.recv()))
            if until and out[-1].get("type") == until:
                break
        return out
    finally:
        ws.close()


def _stop(proc, sig=None):
    import signal
    proc.send_signal(sig or signal.SIGINT)
    try:
        _out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    return err


def test_run_collects_and_broadcasts_then_stops_on_ctrl_c(db_url):
    proc, port = _serve("run", "--db", db_url, "--interval", "0.2", "--seed", "5")
    try:
        messages = _messages(port, 150)
    finally:
        err = _stop(proc)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert messages[0]["type"] == "welcome"
    ticks = [m for m in messages if "type" not in m]
    assert len(ticks) >= 100
    assert all(list(t) == list(TICK_FIELDS) and t["source"] == "sim" for t in ticks)
    stored = TickStore(db_url)
    assert stored.count() >= len(ticks)


def test_replay_serves_history_with_source_replay(db_url):
    out = cli("backfill", "--date", "2026-11-27", "--interval", "300", "--seed", "3", "--db", db_url,
              "--no-progress")
    assert out.returncode == 0, out.stderr
    proc, port = _serve("replay", "--db", db_url, "--start", "2026-11-27T04:00:00Z",
                        "--end", "2026-11-27T04:10:00Z", "--speed", "0")
    try:
        messages = _messages(port, 10_000, until="replay_end")
    finally:
        err = _stop(proc, __import__("signal").SIGTERM)
    assert proc.returncode == 0, err
    welcome, ticks = messages[0], [m for m in messages[1:] if "type" not in m]
    assert welcome["type"] == "welcome" and welcome["mode"] == "replay"
    assert messages[-1]["type"] == "replay_end"
    assert {t["source"] for t in ticks} == {"replay"}
    stamps = [t["ts"] for t in ticks]
    assert stamps == sorted(stamps)
    assert set(stamps) == {"2026-11-27T04:00:00+00:00", "2026-11-27T04:05:00+00:00",
                           "2026-11-27T04:10:00+00:00"}
    stored = {(r["symbol"], r["ts"]): r["ltp"] for r in TickStore(db_url).iter_ticks(
        start_ts="2026-11-27T04:00:00Z", end_ts="2026-11-27T04:10:00Z")}
    assert all(stored[(t["symbol"], t["ts"])] == t["ltp"] for t in ticks)


def test_broadcast_alone_follows_another_writer(db_url, sample_ticks):
    proc, port = _serve("broadcast", "--db", db_url)
    try:
        first = _messages(port, 1)
        assert first[0]["type"] == "welcome"
        import threading
        writer = TickStore(db_url)
        threading.Timer(0.5, lambda: writer.write_snapshot("2026-01-02T08:13:05Z", sample_ticks)).start()
        messages = _messages(port, 1 + len(sample_ticks))
    finally:
        err = _stop(proc)
    assert proc.returncode == 0, err
    assert [m["symbol"] for m in messages[1:]] == [t["symbol"] for t in sample_ticks]


def test_collect_plays_back_a_csv_export(tmp_path, db_url):
    out = cli("backfill", "--date", "2026-11-27", "--interval", "900", "--seed", "3", "--db", db_url,
              "--no-progress")
    assert out.returncode == 0, out.stderr
    export = tmp_path / "day.csv"
    assert cli("export", "--db", db_url, "--out", str(export)).returncode == 0
    target = f"sqlite:///{tmp_path / 'played.db'}"
    proc = _start("collect", "--db", target, "--source", "csv", "--csv", str(export), "--interval", "0.2")
    import time
    deadline = time.monotonic() + 30
    played = TickStore(target)
    while played.count() < 3 * 110 and time.monotonic() < deadline:
        time.sleep(0.2)
    err = _stop(proc)
    assert proc.returncode == 0, err
    rows = list(played.iter_ticks())
    assert {r["source"] for r in rows} == {"csv"}
    first_ts = rows[0]["ts"]
    original = {r["symbol"]: r["ltp"] for r in TickStore(db_url).snapshot_at("2026-11-27T03:45:00Z")}
    assert {r["symbol"]: r["ltp"] for r in rows if r["ts"] == first_ts} == original


def test_the_command_line_starts_light():
    """Building the parser (every command does) imports no source, no importer and no
    analytics: ``export`` or ``broadcast`` should not pay for SciPy, pandas or Streamlit."""
    code = ("import sys; from datacentre.__main__ import build_parser; build_parser(); "
            "print(sorted(m for m in ('scipy', 'pandas', 'streamlit', 'plotly', 'pyarrow') "
            "if m in sys.modules))")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == "[]", out.stdout


def test_main_in_process_leaves_logging_as_it_found_it(tmp_path, capsys):
    import logging

    from datacentre.__main__ import main

    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    url = f"sqlite:///{tmp_path / 'ticks.db'}"
    assert main(["export", "--db", url, "--out", str(tmp_path / "out.csv")]) == 0
    assert (list(root.handlers), root.level) == before
