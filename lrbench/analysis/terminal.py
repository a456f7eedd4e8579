"""Tables for the terminal: aligned columns, numbers to 4 significant digits, "-" for none."""

from __future__ import annotations

import math
import numbers

import pandas as pd

from lrbench.analysis.table import config_text, is_missing


def cell_text(value) -> str:
    """A value as the tables show it: 4 significant digits, integers whole, "-" for none."""
    if is_missing(value):
        return "-"
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = float(value)
        if math.isinf(value):
            return str(value)
        return f"{value:.0f}" if value.is_integer() and abs(value) < 1e15 else f"{value:.4g}"
    return config_text(value)


def render(frame: pd.DataFrame) -> str:
    """The table as text (CSV keeps full precision)."""
    if frame.empty:
        return "(no rows)"
    return frame.map(cell_text).to_string(index=False)  # every cell, pd.NA included
