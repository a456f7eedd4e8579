"""The sweep-level index: one row per finished job in ``<sweep dir>/sweep.csv``.

Jobs of a parallel launcher (joblib, SLURM) finish in any order and in other processes, so
the file is rewritten under an exclusive lock (fcntl, on ``.sweep.csv.lock``: the file
itself is replaced) and atomically (temp file + rename), without an fsync: it only indexes
the run directories (each member of a vmap sweep paid ~3 ms for one); a vmap sweep indexes a
chunk's members in one rewrite (``append_many``). A job indexed again (a sweep re-launched
with ``resume=auto``) replaces its row.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
from collections.abc import Iterable
from pathlib import Path

from lrbench.runs import write_atomically
from lrbench.summary import FAILED, Summary, best, final

COLUMNS = (
    "job",
    "run_dir",
    "overrides",
    "status",
    "best_val_accuracy",
    "best_val_loss",
    "final_test_accuracy",
    "steps",
    "wall_s",
)


class SweepIndex:
    def __init__(self, sweep_dir: str | Path) -> None:
        self.path = Path(sweep_dir) / "sweep.csv"

    def append(self, job: int, run_dir: Path, overrides: dict | list, summary: Summary | None):
        self.append_many([(job, run_dir, overrides, summary)])

    def append_many(self, jobs: Iterable[tuple[int, Path, dict | list, Summary | None]]) -> None:
        """Index several jobs (job, run_dir, overrides, summary) in one rewrite: a vmap sweep's
        chunk of members."""
        new = [_row(*job) for job in jobs]
        replaced = {row["job"] for row in new}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(f".{self.path.name}.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            rows = self.read() if self.path.exists() else []
            text = io.StringIO()
            writer = csv.DictWriter(text, COLUMNS)
            writer.writeheader()
            writer.writerows([r for r in rows if r["job"] not in replaced] + new)
            write_atomically(self.path, text.getvalue(), durable=False)

    def read(self) -> list[dict]:
        with open(self.path, newline="") as f:
            return list(csv.DictReader(f))


def _row(job: int, run_dir: Path, overrides: dict | list, summary: Summary | None) -> dict:
    """A job's row, as csv reads it back (strings), so an indexed job is replaced by job."""
    summary = summary or {"status": FAILED}
    return {
        "job": str(job),
        "run_dir": str(run_dir),
        "overrides": json.dumps(overrides),
        "status": summary.get("status"),
        "best_val_accuracy": best(summary, "val_accuracy"),
        "best_val_loss": best(summary, "val_loss"),
        "final_test_accuracy": final(summary, "test_accuracy"),
        "steps": summary.get("steps"),
        "wall_s": summary.get("wall_s"),
    }
