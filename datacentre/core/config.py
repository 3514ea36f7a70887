"""Settings, read from environment variables, with defaults as named constants.

| variable                   | default                          |
|----------------------------|----------------------------------|
| DATACENTRE_DB_URL          | sqlite:///data/nifty_local.db    |
| DATABASE_URL               | (the original data centre's; used when DATACENTRE_DB_URL is unset) |
| DATACENTRE_WS_HOST         | 127.0.0.1                        |
| DATACENTRE_WS_PORT         | 8765                             |
| DATACENTRE_WS_URL          | ws://{host}:{port}               |
| DATACENTRE_WS_TOKEN        | (none; required off loopback)    |
| DATACENTRE_INTERVAL        | 5 (seconds between snapshots)    |
| DATACENTRE_ATM_WINDOW      | 10 (strikes each side of ATM)    |
| DATACENTRE_WATCHLIST       | default (core.watchlist; or ``original``, ``NIFTY:weekly=5``...) |
| DATACENTRE_RISK_FREE_RATE  | 0.065 (annual, continuous)       |
| DATACENTRE_SEED            | (none: a fresh market each run)  |
| DATACENTRE_AUTOSTART       | 1 (the app starts an embedded data centre) |
| DATACENTRE_DATA_DIR        | data                             |
"""
from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from datacentre.core.errors import ConfigError
from datacentre.core.watchlist import WatchList, parse_watchlist

log = logging.getLogger(__name__)

DEFAULT_DATA_DIR = "data"
DEFAULT_DB_URL = "sqlite:///data/nifty_local.db"
DEFAULT_WS_HOST = "127.0.0.1"
DEFAULT_WS_PORT = 8765
DEFAULT_INTERVAL = 5.0
MIN_INTERVAL = 0.1
DEFAULT_ATM_WINDOW = 10
# Roughly the 91-day T-bill yield; used for forwards, prices and implied vols alike.
DEFAULT_RISK_FREE_RATE = 0.065

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
# The newest tick is stale after this many collector intervals, never sooner than
# STALE_MIN_S: a fast collector's short pause is not a dead feed.
STALE_INTERVALS = 3
STALE_MIN_S = 15.0
#: The broadcaster's auth token; required when it binds to anything but loopback.
TOKEN_ENV = "DATACENTRE_WS_TOKEN"
#: The original data centre's store variable, read when DATACENTRE_DB_URL is unset.
ORIGINAL_DB_ENV = "DATABASE_URL"

#: Where a client reaches a server bound to every interface. asyncio makes an IPv6
#: wildcard listener IPv6-only, so ``::`` is reached through ``::1``, not 127.0.0.1.
_LOOPBACK_FOR_WILDCARD = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}


