"""Background services: ``python -m datacentre start | stop | status`` (docs/architecture.md, "Command line").

``start`` launches two detached processes, ``python -m datacentre collect`` and
``python -m datacentre broadcast``, each writing a rotating log and a pid file
under the data directory::

    data/collector.pid      data/collector_service.log      data/collector_service.out
    data/broadcaster.pid    data/broadcaster_service.log    data/broadcaster_service.out
    data/collector.state.json   collecting, or idle outside market hours (and until when)

The ``.log`` files are the services' logs (5 MB x 3, see :func:`setup_logging`);
the ``.out`` files catch anything printed outside logging, such as the traceback
of a crash at start-up.

A pid file whose process is gone (a crash, a reboot) is stale: ``start`` removes
it and starts afresh, ``status`` reports it. On Linux a pid is only taken as a
running service if that process's command line is ours, so a recycled pid is
never mistaken for (or stopped as) a service. ``stop`` sends SIGTERM and, after
the timeout, SIGKILL; on Windows both mean TerminateProcess. Nothing is lost
either way: the collector commits each snapshot in one transaction.
"""
from __future__ import annotations

import contextlib
import json
import logging
import logging.handlers
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from datacentre.clients.health import fetch_health, health_url
from datacentre.core.config import TOKEN_ENV, Settings, make_ws_url
from datacentre.core.errors import DataCentreError, StoreError
from datacentre.core.ticks import format_ts, now_utc, parse_ts
from datacentre.store import TickStore, open_existing_store
from datacentre.store.schema import sqlite_path

log = logging.getLogger(__name__)

SERVICES = ("collector", "broadcaster")
_COMMANDS = {"collector": "collect", "broadcaster": "broadcast"}

LOG_MAX_BYTES = 5 * 2**20
LOG_BACKUPS = 3
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
#: Seconds ``start`` watches a new process before calling it started (the broadcaster
#: is watched until its ``/health`` answers, at most this long).
START_WAIT = 5.0
#: A process that lives this long without exiting counts as started.
START_GRACE = 1.0
HEALTH_TIMEOUT = 2.0
#: Window over which ``status`` measures the collection rate.
RATE_WINDOW = timedelta(seconds=60)

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- logging

def setup_logging(log_file: str | os.PathLike | None = None, level: int | str | None = logging.INFO) -> None:
    """Configure the root logger: a rotating ``log_file`` (5 MB x 3) and/or the console.

    Without a log file, logs go to stderr. With one, they go to the file and, when
    stderr is a terminal, to the console as well, so a detached service's stderr
    capture does not grow without bound. Calling it again replaces what an earlier
    call installed; ``level=None`` only removes it.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_datacentre", False):
            root.removeHandler(handler)
            handler.close()
    if level is None:
        return
    handlers: list[logging.Handler] = []
    if log_file:
        path = Path(log_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.handlers.RotatingFileHandler(
            path, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"))
    if not log_file or (sys.stderr is not None and sys.stderr.isatty()):
        handlers.append(_Console())
    formatter = logging.Formatter(LOG_FORMAT)
    for handler in handlers:
        handler.setFormatter(formatter)
        handler._datacentre = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)


class _Console(logging.StreamHandler):
    """The console: whatever ``sys.stderr`` is when a record is written, so a redirection
    made after logging was set up (or one already closed) is never written to by mistake."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


# ---------------------------------------------------------------- files and processes

@dataclass(frozen=True)
class ServiceFiles:
    """Where one service keeps its pid, its log and its captured console output."""

    name: str
    pid_file: Path
    log_file: Path
    out_file: Path
    state_file: Path | None = None


def service_files(settings: Settings, name: str) -> ServiceFiles:
    if name not in _COMMANDS:
        raise ValueError(f"unknown service {name!r}; known: {', '.join(SERVICES)}")
    data_dir = Path(settings.data_dir).resolve()
    return ServiceFiles(name, data_dir / f"{name}.pid", data_dir / f"{name}_service.log",
                        data_dir / f"{name}_service.out", data_dir / f"{name}.state.json")


def _absolute_db_url(url: str) -> str:
    """Relative SQLite paths made absolute, so every process means the same file."""
    path = sqlite_path(url)
    if path is None or path.is_absolute():
        return url
    # Rendered by SQLAlchemy, so a '#', '?' or '%' in a folder name stays part of the path.
    return sa.engine.make_url(url).set(database=str(path.resolve())).render_as_string(hide_password=False)


