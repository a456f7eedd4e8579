"""The sweep-level index: one row per finished job in ``<sweep dir>/sweep.csv``.

Jobs of a parallel launcher (joblib, SLURM) finish in any order and in other processes, so
each row is appended under an exclusive lock (fcntl) in one write.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
from pathlib import Path

COLUMNS = (
    "job", "run_dir", "overrides", "status", "best_val_accuracy", "best_val_loss",
    "final_test_accuracy", "steps", "wall_s",
)


class SweepIndex:
    def __init__(self, sweep_dir: str | Path) -> None:
        self.path = Path(sweep_dir) / "sweep.csv"

    def append(self, job: int, run_dir: Path, overrides: dict | list, summary: dict | None):
        summary = summary or {"status": "failed"}
        row = {
            "job": job,
            "run_dir": str(run_dir),
            "overrides": json.dumps(overrides),
            "status": summary.get("status"),
            "best_val_accuracy": summary.get("best", {}).get("val_accuracy"),
            "best_val_loss": summary.get("best", {}).get("val_loss"),
            "final_test_accuracy": summary.get("final", {}).get("test_accuracy"),
            "steps": summary.get("steps"),
            "wall_s": summary.get("wall_s"),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", newline="") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                f.seek(0, os.SEEK_END)  # where the file ends now that we hold the lock
                text = io.StringIO()
                writer = csv.DictWriter(text, COLUMNS)
                if f.tell() == 0:
                    writer.writeheader()
                writer.writerow(row)
                f.write(text.getvalue())
                f.flush()
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def read(self) -> list[dict]:
        with open(self.path, newline="") as f:
            return list(csv.DictReader(f))
