"""Settings from the environment, with clear errors."""
from __future__ import annotations

import pytest

from datacentre.core.config import DEFAULT_DB_URL, STALE_MIN_S, Settings, is_loopback, stale_after
from datacentre.core.errors import ConfigError


def test_defaults(monkeypatch):
    for name in ("DATACENTRE_DB_URL", "DATACENTRE_WS_HOST", "DATACENTRE_WS_PORT", "DATACENTRE_WS_URL",
                 "DATACENTRE_INTERVAL", "DATACENTRE_AUTOSTART", "DATACENTRE_SEED"):
        monkeypatch.delenv(name, raising=False)
    s = Settings.from_env()
    assert (s.db_url, s.ws_url, s.interval, s.autostart, s.seed) == (
        DEFAULT_DB_URL, "ws://127.0.0.1:8765", 5.0, True, None)


def test_environment_and_overrides(monkeypatch):
    monkeypatch.setenv("DATACENTRE_WS_PORT", "9000")
    monkeypatch.setenv("DATACENTRE_AUTOSTART", "0")
    monkeypatch.setenv("DATACENTRE_INTERVAL", "0.5")
    s = Settings.from_env()
    assert (s.ws_url, s.autostart, s.interval) == ("ws://127.0.0.1:9000", False, 0.5)
    assert Settings.from_env(ws_port=9100).ws_url == "ws://127.0.0.1:9100"
    assert Settings.from_env(ws_host="::1").ws_url == "ws://[::1]:9000"
    monkeypatch.setenv("DATACENTRE_WS_URL", "ws://example.internal:7000")
    assert Settings.from_env().ws_url == "ws://example.internal:7000"


@pytest.mark.parametrize("name, value, message", [
    ("DATACENTRE_WS_PORT", "eighty", "not a whole number"),
    ("DATACENTRE_WS_PORT", "70000", "port must be"),
    ("DATACENTRE_INTERVAL", "fast", "not a number"),
    ("DATACENTRE_INTERVAL", "0.01", "at least 0.1"),
    ("DATACENTRE_ATM_WINDOW", "0", "at least 1 strike"),
])
def test_bad_values_are_named(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        Settings.from_env()


def test_loopback():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")


@pytest.mark.parametrize("interval, limit", [(0.2, STALE_MIN_S), (5.0, 15.0), (10.0, 30.0), (60.0, 180.0)])
def test_stale_after_is_three_intervals_but_never_under_the_minimum(interval, limit):
    assert stale_after(interval) == limit
