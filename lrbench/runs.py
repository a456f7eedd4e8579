"""The run directory: the contract every other command reads (docs/design.md "The run directory").

    config.yaml   the resolved config          metrics.csv   one row per logged step
    summary.json  status and final numbers     train.log     the log (written by Hydra)
    events.out.tfevents.*   the same for TensorBoard (scalars per step, hparams at the end)

``summary.json`` and ``config.yaml`` are written atomically (temp file + rename);
``metrics.csv`` is appended and flushed once per epoch, so a killed run keeps every
earlier row intact. A directory without ``summary.json`` is a run still going or killed:
its ``heartbeat.json`` (pid, host, last sign of life; removed with the summary) tells which.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from lrbench import faults
from lrbench.flat_config import flatten

# summary.json's contract and reader live in lrbench.summary; re-exported for the callers of
# this module.
from lrbench.summary import STATUSES as STATUSES
from lrbench.summary import read_summary as read_summary

METRIC_COLUMNS = (
    "step",
    "epoch",
    "lr",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "test_loss",
    "test_accuracy",
    "elapsed_s",
    # Appended after the original ten, so those keep their positions.
    "grad_norm",
    "update_norm",
    "param_norm",
    "update_ratio",
)
METRICS_FILE = "metrics.csv"
EVENTS_GLOB = "events.out.tfevents.*"
HEARTBEAT_FILE = "heartbeat.json"
BEAT_EVERY_S = 10.0  # a heartbeat at most this often (at the epochs' metric writes)

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# libyaml's emitter: the same text as yaml.safe_dump (compared on every conf/ option and on
# odd strings: quotes, colons, unicode, long lines), 4x faster (1.9 -> 0.45 ms a config
# here), which a vmap sweep pays once per member.
_YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_UMASK = os.umask(0)
os.umask(_UMASK)


def write_atomically(path: Path, text: str | bytes, *, durable: bool = True) -> None:
    """Write to a temp file in the same directory, fsync (``durable``), then rename over
    ``path``: a kill leaves the old file or the new one; without the fsync a machine's crash
    may leave it empty."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb" if isinstance(text, bytes) else "w") as f:
            f.write(text)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        faults.point(f"write:{path.name}")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _finite_or_none(value: Any) -> Any:
    """JSON has no NaN/Inf: a non-finite number is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    return value


def process_start(pid: int) -> str | None:
    """When process ``pid`` started (Linux: clock ticks since boot, /proc/<pid>/stat's 22nd
    field), so a pid the system gave to another process since is not taken for the run's;
    None where there is no /proc or no such process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return None


