"""One (problem, optimizer) unit of a study: tune, select, confirm; ``unit.json``.

The tuning phase is the LR grid x tune seeds as one vmap sweep (``<unit>/tune/``, pruned by
successive halving when the study asks), the LR is chosen on the mean validation value
over the seeds, and the confirmation phase trains that LR x confirm seeds as a second vmap
sweep (``<unit>/confirm/``) with the problem's target. Learning-rate-free optimizers skip
the grid (tuning cost 0); ``optimizer.lr=auto`` runs the LR range test instead (its steps
are the tuning cost). Every member is a normal run directory.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hydra import compose
from omegaconf import DictConfig, OmegaConf

from lrbench.config import Config, resolved_dict, to_run_config
from lrbench.config.study import ConfirmLanes, StudyAppConfig
from lrbench.errors import ConfigError
from lrbench.study import analysis
from lrbench.summary import DIVERGED, PRUNED
from lrbench.sweep import member_dir

log = logging.getLogger("lrbench")
UNIT_FILE = "unit.json"
GRID, FREE, AUTO = "grid", "free", "auto"


def grid(app: StudyAppConfig) -> list[float]:
    """The study's log-spaced LRs, rounded to 4 significant digits (as a user types them)."""
    study = app.study
    values = np.geomspace(study.lr_min, study.lr_max, study.points)
    return [float(f"{v:.4g}") for v in values]


@dataclass(frozen=True)
class UnitOverrides:
    """A unit's ``lrbench train`` overrides: the problem's (its experiment preset and
    overrides) and the optimizer entry's (``optimizer=<entry>`` or a variant's)."""

    problem: tuple[str, ...]
    optimizer: tuple[str, ...]


def unit_overrides(app: StudyAppConfig, problem: str, entry: str) -> UnitOverrides:
    study = app.study
    return UnitOverrides(
        problem=(
            f"experiment={problem}",
            *study.overrides_of_problem(problem),
            "train.progress=off",
            f"train.norms={study.norms.value}",
            "sweep=vmap",  # each phase sets its LRs, seeds and target: unit_config's values
        ),
        optimizer=tuple(study.overrides_of_optimizer(entry)),
    )


@functools.lru_cache(maxsize=128)
def _composed(overrides: tuple[str, ...]) -> DictConfig:
    """Hydra's compose (the running app's search path): ~0.4 s each, so a unit composes
    each part once, and a study checked up front in this process composes none again."""
    return compose(config_name="config", overrides=list(overrides))


# Optimizer keys that belong to the problem (DeepOBS fixes them per problem): kept from its
# preset when the entry's overrides do not set them.
PROBLEM_KEYS = ("weight_decay", "grad_clip_norm")


def unit_config(overrides: UnitOverrides, values: dict | None = None) -> tuple[Config, dict]:
    """``lrbench train``'s config of a unit, with ``values`` (dotted key -> value) set,
    typed and range-checked, and as config.yaml records it. The optimizer is the entry's own
    (its defaults and overrides): a problem preset's optimizer settings (digits_cnn's
    Nesterov momentum, toy's lr 0.1) are for its optimizer, not the unit's, but for
    ``PROBLEM_KEYS``."""
    cfg = copy.deepcopy(_composed(overrides.problem))
    optimizer = copy.deepcopy(_composed(overrides.optimizer).optimizer)
    set_by_entry = {o.split("=", 1)[0].removeprefix("optimizer.") for o in overrides.optimizer}
    for key in PROBLEM_KEYS:
        if key not in set_by_entry:
            optimizer[key] = cfg.optimizer[key]
    cfg.optimizer = optimizer
    for key, value in (values or {}).items():
        OmegaConf.update(cfg, key, value)
    return to_run_config(cfg), resolved_dict(cfg)


def kind_of(app: StudyAppConfig, cfg: Config) -> str:
    if cfg.optimizer.lr_auto:
        return AUTO
    return FREE if cfg.optimizer.name in app.study.lr_free else GRID


