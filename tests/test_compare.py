"""``lrbench compare``: hand-made run directories with known numbers, and a real sweep."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time

import numpy as np
import pytest
from fake_runs import beat, config, curve_rows, make_run, summary

from lrbench.analysis.table import EVERY_STATUS
from lrbench.cli import main
from lrbench.flat_config import flatten
from lrbench.runs import read_summary
from lrbench.summary import read_checked_summary

# (optimizer, lr) -> final val_accuracy of seeds 0, 1, 2 (None: that seed diverged)
KNOWN = {
    ("adam", 0.01): [0.90, 0.92, 0.97],
    ("adam", 0.1): [0.80, 0.85, 0.83],
    ("sgd", 0.01): [0.70, 0.72, 0.71],
    ("sgd", 0.1): [0.88, 0.86, None],
}
DIVERGED_VAL_ACCURACY = 0.5  # its last evaluation before diverging: never averaged in


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """runs/multirun/<date>/<time>/<job>/ with Hydra's multirun.yaml at the sweep root,
    plus a run still going (no summary.json) and a failed one."""
    sweep = tmp_path_factory.mktemp("runs") / "multirun" / "2026-01-01" / "12-00-00"
    base = {name: config(f"optimizer={name}") for name in ("adam", "sgd")}
    job = 0
    for (name, lr), values in KNOWN.items():
        for seed, value in enumerate(values):
            cfg = base[name] | {"seed": seed, "optimizer": base[name]["optimizer"] | {"lr": lr}}
            outcome = (
                summary("diverged", val_accuracy=DIVERGED_VAL_ACCURACY, steps=40)
                if value is None
                else summary(val_accuracy=value, best_val_accuracy=value + 0.01)
            )
            make_run(sweep / str(job), cfg, outcome)
            job += 1
    running = base["sgd"] | {"seed": 3, "optimizer": base["sgd"]["optimizer"] | {"lr": 0.1}}
    make_run(sweep / str(job), running, None, rows=curve_rows(27, 0.1))
    failed = base["adam"] | {"seed": 3, "optimizer": base["adam"]["optimizer"] | {"lr": 0.1}}
    make_run(sweep / str(job + 1), failed, {"status": "failed", "error": "RuntimeError: boom"})
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    return sweep


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def compare_csv(capsys, *args: str) -> list[dict[str, str]]:
    capsys.readouterr()
    assert main(["compare", *args, "-o", "-"]) == 0
    return _csv(capsys.readouterr().out)


def test_one_row_per_run_with_the_columns_that_vary_and_every_outcome(study, tmp_path):
    out = tmp_path / "results.csv"
    assert main(["compare", str(study.parents[2]), "-o", str(out)]) == 0
    rows = _csv(out.read_text())
    assert len(rows) == 14
    assert [r["run"] for r in rows] == [str(study / str(job)) for job in range(14)]  # 0, 1, .., 10
    columns = list(rows[0])
    for varying in ("name", "seed", "optimizer.name", "optimizer.lr", "optimizer.b1"):
        assert varying in columns
    for constant in ("model.name", "train.epochs", "dataset.name", "schedule.name"):
        assert constant not in columns
    for outcome in (
        "status",
        "steps",
        "val_accuracy",
        "best_val_accuracy",
        "best_val_accuracy_step",
        "wall_s",
        "steps_per_s",
        "diverged_at_step",
    ):
        assert outcome in columns
    first = rows[0]
    assert (first["optimizer.name"], float(first["optimizer.lr"]), first["seed"]) == (
        "adam",
        0.01,
        "0",
    )
    assert float(first["val_accuracy"]) == 0.90
    assert float(first["best_val_accuracy"]) == pytest.approx(0.91)
    assert first["steps"] == "90" and first["status"] == "completed"


def test_diverged_failed_and_running_runs_appear_with_their_status(study, capsys):
    rows = {r["run"].rsplit("/", 1)[1]: r for r in compare_csv(capsys, str(study))}
    assert rows["11"]["status"] == "diverged" and rows["11"]["diverged_at_step"] == "40"
    assert rows["12"]["status"] == "running"
    assert rows["12"]["steps"] == "27"  # how far metrics.csv got
    assert rows["12"]["val_accuracy"] == ""
    assert rows["13"]["status"] == "failed" and rows["13"]["error"] == "RuntimeError: boom"
    statuses = [r["status"] for r in rows.values()]
    assert statuses.count("completed") == 11


def test_range_test_directories_are_not_runs(study, capsys):
    lr_find = study / "lr_find"
    lr_find.mkdir()
    (lr_find / "config.yaml").write_text("name: digits-mlp-adam\n")
    (lr_find / "lr_find.csv").write_text("step,lr,loss,smoothed_loss\n")
    (lr_find / "summary.json").write_text('{"kind": "lr_find"}')
    runs = [r["run"] for r in compare_csv(capsys, str(study))]
    assert len(runs) == 14 and not any(r.endswith("lr_find") for r in runs)


def test_group_by_gives_numpy_mean_std_min_max_over_completed_seeds(study, capsys):
    rows = compare_csv(
        capsys, str(study), "--group-by", "optimizer.name,optimizer.lr", "--metric", "val_accuracy"
    )
    assert len(rows) == 4
    means = {}
    for row in rows:
        values = [
            v for v in KNOWN[row["optimizer.name"], float(row["optimizer.lr"])] if v is not None
        ]
        means[row["optimizer.name"], float(row["optimizer.lr"])] = np.mean(values)
        assert int(row["n"]) == len(values)
        assert float(row["val_accuracy_mean"]) == pytest.approx(np.mean(values), abs=1e-12)
        assert float(row["val_accuracy_std"]) == pytest.approx(np.std(values, ddof=1), abs=1e-12)
        assert float(row["val_accuracy_min"]) == min(values)
        assert float(row["val_accuracy_max"]) == max(values)
    by_key = {(r["optimizer.name"], float(r["optimizer.lr"])): r for r in rows}
    assert by_key["sgd", 0.1]["diverged"] == "1" and by_key["sgd", 0.1]["running"] == "1"
    assert by_key["adam", 0.1]["failed"] == "1"
    best = max(means, key=means.get)
    assert [k for k, r in by_key.items() if r["best"] == "*"] == [best] == [("adam", 0.01)]
    assert [float(r["val_accuracy_mean"]) for r in rows] == sorted(means.values(), reverse=True)


def test_group_by_a_loss_marks_the_lowest_mean(study, capsys):
    rows = compare_csv(capsys, str(study), "--group-by", "optimizer.lr", "--metric", "val_loss")
    assert [r["best"] for r in rows] == ["*", ""]
    assert float(rows[0]["val_loss_mean"]) <= float(rows[1]["val_loss_mean"])


def test_where_sort_and_top(study, capsys):
    rows = compare_csv(
        capsys,
        str(study),
        "--where",
        "optimizer.name=adam",
        "--sort",
        "best_val_accuracy",
        "--top",
        "4",
    )
    assert [r["optimizer.name"] for r in rows] == ["adam"] * 4
    best = sorted((v + 0.01 for v in KNOWN["adam", 0.01] + KNOWN["adam", 0.1]), reverse=True)
    assert [float(r["best_val_accuracy"]) for r in rows] == pytest.approx(best[:4])


def test_where_compares_numbers_as_numbers_and_takes_alternatives(study, capsys):
    rows = compare_csv(capsys, str(study), "--where", "optimizer.lr=1e-1", "--where", "seed=0,2")
    assert sorted((r["optimizer.name"], r["seed"]) for r in rows) == [
        ("adam", "0"),
        ("adam", "2"),
        ("sgd", "0"),
        ("sgd", "2"),
    ]


def test_ranking_by_a_metric_puts_unfinished_runs_last(study, capsys):
    rows = compare_csv(
        capsys, str(study), "--where", "optimizer.name=sgd", "--metric", "val_accuracy"
    )
    assert [r["status"] for r in rows][-2:] == ["diverged", "running"]
    finished = [float(r["val_accuracy"]) for r in rows[:-2]]
    assert finished == sorted(finished, reverse=True)


def test_terminal_table_is_readable(study, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # every column fits: the config keys in their order
    assert main(["compare", str(study), "--where", "optimizer.lr=0.1"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = lines[0].split()
    assert header[:2] == ["run", "name"] and "val_accuracy" in header and "status" in header
    assert "error" not in header  # the CSV has it
    assert lines[1].split()[0] == "3"  # run paths below their common folder
    assert "running" in out and "diverged" in out and "failed" in out
    assert "NaN" not in out and "<NA>" not in out and "None" not in out  # "-" for no value
    assert lines[-1] == f"8 runs under {study}: 5 completed, 1 diverged, 1 failed, 1 running"


def test_the_group_table_names_the_metric_it_summarizes(study, capsys):
    args = ["compare", str(study), "--group-by", "optimizer.name,optimizer.lr"]
    assert main([*args, "--metric", "best_val_accuracy"]) == 0
    assert capsys.readouterr().out == (
        "optimizer.name optimizer.lr n best_val_accuracy_mean best_val_accuracy_std "
        "best_val_accuracy_min best_val_accuracy_max diverged failed interrupted pruned killed "
        "stale running best\n"
        "          adam         0.01 3                   0.94               0.03606"
        "                  0.91                  0.98        0      0           0      0      0"
        "     0       0    *\n"
        "           sgd          0.1 2                   0.88               0.01414"
        "                  0.87                  0.89        1      0           0      0      0"
        "     0       1     \n"
        "          adam          0.1 3                 0.8367               0.02517"
        "                  0.81                  0.86        0      1           0      0      0"
        "     0       0     \n"
        "           sgd         0.01 3                   0.72                  0.01"
        "                  0.71                  0.73        0      0           0      0      0"
        "     0       0     \n"
        "\n14 runs: 11 completed, 1 diverged, 1 failed, 1 running\n"
    )
    assert np.std([0.91, 0.93, 0.98], ddof=1) == pytest.approx(0.03606, abs=1e-5)
    # --sort takes the statistic's short name too (std: ascending, not a ranking)
    rows = compare_csv(capsys, *args[1:], "--sort", "std")
    assert [float(r["val_accuracy_std"]) for r in rows] == sorted(
        float(r["val_accuracy_std"]) for r in rows
    )


# runs of different experiments: each composes its own groups (69 config keys in all, 34
# of them varying, when this was written)
EXPERIMENTS = {
    "toy": ("experiment=toy",),
    "cnn": ("experiment=digits_cnn",),
    "sgd": ("optimizer=sgd", "schedule=warmup_cosine"),
    "lbfgs": ("experiment=lbfgs_softmax",),
    "auto": ("optimizer=adam", "optimizer.lr=auto"),
}
AUTO_LR = 0.0003  # what the range test of the optimizer.lr=auto run chose


def _config_keys() -> tuple[int, int]:
    """How many config keys the experiments have in all, and how many vary between them."""
    flat = [flatten(config(*overrides)) for overrides in EXPERIMENTS.values()]
    keys = set().union(*flat)
    varying = [k for k in keys if len({json.dumps(f.get(k, "<none>")) for f in flat}) > 1]
    return len(keys), len(varying)


@pytest.fixture(scope="module")
def experiments(tmp_path_factory):
    root = tmp_path_factory.mktemp("experiments")
    for i, (name, overrides) in enumerate(EXPERIMENTS.items()):
        chosen = {"lr_find": {"suggestion": "valley", "lr": AUTO_LR}} if name == "auto" else {}
        make_run(root / name, config(*overrides), summary(val_accuracy=0.5 + i / 10, **chosen))
    return root


def test_runs_of_different_experiments_fit_the_terminal_narrowest_keys_first(
    experiments, capsys, monkeypatch
):
    monkeypatch.setenv("COLUMNS", "160")
    assert main(["compare", str(experiments)]) == 0
    out = capsys.readouterr().out
    assert out == (
        "  run model.name dataset.name optimizer.lr schedule.name    status auto_lr steps "
        "val_loss val_accuracy test_accuracy best_val_accuracy wall_s steps_per_s\n"
        " auto        mlp       digits         auto      constant completed  0.0003    90 "
        "     0.3          0.9           0.9               0.9      2         500\n"
        "  cnn        cnn       digits         0.05 warmup_cosine completed       -    90 "
        "     0.3          0.6           0.6               0.6      2         500\n"
        "lbfgs     linear       digits            1      constant completed       -    90 "
        "     0.3          0.8           0.8               0.8      2         500\n"
        "  sgd        mlp       digits         0.01 warmup_cosine completed       -    90 "
        "     0.3          0.7           0.7               0.7      2         500\n"
        "  toy        mlp    synthetic          0.1      constant completed       -    90 "
        "     0.3          0.5           0.5               0.5      2         500\n"
        f"\n5 runs under {experiments}: 5 completed\n"
        f"{_config_keys()[1] - 4} more config keys vary, not shown in 160 characters: "
        "--columns KEY,KEY,... shows "
        "those named, --columns all every column\n"
    )
    table = out.split("\n\n")[0].splitlines()
    assert max(len(line) for line in table) <= 160
    for width in (120, 200, 300):  # never wider than the terminal (120 at least)
        monkeypatch.setenv("COLUMNS", str(width))
        assert main(["compare", str(experiments)]) == 0
        table = capsys.readouterr().out.split("\n\n")[0].splitlines()
        assert 0.8 * width < max(len(line) for line in table) <= width
    monkeypatch.setenv("COLUMNS", "20")
    assert main(["compare", str(experiments)]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert header.split()[:2] == ["run", "model.name"] and len(header) <= 120
    # wide enough for all the varying keys: they are shown in the config's order, no note
    monkeypatch.setenv("COLUMNS", "2000")
    assert main(["compare", str(experiments)]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header[:5] == ["run", "name", "model.name", "model.widths", "model.activation"]
    assert len(header) == 1 + _config_keys()[1] + 9 and "more config keys vary" not in out


def test_columns_chooses_the_columns_and_csv_keeps_every_one(experiments, capsys, tmp_path):
    args = ["compare", str(experiments)]
    assert main([*args, "--columns", "optimizer.name,optimizer.lr,auto_lr,val_accuracy"]) == 0
    assert capsys.readouterr().out == (
        "  run optimizer.name optimizer.lr auto_lr val_accuracy\n"
        " auto           adam         auto  0.0003          0.9\n"
        "  cnn       momentum         0.05       -          0.6\n"
        "lbfgs          lbfgs            1       -          0.8\n"
        "  sgd            sgd         0.01       -          0.7\n"
        "  toy           adam          0.1       -          0.5\n"
        f"\n5 runs under {experiments}: 5 completed\n"
    )
    rows = compare_csv(capsys, *args[1:], "--columns", "seed,optimizer.lr", "--sort", "wall_s")
    assert list(rows[0]) == ["run", "seed", "optimizer.lr", "wall_s"]  # and the --sort key
    every = compare_csv(capsys, *args[1:])  # a CSV is for machines: every varying key
    assert list(every[0])[-19:] == [
        "dataset.seed", "status", "steps", "epochs", "lr", "auto_lr", "train_loss",
        "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy",
        "eval_step", "best_val_accuracy", "best_val_accuracy_step", "best_val_loss",
        "best_val_loss_step", "wall_s", "steps_per_s",
    ]  # fmt: skip
    assert len(every[0]) == 1 + _config_keys()[1] + 18
    assert [r["auto_lr"] for r in every] == ["0.0003", "", "", "", ""]
    assert compare_csv(capsys, *args[1:], "--columns", "all") == compare_csv(
        capsys, *args[1:], "--all-columns"
    )
    assert len(compare_csv(capsys, *args[1:], "--columns", "all")[0]) == 1 + _config_keys()[0] + 18
    out = tmp_path / "chosen.csv"
    assert main([*args, "--columns", "optimizer.name,best_val_accuracy", "-o", str(out)]) == 0
    assert out.read_text().splitlines()[:2] == [
        "run,optimizer.name,best_val_accuracy",
        f"{experiments / 'auto'},adam,0.9",
    ]


def _bad(tmp_path, study):
    corrupt = tmp_path / "corrupt"
    make_run(corrupt / "run", config(), None)
    (corrupt / "run" / "summary.json").write_text('{"status": "completed", ')
    (tmp_path / "empty" / ".hydra").mkdir(parents=True)
    (tmp_path / "empty" / ".hydra" / "config.yaml").write_text("seed: 0\n")  # Hydra's, no run
    return [
        ([str(tmp_path / "empty")], "path=", "no run directories (with config.yaml) under it"),
        ([str(tmp_path / "nowhere")], "path=", "no such directory"),
        ([str(corrupt)], "summary.json=corrupt: not valid JSON", ""),
        ([str(study), "--metric", "val_acc"], "--metric=val_acc: one of train_loss,", ""),
        (
            [str(study), "--sort", "optimizer.lrr"],
            "--sort=optimizer.lrr: unknown column",
            "did you mean optimizer.lr",
        ),
        (
            [str(study), "--group-by", "optimiser.name"],
            "--group-by=optimiser.name: unknown column",
            "",
        ),
        (
            [str(study), "--where", "optimizer.name=adamw"],
            "--where=optimizer.name=adamw: matches no run",
            "adam, sgd",
        ),
        (
            [str(study), "--where", "optimizer.name"],
            "--where=optimizer.name: expected key=value",
            "",
        ),
        ([str(study), "-o", str(tmp_path / "out.txt")], "-o=", "must end in .csv"),
        (
            [str(study), "--top", "0"],
            "lrbench compare: argument --top: invalid positive integer",
            "",
        ),
        ([str(study), "--bogus"], "lrbench compare: unrecognized arguments: --bogus", ""),
        (
            [str(study), "--columns", "seed,optimizer.lrr"],
            "--columns=optimizer.lrr: unknown column",
            "did you mean optimizer.lr",
        ),
        ([str(study), "--columns", "all,seed"], "--columns=all,seed: all alone", ""),
    ]


def test_bad_input_is_one_line_exit_2_and_writes_nothing(study, tmp_path, capsys):
    for args, start, part in _bad(tmp_path, study):
        capsys.readouterr()
        assert main(["compare", *args]) == 2, args
        captured = capsys.readouterr()
        assert captured.err.startswith("lrbench: error: "), (args, captured.err)
        assert start in captured.err and part in captured.err, (args, captured.err)
        assert captured.err.count("\n") == 1 and captured.out == ""
    assert not (tmp_path / "out.txt").exists()


def test_a_real_sweep_with_a_diverging_lr(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    args = ["train", "-m", "optimizer=sgd", "optimizer.lr=0.05,1e6", "train.epochs=1",
            f"hydra.sweep.dir={sweep}"]  # fmt: skip
    assert main(args) == 0
    rows = compare_csv(capsys, str(sweep))
    assert [(r["optimizer.lr"], r["status"]) for r in rows] == [
        ("0.05", "completed"),
        ("1000000.0", "diverged"),
    ]
    for row in rows:
        summary_json = read_summary(row["run"])
        assert int(row["steps"]) == summary_json["steps"]
        if row["status"] == "completed":
            assert float(row["val_accuracy"]) == summary_json["final"]["val_accuracy"]
            assert float(row["steps_per_s"]) == summary_json["steps_per_s"]
        else:
            assert int(row["diverged_at_step"]) == summary_json["diverged_at_step"]


@pytest.fixture
def every_status(tmp_path):
    """A run of each status, all sgd at lr 0.1 (seeds 0..7): summary.json's five, and three
    without one, told apart by their heartbeat (killed, stale, running)."""
    base = config("optimizer=sgd")
    outcomes = {
        "completed": summary(val_accuracy=0.9),
        "diverged": summary("diverged", steps=40),
        "failed": {"status": "failed", "error": "RuntimeError: boom"},
        "interrupted": summary("interrupted", val_accuracy=0.6, steps=45),
        "pruned": summary("pruned", val_accuracy=0.7, steps=27),
    }
    for seed, status in enumerate(EVERY_STATUS):
        rows = curve_rows(27, 0.1) if status == "pruned" else None
        run = make_run(
            tmp_path / "sweep" / str(seed), base | {"seed": seed}, outcomes.get(status), rows
        )
        if status not in outcomes:
            beat(run, status)
    return tmp_path / "sweep"


def test_counts_and_group_tables_count_every_status(every_status, capsys):
    assert main(["compare", str(every_status)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"8 runs under {every_status}: 1 completed, 1 diverged, 1 failed, 1 interrupted, "
        "1 pruned, 1 killed, 1 stale, 1 running"
    )
    rows = compare_csv(capsys, str(every_status))
    assert [r["status"] for r in rows] == list(EVERY_STATUS)
    (group,) = compare_csv(capsys, str(every_status), "--group-by", "optimizer.lr")
    assert {s: group[s] for s in EVERY_STATUS if s != "completed"} == dict.fromkeys(
        EVERY_STATUS[1:], "1"
    )
    assert (group["n"], group["val_accuracy_mean"]) == ("1", "0.9")  # the completed run only


def test_a_pruned_run_reads_like_any_finished_one(every_status, capsys, tmp_path):
    pruned = every_status / str(EVERY_STATUS.index("pruned"))
    assert read_checked_summary(pruned)["pruned_at_step"] == 27
    (row,) = [r for r in compare_csv(capsys, str(every_status)) if r["status"] == "pruned"]
    assert (row["steps"], row["val_accuracy"]) == ("27", "0.7")
    ranked = compare_csv(capsys, str(every_status), "--metric", "val_accuracy")
    assert ranked[0]["status"] == "completed"  # a pruned run's 0.7 is not a final result
    capsys.readouterr()
    assert main(["report", str(every_status), "-o", str(tmp_path / "report.html")]) == 0
    assert "1 pruned, 1 killed, 1 stale" in (tmp_path / "report.html").read_text()


def _thousand_runs(root) -> None:
    """1,000 sweep jobs written directly (no Hydra per run): 4 optimizers x 5 LRs x 50 seeds."""
    base = {name: config(f"optimizer={name}") for name in ("adam", "sgd", "momentum", "rmsprop")}
    job = 0
    for cfg in base.values():
        for lr in (1e-4, 1e-3, 1e-2, 1e-1, 1.0):
            for seed in range(50):
                run = root / str(job)
                run.mkdir(parents=True)
                text = json.dumps(cfg | {"seed": seed, "optimizer": cfg["optimizer"] | {"lr": lr}})
                (run / "config.yaml").write_text(text)  # JSON is YAML
                outcome = summary(val_accuracy=0.5 + seed / 100) if seed < 49 else None
                if outcome is not None:
                    (run / "summary.json").write_text(json.dumps(outcome))
                job += 1


def test_compare_reads_1000_runs_in_under_2_seconds(tmp_path, capsys):
    _thousand_runs(tmp_path / "big")
    start = time.perf_counter()
    assert main(["compare", str(tmp_path / "big"), "-o", str(tmp_path / "big.csv")]) == 0
    elapsed = time.perf_counter() - start
    assert len(_csv((tmp_path / "big.csv").read_text())) == 1000
    assert elapsed < 2.0, f"compare took {elapsed:.2f} s for 1,000 runs"
    capsys.readouterr()
    start = time.perf_counter()
    args = ["compare", str(tmp_path / "big"), "--group-by", "optimizer.name,optimizer.lr"]
    assert main(args) == 0
    assert time.perf_counter() - start < 2.0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 + 20 + 2  # header, a row per group, a blank line, the counts
    assert lines[-1] == "1000 runs: 980 completed, 20 running"


def test_compare_imports_neither_jax_nor_tensorflow_nor_matplotlib(study):
    code = (
        f"import sys; from lrbench.cli import main; main(['compare', {str(study)!r}]); "
        "heavy = {'jax', 'tensorflow', 'flax', 'optax', 'matplotlib', 'tensorboardX'} & "
        "{m.split('.')[0] for m in sys.modules}; sys.exit(f'imported {heavy}' if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