class Heartbeat:
    """``heartbeat.json``: the process writing a run (pid, host, when it started) and its
    last sign of life, so ``compare`` tells a run going from one whose process died. Written
    when the run starts and at most every ``BEAT_EVERY_S`` at its per-epoch metric writes
    (no thread, no device sync); a rename without fsync (it is only a hint)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / HEARTBEAT_FILE
        now = time.time()
        self.record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "process_start": process_start(os.getpid()),
            "started_unix": now,
            "updated_unix": now,
            "longest_gap_s": 0.0,  # between two beats: how long a silence is still normal
        }
        self._last = time.monotonic()
        self._write()

    def beat(self) -> None:
        now = time.monotonic()
        if now - self._last < BEAT_EVERY_S:
            return
        gap = now - self._last
        self._last = now
        self.record["updated_unix"] = time.time()
        self.record["longest_gap_s"] = round(max(self.record["longest_gap_s"], gap), 3)
        self._write()

    def _write(self) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with contextlib.suppress(OSError):  # a hint: never a reason for a run to fail
            tmp.write_text(json.dumps(self.record) + "\n")
            os.replace(tmp, self.path)

    def stop(self) -> None:
        """The run has written its summary: that says what became of it."""
        self.path.unlink(missing_ok=True)


def read_heartbeat(path: str | os.PathLike) -> dict | None:
    """A run's ``heartbeat.json``, or None (none, or unreadable: a run from before them)."""
    try:
        record = json.loads((Path(path) / HEARTBEAT_FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


class RunDir:
    """Writes one run's files."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._metrics_file = None
        self._columns = METRIC_COLUMNS  # a resumed run's: those of its metrics.csv
        self._events = None
        self._heartbeat = None

    def write_config(self, config: dict, events_suffix: str = "") -> None:
        from lrbench.tb_events import EventLog  # tensorboardX loads only when a run starts

        text = yaml.dump(config, Dumper=_YAML_DUMPER, sort_keys=False)
        write_atomically(self.path / "config.yaml", text)
        self._events = EventLog(self.path, flatten(config), events_suffix)
        self._heartbeat = Heartbeat(self.path)

    def start_over(self) -> None:
        """A fresh run in a folder that held one (the same ``hydra.run.dir``, no resume):
        the old outputs go, so nothing of that run mixes into this one."""
        for old in (
            self.path / "summary.json",
            self.path / METRICS_FILE,
            *self.path.glob(EVENTS_GLOB),
        ):
            old.unlink(missing_ok=True)

    def file_sizes(self) -> dict[str, int]:
        """Bytes of metrics.csv (flushed once per epoch) and each event file (flushed here)
        now: what a checkpoint records, so a resume can cut them back to that moment."""
        if self._events is not None:
            self._events.flush()
        files = [self.path / METRICS_FILE, *self.path.glob(EVENTS_GLOB)]
        return {file.name: file.stat().st_size for file in files if file.exists()}

    def resume(self, config: dict, sizes: dict[str, int], step: int) -> None:
        """Continue a stopped run here from a checkpoint at ``step``: metrics.csv and the
        event files are cut back to ``sizes`` (theirs at the checkpoint: the rows after it
        are written again, identically), event files begun after it are removed, and the
        rest goes to a new event file (TensorBoard reads a folder's files in name order).
        summary.json goes too (the run is going again), and the temp files of atomic writes
        a kill cut short. metrics.csv keeps its header: a run recorded before the norm
        columns goes on without them."""
        for stale in (self.path / "summary.json", *self.path.glob(".*.tmp")):
            stale.unlink(missing_ok=True)
        for events in self.path.glob(EVENTS_GLOB):
            if events.name in sizes:
                os.truncate(events, sizes[events.name])
            else:
                events.unlink()
        metrics = self.path / METRICS_FILE
        if sizes.get(METRICS_FILE):
            os.truncate(metrics, sizes[METRICS_FILE])
            self._columns = _header(metrics)
            self._metrics_file = open(metrics, "a", newline="")  # noqa: SIM115
        else:
            metrics.unlink(missing_ok=True)
        self.write_config(config, events_suffix=f".step{step}")

    def append_metrics(self, rows: list[dict]) -> None:
        """One write per epoch, flushed: a kill loses at most this epoch's rows (a row cut
        short is skipped by ``read_metrics`` and cut off by a resume)."""
        text = io.StringIO()
        writer = csv.DictWriter(text, self._columns, extrasaction="ignore")
        if self._metrics_file is None:
            self._metrics_file = open(self.path / METRICS_FILE, "w", newline="")  # noqa: SIM115
            writer.writeheader()
        writer.writerows(rows)
        self._metrics_file.write(text.getvalue())
        self._metrics_file.flush()
        if self._events is not None:
            self._events.add_rows(rows)
        if self._heartbeat is not None:
            self._heartbeat.beat()

    def write_summary(self, summary: dict) -> None:
        text = json.dumps(_finite_or_none(summary), indent=2, sort_keys=False) + "\n"
        write_atomically(self.path / "summary.json", text)
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
        if self._events is not None:
            self._events.finish(summary)
            self._events = None

    def close(self) -> None:
        """Close metrics.csv; the event file stays open for write_summary's hparams."""
        if self._metrics_file is not None:
            self._metrics_file.close()
        if self._events is not None:
            self._events.flush()


def _header(metrics: Path) -> tuple[str, ...]:
    with open(metrics, newline="") as f:
        return tuple(next(csv.reader(f)))


def read_metrics(path: str | os.PathLike) -> list[dict[str, float | None]]:
    """metrics.csv as rows of floats (None where a column was not evaluated at that step).
    A last line without its newline is a row cut short by a kill: skipped."""
    text = (Path(path) / METRICS_FILE).read_text()
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    return [
        {k: (float(v) if v != "" else None) for k, v in row.items()}
        for row in csv.DictReader(io.StringIO(text, newline=""))
    ]


def read_config(path: str | os.PathLike) -> dict:
    # libyaml's loader when present: 8x faster, which `compare` over big sweeps needs.
    return yaml.load((Path(path) / "config.yaml").read_text(), Loader=_YAML_LOADER)


def remove_unused_run_dir(out_dir: Path) -> None:
    """Bad input leaves no run directory: remove Hydra's, since no file of ours is in it."""
    if not (out_dir / "config.yaml").exists():
        shutil.rmtree(out_dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            out_dir.parent.rmdir()  # runs/<name>/ if this was its only run
