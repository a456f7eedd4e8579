"""``train.target``: time to a validation target (AlgoPerf), checked against the run's own
metrics.csv; ``train.target.stop`` ends the run (a sweep member) there."""

from __future__ import annotations

import pytest

from lrbench.cli import main
from lrbench.runs import read_metrics, read_summary

TOY = ("experiment=toy", "train.epochs=6", "train.log_every=43", "train.progress=off")


def first_reaching(run_dir, metric: str, value: float) -> int | None:
    for row in read_metrics(run_dir):
        if row.get(metric) is not None and row[metric] >= value:
            return int(row["step"])
    return None


def test_target_is_the_first_evaluation_at_it_and_stop_ends_the_run(tmp_path):
    go_on, stop = tmp_path / "go_on", tmp_path / "stop"
    target = ("train.target.metric=val_accuracy", "train.target.value=0.9")
    assert main(["train", *TOY, *target, f"hydra.run.dir={go_on}"]) == 0
    assert main(["train", *TOY, *target, "train.target.stop=true", f"hydra.run.dir={stop}"]) == 0
    step = first_reaching(go_on, "val_accuracy", 0.9)
    assert step is not None and step < 6 * 43
    summary = read_summary(go_on)
    reached = summary["target"]
    assert reached["reached"] and reached["step"] == step and summary["steps"] == 6 * 43
    assert reached["metric_value"] >= 0.9
    assert 0 < reached["loop_s"] < reached["process_s"]  # the process started before the loop
    stopped = read_summary(stop)
    assert stopped["status"] == "completed" and stopped["steps"] == step
    log = (stop / "train.log").read_text()
    assert f"step {step}/{6 * 43}: target val_accuracy 0.9 reached after" in log
    assert stopped["target"]["step"] == step
    assert read_metrics(stop) == [
        {**row, "elapsed_s": r["elapsed_s"]}
        for row, r in zip(read_metrics(go_on), read_metrics(stop), strict=False)
    ]


def test_a_target_never_reached_is_recorded_as_such(tmp_path):
    target = ("train.target.metric=val_loss", "train.target.value=1e-9", "train.target.stop=true")
    assert main(["train", *TOY, *target, f"hydra.run.dir={tmp_path}"]) == 0
    summary = read_summary(tmp_path)
    assert summary["steps"] == 6 * 43
    assert summary["target"] | {"loop_s": None} == {
        "metric": "val_loss",
        "value": 1e-9,
        "reached": False,
        "step": None,
        "metric_value": None,
        "loop_s": None,
    }


def test_each_vmap_member_stops_at_its_own_target(tmp_path):
    sweep = ("sweep=vmap", "sweep.lr=[0.003,0.1]", "train.target.stop=true")
    target = ("train.target.metric=val_accuracy", "train.target.value=0.95")
    assert main(["train", *TOY, *sweep, *target, f"hydra.run.dir={tmp_path}"]) == 0
    for lr in (0, 1):
        single = tmp_path / f"single{lr}"
        member = tmp_path / str(lr)
        lr_value = ("0.003", "0.1")[lr]
        args = [*TOY, *target, f"optimizer.lr={lr_value}", f"hydra.run.dir={single}"]
        assert main(["train", *args]) == 0  # (no stop: where the target is first reached)
        step = first_reaching(single, "val_accuracy", 0.95)
        summary = read_summary(member)
        if step is None:
            assert summary["steps"] == 6 * 43 and not summary["target"]["reached"]
        else:
            assert summary["steps"] == summary["target"]["step"] == step


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.target.metric=val_acc", "train.target.value=0.9"], "must be one of val_accuracy"),
        (["train.target.metric=val_accuracy", "train.target.value=2"], "must be in [0, 1]"),
        (["train.target.value=null"], "train.target.value=None: must be set"),
        (["train.target.metric=null"], "train.target.metric=None: must be set"),  # toy sets 0.95
    ],
)
def test_bad_targets_are_one_line_errors(overrides, message, tmp_path, capsys):
    assert main(["train", *TOY, *overrides, f"hydra.run.dir={tmp_path / 'run'}"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