def service_command(settings: Settings, name: str, *, python: str = sys.executable) -> list[str]:
    """The command line that runs service ``name`` with ``settings``."""
    files = service_files(settings, name)
    cmd = [python, "-m", "datacentre", _COMMANDS[name], "--db", _absolute_db_url(settings.db_url),
           "--interval", f"{settings.interval:g}", "--log-file", str(files.log_file)]
    if name == "broadcaster":
        cmd += ["--host", settings.ws_host, "--port", str(settings.ws_port)]
    else:
        if settings.seed is not None:
            cmd += ["--seed", str(settings.seed)]
        if settings.watchlist:
            cmd += ["--watchlist", settings.watchlist]
    return cmd


def read_pid(pid_file: Path) -> int | None:
    """The pid in ``pid_file``, or None if there is no readable pid."""
    try:
        text = pid_file.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def _write_pid(pid_file: Path, pid: int) -> None:
    tmp = pid_file.with_name(pid_file.name + ".tmp")
    tmp.write_text(f"{pid}\n", encoding="ascii")
    os.replace(tmp, pid_file)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _windows_alive(pid: int) -> bool:
    import ctypes
    from ctypes import wintypes

    process_query_limited_information, still_active, error_access_denied = 0x1000, 259, 5
    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(process_query_limited_information, False, pid)
    if not handle:
        return kernel32.GetLastError() == error_access_denied
    try:
        code = wintypes.DWORD()
        return bool(kernel32.GetExitCodeProcess(handle, ctypes.byref(code))) and code.value == still_active
    finally:
        kernel32.CloseHandle(handle)


