"""What a run shows while it trains, and what its train.log keeps of it.

On a terminal: a tqdm bar (epochs; loss, LR, validation accuracy). Elsewhere (piped, under
nohup, in a SLURM or Ray job's log): lines, one each for the start (what runs, where, on
which devices), every evaluation (epoch, step, train loss, val loss and accuracy, LR,
steps/s, ETA), every checkpoint, a divergence, and the end (status, steps, test accuracy,
wall time). The run's train.log gets the lines whatever the console shows
(``train.progress``; docs/running.md "Progress and logs").

Everything here is fed by the recorder (``Recorder._show``), which runs on the host once per
epoch from the loop's grouped fetches (``lrbench.train.epochs``): no host sync of its own,
nothing per step. A vmap sweep chunk has one bar and one line per evaluation for the whole
program (``MembersProgress``), not one per member.

No JAX here: the sweep callback and ``lrbench.train_app`` format result lines with it.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from lrbench.config.train import ProgressMode
from lrbench.summary import FAILED, best, final

log = logging.getLogger("lrbench.progress")

BAR, LINES, OFF = "bar", "lines", "off"


def console_mode(setting: ProgressMode, quiet: bool = False) -> str:
    """What the console shows: ``bar``, ``lines`` or ``off``.

    ``auto``: a bar where stderr is a terminal, lines elsewhere; ``quiet`` (a job of a
    multirun, whose console is the sweep's: one result line per job) makes it off, or lines
    where each job writes its own console log (submitit: SLURM's per-job files)."""
    if setting is not ProgressMode.auto:
        return setting.value
    if quiet:
        return LINES if _jobs_log_apart() else OFF
    return BAR if sys.stderr.isatty() else LINES


def _jobs_log_apart() -> bool:
    try:
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():
            return False
        target = str(HydraConfig.get().launcher.get("_target_", ""))
    except Exception:  # no Hydra here: a caller's own process
        return False
    return "submitit" in target


def _experiment() -> str | None:
    """The ``experiment=`` preset Hydra composed, if any (the typed config does not keep it)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():
            return None
        return HydraConfig.get().runtime.choices.get("experiment")
    except Exception:
        return None


def short_key(key: str) -> str:
    """optimizer.lr -> lr (a sweep member's values, named as a user reads them)."""
    return key.removeprefix("optimizer.")


def varying_keys(values: Sequence[Mapping]) -> list[str]:
    """The keys whose value differs between members (the LR when none does)."""
    keys = [k for k in values[0] if len({repr(v.get(k)) for v in values}) > 1] if values else []
    return keys or ["optimizer.lr"]


def label(values: Mapping, keys: Iterable[str]) -> str:
    """``lr=0.001 seed=1``: a member's values of ``keys``."""
    return " ".join(f"{short_key(k)}={_number(values.get(k))}" for k in keys)


def _number(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def result_line(run_dir: str | Path, summary: Mapping | None, name: str = "") -> str:
    """``<run dir> (<name>): completed, 180 steps, 396 steps/s, val_accuracy ...``: what a
    finished run (a multirun job, a vmap member: ``name`` its values) prints."""
    head = f"{run_dir} ({name})" if name else f"{run_dir}"
    if summary is None:
        return f"{head}: no summary.json"
    if summary.get("status") == FAILED:
        return f"{head}: failed: {summary.get('error', '')}"
    parts = [
        f"{summary['status']}",
        f"{summary['steps']} steps",
        f"{summary['steps_per_s']:.0f} steps/s",
    ]
    for key in ("val_accuracy", "test_accuracy"):
        if final(summary, key) is not None:
            parts.append(f"{key} {final(summary, key):.4f}")
    if summary.get("diverged_at_step") is not None:
        parts.append(f"diverged at step {summary['diverged_at_step']}")
    return f"{head}: " + ", ".join(parts)


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = round(max(seconds, 0.0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _bar(n_epochs: int, done: int):
    from tqdm import tqdm

    return tqdm(total=n_epochs, initial=done, unit="epoch", dynamic_ncols=True, leave=False)


class RunProgress:
    """One run's bar or lines (``Recorder.progress``); train.log gets the lines always."""

    def __init__(
        self,
        console: str,
        plan,
        *,
        epochs_done: int = 0,
        start_step: int = 0,
        start_elapsed: float = 0.0,
    ) -> None:
        self.console = console
        self.plan = plan
        self.bar = _bar(plan.n_epochs, epochs_done) if console == BAR else None
        self._mark = (start_step, start_elapsed)  # (step, clock) of the previous line

    def say(self, text: str) -> None:
        """One line: to train.log (INFO, ``lrbench.progress``), and to stderr in lines mode."""
        log.info(text)
        if self.console == LINES:
            print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    def recorded(self, recorder, row: dict) -> None:
        """An epoch recorded (``row``: its last metrics.csv row): the bar moves; a line for
        an evaluation, the target first reached, and a divergence."""
        evaluated = recorder.last_eval.get("step") == recorder.steps_done
        if self.bar is not None:
            postfix = {"loss": f"{row['train_loss']:.4g}", "lr": f"{row['lr']:.3g}"}
            if "val_accuracy" in recorder.last_eval:
                postfix["val_acc"] = f"{recorder.last_eval['val_accuracy']:.4f}"
            self.bar.set_postfix(postfix, refresh=False)
            self.bar.update(1)
        if recorder.diverged_at is not None:
            self.say(
                f"{self._where(recorder.diverged_at)}: diverged (train_loss {row['train_loss']})"
            )
        elif evaluated:
            evaluation = {k: v for k, v in recorder.last_eval.items() if k.startswith("val_")}
            numbers = [f"train_loss {row['train_loss']:.4g}"]
            numbers += [f"{k} {_metric(k, v)}" for k, v in evaluation.items()]
            numbers.append(f"lr {row['lr']:.3g}")
            self.say(
                f"{self._where(recorder.steps_done)}: {', '.join(numbers)}, "
                f"{self._pace(recorder.steps_done, row['elapsed_s'])}"
            )
            reached = recorder.target_reached
            if reached is not None and reached["step"] == recorder.steps_done:
                target = recorder.target
                stop = ": stopping" if target.stop else ""
                self.say(
                    f"{self._where(reached['step'])}: target {target.metric} {target.value} "
                    f"reached after {reached['loop_s']:.2f} s of training{stop}"
                )

    def _where(self, step: int) -> str:
        epoch = -(-step // self.plan.steps_per_epoch)
        return f"epoch {epoch}/{self.plan.n_epochs}, step {step}/{self.plan.total_steps}"

    def _pace(self, step: int, elapsed: float) -> str:
        """Steps/s since the previous line by the loop's clock (metrics.csv's elapsed_s: the
        first window holds the compiles; epochs fetched together share their group's
        rate), and the ETA at that rate."""
        mark_step, mark_time = self._mark
        self._mark = (step, elapsed)
        rate = (step - mark_step) / (elapsed - mark_time) if elapsed > mark_time else math.nan
        eta = (self.plan.total_steps - step) / rate if rate > 0 else math.nan
        return f"{rate:.0f} steps/s, ETA {_clock(eta)}"

    def checkpoint(self, step: int, path: Path) -> None:
        self.say(f"{self._where(step)}: checkpoint {path}")

    def announcing(self, checkpoints):
        """``checkpoints`` with a line for each save (what ``session.train`` calls)."""
        return _Announced(checkpoints, self)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def end(self, summary: Mapping) -> None:
        """The end line: status, steps, test accuracy, wall time."""
        self.close()
        parts = [f"{summary['steps']} steps"]
        if summary.get("diverged_at_step") is not None:
            parts.append(f"diverged at step {summary['diverged_at_step']}")
        if summary.get("interrupted_by"):
            parts.append(f"interrupted by {summary['interrupted_by']}")
        for key in ("val_accuracy", "test_accuracy"):
            if final(summary, key) is not None:
                parts.append(f"{key} {final(summary, key):.4f}")
        if best(summary, "val_accuracy") is not None:
            parts.append(
                f"best val_accuracy {best(summary, 'val_accuracy'):.4f} "
                f"(step {best(summary, 'val_accuracy_step')})"
            )
        parts.append(f"wall {summary['wall_s']:.1f}s")
        self.say(f"end: {summary['status']}, {', '.join(parts)}")


def _metric(key: str, value) -> str:
    if value is None:
        return "nan"
    return f"{value:.4f}" if key.endswith("accuracy") else f"{value:.4g}"


class _Announced:
    """Checkpoints whose every save is also a progress line."""

    def __init__(self, checkpoints, progress: RunProgress) -> None:
        self._checkpoints, self._progress = checkpoints, progress

    def save(self, step: int, state, record: dict) -> None:
        self._checkpoints.save(step, state, record)
        self._progress.checkpoint(step, self._checkpoints.path / str(step))

    def __getattr__(self, name: str):
        return getattr(self._checkpoints, name)


class MembersProgress(RunProgress):
    """A vmap sweep chunk: one bar and one line per evaluation for the program. Each
    member's recorder reports through its ``lane``; an epoch is shown once every member
    still training has reported it."""

    def __init__(self, console: str, plan, names: list[str], first_index: int, **kwargs) -> None:
        super().__init__(console, plan, **kwargs)
        self.names, self.first_index = names, first_index
        self._reports: list = []  # (lane, recorder, row) of the epoch being reported
        self._out: set[int] = set()  # lanes that are done (diverged, pruned, at their target)

    def lane(self, k: int) -> _Lane:
        return _Lane(self, k)

    def lane_recorded(self, k: int, recorder, row: dict) -> None:
        self._reports.append((k, recorder, row))
        if recorder.diverged_at is not None:
            self.say(
                f"{self._where(recorder.diverged_at)}: member {self.first_index + k} "
                f"({self.names[k]}) diverged (train_loss {row['train_loss']})"
            )
        if len(self._reports) < len(self.names) - len(self._out):
            return
        reports, self._reports = self._reports, []
        self._out |= {k for k, recorder, _ in reports if recorder.done}
        self._epoch_done(reports)

    def lane_pruned(self, k: int) -> None:
        self._out.add(k)

    def _epoch_done(self, reports: list) -> None:
        live = [(k, rec, row) for k, rec, row in reports if not rec.done]
        evaluated = [(k, rec) for k, rec, _ in live if rec.last_eval.get("step") == rec.steps_done]
        scored = [(k, rec) for k, rec in evaluated if _finite(rec.last_eval.get("val_accuracy"))]
        top = max(scored, key=lambda e: e[1].last_eval["val_accuracy"], default=None)
        if self.bar is not None:
            postfix = {"live": f"{len(self.names) - len(self._out)}/{len(self.names)}"}
            if live:
                postfix["loss"] = f"{min(row['train_loss'] for _, _, row in live):.4g}"
            if top is not None:
                postfix["best_val_acc"] = f"{top[1].last_eval['val_accuracy']:.4f}"
            self.bar.set_postfix(postfix, refresh=False)
            self.bar.update(1)
        if not evaluated:
            return
        step = max(rec.steps_done for _, rec in evaluated)
        losses = [row["train_loss"] for _, _, row in live]
        val_losses = [rec.last_eval.get("val_loss") for _, rec in evaluated]
        accuracies = [rec.last_eval.get("val_accuracy") for _, rec in evaluated]
        text = f"{self._where(step)}: {len(live)} of {len(self.names)} members training"
        text += f", train_loss {_span(losses)}, val_loss {_span(val_losses)}"
        text += f", val_accuracy {_span(accuracies, '.4f')}"
        if top is not None:
            text += f" (highest: {self.names[top[0]]})"
        self.say(f"{text}, {self._pace(step, live[0][2]['elapsed_s'])}")

    def end_members(self, summaries: Sequence[Mapping]) -> None:
        """The chunk's end line: statuses, the best member, steps, wall time."""
        self.close()
        statuses: dict[str, int] = {}
        for summary in summaries:
            statuses[summary["status"]] = statuses.get(summary["status"], 0) + 1
        last = self.first_index + len(summaries) - 1
        text = f"end: members {self.first_index}-{last}: " + ", ".join(
            f"{n} {status}" for status, n in statuses.items()
        )
        ranked = [(k, s) for k, s in enumerate(summaries) if _finite(best(s, "val_accuracy"))]
        if ranked:
            k, summary = max(ranked, key=lambda e: best(e[1], "val_accuracy"))
            text += f"; best val_accuracy {best(summary, 'val_accuracy'):.4f} ({self.names[k]})"
            if final(summary, "test_accuracy") is not None:
                text += f", its test_accuracy {final(summary, 'test_accuracy'):.4f}"
        steps = max(summary["steps"] for summary in summaries)
        self.say(f"{text}; {steps} steps, wall {summaries[0]['wall_s']:.1f}s")


class _Lane:
    """Member ``k``'s ``Recorder.progress``: reports to the chunk's one progress."""

    def __init__(self, members: MembersProgress, k: int) -> None:
        self.members, self.k = members, k

    def recorded(self, recorder, row: dict) -> None:
        self.members.lane_recorded(self.k, recorder, row)

    def pruned(self) -> None:
        """Its member left the program without a row (successive halving)."""
        self.members.lane_pruned(self.k)


def _finite(value) -> bool:
    return value is not None and math.isfinite(value)


def _span(values: list, spec: str = ".4g") -> str:
    """``low..high`` of the finite values (``nan`` when none is)."""
    finite = [v for v in values if _finite(v)]
    if not finite:
        return "nan"
    low, high = min(finite), max(finite)
    return f"{low:{spec}}" if low == high else f"{low:{spec}}..{high:{spec}}"


def _devices(setup, members: bool = False) -> str:
    """``on cpu: 1 x cpu, no mesh`` (backend, device kind and count, mesh, processes)."""
    import jax

    shape = setup.layout(members).shape
    count = 1 if shape is None else math.prod(shape.values())
    mesh = "no mesh" if shape is None else "mesh " + " ".join(f"{k}={v}" for k, v in shape.items())
    processes = jax.process_count()
    text = f"on {setup.device.platform}: {count} x {setup.device.device_kind}, {mesh}"
    return text + (f", {processes} processes" if processes > 1 else "")


def _what(cfg, lr: bool = True) -> str:
    """``experiment=toy model=mlp dataset=digits optimizer=adam lr=0.001 schedule=constant``
    (``lr``: whether to name it; a sweep names its members' values instead)."""
    experiment = _experiment()
    parts = [f"experiment={experiment}"] if experiment else []
    parts += [f"model={cfg.model.name}", f"dataset={cfg.dataset.name}"]
    parts.append(f"optimizer={cfg.optimizer.name}")
    if lr:
        parts.append(f"lr={_number(cfg.optimizer.lr)}")
    parts.append(f"schedule={cfg.schedule.name}")
    return " ".join(parts)


def _plan(plan) -> str:
    return (
        f"{plan.n_epochs} epochs of {plan.steps_per_epoch} steps "
        f"({plan.total_steps} steps, batch {plan.batch_size})"
    )


def _console(cfg, quiet: bool) -> str:
    from lrbench.train.distributed import is_writer

    return console_mode(cfg.train.progress, quiet) if is_writer() else OFF


def for_run(setup, run_dir: Path, quiet: bool, before: Mapping) -> RunProgress:
    """A run's progress, its start line said. ``before``: the checkpoint's progress record
    it resumes from (empty for a fresh run)."""
    cfg, plan = setup.cfg, setup.plan
    kept = before.get("recorder", {})
    progress = RunProgress(
        _console(cfg, quiet),
        plan,
        epochs_done=before.get("epochs_done", 0),
        start_step=kept.get("steps_done", 0),
        start_elapsed=kept.get("elapsed_s", 0.0),
    )
    begin = f"start {cfg.name}" if not kept else f"resume {cfg.name} at step {kept['steps_done']}"
    progress.say(
        f"{begin}: {_what(cfg)} seed={cfg.seed}, "
        f"{_plan(plan)}; run dir {run_dir}; {_devices(setup)}"
    )
    return progress


def for_members(setup, chunk: Sequence, sweep_dir: Path, before: Mapping) -> MembersProgress:
    """A vmap sweep chunk's progress (``chunk``: its members, ``lrbench.sweep.members``),
    its start line said. ``before``: the chunk's checkpoint's progress record, or empty."""
    cfg, plan = setup.cfg, setup.plan
    values = [member.values for member in chunk]
    keys = varying_keys(values)
    kept = [m["recorder"] for m in before.get("members", [])]
    start_step = max((r["steps_done"] for r in kept), default=0)
    progress = MembersProgress(
        _console(cfg, _in_multirun()),
        plan,
        [label(v, keys) for v in values],
        chunk[0].index,
        epochs_done=before.get("epochs_done", 0),
        start_step=start_step,
        start_elapsed=max((r["elapsed_s"] for r in kept), default=0.0),
    )
    axes = {k: sorted({v[k] for v in values}) for k in keys}
    swept = ", ".join(
        f"{short_key(k)} {_number(vs[0])}..{_number(vs[-1])} x{len(vs)}"
        if len(vs) > 1
        else f"{short_key(k)} {_number(vs[0])}"
        for k, vs in axes.items()
    )
    begin = "start" if not kept else f"resume at step {start_step}:"
    progress.say(
        f"{begin} vmap sweep members {chunk[0].index}-{chunk[-1].index} ({swept}): "
        f"{_what(cfg, lr=False)}, {_plan(plan)}; sweep dir {sweep_dir}; {_devices(setup, True)}"
    )
    return progress


def _in_multirun() -> bool:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    except Exception:
        return False
