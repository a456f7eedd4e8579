"""What every schema shares: range checks whose messages name the full key."""

from __future__ import annotations

import math
from typing import ClassVar

from lrbench.errors import ConfigError


class Checked:
    """Range checks shared by the schemas; ``group`` prefixes the key in messages."""

    group: ClassVar[str] = ""

    def _fail(self, key: str, allowed: str) -> None:
        prefix = f"{self.group}." if self.group else ""
        raise ConfigError(prefix + key, getattr(self, key), allowed)

    def _positive(self, *keys: str, why: str = "") -> None:
        for key in keys:
            if not getattr(self, key) > 0:
                self._fail(key, "must be > 0" + _reason(why))
            self._finite(key)

    def _at_least(self, *keys: str, low: float, why: str = "") -> None:
        for key in keys:
            if not getattr(self, key) >= low:
                self._fail(key, f"must be >= {low:g}" + _reason(why))
            self._finite(key)

    def _in(self, interval: str, *keys: str, why: str = "") -> None:
        """Each key inside ``interval``, written as the message shows it: "[0, 1]", "(0, 1]"."""
        low, high = (float(end) for end in interval[1:-1].split(","))
        for key in keys:
            value = getattr(self, key)
            above = value > low if interval[0] == "(" else value >= low
            below = value < high if interval[-1] == ")" else value <= high
            if not (above and below):
                self._fail(key, f"must be in {interval}" + _reason(why))

    def _non_negative(self, *keys: str) -> None:
        for key in keys:
            if not getattr(self, key) >= 0:
                self._fail(key, "must be >= 0")
            self._finite(key)

    def _finite(self, key: str) -> None:
        if not math.isfinite(getattr(self, key)):
            self._fail(key, "must be a finite number")

    def _seed(self, *keys: str) -> None:
        """Seeds are unsigned 32-bit: JAX and scikit-learn would wrap or reject others."""
        for key in keys:
            if not 0 <= getattr(self, key) < 2**32:
                self._fail(key, "must be in [0, 2**32 - 1]")

    def _unit_interval(self, *keys: str, closed_right: bool = False) -> None:
        for key in keys:
            value = getattr(self, key)
            inside = 0 <= value <= 1 if closed_right else 0 <= value < 1
            if not inside:
                self._fail(key, "must be in [0, 1]" if closed_right else "must be in [0, 1)")


def _reason(why: str) -> str:
    return f" ({why})" if why else ""
