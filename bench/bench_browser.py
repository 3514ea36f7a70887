"""The app as a user sees it, in headless Chromium: page load times and the replay's cadence.

    python bench/bench_browser.py URL [--pages / /option_chain ...] [--play-s 20]

``URL`` is a running app (``streamlit run app.py``). For each page and underlying it
times a first visit: from navigation until the script has run once with no skeleton
left (the readiness Streamlit's own end-to-end tests wait for). Then on ``/replay`` it
presses Play at 10x and at 60x and watches the "As of" card for ``--play-s`` seconds:
each change is one visible step, so the real seconds between changes are the step
time and the change of the card's IST time is the market time a step moved.
Prints ONE JSON object; times in milliseconds unless named ``_s``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import datetime

CHROMIUM = "/usr/bin/chromium"
PAGES = ["/", "/option_chain", "/iv_smile", "/oi_buildup", "/replay", "/export", "/status"]
TIMEOUT_MS = 120_000
READY = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def ready(page) -> None:
    page.wait_for_selector('[data-testid="stApp"]', timeout=TIMEOUT_MS)
    page.locator('[data-testid="stMain"] [data-testid="stElementContainer"]:visible').first.wait_for(
        timeout=TIMEOUT_MS)
    page.wait_for_selector(READY, timeout=TIMEOUT_MS)
    page.wait_for_selector('[data-testid="stSkeleton"]', state="detached", timeout=TIMEOUT_MS)


def load_ms(browser, url: str) -> float:
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    try:
        start = time.perf_counter()
        page.goto(url, wait_until="domcontentloaded", timeout=TIMEOUT_MS)
        ready(page)
        return round((time.perf_counter() - start) * 1000, 1)
    finally:
        context.close()


def as_of(page) -> str | None:
    card = page.locator('[data-testid="stMetric"]', has_text="As of")
    if not card.count():
        return None
    return card.first.locator('[data-testid="stMetricValue"]').inner_text()


def cadence(browser, url: str, speed: int, seconds: float) -> dict:
    """Play at ``speed`` and time the visible steps."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    try:
        page.goto(url + "/replay", wait_until="domcontentloaded", timeout=TIMEOUT_MS)
        ready(page)
        page.get_by_role("radiogroup", name="Speed").get_by_role("radio", name=f"{speed}×").click()
        page.wait_for_selector(READY, timeout=TIMEOUT_MS)
        page.get_by_role("button", name="Play").click()
        seen: list[tuple[float, str]] = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            value = as_of(page)
            if value and (not seen or seen[-1][1] != value):
                seen.append((time.perf_counter(), value))
            page.wait_for_timeout(20)
    finally:
        context.close()
    steps = seen[2:]  # the first changes include the page's own start-up
    real = [b[0] - a[0] for a, b in zip(steps, steps[1:])]
    market = [(datetime.strptime(b[1], "%H:%M:%S") - datetime.strptime(a[1], "%H:%M:%S")).total_seconds()
              for a, b in zip(steps, steps[1:])]
    if not real:
        return {"steps": 0}
    return {"steps": len(real), "step_ms_median": round(statistics.median(real) * 1000),
            "step_ms_p90": round(sorted(real)[int(0.9 * (len(real) - 1))] * 1000),
            "market_s_per_step": sorted(set(market)),
            "market_s_per_real_s": round(sum(market) / sum(real), 1)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url")
    ap.add_argument("--pages", nargs="*", default=PAGES)
    ap.add_argument("--play-s", type=float, default=20.0)
    a = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    out: dict = {"load_ms": {}}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        try:
            load_ms(browser, a.url + "/")  # the server's first run imports everything: not timed
            for base in ("NIFTY", "BANKNIFTY"):
                for path in a.pages:
                    out["load_ms"][f"{path} {base}"] = load_ms(browser, f"{a.url}{path}?underlying={base}")
            out["replay"] = {f"{speed}x": cadence(browser, a.url, speed, a.play_s) for speed in (10, 60)}
        finally:
            browser.close()
    out["load_ms_max"] = max(out["load_ms"].values())
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