def pid_alive(pid: int) -> bool:
    """True if process ``pid`` is running (zombies count as gone)."""
    if pid <= 0:
        return False
    if os.name == "nt":
        # Not os.kill(pid, 0): on Windows that terminates the process.
        return _windows_alive(pid)
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)  # reaps it if it is our own exited child
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def _is_service(pid: int, name: str) -> bool:
    """False when the process is known to be something else (a recycled pid)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc (Windows, macOS): trust the pid file
    return b"datacentre" in argv and _COMMANDS[name].encode() in argv


def _running_pid(files: ServiceFiles) -> tuple[int | None, bool]:
    """``(pid from the pid file, whether that process is this running service)``."""
    pid = read_pid(files.pid_file)
    if pid is None:
        return None, False
    return pid, pid_alive(pid) and _is_service(pid, files.name)


def _tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def _service_url(settings: Settings) -> str:
    """Where the broadcaster service listens: the host and port ``start`` gives it."""
    return make_ws_url(settings.ws_host, settings.ws_port)


def _spawn(cmd: list[str], files: ServiceFiles, settings: Settings) -> subprocess.Popen:
    env = os.environ.copy()
    # The child must import this very package, wherever it is started from.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PACKAGE_ROOT), env.get("PYTHONPATH")) if p)
    if settings.ws_token:
        env[TOKEN_ENV] = settings.ws_token  # not on the command line: ps shows that
    options: dict[str, Any] = {"stdin": subprocess.DEVNULL, "stderr": subprocess.STDOUT,
                               "env": env, "close_fds": True}
    if os.name == "nt":
        options["creationflags"] = subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP
    else:
        options["start_new_session"] = True  # survives the terminal that ran `start`
    with open(files.out_file, "w", encoding="utf-8") as out:
        return subprocess.Popen(cmd, stdout=out, **options)


def _watch_start(proc: subprocess.Popen, name: str, settings: Settings, wait: float) -> str | None:
    """Wait until the new process looks healthy; return why it is not, or None."""
    started = time.monotonic()
    deadline = started + wait
    while True:
        code = proc.poll()
        if code is not None:
            return f"exited with code {code} at start-up"
        elapsed = time.monotonic() - started
        if name == "broadcaster":
            try:
                health = fetch_health(_service_url(settings), timeout=0.5)
            except (OSError, ValueError):
                health = None
            # Only its own answer counts: another broadcaster may hold the port, and then
            # this one is about to exit with "port in use".
            if isinstance(health, dict) and health.get("pid") == proc.pid:
                return None
            if time.monotonic() >= deadline:
                return None if wait <= 0 else (f"running, but {health_url(_service_url(settings))} did not "
                                               f"answer within {wait:g} s")
        elif elapsed >= min(START_GRACE, wait):
            return None
        time.sleep(0.1)


# ---------------------------------------------------------------- commands

def start_services(settings: Settings, *, python: str = sys.executable,
                   wait: float = START_WAIT) -> list[dict[str, Any]]:
    """Start the collector and the broadcaster as detached processes.

    A service that is already running is left alone; stale pid files are removed.
    Each result has ``name``, ``pid``, ``state`` (``started``, ``already running`` or
    ``failed``), ``result`` (a one-line summary), ``detail``, ``log``, ``pid_file``,
    ``command``. A service counts as started once it has lived ``START_GRACE`` s
    (the broadcaster: once its ``/health`` answers, within ``wait`` s).
    """
    data_dir = Path(settings.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    # Create the schema once here, so the two new processes never race to create it.
    TickStore(_absolute_db_url(settings.db_url)).close()
    results = []
    for name in SERVICES:
        files = service_files(settings, name)
        cmd = service_command(settings, name, python=python)
        result: dict[str, Any] = {"name": name, "log": str(files.log_file), "pid_file": str(files.pid_file),
                                  "command": cmd, "detail": ""}
        pid, running = _running_pid(files)
        if running:
            result.update(pid=pid, state="already running", result=f"already running (pid {pid})")
            results.append(result)
            continue
        if pid is not None:
            log.info("removing stale pid file %s (pid %s is not running)", files.pid_file, pid)
            _remove(files.pid_file)
        proc = _spawn(cmd, files, settings)
        _write_pid(files.pid_file, proc.pid)
        problem = _watch_start(proc, name, settings, wait)
        result["pid"] = proc.pid
        if problem is None:
            result.update(state="started", result="started")
            log.info("started %s (pid %d), log %s", name, proc.pid, files.log_file)
        elif proc.poll() is not None:
            _remove(files.pid_file)
            detail = _tail(files.out_file) or _tail(files.log_file)
            result.update(state="failed", result=f"failed: {problem}; see {files.out_file}", detail=detail)
            log.error("%s %s:\n%s", name, problem, detail)
        else:
            result.update(state="started", result=f"started ({problem})", detail=problem)
            log.warning("%s %s", name, problem)
        results.append(result)
    return results


def _signal(pid: int, force: bool) -> None:
    if os.name == "nt":
        os.kill(pid, signal.SIGTERM)  # TerminateProcess: Windows has no gentler signal for this
    else:
        os.kill(pid, signal.SIGKILL if force else signal.SIGTERM)


def stop_services(settings: Settings, timeout: float = 10) -> list[dict[str, Any]]:
    """Stop both services: SIGTERM, then SIGKILL for any still running after ``timeout`` s.

    Pid files are removed. Each result has ``name``, ``pid`` and ``result``
    (``stopped``, ``killed``, ``not running`` or ``could not be stopped``).
    """
    results, waiting = [], []
    for name in SERVICES:
        files = service_files(settings, name)
        pid, running = _running_pid(files)
        result: dict[str, Any] = {"name": name, "pid": pid, "log": str(files.log_file)}
        if not running:
            result["result"] = "not running" + (" (stale pid file removed)" if pid is not None else "")
            _remove(files.pid_file)
        else:
            try:
                _signal(pid, force=False)
                waiting.append((result, files, pid))
            except ProcessLookupError:
                result["result"] = "not running"
                _remove(files.pid_file)
        results.append(result)
    deadline = time.monotonic() + timeout
    while any(pid_alive(pid) for _, _, pid in waiting) and time.monotonic() < deadline:
        time.sleep(0.1)
    for result, files, pid in waiting:
        if not pid_alive(pid):
            result["result"] = "stopped"
        else:
            log.warning("%s (pid %d) ignored SIGTERM for %g s; killing it", result["name"], pid, timeout)
            with contextlib.suppress(ProcessLookupError):
                _signal(pid, force=True)
            end = time.monotonic() + 5
            while pid_alive(pid) and time.monotonic() < end:
                time.sleep(0.05)
            result["result"] = "killed" if not pid_alive(pid) else "could not be stopped"
        if result["result"] != "could not be stopped":
            _remove(files.pid_file)
    return results


def _store_figures(settings: Settings) -> dict[str, Any]:
    try:
        store = open_existing_store(_absolute_db_url(settings.db_url))
    except DataCentreError as exc:
        return {"store_error": str(exc)}
    if store is None:
        return {"store_error": f"no tick store at {settings.db_url} yet"}
    try:
        last = store.last_ts()
        now = now_utc()
        recent = store.count(start_ts=format_ts(now - RATE_WINDOW), end_ts=format_ts(now))
        figures: dict[str, Any] = {"last_tick_ts": last, "last_id": store.max_id(),
                                   "ticks_per_s": round(recent / RATE_WINDOW.total_seconds(), 2)}
        figures["last_tick_age_s"] = round((now - parse_ts(last)).total_seconds(), 1) if last else None
        return figures
    except StoreError as exc:
        return {"store_error": str(exc)}
    finally:
        store.close()


def service_status(settings: Settings) -> list[dict[str, Any]]:
    """State of both services, from pid files, the broadcaster's ``/health`` and the store.

    Each row has ``name``, ``pid``, ``alive``, ``state`` (``running``, ``stopped`` or
    ``stale pid file``), ``log``, ``pid_file``. The broadcaster adds ``url``,
    ``port``, ``subscribers``, ``ticks_sent``, ``past_rows`` (rows stored with older
    timestamps, never broadcast), ``source`` and ``simulated`` (the market simulator is
    the source), ``uptime_s`` (None when ``/health``
    does not answer, with ``health_error``); the collector adds ``last_tick_ts``,
    ``last_tick_age_s``, ``ticks_per_s`` (over the last minute) and ``last_id`` (rows ever
    written), or ``store_error``, and ``collector_state`` (its state file: ``state``
    ``collecting`` or ``idle``, with ``reason``, ``next_open`` and ``detail`` when idle).
    """
    rows = []
    for name in SERVICES:
        files = service_files(settings, name)
        pid, running = _running_pid(files)
        state = "running" if running else ("stale pid file" if pid is not None else "stopped")
        row: dict[str, Any] = {"name": name, "pid": pid, "alive": running, "state": state,
                               "log": str(files.log_file), "pid_file": str(files.pid_file)}
        if name == "broadcaster":
            row.update(url=settings.ws_url, port=settings.ws_port, subscribers=None, ticks_sent=None,
                       past_rows=None, uptime_s=None)
            try:
                health = fetch_health(_service_url(settings), timeout=HEALTH_TIMEOUT)
                row.update(subscribers=health.get("subscribers"), ticks_sent=health.get("ticks_sent"),
                           past_rows=health.get("past_rows"), uptime_s=health.get("uptime_s"),
                           health_status=health.get("status"), source=health.get("source"),
                           simulated=health.get("simulated"))
            except (OSError, ValueError) as exc:
                row["health_error"] = f"{health_url(_service_url(settings))} did not answer: {exc}"
        else:
            row.update(_store_figures(settings))
            state = _collector_state(files, pid if running else None)
            if state:
                row["collector_state"] = state
        rows.append(row)
    return rows


def _collector_state(files: ServiceFiles, pid: int | None) -> dict[str, Any] | None:
    """What the running collector last said it is doing (None if it is not running)."""
    if pid is None or files.state_file is None:
        return None
    try:
        state = json.loads(files.state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and state.get("pid") == pid else None


def format_status(rows: list[dict[str, Any]]) -> str:
    """``status`` rows as a short human-readable report."""
    lines = []
    for row in rows:
        pid = row.get("pid") or "-"
        head = f"{row['name']:<12} {row['state'].upper():<15} pid {pid!s:<8}"
        if row["name"] == "broadcaster":
            if row.get("subscribers") is not None:
                extra = (f"{row['url']}  subscribers {row['subscribers']}  ticks sent "
                         f"{row.get('ticks_sent', 0):,}  up {row.get('uptime_s') or 0:,.0f} s")
                if row.get("past_rows"):
                    extra += f"  past rows {row['past_rows']:,} (stored, not broadcast)"
                if row.get("simulated"):
                    extra += "  SIMULATED market (source sim)"
            else:
                extra = row.get("health_error", "")
        elif (row.get("collector_state") or {}).get("state") == "idle":
            state = row["collector_state"]
            extra = (f"idle: market {state.get('detail') or state.get('reason')}; "
                     f"last tick {row.get('last_tick_ts') or '-'}")
        elif row.get("store_error"):
            extra = row["store_error"]
        else:
            age = row.get("last_tick_age_s")
            extra = (f"last tick {row.get('last_tick_ts') or '-'}"
                     + (f" ({age:,.0f} s ago)" if age is not None else "")
                     + f"  {row.get('ticks_per_s', 0):g} ticks/s  last id {row.get('last_id', 0):,}")
        lines.append(f"{head} {extra}".rstrip())
        lines.append(f"{'':<12} log {row['log']}")
    return "\n".join(lines)