def run_unit(app: StudyAppConfig, problem: str, entry: str, unit_dir: Path) -> dict:
    """Tune, select, confirm; ``unit.json`` (a resumed study reads a finished unit's)."""
    done = unit_dir / UNIT_FILE
    if app.resume is not None and done.exists():
        unit = json.loads(done.read_text())
        if unit["status"] == "completed":
            return unit
    study = app.study
    base = unit_overrides(app, problem, entry)
    cfg, _ = unit_config(base)
    kind = kind_of(app, cfg)
    unit: dict = {"problem": problem, "optimizer": entry, "how": kind}
    selection = {
        "metric": study.select.metric,
        "mode": study.select.mode.value,
        "higher_is_better": study.select.higher_is_better,
    }
    unit["selection"] = selection
    try:
        if kind == GRID:
            unit |= _tune(app, base, unit_dir / "tune")
        elif kind == AUTO:
            unit |= _range_test(cfg)
        else:
            unit |= _free(cfg)
        unit |= _confirm(
            app, problem, base, unit["lr"], unit_dir / "confirm", confirm_lanes(app, unit)
        )
        unit["status"] = "completed"
    except (ConfigError, ValueError) as error:
        # every LR diverged, the range test diverged too early: a result of this unit (a
        # row of the study), not the end of the study; a resumed study tries it again
        log.warning("%s/%s: %s", problem, entry, error)
        unit |= {"status": "failed", "error": str(error)}
    done.write_text(json.dumps(unit, indent=1) + "\n")
    return unit


def _sweep(base: list[str], values: dict, out_dir: Path, resume: bool) -> tuple[Config, list[dict]]:
    """A phase's vmap sweep (a resumed study goes on with it where one was started; one
    whose members do not match starts over) and its members' summaries."""
    from lrbench.sweep.vmap import run_vmap_sweep

    cfg, record = unit_config(base, values)
    if resume and (out_dir / "0" / "config.yaml").exists():
        try:
            return cfg, run_vmap_sweep(cfg, record, out_dir, resume=True)
        except ConfigError as error:
            log.warning("%s: starting the phase over (%s)", out_dir, error)
    return cfg, run_vmap_sweep(cfg, record, out_dir)


def _score(summary: dict, select: dict) -> float | None:
    where = summary.get("final" if select["mode"] == "final" else "best") or {}
    value = where.get(select["metric"])
    return value if value is not None and math.isfinite(value) else None


def _tune(app: StudyAppConfig, base: UnitOverrides, out_dir: Path) -> dict:
    study = app.study
    values = {
        "sweep.lr": grid(app),
        "sweep.seeds": study.tune_seeds,
        "seed": app.seed,
        "sweep.prune.name": study.prune.name.value,
        "sweep.prune.eta": study.prune.eta,
        "sweep.prune.metric": study.prune.metric,
    }
    _, summaries = _sweep(base, values, out_dir, app.resume is not None)
    select = {"metric": study.select.metric, "mode": study.select.mode.value}
    higher = study.select.higher_is_better
    trials = [
        analysis.Trial(
            lr=s["sweep"]["values"]["optimizer.lr"],
            seed=s["sweep"]["values"]["seed"],
            score=_score(s, select),
            diverged=s["status"] == DIVERGED,
            steps=s["steps"],
        )
        for s in summaries
    ]
    # a pruned setting's value is of an earlier epoch: it takes no part in the choice
    finished = [t for t, s in zip(trials, summaries, strict=True) if s["status"] != PRUNED]
    points = analysis.sensitivity(trials, higher)
    # each member is a trial (a random draw of LR and seed); a diverged one scores the worst
    ks = analysis.trial_counts(len(trials))
    scores = analysis.trial_scores(trials, higher)
    lane_steps = {s["sweep"].get("lane_steps") for s in summaries} - {None}
    return {
        "lr": analysis.select_lr(finished, higher),
        "sensitivity": [vars(p) for p in points],
        "tuneability": {
            "width_decades": analysis.tuneability_width(points, higher),
            "fraction_diverged": analysis.fraction_diverged(trials),
        },
        "expected_max": {"k": ks, "value": analysis.expected_max(scores, ks, higher)},
        "tuning_cost": {
            "member_steps": sum(t.steps for t in trials),
            "full_grid_member_steps": len(trials) * max(s["steps"] for s in summaries),
            "lane_steps": sum(lane_steps) if lane_steps else None,
            "pruned": sum(s["status"] == PRUNED for s in summaries),
        },
        "tune_dirs": [str(member_dir(out_dir, k)) for k in range(len(summaries))],
    }


