"""Vectorised implied volatility against a scalar loop over vollib's LetsBeRational.

    python bench/bench_pricing.py [--n 20000] [--vollib-n 2000] [--seed 1]

Builds ``--n`` NIFTY options the way a chain looks: spot 26,000, strikes every 50 points
within ±2,000, expiries 1 to 60 days, CE and PE, a skewed smile between 8 % and 40 %, and
exact Black-Scholes prices (no tick rounding, so the true sigma is known). Times
:func:`datacentre.core.pricing.implied_vol` on the whole array (flag strings included, best of
``--repeats``) and ``vollib.black_scholes.implied_volatility.implied_volatility`` in a Python
loop over a random ``--vollib-n`` subsample, in the same run. The loop is timed in chunks of
200 options (best of three per chunk, summed): like the single vectorised call, each chunk
takes a few milliseconds, so on a busy machine neither side is charged for other processes.

Prints ONE JSON object:

* ``us_per_option`` / ``vollib_us_per_option`` and ``speedup`` (their ratio);
* ``max_abs_err_vs_true``: the largest ``|iv - sigma|`` over options whose vega is not
  negligible (dPrice/dsigma >= 1e-5 S, where the price's last bit moves sigma by < 1e-10), and
  ``max_abs_err_vs_true_all`` over every option with a result (deep in-the-money options with
  vega ~1e-10 can only be recovered to ~1e-4 by any method);
* ``max_abs_err_vs_vollib`` over the subsample where both give a number and vega is not
  negligible, ``max_abs_err_vs_vollib_all`` without the vega condition, and for scale
  ``vollib_max_abs_err_vs_true_all``, vollib's own largest error on the subsample;
* ``nan_fraction`` / ``vollib_nan_fraction``: options without a result (price at or below
  intrinsic once rounded to a double; vollib raises there and counts as NaN).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vollib.black_scholes.implied_volatility import implied_volatility as vollib_iv  # noqa: E402

from datacentre.core.pricing import bs_price, greeks, implied_vol  # noqa: E402

SPOT = 26_000.0
RATE = 0.065
STRIKE_STEP = 50.0
VEGA_FLOOR = 1e-5  # dPrice/dsigma >= VEGA_FLOOR * S counts as "vega not negligible"
VOLLIB_CHUNK = 200


def nifty_chain(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``n`` options on a 50-point strike grid with a skewed, expiry-dependent smile."""
    strike = SPOT + STRIKE_STEP * rng.integers(-40, 41, n)
    T = rng.uniform(1.0, 60.0, n) / 365.0
    flag = rng.choice(np.array(["CE", "PE"]), n)
    atm = 0.11 + 0.04 * np.exp(-T * 365.0 / 7.0)  # the nearest expiries are richer
    # strike distance in standard deviations; puts (low strikes) richer than calls
    k = np.log(strike / (SPOT * np.exp(RATE * T))) / (atm * np.sqrt(T))
    sigma = np.clip(atm * (1.0 - 0.08 * k + 0.015 * k * k), 0.08, 0.40)
    price = bs_price(flag, SPOT, strike, T, RATE, sigma)
    return {"flag": flag, "K": strike, "T": T, "sigma": sigma, "price": price}


def best_time(func, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


def vollib_loop(chain: dict[str, np.ndarray], sample: np.ndarray) -> np.ndarray:
    out = np.full(sample.size, np.nan)
    for j, i in enumerate(sample):
        flag = "c" if chain["flag"][i] == "CE" else "p"
        try:
            price, strike, years = (float(chain[key][i]) for key in ("price", "K", "T"))
            out[j] = vollib_iv(price, SPOT, strike, years, RATE, flag)
        except Exception:  # vollib signals below-intrinsic / above-maximum prices by raising
            out[j] = np.nan
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="options in the vectorised call")
    parser.add_argument("--vollib-n", type=int, default=2_000, help="options in the vollib loop")
    parser.add_argument("--repeats", type=int, default=20, help="vectorised timings (best is kept)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    chain = nifty_chain(args.n, rng)
    sample = rng.choice(args.n, size=min(args.vollib_n, args.n), replace=False)
    flag, K, T, sigma, price = (chain[k] for k in ("flag", "K", "T", "sigma", "price"))

    iv = implied_vol(price, flag, SPOT, K, T, RATE)  # warm-up, and the result checked below
    ours = best_time(lambda: implied_vol(price, flag, SPOT, K, T, RATE), args.repeats)
    reference = vollib_loop(chain, sample)
    # Chunks short enough (~5 ms) to dodge a busy machine's preemptions as the vectorised call does.
    chunks = np.array_split(sample, max(1, sample.size // VOLLIB_CHUNK))
    theirs = sum(best_time(lambda part=part: vollib_loop(chain, part), 3) for part in chunks)

    vega = np.asarray(greeks(flag, SPOT, K, T, RATE, sigma)["vega"]) * 100.0
    conditioned = (vega >= VEGA_FLOOR * SPOT) & np.isfinite(iv)
    error = np.abs(iv - sigma)
    both = np.isfinite(reference) & np.isfinite(iv[sample])
    versus_vollib = np.abs(iv[sample] - reference)
    ours_us = ours / args.n * 1e6
    theirs_us = theirs / sample.size * 1e6
    print(json.dumps({
        "n": args.n,
        "vollib_n": int(sample.size),
        "us_per_option": round(ours_us, 4),
        "vollib_us_per_option": round(theirs_us, 3),
        "speedup": round(theirs_us / ours_us, 1),
        "max_abs_err_vs_true": float(error[conditioned].max()),
        "conditioned_fraction": round(float(conditioned.mean()), 4),
        "max_abs_err_vs_true_all": float(np.nanmax(error)),
        "max_abs_err_vs_vollib": float(versus_vollib[both & conditioned[sample]].max()),
        "max_abs_err_vs_vollib_all": float(versus_vollib[both].max()),
        "vollib_max_abs_err_vs_true_all": float(np.abs(reference - sigma[sample])[both].max()),
        "nan_fraction": round(float(np.isnan(iv).mean()), 5),
        "vollib_nan_fraction": round(float(np.isnan(reference).mean()), 5),
    }))


if __name__ == "__main__":
    main()
