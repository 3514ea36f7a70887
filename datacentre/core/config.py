"""Settings, read from environment variables, with defaults as named constants.

| variable                   | default                          |
|----------------------------|----------------------------------|
| DATACENTRE_DB_URL          | sqlite:///data/nifty_local.db    |
| DATACENTRE_WS_HOST         | 127.0.0.1                        |
| DATACENTRE_WS_PORT         | 8765                             |
| DATACENTRE_WS_URL          | ws://{host}:{port}               |
| DATACENTRE_WS_TOKEN        | (none; required off loopback)    |
| DATACENTRE_INTERVAL        | 5 (seconds between snapshots)    |
| DATACENTRE_ATM_WINDOW      | 10 (strikes each side of ATM)    |
| DATACENTRE_RISK_FREE_RATE  | 0.065 (annual, continuous)       |
| DATACENTRE_SEED            | (none: a fresh market each run)  |
| DATACENTRE_AUTOSTART       | 1 (the app starts an embedded data centre) |
| DATACENTRE_DATA_DIR        | data                             |
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from datacentre.core.errors import ConfigError

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


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None


def _env_int(name: str, default: int | None) -> int | None:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None


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
    autostart: bool = True
    data_dir: Path = Path(DEFAULT_DATA_DIR)

    def __post_init__(self) -> None:
        if not self.ws_url:
            host = self.ws_host
            if ":" in host and not host.startswith("["):  # an IPv6 address
                host = f"[{host}]"
            object.__setattr__(self, "ws_url", f"ws://{host}:{self.ws_port}")
        check_interval(self.interval)
        if not 0 < self.ws_port < 65536:
            raise ConfigError(f"port must be between 1 and 65535, got {self.ws_port}")
        if self.atm_window < 1:
            raise ConfigError(f"ATM window must be at least 1 strike, got {self.atm_window}")
        if self.seed is not None and self.seed < 0:
            raise ConfigError(f"seed must be 0 or more, got {self.seed}")
        if not math.isfinite(self.risk_free_rate):
            raise ConfigError(f"risk-free rate must be a finite number, got {self.risk_free_rate}")

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        host = os.environ.get("DATACENTRE_WS_HOST") or DEFAULT_WS_HOST
        port = _env_int("DATACENTRE_WS_PORT", DEFAULT_WS_PORT)
        values = {
            "db_url": os.environ.get("DATACENTRE_DB_URL") or DEFAULT_DB_URL,
            "ws_host": host,
            "ws_port": port,
            "ws_url": os.environ.get("DATACENTRE_WS_URL") or "",
            "ws_token": os.environ.get("DATACENTRE_WS_TOKEN") or None,
            "interval": _env_float("DATACENTRE_INTERVAL", DEFAULT_INTERVAL),
            "atm_window": _env_int("DATACENTRE_ATM_WINDOW", DEFAULT_ATM_WINDOW),
            "risk_free_rate": _env_float("DATACENTRE_RISK_FREE_RATE", DEFAULT_RISK_FREE_RATE),
            "seed": _env_int("DATACENTRE_SEED", None),
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