def confirm_lanes(app: StudyAppConfig, unit: dict) -> int:
    """The confirmation program's lanes (``sweep.min_lanes``). ``study.confirm_lanes=tune``:
    as many as the tuning program's, which the compile cache holds by then, so the
    confirmation compiles nothing and computes the extra lanes instead (a choice of the
    config, not of measured times: the lane count changes float rounding, and the same
    study must give the same numbers); ``seeds``: one per confirmation seed (0)."""
    if app.study.confirm_lanes is ConfirmLanes.seeds or "tune_dirs" not in unit:
        return 0
    return len(unit["tune_dirs"])


def _range_test(cfg: Config) -> dict:
    from lrbench.lr_find.range_test import choose_lr

    chosen, result = choose_lr(dataclasses.replace(cfg, sweep=None))  # one run's range test
    return {
        "lr": chosen.optimizer.lr,
        "range_test": result.summary(),
        "tuning_cost": {"member_steps": result.n_recorded},
        **_no_grid(),
    }


def _free(cfg: Config) -> dict:
    return {"lr": cfg.optimizer.lr, "tuning_cost": {"member_steps": 0}, **_no_grid()}


def _no_grid() -> dict:
    return {"sensitivity": [], "tuneability": None, "expected_max": {"k": [], "value": []}}


def _confirm(
    app: StudyAppConfig, problem: str, base: UnitOverrides, lr: float, out_dir: Path, lanes: int
) -> dict:
    study = app.study
    values = {
        "sweep.lr": [lr],
        "sweep.seeds": study.confirm_seeds,
        "seed": study.confirm_seed,
        "sweep.min_lanes": lanes,
    }
    value = study.target_of(problem)
    if value is not None:
        values |= {"train.target.metric": study.target_metric, "train.target.value": value}
    cfg, summaries = _sweep(base, values, out_dir, app.resume is not None)
    target = cfg.train.target
    finals = [s.get("final") or {} for s in summaries]
    reached = [s["target"] for s in summaries if s.get("target", {}).get("reached")]
    return {
        "confirm": {
            name: analysis.summarize([f.get(name) for f in finals])
            for name in ("test_accuracy", "test_loss", "val_accuracy", "val_loss")
        }
        | {"diverged": sum(s["status"] == DIVERGED for s in summaries)},
        "target": {
            "metric": target.metric,
            "value": target.value,
            "reached": len(reached),
            "of": len(summaries),
            # medians over the seeds; a seed that never reached it makes the median None
            # when it is half or more of them (not reached counts as infinitely slow)
            "steps_median": _median_reached([r["step"] for r in reached], len(summaries)),
            "seconds_median": _median_reached([r["loop_s"] for r in reached], len(summaries)),
        },
        "confirm_dirs": [str(member_dir(out_dir, k)) for k in range(len(summaries))],
    }


def _median_reached(values: list[float], n: int) -> float | None:
    """The median over n seeds where the missing ones never got there (+inf)."""
    padded = sorted(values) + [math.inf] * (n - len(values))
    median = float(np.median(padded)) if padded else math.inf
    return median if math.isfinite(median) else None
