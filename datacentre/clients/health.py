"""The broadcaster's ``GET /health`` probe, for ``status``, ``start`` and the app.

The broadcaster answers plain HTTP on its WebSocket port (no token needed), so the
probe is one ``urllib`` request: no WebSocket, no Streamlit.
"""
from __future__ import annotations

import json
import urllib.request
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from datacentre.core.config import connectable_url

#: Seconds a probe waits for the answer.
HEALTH_TIMEOUT_S = 1.0


def health_url(ws_url: str) -> str:
    """The ``/health`` address of the broadcaster at ``ws_url`` (a wildcard bind via loopback)."""
    parts = urlsplit(connectable_url(ws_url))
    scheme = "https" if parts.scheme == "wss" else "http"
    return urlunsplit((scheme, parts.netloc, "/health", "", ""))


def fetch_health(ws_url: str, *, token: str | None = None,
                 timeout: float = HEALTH_TIMEOUT_S) -> dict[str, Any]:
    """The broadcaster's ``/health`` JSON; raises ``OSError`` or ``ValueError`` without one."""
    request = urllib.request.Request(health_url(ws_url))
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        body = json.loads(response.read().decode("utf-8"))
    if not isinstance(body, dict):
        raise ValueError(f"{health_url(ws_url)} answered {type(body).__name__}, not a JSON object")
    return body


def broadcaster_health(ws_url: str, *, token: str | None = None,
                       timeout: float = HEALTH_TIMEOUT_S) -> dict[str, Any] | None:
    """The broadcaster's ``/health`` JSON, or None when nothing answers there."""
    try:
        return fetch_health(ws_url, token=token, timeout=timeout)
    except (OSError, ValueError):
        return None
