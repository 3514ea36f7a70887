"""Background services (start/stop/status, pid files, logs) and the verify command.

The slow tests start real detached processes (``python -m datacentre collect`` and
``broadcast``) on a free port with a temporary data directory.
"""
from __future__ import annotations

import io
import logging
import logging.handlers
import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import synthetic_snapshot
from support import PortInUse, on_free_port, refused_port, wait_until

from datacentre.clients.health import broadcaster_health
from datacentre.core.config import Settings
from datacentre.core.ticks import now_utc
from datacentre.feed.broadcaster import BroadcasterThread
from datacentre.ops.services import (
    LOG_BACKUPS,
    LOG_MAX_BYTES,
    format_status,
    pid_alive,
    read_pid,
    service_command,
    service_files,
    service_status,
    setup_logging,
    start_services,
    stop_services,
)
from datacentre.ops.verify import Check, format_table, run_verify

ROOT = Path(__file__).resolve().parents[1]
START_WAIT_SLOW = 60.0  # s: a broadcaster that cannot listen exits well within this


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def service_settings(tmp_path: Path, port: int) -> Settings:
    data = tmp_path / "data"
    return Settings(db_url=f"sqlite:///{data / 'nifty_local.db'}", ws_port=port, interval=0.5,
                    seed=7, data_dir=data)


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Services whose port refuses connections: nothing answers there but what a test starts."""
    return service_settings(tmp_path, refused_port())


@pytest.fixture
def services(settings):
    """Whatever a test starts is stopped afterwards."""
    yield settings
    stop_services(settings, timeout=5)


@pytest.fixture
def clean_logging():
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in before:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


# ---------------------------------------------------------------- logging


def test_setup_logging_writes_a_rotating_file(tmp_path, clean_logging):
    path = tmp_path / "logs" / "collector_service.log"
    setup_logging(str(path), logging.DEBUG)
    setup_logging(str(path), "INFO")  # again: replaces, never duplicates
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_datacentre", False)]
    files = [h for h in ours if isinstance(h, logging.handlers.RotatingFileHandler)]
    assert len(files) == 1
    assert files[0].maxBytes == LOG_MAX_BYTES == 5 * 2**20 and files[0].backupCount == LOG_BACKUPS == 3
    assert logging.getLogger().level == logging.INFO
    logging.getLogger("datacentre.test").info("hello from the test")
    files[0].flush()
    assert "INFO    datacentre.test: hello from the test" in path.read_text(encoding="utf-8")


def test_setup_logging_without_a_file_logs_to_stderr(clean_logging, monkeypatch):
    setup_logging(None)
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_datacentre", False)]
    assert len(ours) == 1 and isinstance(ours[0], logging.StreamHandler)
    # stderr as it is when a record is written, not as it was when logging was set up
    later = io.StringIO()
    monkeypatch.setattr(sys, "stderr", later)
    logging.getLogger("datacentre.test").warning("after a redirection")
    assert "WARNING datacentre.test: after a redirection" in later.getvalue()


# ---------------------------------------------------------------- commands, pids


def test_service_commands(settings):
    collector = service_command(settings, "collector", python="py")
    broadcaster = service_command(settings, "broadcaster", python="py")
    files = service_files(settings, "collector")
    assert collector[:4] == ["py", "-m", "datacentre", "collect"]
    assert broadcaster[:4] == ["py", "-m", "datacentre", "broadcast"]
    assert collector[collector.index("--db") + 1] == settings.db_url
    assert collector[collector.index("--log-file") + 1] == str(files.log_file)
    assert files.log_file.name == "collector_service.log" and files.pid_file.name == "collector.pid"
    assert collector[collector.index("--seed") + 1] == "7"
    assert broadcaster[broadcaster.index("--port") + 1] == str(settings.ws_port)
    assert broadcaster[broadcaster.index("--host") + 1] == "127.0.0.1"
    assert collector[collector.index("--interval") + 1] == "0.5"


def test_relative_database_paths_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cmd = service_command(Settings(data_dir=Path("data")), "collector")
    assert cmd[cmd.index("--db") + 1] == f"sqlite:///{tmp_path / 'data' / 'nifty_local.db'}"
    assert cmd[cmd.index("--log-file") + 1] == str(tmp_path / "data" / "collector_service.log")


def test_pid_alive():
    assert pid_alive(os.getpid())
    assert not pid_alive(dead_pid())
    assert not pid_alive(0)


def test_stale_and_foreign_pid_files(settings):
    files = {name: service_files(settings, name) for name in ("collector", "broadcaster")}
    settings.data_dir.mkdir(parents=True)
    files["collector"].pid_file.write_text(f"{dead_pid()}\n")
    files["broadcaster"].pid_file.write_text(f"{os.getpid()}\n")  # alive, but not a broadcaster
    rows = {r["name"]: r for r in service_status(settings)}
    assert rows["collector"]["state"] == "stale pid file" and rows["collector"]["alive"] is False
    assert rows["broadcaster"]["alive"] is False
    assert rows["broadcaster"]["subscribers"] is None
    assert "did not answer" in rows["broadcaster"]["health_error"]
    assert "no tick store" in rows["collector"]["store_error"]
    assert "STALE PID FILE" in format_status(list(rows.values()))
    results = {r["name"]: r["result"] for r in stop_services(settings, timeout=1)}
    assert results == {"collector": "not running (stale pid file removed)",
                       "broadcaster": "not running (stale pid file removed)"}
    assert pid_alive(os.getpid())  # the test process was not stopped
    assert not files["collector"].pid_file.exists() and not files["broadcaster"].pid_file.exists()
    assert not Path(settings.db_url.removeprefix("sqlite:///")).exists()  # status created nothing


def test_stop_when_nothing_runs(settings):
    assert [r["result"] for r in stop_services(settings)] == ["not running", "not running"]


# ---------------------------------------------------------------- real processes


@pytest.mark.slow
def test_start_status_verify_stop_through_the_cli(tmp_path):
    data = tmp_path / "data"
    db = f"sqlite:///{data / 'nifty_local.db'}"
    # ROOT first, and whatever PYTHONPATH already holds after it (tests/clock shifts the clock)
    env = {**os.environ, "DATACENTRE_DATA_DIR": str(data),
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    env.pop("DATACENTRE_DB_URL", None)
    port = 0

    def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        common = ["--db", db, "--port", str(port), "--interval", "0.5"]
        return subprocess.run([sys.executable, "-m", "datacentre", *args, *common], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=timeout)

    def start(free: int) -> Settings:
        """``start`` on the port ``free``, once the broadcaster started there answers /health."""
        nonlocal port
        port = free
        settings = Settings(db_url=db, ws_port=port, interval=0.5, data_dir=data)
        started = cli("start")
        broadcaster = service_files(settings, "broadcaster")
        pid = read_pid(broadcaster.pid_file)
        assert wait_until(lambda: pid is None or not pid_alive(pid)
                          or (broadcaster_health(settings.ws_url) or {}).get("pid") == pid, 60)
        if pid is None or not pid_alive(pid):
            said = started.stdout + (broadcaster.out_file.read_text(encoding="utf-8")
                                     if broadcaster.out_file.exists() else "")
            stop_services(settings, timeout=5)
            if "already in use" in said:
                raise PortInUse(said)
            raise AssertionError(f"start failed: {said}")
        assert started.returncode == 0, started.stderr
        return settings

    settings = service_settings(tmp_path, refused_port())  # what the finally stops, if start fails
    try:
        settings = on_free_port(start)
        pids = {name: read_pid(service_files(settings, name).pid_file) for name in ("collector",
                                                                                   "broadcaster")}
        assert all(pid and pid_alive(pid) for pid in pids.values())
        assert wait_until(lambda: service_status(settings)[0].get("last_tick_ts") is not None, 15)

        again = {r["name"]: r for r in start_services(settings)}
        assert {r["state"] for r in again.values()} == {"already running"}
        assert {name: r["pid"] for name, r in again.items()} == pids

        status = cli("status")
        assert status.returncode == 0, status.stdout + status.stderr
        assert "RUNNING" in status.stdout and f"ws://127.0.0.1:{port}" in status.stdout
        rows = {r["name"]: r for r in service_status(settings)}
        assert rows["broadcaster"]["subscribers"] == 0 and rows["broadcaster"]["ticks_sent"] > 0
        # the source is the simulator, and the status says so
        assert rows["broadcaster"]["simulated"] is True and "SIMULATED market" in status.stdout
        assert rows["collector"]["last_tick_age_s"] < 5 and rows["collector"]["ticks_per_s"] > 0

        checks = run_verify(settings.ws_url, timeout=10, db_url=db, interval=0.5)
        assert all(c.ok for c in checks), format_table(checks)

        stopped = cli("stop")
        assert stopped.returncode == 0
        assert "collector    stopped" in stopped.stdout and "broadcaster  stopped" in stopped.stdout
        assert not any(pid_alive(pid) for pid in pids.values())
        assert not list(data.glob("*.pid"))
        log = (data / "collector_service.log").read_text(encoding="utf-8")
        assert "collector started" in log and "collector stopped" in log  # a clean SIGTERM shutdown
        assert cli("status").returncode == 1
    finally:
        stop_services(settings, timeout=5)


@pytest.mark.slow
def test_a_broadcaster_that_cannot_listen_is_reported(services, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        settings = service_settings(tmp_path, busy.getsockname()[1])
        # a long watch: the verdict must not depend on how fast a loaded machine starts Python
        results = {r["name"]: r for r in start_services(settings, wait=START_WAIT_SLOW)}
    assert results["collector"]["state"] == "started"
    assert results["broadcaster"]["state"] == "failed"
    assert "broadcaster_service.out" in results["broadcaster"]["result"]
    assert results["broadcaster"]["detail"]
    assert not service_files(settings, "broadcaster").pid_file.exists()
    assert service_files(settings, "collector").pid_file.exists()


@pytest.mark.slow
def test_another_broadcaster_on_the_port_is_not_taken_for_the_new_one(services, store, tmp_path):
    """``start`` must not read the /health of whatever else answers there as its own service's."""
    other = BroadcasterThread(store, port=0).start()
    settings = service_settings(tmp_path, other.port)
    try:
        results = {r["name"]: r for r in start_services(settings, wait=START_WAIT_SLOW)}
    finally:
        other.stop()
    assert results["broadcaster"]["state"] == "failed", results["broadcaster"]
    assert "already in use" in results["broadcaster"]["detail"]
    assert not service_files(settings, "broadcaster").pid_file.exists()


