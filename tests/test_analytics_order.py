"""Chain figures that pick a strike do not depend on the order of the chain's rows:
hand-made chains with ties, shuffled by hypothesis, and every real NSE option chain
under ``$DATACENTRE_REALDATA``, checked against a brute force on the sorted rows."""
from __future__ import annotations

import ast
import gzip
import json
import os
import random
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datacentre import analytics as A

STRIKES = [100.0, 110.0, 120.0, 130.0, 140.0, 150.0]


def tied_chain() -> pd.DataFrame:
    """Ties everywhere: max pain (nothing is paid at 120, 130 or 140), support (100 and
    120), resistance (140 and 150), the biggest call OI addition (120 and 150)."""
    chain = pd.DataFrame({
        "strike": STRIKES,
        "ce_oi": [0.0, 0.0, 0.0, 0.0, 9.0, 9.0],
        "pe_oi": [7.0, 3.0, 7.0, 0.0, 0.0, 0.0],
        "ce_oi_change": [np.nan, 1.0, 5.0, -2.0, 0.0, 5.0],
        "pe_oi_change": [np.nan] * 6,
        "ce_iv": [20.0, 18.0, 16.0, 15.0, 15.5, 16.0],
        "pe_iv": [21.0, 19.0, 17.0, 16.0, 16.5, 17.0],
        "ce_delta": [0.9, 0.8, 0.5, 0.25, 0.25, 0.1],
        "pe_delta": [-0.1, -0.2, -0.5, -0.75, -0.75, -0.9],
    })
    chain.attrs.update(atm=None, spot=125.0)  # halfway between two strikes
    return chain


def brute_force(chain: pd.DataFrame) -> tuple[float | None, float | None, float | None]:
    """``(max pain, support, resistance)`` by their definitions, row by row, on sorted rows."""
    rows = sorted(zip(chain["strike"], chain["ce_oi"].fillna(0.0), chain["pe_oi"].fillna(0.0)))
    if not sum(c + p for _, c, p in rows) > 0:
        pain = None
    else:
        paid = {k: sum(max(k - s, 0.0) * c + max(s - k, 0.0) * p for s, c, p in rows) for k, _, _ in rows}
        least = min(paid.values())
        pain = min(k for k, v in paid.items() if v == least)

    def peak(i: int) -> float | None:
        top = max(r[i] for r in rows)
        return min(r[0] for r in rows if r[i] == top) if top > 0 else None
    return pain, peak(2), peak(1)


def figures(chain: pd.DataFrame) -> tuple:
    levels = A.support_resistance(chain)
    return A.max_pain(chain), levels.support, levels.resistance


def test_brute_force_on_the_tied_chain():
    assert brute_force(tied_chain()) == (120.0, 100.0, 140.0)


@settings(max_examples=100, deadline=None)
@given(st.permutations(range(len(STRIKES))))
def test_ties_go_to_the_lowest_strike_in_any_row_order(order):
    chain = tied_chain()
    shuffled = chain.iloc[list(order)].reset_index(drop=True)
    shuffled.attrs = dict(chain.attrs)
    assert figures(shuffled) == (120.0, 100.0, 140.0)
    assert A.biggest_oi_addition(shuffled, "ce") == (120.0, 5.0)
    pd.testing.assert_frame_equal(A.pain_curve(shuffled), A.pain_curve(chain))
    pd.testing.assert_frame_equal(A.smile(shuffled), A.smile(chain))
    assert A.atm_iv(shuffled) == A.atm_iv(chain) == 16.5  # 125 is as near 120 as 130: the lower one
    # two strikes quote a 25-delta call (15.0 and 15.5 IV): the same answer in any order
    assert A.skew_metrics(shuffled) == A.skew_metrics(chain)
    shuffled.attrs["atm"] = 120.0
    assert A.around_atm(shuffled, 1)["strike"].tolist() == [110.0, 120.0, 130.0]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=1, max_size=8), st.randoms())
def test_small_oi_chains_agree_with_the_brute_force_in_any_order(oi, rnd):
    """OI of 0, 1 or 2 contracts: ties and zero-payout ranges are the rule, not the exception."""
    chain = pd.DataFrame({"strike": [100.0 + 10 * i for i in range(len(oi))],
                          "ce_oi": [float(c) for c, _ in oi], "pe_oi": [float(p) for _, p in oi]})
    rows = list(range(len(chain)))
    rnd.shuffle(rows)
    assert figures(chain.iloc[rows].reset_index(drop=True)) == figures(chain) == brute_force(chain)


# ---------------------------------------------------------------- real NSE chains

REALDATA = os.environ.get("DATACENTRE_REALDATA")
NSE_FOLDER = "nse_option_chain_json"
SHUFFLES = 3


def nse_files() -> list[Path]:
    if not REALDATA:
        return []
    return sorted((Path(REALDATA) / NSE_FOLDER).glob("*.json*"))


def nse_chains(path: Path) -> dict[str, pd.DataFrame]:
    """Expiry -> ``strike, ce_oi, pe_oi`` from NSE's own ``openInterest``, in the file's row order."""
    data = path.read_bytes()
    text = (gzip.decompress(data) if path.suffix == ".gz" else data).decode()
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        doc = ast.literal_eval(text)  # some dumps were saved with Python's str(dict)
    by_expiry: dict[str, dict[float, list[float]]] = defaultdict(dict)
    for row in doc["records"]["data"]:
        oi = by_expiry[row["expiryDate"]].setdefault(float(row["strikePrice"]), [0.0, 0.0])
        for i, side in enumerate(("CE", "PE")):
            if side in row:
                oi[i] += float(row[side].get("openInterest") or 0.0)
    return {expiry: pd.DataFrame([(k, c, p) for k, (c, p) in strikes.items()],
                                 columns=["strike", "ce_oi", "pe_oi"])
            for expiry, strikes in by_expiry.items()}


@pytest.mark.skipif(not REALDATA, reason="DATACENTRE_REALDATA is not set: no real NSE option chains to read")
def test_real_nse_chains_in_any_row_order():
    files = nse_files()
    assert len(files) >= 20, f"expected the NSE option-chain dumps in {REALDATA}/{NSE_FOLDER}"
    rnd = random.Random(20220328)
    chains = tied = 0
    for path in files:
        for expiry, chain in nse_chains(path).items():
            chains += 1
            want = brute_force(chain)
            ordered = chain.sort_values("strike").reset_index(drop=True)
            assert figures(ordered) == want, f"{path.name} {expiry}"
            pain = A.pain_curve(ordered)
            tied += int((pain["total_payout"] == pain["total_payout"].min()).sum() > 1)
            for _ in range(SHUFFLES):
                rows = list(range(len(chain)))
                rnd.shuffle(rows)
                assert figures(chain.iloc[rows].reset_index(drop=True)) == want, f"{path.name} {expiry}"
    assert chains >= 300
    assert tied > 0  # the data does exercise ties (far expiries paying nothing over a range)
