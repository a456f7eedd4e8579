"""SIGTERM and Ctrl-C during training: stop at the end of the epoch, with a checkpoint.

The first signal only asks: the loop finishes the epoch it is in, records it, writes a
checkpoint, and the run ends with status ``interrupted`` (exit code 128 + signal, as a shell
reports a process killed by it). A second signal exits at once, as kill -9 would: the run
directory stays resumable from its last checkpoint.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Set by the first signal; read by the loop between epochs."""

    def __init__(self) -> None:
        self.signum: int | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str | None:
        return None if self.signum is None else signal.Signals(self.signum).name


class Interrupted(SystemExit):
    """Ends the process with 128 + signal after the interrupted run's summary is written.
    A ``SystemExit``, so Hydra's job runner lets it through (it swallows ``Exception``s)."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(128 + signum)
        self.message = message


def _say(text: str) -> None:
    """os.write: print() inside a handler could re-enter a print the main thread was in."""
    os.write(2, f"lrbench: {text}\n".encode())


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Handlers for SIGINT and SIGTERM while the block runs; the previous ones after.
    Outside the main thread (where Python cannot set handlers) signals act as before."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handle(signum: int, frame) -> None:
        if request.requested:
            _say(
                f"{signal.Signals(signum).name} again: exiting now (resume from the last "
                "checkpoint)"
            )
            os._exit(128 + signum)
        request.signum = signum
        _say(
            f"{signal.Signals(signum).name}: stopping at the end of this epoch with a "
            "checkpoint (again to exit at once)"
        )

    previous = {signum: signal.signal(signum, handle) for signum in SIGNALS}
    try:
        yield request
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
