"""Which epoch ends get a checkpoint, and where a run asked to stop does stop.

Checkpoints are taken only between epochs, where the loop fetches metrics anyway: the
epoch is recorded at once (one host sync, instead of one epoch later) and the state saved,
so the rows on disk and the state in the checkpoint are of the same step.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from lrbench.train.interrupt import StopRequest

# (state after the epoch, epochs done) -> None: writes the checkpoint
Save = Callable[[object, int], None]


class EpochBoundary:
    """Every ``every`` epochs (0: never by count), at the first epoch end ``interval_s``
    seconds after the previous checkpoint (0: never by time), and when a stop was asked."""

    def __init__(self, every: int, interval_s: float, stop: StopRequest, save: Save) -> None:
        self.every, self.interval_s, self.stop, self._save = every, interval_s, stop, save
        self._last = time.monotonic()
        self.stopped_after: int | None = None  # epochs done when a stop request ended the run

    def due(self, epoch: int) -> bool:
        return (
            self.stop.requested
            or (self.every > 0 and (epoch + 1) % self.every == 0)
            or (self.interval_s > 0 and time.monotonic() - self._last >= self.interval_s)
        )

    def checkpoint_then_stop(self, state, epochs_done: int) -> bool:
        """Write the checkpoint of this epoch end; True: a stop was asked, stop here."""
        self._save(state, epochs_done)
        self._last = time.monotonic()
        if self.stop.requested:
            self.stopped_after = epochs_done
        return self.stop.requested
