"""What records a program's members (``lrbench.train.session.Tracks``): one run's recorder,
or one recorder per member lane of a vmap sweep chunk, each writing its own run directory."""

from __future__ import annotations

import jax

from lrbench.train.recorder import Recorder


class OneRun:
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.record = recorder.record

    def bookkeeping(self) -> dict:
        return {
            "recorder": self.recorder.bookkeeping(),
            "files": self.recorder.run_dir.file_sizes(),
        }

    def restore(self, progress: dict) -> None:
        self.recorder.restore(progress["recorder"])

    @property
    def steps_done(self) -> int:
        return self.recorder.steps_done


class Lanes:
    """Member k's metrics are lane k of the program's; the records of a member that is done
    (diverged, pruned, at a target that stops it) stop."""

    def __init__(self, recorders: list[Recorder]) -> None:
        self.recorders = recorders

    def record(self, metrics, evaluation: dict | None, elapsed_s: float) -> bool:
        for k, recorder in enumerate(self.recorders):
            if not recorder.done:
                lane = jax.tree.map(lambda a, k=k: a[k], (metrics, evaluation))
                recorder.record(*lane, elapsed_s)
        return all(recorder.done for recorder in self.recorders)

    def bookkeeping(self) -> dict:
        return {
            "members": [
                {"recorder": r.bookkeeping(), "files": r.run_dir.file_sizes()}
                for r in self.recorders
            ]
        }

    def restore(self, progress: dict) -> None:
        for recorder, member in zip(self.recorders, progress["members"], strict=True):
            recorder.restore(member["recorder"])

    @property
    def steps_done(self) -> int:
        return max(recorder.steps_done for recorder in self.recorders)
