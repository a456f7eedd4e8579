"""TensorBoard event files for a run: every metrics.csv column as a scalar keyed by step,
and the flattened config as hparams with the final/best metrics, so ``tensorboard --logdir
runs/`` shows curves and its HParams view compares runs. Written with tensorboardX, which
needs neither TensorFlow nor PyTorch."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterable

from lrbench.flat_config import Scalar

# Optional imports of tensorboardX that an event file on local disk never uses: PyTorch (~1.8 s
# where installed; tensorboardX imports it only to recognise torch tensors, and we log Python
# floats), and the S3 and Google Cloud Storage clients of record_writer (boto3 ~0.1 s here).
_UNUSED = ("torch", "boto3", "google.cloud")


@contextlib.contextmanager
def _without_unused_imports():
    """Hide the modules of ``_UNUSED`` not yet imported while tensorboardX loads: ``import
    torch`` (or boto3, google.cloud) then raises ImportError, which tensorboardX handles."""
    hidden = [name for name in _UNUSED if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None
    try:
        yield
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


# Outcomes written as scalars at the end, the HParams view's metric columns; the final
# train/val/test values are the last points of the per-step tags of the same name.
FINAL_TAGS = ("train_loss", "val_loss", "val_accuracy", "test_loss", "test_accuracy")
BEST_TAGS = ("best_val_accuracy", "best_val_loss")


class EventLog:
    """One event file in the run directory, written synchronously.

    tensorboardX's SummaryWriter hands every event to a writer thread through a
    multiprocessing queue (pickled, 10 deep): ~100 us per event on 2 busy cores. Its
    synchronous EventsWriter appends one record per metrics row in ~30 us.
    """

    def __init__(
        self, path: str | os.PathLike, hparams: dict[str, Scalar], suffix: str = ""
    ) -> None:
        """``suffix`` ends the file's name (a resumed run's file: ``.step<N>``)."""
        # Imported here: `lrbench compare` reads run directories without paying for it.
        with _without_unused_imports():
            from tensorboardX.event_file_writer import EventsWriter
            from tensorboardX.proto.event_pb2 import Event
            from tensorboardX.proto.summary_pb2 import Summary
            from tensorboardX.summary import hparams as hparams_summaries

        self._event, self._summary = Event, Summary
        self._hparams_summaries = hparams_summaries
        self._writer = EventsWriter(os.path.join(path, "events"), suffix)
        self._hparams = {k: v for k, v in hparams.items() if v is not None}
        self._last_step = 0

    def _scalars(self, values: dict[str, float | None]):
        """One summary holding every value (None skipped): one record per metrics row.
        Built directly, as tensorboardX's ``scalar()`` does, without its numpy checks."""
        return self._summary(
            value=[
                self._summary.Value(tag=tag, simple_value=float(value))
                for tag, value in values.items()
                if value is not None
            ]
        )

    def _write(self, summary, step: int) -> None:
        self._writer.write_event(self._event(wall_time=time.time(), step=step, summary=summary))

    def add_rows(self, rows: Iterable[dict]) -> None:
        """Every numeric column but ``step`` as a scalar at that step (empty cells skipped)."""
        for row in rows:
            self._last_step = int(row["step"])
            scalars = {tag: value for tag, value in row.items() if tag != "step"}
            self._write(self._scalars(scalars), self._last_step)
        # Not flushed here: tensorboardX's flush fsyncs (~0.3 ms, a tenth of a short
        # epoch). Flushed at checkpoints (RunDir.file_sizes) and at the end; a killed run
        # keeps metrics.csv's rows, and a resume cuts events back to the checkpoint anyway.

    def finish(self, summary: dict) -> None:
        """The hparams record (config + status) and the best metrics; closes the file."""
        best = summary.get("best") or {}
        scalars = {tag: best.get(tag.removeprefix("best_")) for tag in BEST_TAGS}
        self._write(self._scalars(scalars), self._last_step)
        hparams = self._hparams | {"status": summary.get("status", "failed")}
        metrics = dict.fromkeys((*FINAL_TAGS, *BEST_TAGS), 0.0)  # only their names are used
        for record in self._hparams_summaries(hparams, metrics):
            self._write(record, self._last_step)
        self._writer.close()

    def flush(self) -> None:
        self._writer.flush()
