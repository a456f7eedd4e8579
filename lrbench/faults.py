"""Fault injection for the fault-tolerance tests: ``LRBENCH_FAULT=point:count[:signals]``.

The process sends itself ``signals`` (default ``KILL``; ``TERM``, ``INT``, or several joined
by ``+``, e.g. ``INT+INT``) the ``count``-th time it reaches ``point``. The points:

    compile          before an XLA compile (``lrbench.train.executables``)
    epoch            after an epoch is dispatched, while the device computes it
    eval             after an evaluation is dispatched
    checkpoint       after a checkpoint write started (orbax writes in the background)
    write:<file>     inside an atomic write of <file> (e.g. ``write:summary.json``): the
                     temp file is written, not yet renamed

Unset (the normal case), ``point`` is a function that returns at once, and it is only
called on the host between dispatches, never inside compiled code.
"""

from __future__ import annotations

import os
import signal

ENV = "LRBENCH_FAULT"


def _parse(spec: str) -> tuple[str, int, list[signal.Signals]]:
    """``"write:summary.json:1:TERM"`` -> ("write:summary.json", 1, [SIGTERM])."""
    parts = spec.split(":")
    if parts[-1].isdigit():
        parts.append("KILL")
    *name, count, signals = parts
    return ":".join(name), int(count), [signal.Signals[f"SIG{s}"] for s in signals.split("+")]


def _point_from(spec: str | None):
    if not spec:
        return lambda name: None
    target, count, signals = _parse(spec)
    seen = 0

    def point(name: str) -> None:
        nonlocal seen
        if name != target:
            return
        seen += 1
        if seen == count:
            for signum in signals:
                os.kill(os.getpid(), signum)

    return point


point = _point_from(os.environ.get(ENV))
