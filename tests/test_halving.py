"""Successive halving inside a vmap sweep (``sweep.prune.name=halving``): the rungs, the
survivors (ranked again here from the unpruned sweep's own metrics.csv), and survivors whose
numbers equal the unpruned sweep's members' while the pruned ones stop at their rung.
(The rung schedule's choice of LR against the full grid's is measured in the bench.)"""

from __future__ import annotations

import numpy as np
import pytest

from lrbench.cli import main
from lrbench.runs import read_metrics, read_summary
from lrbench.sweep.halving import bucket, rung_epochs

LRS = [0.003, 0.01, 0.03, 0.1]
SWEEP = (
    "experiment=toy",
    "sweep=vmap",
    f"sweep.lr=[{','.join(map(str, LRS))}]",
    "sweep.seeds=2",
    "train.epochs=8",
    "train.log_every=43",
    "train.progress=off",
)
STEPS_PER_EPOCH = 43  # toy: 1400 training examples / batch 32


@pytest.mark.parametrize(
    ("settings", "eta", "epochs", "eval_every", "ends"),
    [
        (9, 3, 30, 1, [3]),  # 9 -> 3 at E/9; the 3 train to the end
        (7, 3, 30, 1, [3]),  # 7 -> 3
        (27, 3, 54, 1, [2, 6]),  # 27 -> 9 at E/27, 9 -> 3 at E/9
        (3, 3, 30, 1, []),  # eta settings or fewer: no rung
        (1, 3, 30, 1, []),
        (9, 3, 3, 1, [1]),
        (27, 3, 30, 2, [2, 4]),  # on evaluation epochs
        (4, 2, 8, 1, [2]),
        (8, 2, 2, 1, [1]),  # E/8 and E/4 round to the same first epoch: one rung
    ],
)
def test_rung_epochs(settings, eta, epochs, eval_every, ends):
    assert rung_epochs(settings, eta, epochs, eval_every) == ends


@pytest.mark.parametrize(
    ("n", "groups", "lanes"), [(1, 1, 1), (3, 1, 4), (4, 1, 4), (5, 2, 8), (1, 4, 4), (3, 3, 6)]
)
def test_member_counts_are_bucketed(n, groups, lanes):
    assert bucket(n, groups) == lanes


def mean_at(run_dirs, metric: str, step: int) -> float:
    return float(
        np.mean([next(r[metric] for r in read_metrics(d) if r["step"] == step) for d in run_dirs])
    )


def test_halving_keeps_the_best_settings_with_the_unpruned_numbers(tmp_path):
    full, halved = tmp_path / "full", tmp_path / "halved"
    assert main(["train", *SWEEP, f"hydra.run.dir={full}"]) == 0
    pruning = ("sweep.prune.name=halving", "sweep.prune.eta=2", "sweep.prune.metric=val_loss")
    assert main(["train", *SWEEP, *pruning, f"hydra.run.dir={halved}"]) == 0

    # the ranking, redone from the unpruned sweep's files: 4 settings -> 2 at epoch 2 (E/4)
    members = {lr: [full / str(2 * i), full / str(2 * i + 1)] for i, lr in enumerate(LRS)}
    kept = sorted(LRS, key=lambda lr: mean_at(members[lr], "val_loss", 2 * STEPS_PER_EPOCH))[:2]
    for i, lr in enumerate(LRS):
        for seed in range(2):
            member = 2 * i + seed
            pruned = read_summary(halved / str(member))
            ran = read_metrics(halved / str(member))
            reference = read_metrics(full / str(member))
            if lr in kept:
                assert pruned["status"] == "completed"
                assert len(ran) == len(reference)
            else:
                at = 2 * STEPS_PER_EPOCH
                assert pruned["status"] == "pruned"
                assert pruned["pruned_at_step"] == pruned["steps"] == at
                assert ran[-1]["step"] == at
            # the rows it has are the unpruned member's (a smaller program, the same lanes)
            for got, want in zip(ran, reference[: len(ran)], strict=True):
                for key in ("train_loss", "val_loss", "val_accuracy", "grad_norm"):
                    assert got[key] == pytest.approx(want[key], rel=1e-5, abs=1e-7), key
    # lanes computed: 8 for 2 epochs, then the 4 members of the 2 settings kept for 6
    lane_steps = (8 * 2 + 4 * 6) * STEPS_PER_EPOCH
    assert read_summary(halved / "0")["sweep"]["lane_steps"] == lane_steps
    assert read_summary(halved / "0")["sweep"]["rungs"] == [2]
