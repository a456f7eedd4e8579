"""``lrbench study``: the study as a Hydra multirun, one job per (problem, optimizer) unit.

``study()`` checks the whole study up front (every unit's config composes and validates:
bad input is one line and exit 2 before anything is written), then runs the Hydra app
``study_unit`` with ``-m unit=<problem>/<optimizer>,...``: Hydra's launchers (basic,
joblib, Ray, SLURM) spread the units like any sweep. When the multirun ends,
``StudyCallback`` writes the study's tables, plots and page in the study directory.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lrbench.config import register_schemas
from lrbench.config.study import StudyAppConfig
from lrbench.errors import BadInputExit, ConfigError
from lrbench.paths import conf_dir

register_schemas()
STUDIES = Path("runs/study")  # hydra.sweep.dir's parent in conf/study.yaml


def study(args: list[str]) -> None:
    """``lrbench study [overrides]``: check everything, then run the units as a multirun."""
    args = [a for a in args if a not in ("-m", "--multirun")]
    app, units = check_study(args)
    sys.argv = ["lrbench study", "-m", *args, f"unit={','.join(units)}"]
    if app.resume is not None and not any(a.startswith("hydra.sweep.dir=") for a in args):
        sys.argv.append(f"hydra.sweep.dir={_study_dir_to_resume(app)}")
    study_unit()


def check_study(args: list[str]) -> tuple[StudyAppConfig, list[str]]:
    """The typed study and its units (``problem/optimizer``); every unit's ``lrbench train``
    config composed and range-checked (ConfigError: the bad key, named)."""
    from hydra import compose, initialize_config_dir

    from lrbench.study.runner import unit_config, unit_overrides

    overrides = [a for a in args if not a.startswith(("hydra.", "hydra/", "--"))]
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        app = _typed(compose(config_name="study", overrides=overrides))
        _check_names(app)
        units = []
        for problem in app.study.problems:
            for entry in app.study.optimizers:
                unit_config(unit_overrides(app, problem, entry))
                units.append(f"{problem}/{entry}")
    return app, units


def _typed(cfg: DictConfig) -> StudyAppConfig:
    app = OmegaConf.to_object(cfg)
    assert isinstance(app, StudyAppConfig)
    return app


def _check_names(app: StudyAppConfig) -> None:
    """Problems are experiment presets; optimizers are options or named variants."""
    conf = conf_dir()
    presets = sorted(p.stem for p in (conf / "experiment").glob("*.yaml"))
    named = {
        "study.problems": app.study.problems,
        "study.problem_overrides": list(app.study.problem_overrides or {}),
        "study.targets": list(app.study.targets or {}),
    }
    for key, problems in named.items():
        for problem in problems:
            if problem not in presets:
                raise ConfigError(
                    key, problem, f"an experiment preset: one of {', '.join(presets)}"
                )
    options = sorted(
        p.stem for p in (conf / "optimizer").glob("*.yaml") if not p.stem.endswith("_schema")
    )
    variants = list(app.study.variants or {})
    for entry in app.study.optimizers:
        if entry not in options and entry not in variants:
            raise ConfigError(
                "study.optimizers",
                entry,
                f"an optimizer ({', '.join(options)}) or a name in study.variants "
                f"({', '.join(variants) or 'none'})",
            )


def _study_dir_to_resume(app: StudyAppConfig) -> Path:
    """``resume=<study dir>``, or ``resume=auto``: this study's newest directory."""
    if app.resume != "auto":
        path = Path(app.resume)
        if not path.is_dir():
            raise BadInputExit(ConfigError("resume", app.resume, "a study directory"))
        return path
    found = sorted((STUDIES / app.study.name).glob("*/"))
    if not found:
        raise BadInputExit(
            ConfigError("resume", "auto", f"no study of this name under {STUDIES / app.study.name}")
        )
    return found[-1]


@hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="study")
def study_unit(cfg: DictConfig) -> None:
    """One unit (``unit=<problem>/<optimizer>``): its result line."""
    from lrbench.study.runner import run_unit
    from lrbench.train_app import use_compile_cache

    out_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        app = _typed(cfg)
        if app.unit is None or app.unit.count("/") != 1:
            raise ConfigError("unit", app.unit, "set by lrbench study: <problem>/<optimizer>")
        problem, entry = app.unit.split("/")
        use_compile_cache(app.compile_cache)
        unit = run_unit(app, problem, entry, out_dir)
    except (ConfigError, OmegaConfBaseException) as error:
        raise BadInputExit(error) from error
    print(unit_line(unit), flush=True)


def unit_line(unit: dict) -> str:
    if unit["status"] != "completed":
        return f"{unit['problem']}/{unit['optimizer']}: {unit['status']}: {unit['error']}"
    confirm = unit["confirm"]["test_accuracy"]
    target = unit["target"]
    text = f"{unit['problem']}/{unit['optimizer']}: lr {unit['lr']:.4g} ({unit['how']})"
    if confirm["mean"] is not None:
        text += f", test_accuracy {confirm['mean']:.4f} +/- {confirm['std']:.4f}"
    if target["value"] is not None:
        steps = target["steps_median"]
        text += f", {target['metric']} {target['value']}: " + (
            f"{steps:g} steps" if steps is not None else "not reached"
        )
    return text + f", tuning {unit['tuning_cost']['member_steps']} member-steps"


class StudyCallback(Callback):
    """Writes study.csv, study.json, the plots and study.html once every unit has run."""

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        print(f"study {Path(config.hydra.sweep.dir).absolute()}", flush=True)

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        from lrbench.study.outputs import write_study

        study_dir = Path(config.hydra.sweep.dir).absolute()
        for path in write_study(
            study_dir, OmegaConf.to_container(config.study, resolve=True, enum_to_str=True)
        ):
            print(f"study results: {path}", flush=True)