# ---------------------------------------------------------------- verify


def test_verify_a_healthy_feed(store, db_url, live_broadcaster, live_market):
    assert wait_until(lambda: live_market.snapshots >= 3)
    checks = run_verify(live_broadcaster.url, timeout=10, db_url=db_url, interval=0.2)
    assert [c.name for c in checks] == ["connection", "spot", "futures", "options", "iv", "greeks",
                                        "freshness", "rate"]
    assert all(c.ok for c in checks), format_table(checks)
    assert "in the store" in checks[-1].detail


def test_verify_counts_the_rate_live_without_a_store(live_broadcaster, live_market, tmp_path,
                                                     monkeypatch):
    monkeypatch.setenv("DATACENTRE_DB_URL", f"sqlite:///{tmp_path / 'none.db'}")
    checks = run_verify(live_broadcaster.url, timeout=10, interval=0.2)
    assert all(c.ok for c in checks), format_table(checks)
    assert "received live" in checks[-1].detail


def test_verify_without_a_broadcaster():
    started = time.monotonic()
    checks = run_verify(f"ws://127.0.0.1:{refused_port()}", timeout=1)
    assert time.monotonic() - started < 5
    assert [(c.name, c.ok) for c in checks] == [("connection", False)]
    assert "python -m datacentre start" in checks[0].detail


