"""Run a command with every Python process's wall clock shifted to a chosen instant.

    python tests/clock/run_at.py 2026-12-29T11:00:00Z python -m pytest -q tests/test_app.py
    python tests/clock/run_at.py expiry-after-close python -m pytest -q tests/test_app.py

The instant is ISO 8601 (UTC unless it carries an offset) or one of the names in
:data:`INSTANTS`. The clock starts there and runs on at the real rate; monotonic
clocks are untouched. See ``sitecustomize.py`` in this folder for how.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# The hours at which "which day is it" goes wrong when a zone is mixed up.
INSTANTS = {
    "after-ist-midnight": "2026-12-01T19:30:00+00:00",  # Tuesday 19:30 UTC = Wednesday 01:00 IST
    "expiry-after-close": "2026-12-29T11:00:00+00:00",  # monthly expiry Tuesday, 16:30 IST
    "saturday": "2026-12-05T06:30:00+00:00",  # Saturday 12:00 IST, no session
    "monday-before-open": "2026-12-07T03:00:00+00:00",  # Monday 08:30 IST, before 09:15
}


def environment(instant: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with the clock shifted to ``instant``."""
    env = dict(os.environ if base is None else base)
    env["DATACENTRE_TEST_CLOCK"] = INSTANTS.get(instant, instant)
    env.pop("DATACENTRE_TEST_CLOCK_OFFSET", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH")) if p)
    return env


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        names = ", ".join(INSTANTS)
        print(f"usage: run_at.py INSTANT COMMAND [ARG...]  (INSTANT: ISO 8601 or one of {names})",
              file=sys.stderr)
        return 2
    instant, command = argv[0], argv[1:]
    os.execvpe(command[0], command, environment(instant))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
