"""Tables for the terminal: aligned columns, numbers to 4 significant digits, "-" for none."""

from __future__ import annotations

import math
import numbers
import shutil
from collections.abc import Iterable

import pandas as pd

from lrbench.analysis.table import config_text, is_missing

OFF_TERMINAL = 160  # characters a line when output is not a terminal (piped, a log file)
MIN_WIDTH = 120  # never narrower: the run and the main outcomes take about 100


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


def column_width(frame: pd.DataFrame, column: str) -> int:
    """Characters ``render`` gives the column: its name or its widest cell."""
    return max([len(column), *(len(cell_text(v)) for v in frame[column])])


def line_width(widths: Iterable[int]) -> int:
    """A rendered line's length for columns of these widths (one space between them)."""
    widths = list(widths)
    return sum(widths) + max(len(widths) - 1, 0)


def terminal_width() -> int:
    """The width to fit tables to: the terminal's (``COLUMNS`` if set), ``OFF_TERMINAL``
    when output is not a terminal, and never under ``MIN_WIDTH``."""
    return max(shutil.get_terminal_size((OFF_TERMINAL, 24)).columns, MIN_WIDTH)


def fit(frame: pd.DataFrame, optional: list[str], width: int) -> tuple[pd.DataFrame, list[str]]:
    """The table within ``width`` characters a line, if it is wider: every column but the
    ``optional`` ones, and of those as many as fit, tried in the order given and placed in
    that order after the first column. Returns the table and the optional columns left out."""
    widths = {c: column_width(frame, c) for c in frame.columns}
    if line_width(widths.values()) <= width:
        return frame, []
    used = line_width(w for c, w in widths.items() if c not in optional)
    kept = []
    for column in optional:
        if used + 1 + widths[column] <= width:
            kept.append(column)
            used += 1 + widths[column]
    fixed = [c for c in frame.columns if c not in optional]
    columns = [*fixed[:1], *kept, *fixed[1:]]
    return frame[columns], [c for c in optional if c not in kept]
