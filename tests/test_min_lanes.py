"""``sweep.min_lanes``: padded program lanes that let a smaller sweep reuse a larger one's
compiled program (lrbench study's confirmation phase, ``study.confirm_lanes=tune``) with
the members' numbers and files unchanged; and ``train.norms``, which steps compute the
norms."""

from __future__ import annotations

import csv

import pytest

from lrbench.cli import main
from lrbench.runs import read_metrics, read_summary
from lrbench.sweep.index import SweepIndex

TOY = ("experiment=toy", "train.epochs=3", "train.log_every=43", "train.progress=off")
SWEEP = (*TOY, "sweep=vmap", "sweep.lr=[0.01,0.1]", "seed=7")


def test_padded_lanes_leave_the_members_numbers_and_files_as_they_were(tmp_path):
    plain, padded = tmp_path / "plain", tmp_path / "padded"
    assert main(["train", *SWEEP, f"hydra.run.dir={plain}"]) == 0
    assert main(["train", *SWEEP, "sweep.min_lanes=5", f"hydra.run.dir={padded}"]) == 0
    assert sorted(p.name for p in padded.iterdir() if p.name.isdigit()) == ["0", "1"]
    assert len(SweepIndex(padded).read()) == 2
    for member in ("0", "1"):
        summary = read_summary(padded / member)
        assert summary["sweep"]["lanes"] == 5 and summary["sweep"]["members"] == 2
        assert "lanes" not in read_summary(plain / member)["sweep"]
        got, want = read_metrics(padded / member), read_metrics(plain / member)
        assert len(got) == len(want)
        for a, b in zip(got, want, strict=True):
            for key in ("train_loss", "val_loss", "val_accuracy", "grad_norm", "lr"):
                assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-7), key


def test_a_smaller_padded_sweep_reuses_the_larger_ones_compiled_program(tmp_path):
    cache = f"compile_cache={tmp_path / 'cache'}"
    big = ("sweep.lr=[0.001,0.01,0.1,1.0]",)
    assert main(["train", *SWEEP, *big, cache, f"hydra.run.dir={tmp_path / 'big'}"]) == 0
    small = ("sweep.lr=[0.03]", "sweep.seeds=2", "sweep.min_lanes=4")
    assert main(["train", *SWEEP, *small, cache, f"hydra.run.dir={tmp_path / 'small'}"]) == 0
    compiled = read_summary(tmp_path / "big" / "0")["compile_s"]
    reused = read_summary(tmp_path / "small" / "0")["compile_s"]
    assert reused < compiled / 4  # read from the cache, not compiled again


def test_a_pruned_sweep_with_padded_lanes_prunes_its_members_only(tmp_path):
    pruning = ("sweep.prune.name=halving", "sweep.prune.eta=2", "train.epochs=4")
    lrs = "sweep.lr=[0.001,0.01,0.1]"
    run = tmp_path / "run"
    assert main(["train", *SWEEP, lrs, *pruning, "sweep.min_lanes=4", f"hydra.run.dir={run}"]) == 0
    statuses = [read_summary(run / str(k))["status"] for k in range(3)]
    assert sorted(statuses) == ["completed", "completed", "pruned"]
    # 4 lanes for the first rung's epoch, then the 2 settings kept (bucketed: 2 lanes)
    assert read_summary(run / "0")["sweep"]["lane_steps"] == (4 * 1 + 2 * 3) * 43


def test_min_lanes_below_zero_is_refused_in_one_line(cli, tmp_path):
    result = cli("train", *SWEEP, "sweep.min_lanes=-1", f"hydra.run.dir={tmp_path / 'r'}")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "sweep.min_lanes" in result.stderr
    assert not (tmp_path / "r").exists()


STUDY = (
    "study.problems=[toy]",
    "study.optimizers=[sgd]",
    "study.points=3",
    "study.tune_seeds=2",
    "study.confirm_seeds=2",
    "study.problem_overrides={toy:['train.epochs=2','train.log_every=43']}",
)


@pytest.mark.parametrize(("choice", "lanes"), [("tune", 6), ("seeds", None)])
def test_a_study_confirms_in_the_tuning_programs_lanes_when_told_to(tmp_path, choice, lanes):
    cache = f"compile_cache={tmp_path / 'cache'}"
    args = ["study", *STUDY, f"study.confirm_lanes={choice}", cache, f"hydra.sweep.dir={tmp_path}"]
    assert main(args) == 0
    confirm = tmp_path / "toy" / "sgd" / "confirm"
    assert {read_summary(confirm / m)["sweep"].get("lanes") for m in ("0", "1")} == {lanes}
    tune_compile = read_summary(tmp_path / "toy" / "sgd" / "tune" / "0")["compile_s"]
    if choice == "tune":  # the tuning program, from the cache
        assert read_summary(confirm / "0")["compile_s"] < tune_compile / 4
    rows = list(csv.DictReader((confirm / "0" / "metrics.csv").open()))
    assert all(row["grad_norm"] for row in rows)  # study.norms=every_step: on every row


@pytest.mark.parametrize("loop", ["scan", "step"])
def test_train_norms_chooses_the_steps_that_compute_them_not_the_numbers(tmp_path, loop):
    """epoch_end: on each epoch's last row; every_step: on every row (each row's last
    step's); off: none. The training numbers stay those of epoch_end's run."""
    runs = {}
    for norms in ("epoch_end", "every_step", "off"):
        run = tmp_path / norms
        args = [*TOY, "train.log_every=10", f"train.loop={loop}", f"train.norms={norms}"]
        assert main(["train", *args, f"hydra.run.dir={run}"]) == 0
        runs[norms] = read_metrics(run)
    reference = runs["epoch_end"]
    epoch_ends = {43, 86, 129}
    for norms, rows in runs.items():
        assert [r["step"] for r in rows] == [r["step"] for r in reference]
        for got, want in zip(rows, reference, strict=True):
            for key in ("train_loss", "val_loss", "test_accuracy"):
                assert got[key] == (want[key] and pytest.approx(want[key], rel=1e-6)), key
            has = {k for k in ("grad_norm", "update_norm", "param_norm") if got[k] is not None}
            expected = {
                "epoch_end": got["step"] in epoch_ends,
                "every_step": True,
                "off": False,
            }[norms]
            assert has == ({"grad_norm", "update_norm", "param_norm"} if expected else set())
            if got["step"] in epoch_ends and norms == "every_step":
                assert got["grad_norm"] == pytest.approx(want["grad_norm"], rel=1e-5)
