"""Choosing rows of a run table: ``--where`` filters, ``--sort`` and ``--top``."""

from __future__ import annotations

import difflib
import numbers
import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

from lrbench.analysis.table import config_text, is_missing
from lrbench.errors import ConfigError


def check_columns(frame: pd.DataFrame, keys: Iterable[str], flag: str) -> list[str]:
    """The keys, each a column of ``frame``; an unknown one is bad input."""
    keys = list(keys)
    for key in keys:
        if key not in frame.columns:
            close = difflib.get_close_matches(key, frame.columns, n=3)
            hint = (
                f"did you mean {' or '.join(close)}?"
                if close
                else "columns: " + ", ".join(frame.columns)
            )
            raise ConfigError(flag, key, f"unknown column ({hint})")
    return keys


def split_keys(text: str | None) -> list[str]:
    """``a,b`` -> [a, b] (for --group-by and --columns)."""
    return [k.strip() for k in text.split(",") if k.strip()] if text else []


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _equals(cell, wanted: str) -> bool:
    """Numbers compare as numbers (1e-3 is 0.001), everything else as config text."""
    number = _number(wanted)
    if (
        number is not None
        and isinstance(cell, numbers.Real)
        and not isinstance(cell, bool | np.bool_)
    ):
        return cell == number
    return config_text(cell) == wanted


def where(frame: pd.DataFrame, conditions: Iterable[str]) -> pd.DataFrame:
    """Rows matching every ``key=value`` (``key=a,b`` matches either value)."""
    for condition in conditions:
        key, sep, value = condition.partition("=")
        if not sep or not key:
            raise ConfigError("--where", condition, "expected key=value (e.g. optimizer.name=adam)")
        check_columns(frame, [key], "--where")
        wanted = re.split(r",(?![^\[]*\])", value)  # commas inside [..] belong to a list
        mask = frame[key].map(lambda cell, wanted=wanted: any(_equals(cell, w) for w in wanted))
        if not mask.any():
            seen = sorted({config_text(v) for v in frame[key]})
            raise ConfigError(
                "--where", condition, f"matches no run ({key} has: {', '.join(seen)})"
            )
        frame = frame[mask.astype(bool)]
    return frame


def sort(frame: pd.DataFrame, key: str, descending: bool = False) -> pd.DataFrame:
    """Stable sort, missing values last; text columns sort as text."""
    column = frame[key]
    as_text = column.dtype == object
    return frame.sort_values(
        key,
        ascending=not descending,
        na_position="last",
        kind="stable",
        key=(lambda c: c.map(lambda v: None if is_missing(v) else config_text(v)))
        if as_text
        else None,
    )


def top(frame: pd.DataFrame, n: int | None) -> pd.DataFrame:
    return frame if n is None else frame.head(n)


def completed_first(frame: pd.DataFrame) -> pd.DataFrame:
    """Completed runs, then the others, each in their current order."""
    return frame.sort_values("status", key=lambda s: s != "completed", kind="stable")
