"""Reading numbers out of loosely typed data (broker replies, stored rows, chart inputs)."""
from __future__ import annotations

import math
from typing import Any


def finite_or_none(value: Any) -> float | None:
    """``value`` as a finite float (numbers and numeric text), else None.

    None, NaN, infinities, non-numeric text and booleans (a flag is not a price) all give None.
    """
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
