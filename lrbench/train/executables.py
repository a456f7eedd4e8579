"""Ahead-of-time compilation, once per shape, with the seconds spent counted.

Compiling explicitly (``lower().compile()``) keeps compile time out of the measured
training time: summary.json reports both.
"""

from __future__ import annotations

import time
from collections.abc import Hashable

from lrbench import faults


class Executables:
    """The compiled executables of one program (a base class: runners, evaluator, feedback).

    Not JAX's persistent compilation cache (the ``compile_cache`` key), which stores
    compiled programs on disk across processes; this one holds them for one run."""

    def __init__(self) -> None:
        self.compile_s = 0.0
        self._compiled: dict = {}

    def get(self, key: Hashable, jitted, *args):
        """The compiled executable of ``jitted`` for ``args`` (compiled on first use of key)."""
        if key not in self._compiled:
            faults.point("compile")
            start = time.perf_counter()
            self._compiled[key] = jitted.lower(*args).compile()
            self.compile_s += time.perf_counter() - start
        return self._compiled[key]
