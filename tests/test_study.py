"""``lrbench study`` end to end on tiny settings: real Hydra multiruns, real vmap sweeps, real
run directories; the chosen LR and the table re-derived from the members' own files."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from stopped_runs import rows

from lrbench.cli import main
from lrbench.runs import read_summary

TINY = (
    "study.problems=[toy]",
    "study.points=3",
    "study.lr_min=1e-3",
    "study.lr_max=1e3",  # sgd diverges at 1e3: a result, not a stop
    "study.tune_seeds=2",
    "study.confirm_seeds=2",
    "study.problem_overrides={toy:['train.epochs=3','train.log_every=20','model.activation=relu']}",
)


def study_rows(study_dir) -> dict[str, dict]:
    """study.csv by optimizer, less the wall-clock column."""
    with open(study_dir / "study.csv") as f:
        rows = {row["optimizer"]: row for row in csv.DictReader(f)}
    return {name: {**row, "seconds_to_target": None} for name, row in rows.items()}


def test_study_end_to_end(tmp_path, capsys):
    code = main(
        ["study", *TINY, "study.optimizers=[sgd,prodigy,adam_auto]", f"hydra.sweep.dir={tmp_path}"]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert f"study results: {tmp_path / 'study.csv'}" in out
    table = study_rows(tmp_path)
    assert {k: v["how"] for k, v in table.items()} == {
        "sgd": "grid",
        "prodigy": "free",
        "adam_auto": "auto",
    }
    units = {u["optimizer"]: u for u in json.loads((tmp_path / "study.json").read_text())["units"]}

    # the grid: 3 LRs x 2 seeds, every member a run directory; 1e3 diverged in both seeds
    sgd = units["sgd"]
    summaries = [read_summary(d) for d in sgd["tune_dirs"]]
    assert len(summaries) == 6
    by_lr: dict[float, list] = {}
    for s in summaries:
        by_lr.setdefault(s["sweep"]["values"]["optimizer.lr"], []).append(s)
    assert sorted(by_lr) == [1e-3, 1.0, 1e3]
    assert [s["status"] for s in by_lr[1e3]] == ["diverged", "diverged"]
    assert float(table["sgd"]["fraction_diverged"]) == pytest.approx(2 / 6)
    # the choice, recomputed from the members' summaries: the best mean final val_accuracy
    means = {
        lr: np.mean([s["final"]["val_accuracy"] for s in group])
        for lr, group in by_lr.items()
        if lr != 1e3
    }
    assert sgd["lr"] == max(means, key=means.get)
    assert float(table["sgd"]["lr"]) == sgd["lr"]
    assert int(table["sgd"]["tuning_member_steps"]) == sum(s["steps"] for s in summaries)

    # the confirmation: the chosen LR with seeds 1000, 1001; its test accuracy mean in the table
    confirm = [read_summary(d) for d in sgd["confirm_dirs"]]
    assert [s["sweep"]["values"]["seed"] for s in confirm] == [1000, 1001]
    assert {s["sweep"]["values"]["optimizer.lr"] for s in confirm} == {sgd["lr"]}
    expected = np.mean([s["final"]["test_accuracy"] for s in confirm])
    assert float(table["sgd"]["test_accuracy_mean"]) == pytest.approx(expected, rel=1e-5)
    # the target (toy: val_accuracy >= 0.95) as each confirmation run recorded it
    reached = [s["target"]["step"] for s in confirm if s["target"]["reached"]]
    assert table["sgd"]["target_reached"] == f"{len(reached)}/2"

    # free: prodigy at its own lr (1.0), not the toy preset's 0.1, and no tuning
    assert units["prodigy"]["lr"] == 1.0
    assert int(table["prodigy"]["tuning_member_steps"]) == 0
    # auto: the range test's steps are its tuning cost
    assert units["adam_auto"]["tuning_cost"]["member_steps"] == 100
    for name in ("sensitivity_toy", "curves_toy", "expected_max_toy", "performance_profile"):
        assert (tmp_path / f"{name}.png").stat().st_size > 0
    html = (tmp_path / "study.html").read_text()
    assert html.count("data:image/png;base64,") == 4 and "adam_auto" in html
    # every member is a run that compare reads
    assert main(["compare", str(tmp_path / "toy" / "sgd"), "-o", str(tmp_path / "c.csv")]) == 0
    with open(tmp_path / "c.csv") as f:
        assert len(list(csv.DictReader(f))) == 8


def lrbench_study(cwd, *args: str, fault: str | None = None):
    env = dict(os.environ)
    env.pop("LRBENCH_FAULT", None)
    if fault:
        env["LRBENCH_FAULT"] = fault
    return subprocess.run(
        [sys.executable, "-m", "lrbench.cli", "study", *TINY, "study.optimizers=[sgd,adam]", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_killed_study_resumes_to_the_uninterrupted_results(tmp_path):
    reference = lrbench_study(tmp_path, "hydra.sweep.dir=reference")
    assert reference.returncode == 0, reference.stderr[-2000:]
    # epochs count over the process: sgd's tuning (3) and confirmation (3), then adam's 2nd
    killed = lrbench_study(tmp_path, "hydra.sweep.dir=study", fault="epoch:8:KILL")
    assert killed.returncode == -signal.SIGKILL
    study = tmp_path / "study"
    finished = (study / "toy" / "sgd" / "unit.json").stat().st_mtime_ns
    assert not (study / "toy" / "adam" / "unit.json").exists()
    resumed = lrbench_study(tmp_path, f"resume={study}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (study / "toy" / "sgd" / "unit.json").stat().st_mtime_ns == finished  # skipped
    assert study_rows(study) == study_rows(tmp_path / "reference")
    for phase in ("tune", "confirm"):
        for member in (study / "toy" / "adam" / phase).iterdir():
            if member.name.isdigit():
                same = tmp_path / "reference" / "toy" / "adam" / phase / member.name
                assert rows(member) == rows(same)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("study.problems=[nope]", "study.problems=nope: an experiment preset: one of"),
        ("study.optimizers=[adamx]", "study.optimizers=adamx: an optimizer ("),
        ("study.lr_max=1e-5", "study.lr_max=1e-05: must be > study.lr_min"),
        ("study.select.metric=accuracy", "study.select.metric=accuracy: must be one of"),
        ("study.prune.eta=1", "study.prune.eta=1: must be an integer >= 2"),
        ("+study.variants.bad=['optimizer=adam','optimizer.lr=-1']", "optimizer.lr=-1"),
        ("study.targets={toy:high}", "study.targets="),
    ],
)
def test_bad_studies_are_one_line_errors_before_anything_runs(override, message, tmp_path, capsys):
    optimizers = "[sgd,bad]" if "variants" in override else "[sgd]"
    args = ["study", *TINY, override, f"hydra.sweep.dir={tmp_path / 'study'}"]
    if "optimizers" not in override:
        args.append(f"study.optimizers={optimizers}")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "study").exists()


def test_units_spread_over_a_hydra_launcher(tmp_path):
    """Each unit a job of the joblib launcher (parallel processes); the tables when all end."""
    done = lrbench_study(tmp_path, "hydra/launcher=parallel", "hydra.sweep.dir=study")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Joblib.Parallel" in done.stdout + done.stderr
    assert set(study_rows(tmp_path / "study")) == {"sgd", "adam"}
    for unit in ("sgd", "adam"):
        confirm = tmp_path / "study" / "toy" / unit / "confirm" / "1"
        assert read_summary(confirm)["status"] == "completed"


def test_a_unit_whose_every_lr_diverges_is_a_failed_row(tmp_path):
    grid = ("study.lr_min=1e4", "study.lr_max=1e5", "study.points=2")
    tiny = [a for a in TINY if not a.startswith(("study.lr_", "study.points"))]
    assert (
        main(["study", *tiny, *grid, "study.optimizers=[sgd]", f"hydra.sweep.dir={tmp_path}"]) == 0
    )
    row = study_rows(tmp_path)["sgd"]
    assert row["status"] == "failed" and "diverged" in row["error"]
    tune = [read_summary(tmp_path / "toy" / "sgd" / "tune" / str(k)) for k in range(4)]
    assert {s["status"] for s in tune} == {"diverged"}


@pytest.mark.parametrize("preset", ["quick", "deepobs"])
def test_every_preset_and_its_units_compose(preset):
    from lrbench.study.app import check_study

    app, units = check_study([f"study={preset}"])
    assert app.study.name == preset
    assert len(units) == len(app.study.problems) * len(app.study.optimizers)


def test_a_pruned_study_chooses_among_the_settings_that_trained_to_the_end(tmp_path):
    pruning = ("study.prune.name=halving", "study.prune.eta=2")
    assert (
        main(["study", *TINY, "study.optimizers=[sgd]", *pruning, f"hydra.sweep.dir={tmp_path}"])
        == 0
    )
    unit = json.loads((tmp_path / "toy" / "sgd" / "unit.json").read_text())
    summaries = [read_summary(d) for d in unit["tune_dirs"]]
    statuses = {s["sweep"]["values"]["optimizer.lr"]: s["status"] for s in summaries}
    assert sorted(set(statuses.values())) == ["completed", "diverged", "pruned"]
    assert statuses[unit["lr"]] == "completed"
    cost = unit["tuning_cost"]
    assert cost["member_steps"] == sum(s["steps"] for s in summaries)
    assert cost["member_steps"] < cost["full_grid_member_steps"]
    assert cost["pruned"] == 2
