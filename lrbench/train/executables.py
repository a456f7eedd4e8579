"""Ahead-of-time compilation, once per shape, with the seconds the loop waits for it counted.

Compiling explicitly (``lower().compile()``) keeps compile time out of the measured
training time: summary.json reports both. A program's shapes are known before its values
are needed, so ``start_compile`` lowers a piece and leaves XLA's compile to a background thread
(XLA releases the GIL while it compiles): the epoch program and the evaluator then compile
side by side, and alongside the host's remaining setup (run directories, recorders, the
checkpoint manager), instead of one after the other once training starts. Measured in
docs/benchmarks.md ("Compiling ahead").
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from functools import cache

from lrbench import faults


@cache
def _compiler() -> ThreadPoolExecutor:
    """The background compiles' threads: two, the pieces a program has in flight at once
    (its epoch program and its evaluator)."""
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="lrbench-compile")


_in_flight: set[Future] = set()


def settle() -> None:
    """Wait for the background compiles nothing asked for (a run stopped before its first
    evaluation): none outlives the training that started it."""
    wait(list(_in_flight))


class Executables:
    """The compiled executables of one program (a base class: runners, evaluator, feedback).

    Not JAX's persistent compilation cache (the ``compile_cache`` key), which stores
    compiled programs on disk across processes; this one holds them for one run."""

    def __init__(self) -> None:
        self.compile_s = 0.0  # seconds ``get`` waited for compiles (the loop's compile time)
        self._compiled: dict = {}

    def start_compile(self, key: Hashable, jitted, *args) -> None:
        """Lower ``jitted`` for ``args`` now and compile it in the background; ``get`` of the
        same key waits for it. ``args`` are only read for their shapes and layouts."""
        if key in self._compiled:
            return
        faults.point("compile")
        future = _compiler().submit(jitted.lower(*args).compile)
        _in_flight.add(future)
        future.add_done_callback(_in_flight.discard)
        self._compiled[key] = future

    def get(self, key: Hashable, jitted, *args):
        """The compiled executable of ``jitted`` for ``args`` (compiled on first use of key,
        or the one ``start_compile`` started)."""
        compiled = self._compiled.get(key)
        if compiled is None or isinstance(compiled, Future):
            start = time.perf_counter()
            if compiled is None:
                faults.point("compile")
                compiled = jitted.lower(*args).compile()
            else:
                compiled = compiled.result()
            self._compiled[key] = compiled
            self.compile_s += time.perf_counter() - start
        return compiled