def test_verify_stale_data_and_bad_greeks(store, db_url, live_broadcaster):
    moment = (now_utc() - timedelta(minutes=10)).replace(microsecond=0)
    ticks = synthetic_snapshot(moment)
    call = next(t for t in ticks if t["symbol"].endswith("CE"))
    call["delta"] = 1.5
    store.write_snapshot(moment, ticks)
    checks = {c.name: c for c in run_verify(live_broadcaster.url, timeout=1.5, db_url=db_url,
                                            interval=5)}
    assert checks["spot"].ok and checks["futures"].ok and checks["options"].ok and checks["iv"].ok
    assert not checks["greeks"].ok and f"{call['symbol']} delta 1.5" in checks["greeks"].detail
    assert not checks["freshness"].ok and "python -m datacentre status" in checks["freshness"].detail
    assert not checks["rate"].ok


def test_format_table():
    table = format_table([Check("spot", True, "NIFTY 50 26,000.00"), Check("rate", False, "too slow")])
    lines = table.splitlines()
    assert lines[0].split() == ["CHECK", "RESULT", "DETAIL"]
    assert lines[1].split()[:2] == ["spot", "PASS"] and lines[2].split()[:2] == ["rate", "FAIL"]
    assert lines[-1] == "1 of 2 checks passed: NOT healthy"
