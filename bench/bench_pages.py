"""Every page of the app through Streamlit's AppTest on the month store. Prints one JSON object.

    python bench/bench_pages.py [--sessions 22] [--rounds 2]

The app runs in this process on the cached month store (``bigstore.py``) with the live
feed off. One untimed pass over every page imports and warms the code; then, ``--rounds``
times, the app's caches are cleared (``st.cache_data`` and ``st.cache_resource``: a
first visit, as a user opening the page after the caches expired) and each page is run
once and timed (the whole script run, as AppTest drives it). A page's figure is its
slowest round; ``max_ms`` is the slowest page.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

from bigstore import StoreSpec, build  # noqa: E402

PAGES = ["overview", "option_chain", "iv_smile", "oi_buildup", "replay", "export", "status"]
TIMEOUT_S = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=StoreSpec().sessions)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args(argv)
    path = build(StoreSpec(sessions=a.sessions), log=lambda line: print(line, file=sys.stderr, flush=True))
    os.environ.update({"DATACENTRE_DB_URL": f"sqlite:///{path}", "DATACENTRE_AUTOSTART": "0",
                       "DATACENTRE_WS_PORT": str(_free_port())})
    os.chdir(ROOT)
    import streamlit as st
    import streamlit.logger
    from streamlit.testing.v1 import AppTest

    streamlit.logger.set_log_level("error")

    def visit_all() -> dict[str, float]:
        times = {}
        t0 = time.perf_counter()
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT_S).run()
        times["app"] = time.perf_counter() - t0
        for page in PAGES:
            t0 = time.perf_counter()
            at.switch_page(f"pages/{page}.py").run()
            times[page] = time.perf_counter() - t0
            if at.exception:
                raise SystemExit(f"{page}: {at.exception[0].value}")
        return times

    visit_all()
    worst: dict[str, float] = {}
    for _ in range(a.rounds):
        st.cache_data.clear()
        st.cache_resource.clear()
        for page, seconds in visit_all().items():
            worst[page] = max(worst.get(page, 0.0), seconds)
    ms = {page: round(1000 * s, 1) for page, s in worst.items()}
    slowest = max((p for p in ms if p != "app"), key=ms.get)
    return {"store": str(path), "pages_ms": ms, "max_ms": ms[slowest], "slowest": slowest,
            "rounds": a.rounds}


if __name__ == "__main__":
    print(json.dumps(main()))
