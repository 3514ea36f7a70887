"""Run this Python process at another wall-clock instant, subprocesses included.

With this folder on ``PYTHONPATH`` and ``DATACENTRE_TEST_CLOCK`` set to an ISO 8601
instant, every Python process started from then on reads a wall clock that began at
that instant and runs at the real rate (``time.time``, ``datetime.now`` and friends,
through time-machine); monotonic clocks stay real, so timeouts and sleeps behave.

The first process turns the instant into a fixed offset from the real clock and
leaves it in ``DATACENTRE_TEST_CLOCK_OFFSET``, so its subprocesses share one shifted
timeline instead of each starting over at the instant. ``run_at.py`` sets both up.
"""
from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime

_INSTANT = "DATACENTRE_TEST_CLOCK"
_OFFSET = "DATACENTRE_TEST_CLOCK_OFFSET"


def _offset(instant: str) -> float:
    moment = datetime.fromisoformat(instant.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp() - time.time()


def _shift() -> None:
    instant = os.environ.get(_INSTANT)
    if not instant:
        return
    offset = os.environ.get(_OFFSET)
    offset = float(offset) if offset else _offset(instant)
    os.environ[_OFFSET] = repr(offset)

    # time-machine imports pytest for its plugin when it can; that would add pytest's
    # import time to the start-up of every shifted process (the CLI, the services).
    blocked = "pytest" not in sys.modules
    if blocked:
        sys.modules["pytest"] = None  # type: ignore[assignment]
    try:
        import time_machine
    finally:
        if blocked:
            del sys.modules["pytest"]

    time_machine.travel(time.time() + offset, tick=True).start()


_shift()
