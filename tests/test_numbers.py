"""finite_or_none: the one reading of loosely typed numbers."""
from __future__ import annotations

import math

import numpy as np
import pytest

from datacentre.core.numbers import finite_or_none


@pytest.mark.parametrize("value, expected", [
    (1, 1.0), (2.5, 2.5), ("26000.05", 26000.05), (" 7 ", 7.0), (np.float64(3.25), 3.25),
    (np.int64(4), 4.0), (-0.5, -0.5), (0, 0.0),
])
def test_numbers(value, expected):
    assert finite_or_none(value) == expected
    assert isinstance(finite_or_none(value), float)


@pytest.mark.parametrize("value", [
    None, math.nan, math.inf, -math.inf, "nan", "inf", "", "-", "abc", [1], {}, True, False,
    np.nan,
])
def test_not_numbers(value):
    assert finite_or_none(value) is None