def _env_number(name: str, default, parse: Callable[[str], float | int], what: str):
    """The environment variable ``name`` read with ``parse`` (``default`` when unset or empty)."""
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return parse(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not {what}") from None


def _env_float(name: str, default: float) -> float:
    return _env_number(name, default, float, "a number")


def _env_int(name: str, default: int | None) -> int | None:
    return _env_number(name, default, int, "a whole number")


def check_interval(seconds: float) -> float:
    if not seconds >= MIN_INTERVAL:
        raise ConfigError(f"interval must be at least {MIN_INTERVAL} s, got {seconds}")
    if not math.isfinite(seconds):
        raise ConfigError(f"interval must be a finite number of seconds, got {seconds}")
    return float(seconds)


@dataclass(frozen=True)
class Settings:
    db_url: str = DEFAULT_DB_URL
    ws_host: str = DEFAULT_WS_HOST
    ws_port: int = DEFAULT_WS_PORT
    ws_url: str = ""
    ws_token: str | None = field(default=None, repr=False)
    interval: float = DEFAULT_INTERVAL
    atm_window: int = DEFAULT_ATM_WINDOW
    risk_free_rate: float = DEFAULT_RISK_FREE_RATE
    seed: int | None = None
    watchlist: str = ""  # "" is the default preset; see datacentre.core.watchlist
    autostart: bool = True
    data_dir: Path = Path(DEFAULT_DATA_DIR)

    def __post_init__(self) -> None:
        if not self.ws_url:
            object.__setattr__(self, "ws_url", make_ws_url(self.ws_host, self.ws_port))
        check_interval(self.interval)
        if not 0 < self.ws_port < 65536:
            raise ConfigError(f"port must be between 1 and 65535, got {self.ws_port}")
        if self.atm_window < 1:
            raise ConfigError(f"ATM window must be at least 1 strike, got {self.atm_window}")
        if self.seed is not None and self.seed < 0:
            raise ConfigError(f"seed must be 0 or more, got {self.seed}")
        if not math.isfinite(self.risk_free_rate):
            raise ConfigError(f"risk-free rate must be a finite number, got {self.risk_free_rate}")
        self.watch_list  # noqa: B018 (refuses a bad watch list here, not at the first snapshot)

    @property
    def watch_list(self) -> WatchList:
        """The :class:`~datacentre.core.watchlist.WatchList` that ``watchlist`` names."""
        return parse_watchlist(self.watchlist, self.atm_window)

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        host = os.environ.get("DATACENTRE_WS_HOST") or DEFAULT_WS_HOST
        port = _env_int("DATACENTRE_WS_PORT", DEFAULT_WS_PORT)
        values = {
            "db_url": env_db_url() or DEFAULT_DB_URL,
            "ws_host": host,
            "ws_port": port,
            "ws_url": os.environ.get("DATACENTRE_WS_URL") or "",
            "ws_token": default_token(),
            "interval": _env_float("DATACENTRE_INTERVAL", DEFAULT_INTERVAL),
            "atm_window": _env_int("DATACENTRE_ATM_WINDOW", DEFAULT_ATM_WINDOW),
            "risk_free_rate": _env_float("DATACENTRE_RISK_FREE_RATE", DEFAULT_RISK_FREE_RATE),
            "seed": _env_int("DATACENTRE_SEED", None),
            "watchlist": os.environ.get("DATACENTRE_WATCHLIST") or "",
            "autostart": os.environ.get("DATACENTRE_AUTOSTART", "1").strip().lower()
            not in ("0", "false", "no", "off"),
            "data_dir": Path(os.environ.get("DATACENTRE_DATA_DIR") or DEFAULT_DATA_DIR),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        if ("ws_host" in overrides or "ws_port" in overrides) and "ws_url" not in overrides:
            values["ws_url"] = ""
        return cls(**values)

    def with_(self, **changes) -> Settings:
        return replace(self, **changes)


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS or host.startswith("127.")


# ---------------------------------------------------------------- URLs

def url_host(host: str) -> str:
    """``host`` as written in a URL: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def connectable_host(host: str) -> str:
    """Where a client reaches a server bound to ``host``: a wildcard address becomes loopback."""
    return _LOOPBACK_FOR_WILDCARD.get(host.strip("[]"), host)


def make_ws_url(host: str, port: int) -> str:
    """The ``ws://`` URL of a server bound to ``host``:``port``."""
    return f"ws://{url_host(host)}:{port}"


def connectable_url(url: str) -> str:
    """``url`` with a wildcard bind address (``0.0.0.0``, ``::``) replaced by loopback.

    A broadcaster bound to every interface is reached through 127.0.0.1 (``::1``
    for ``::``).
    """
    parts = urlsplit(url)
    if parts.hostname is None:
        return url
    host = connectable_host(parts.hostname)
    if host == parts.hostname:
        return url
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (f"{userinfo}@" if userinfo else "") + url_host(host)
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


# ---------------------------------------------------------------- what clients connect to

def load_settings() -> Settings | None:
    """The settings from the environment, or None (with a warning) when they are invalid."""
    try:
        return Settings.from_env()
    except ConfigError as exc:
        log.warning("ignoring invalid data centre settings: %s", exc)
        return None


def default_ws_url() -> str:
    """The configured broadcaster URL (``DATACENTRE_WS_URL``, else from host and port)."""
    settings = load_settings()
    return connectable_url(settings.ws_url if settings else make_ws_url(DEFAULT_WS_HOST, DEFAULT_WS_PORT))


def env_db_url() -> str | None:
    """``DATACENTRE_DB_URL``, else the original data centre's ``DATABASE_URL`` (its
    ``postgres://`` spelling accepted), else None."""
    ours = os.environ.get("DATACENTRE_DB_URL")
    if ours:
        return ours
    theirs = (os.environ.get(ORIGINAL_DB_ENV) or "").strip()
    if theirs.startswith("postgres://"):
        theirs = "postgresql://" + theirs.removeprefix("postgres://")
    return theirs or None


def default_db_url() -> str:
    """The configured store URL (``DATACENTRE_DB_URL``, else ``DATABASE_URL``, else
    ``data/nifty_local.db``)."""
    settings = load_settings()
    return settings.db_url if settings else DEFAULT_DB_URL


def default_token() -> str | None:
    """The broadcaster's auth token from ``DATACENTRE_WS_TOKEN`` (None when unset or empty)."""
    return os.environ.get(TOKEN_ENV) or None


def stale_after(interval: float) -> float:
    """Seconds after which the newest tick of a feed collected every ``interval``
    seconds is stale (the app's warnings and ``verify``'s freshness check)."""
    return max(STALE_INTERVALS * interval, STALE_MIN_S)
