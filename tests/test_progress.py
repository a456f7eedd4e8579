"""What a run shows while it trains where there is no terminal (piped, nohup, a job's log),
and what its train.log keeps: the start line, one line per evaluation, checkpoints and the
end line, with the numbers of metrics.csv and summary.json; sweeps' result lines; Optuna's
output without alembic's lines or ANSI codes (docs/running.md "Progress and logs")."""

from __future__ import annotations

import io
import math
import re
import sys

import pytest

from lrbench.cli import main
from lrbench.config.train import ProgressMode
from lrbench.runs import read_metrics, read_summary
from lrbench.train import progress
from tests.conftest import run_cli

EVALUATION = re.compile(
    r"epoch (\d+)/(\d+), step (\d+)/(\d+): train_loss (\S+), val_loss (\S+), "
    r"val_accuracy (\S+), lr (\S+), (\S+) steps/s, ETA (\d+:\d\d:\d\d|\?)$"
)
CONSOLE_TIME = re.compile(r"^\[\d\d:\d\d:\d\d\] ")
LOG_PREFIX = re.compile(r"^\[[^]]+\]\[lrbench\.progress\]\[INFO\] - ")
ANSI = "\x1b["


def _lines(text: str, prefix: re.Pattern) -> list[str]:
    """The progress lines of a console (or train.log), their time stamps taken off."""
    return [prefix.sub("", line) for line in text.splitlines() if prefix.match(line)]


@pytest.fixture(scope="module")
def piped(tmp_path_factory):
    """The default run, 3 epochs with a checkpoint after the 2nd, stdout and stderr pipes."""
    work = tmp_path_factory.mktemp("piped")
    run_dir = work / "run"
    result = run_cli(
        "train", "train.epochs=3", "train.checkpoint_every=2", f"hydra.run.dir={run_dir}", cwd=work
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result, run_dir


def test_a_piped_run_prints_start_evaluations_checkpoint_and_end_in_order(piped):
    result, run_dir = piped
    lines = _lines(result.stderr, CONSOLE_TIME)
    assert len(lines) == len(result.stderr.splitlines())  # nothing else on stderr
    start, first, second, checkpoint, third, end = lines
    assert start.startswith(
        "start digits-mlp-adam: model=mlp dataset=digits optimizer=adam lr=0.001 "
        "schedule=constant seed=0, 3 epochs of 9 steps (27 steps, batch 128); "
        f"run dir {run_dir}; on cpu: 1 x cpu, no mesh"
    ), start
    assert checkpoint == f"epoch 2/3, step 18/27: checkpoint {run_dir}/checkpoints/18"

    evaluated = [row for row in read_metrics(run_dir) if row["val_accuracy"] is not None]
    assert len(evaluated) == 3
    for line, row in zip((first, second, third), evaluated, strict=True):
        match = EVALUATION.match(line)
        assert match, line
        epoch, epochs, step, steps, loss, val_loss, val_acc, lr, rate, _ = match.groups()
        assert (int(step), int(steps), int(epochs)) == (row["step"], 27, 3)
        assert int(epoch) == row["epoch"]
        assert float(loss) == pytest.approx(row["train_loss"], rel=1e-3)
        assert float(val_loss) == pytest.approx(row["val_loss"], rel=1e-3)
        assert float(val_acc) == pytest.approx(row["val_accuracy"], abs=5e-5)
        assert float(lr) == pytest.approx(row["lr"], rel=1e-2)
        assert float(rate) > 0

    summary = read_summary(run_dir)
    expected = (
        f"end: completed, 27 steps, val_accuracy {summary['final']['val_accuracy']:.4f}, "
        f"test_accuracy {summary['final']['test_accuracy']:.4f}, best val_accuracy "
        f"{summary['best']['val_accuracy']:.4f} (step {summary['best']['val_accuracy_step']}), "
        f"wall {summary['wall_s']:.1f}s"
    )
    assert end == expected
    # and the result line, on stdout
    assert result.stdout == progress.result_line(run_dir, summary) + "\n"


def test_train_log_holds_the_same_lines_and_no_backend_probe(piped):
    result, run_dir = piped
    log = (run_dir / "train.log").read_text()
    assert _lines(log, LOG_PREFIX) == _lines(result.stderr, CONSOLE_TIME)
    assert "Unable to initialize backend" not in log
    assert "xla_bridge" not in log


def test_progress_off_prints_only_the_result_line(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", "train.epochs=2", "train.progress=off", f"hydra.run.dir={run_dir}"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out == progress.result_line(run_dir, read_summary(run_dir)) + "\n"
    # train.log keeps the lines whatever the console shows
    lines = _lines((run_dir / "train.log").read_text(), LOG_PREFIX)
    assert lines[0].startswith("start ") and lines[-1].startswith("end: completed, 18 steps")
    assert sum(bool(EVALUATION.match(line)) for line in lines) == 2


def test_console_modes():
    auto = ProgressMode.auto
    assert progress.console_mode(auto) == "lines"  # pytest's stderr is no terminal
    assert progress.console_mode(auto, quiet=True) == "off"  # a multirun job
    assert progress.console_mode(ProgressMode.lines, quiet=True) == "lines"
    assert progress.console_mode(ProgressMode.off) == "off"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_console_mode_auto_is_the_bar_on_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", _Terminal())
    assert progress.console_mode(ProgressMode.auto) == "bar"


def test_basic_multirun_prints_its_sweep_dir_first_and_a_line_per_job(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    args = ["train", "-m", "train.epochs=1", "optimizer.lr=1e-3,1e-2", f"hydra.sweep.dir={sweep}"]
    assert main(args) == 0
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert out[0] == f"sweep {sweep}: one run directory per job"
    for job, lr in enumerate(("0.001", "0.01")):
        summary = read_summary(sweep / str(job))
        line = progress.result_line(sweep / str(job), summary, f"train.epochs=1 optimizer.lr={lr}")
        assert out.count(line) == 1, captured.out
        assert summary["status"] == "completed"
    assert out[-1] == f"sweep index: {sweep}/sweep.csv"
    assert captured.err == ""  # the jobs' progress: their train.log only
    assert _lines((sweep / "1" / "train.log").read_text(), LOG_PREFIX)[-1].startswith("end: ")


def test_vmap_sweep_names_members_and_shows_one_bar_and_one_line_per_evaluation(
    tmp_path, capsys, monkeypatch
):
    bars = []
    real_bar = progress._bar
    monkeypatch.setattr(progress, "_bar", lambda *a: bars.append(a) or real_bar(*a))
    run_dir = tmp_path / "sweep"
    overrides = ["train", "sweep=vmap", "optimizer=sgd", "sweep.lr=[0.01,1000.0]", "sweep.seeds=2"]
    assert main([*overrides, "train.epochs=2", f"hydra.run.dir={run_dir}"]) == 0
    out = capsys.readouterr().out.splitlines()
    names = ["lr=0.01 seed=0", "lr=0.01 seed=1", "lr=1000 seed=0", "lr=1000 seed=1"]
    assert len(out) == 4
    for member, (line, name) in enumerate(zip(out, names, strict=True)):
        summary = read_summary(run_dir / str(member))
        values = summary["sweep"]["values"]
        assert name == f"lr={values['optimizer.lr']:g} seed={values['seed']}"
        assert line == progress.result_line(run_dir / str(member), summary, name)
    assert read_summary(run_dir / "2")["status"] == "diverged"

    lines = _lines((run_dir / "train.log").read_text(), LOG_PREFIX)
    assert lines[0].startswith("start vmap sweep members 0-3 (lr 0.01..1000 x2, seed 0..1 x2): ")
    diverged = [line for line in lines if "diverged (train_loss" in line]
    assert [line.split(": ", 1)[1] for line in diverged] == [
        "member 2 (lr=1000 seed=0) diverged (train_loss nan)",
        "member 3 (lr=1000 seed=1) diverged (train_loss nan)",
    ]
    evaluations = [line for line in lines if "members training" in line]
    assert len(evaluations) == 2  # one per evaluation for the program, not per member
    last = sorted((read_metrics(run_dir / str(m))[-1]["val_accuracy"], m) for m in (0, 1))
    assert evaluations[-1].startswith("epoch 2/2, step 18/18: 2 of 4 members training")
    span = progress._span([accuracy for accuracy, _ in last], ".4f")
    assert f"val_accuracy {span} (highest: " in evaluations[-1]
    if last[0][0] != last[1][0]:
        assert f"(highest: {names[last[1][1]]})" in evaluations[-1]
    assert lines[-1].startswith("end: members 0-3: 2 completed, 2 diverged; best val_accuracy")

    bars.clear()
    bar_dir = tmp_path / "bar"
    assert (
        main([*overrides, "train.epochs=2", "train.progress=bar", f"hydra.run.dir={bar_dir}"]) == 0
    )
    assert len(bars) == 1  # one bar for the program's 4 members


def test_optuna_piped_has_no_alembic_lines_nor_ansi_codes(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli(
        "train",
        "-m",
        "hparams_search=lr_optuna",
        "hydra.sweeper.n_trials=2",
        "train.epochs=1",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout + result.stderr
    assert "alembic" not in output
    assert ANSI not in output
    out = result.stdout.splitlines()
    assert out[0] == f"sweep {sweep}: one run directory per job"
    assert out[-1] == f"optuna results: {sweep}/optimization_results.yaml"
    assert (sweep / "optimization_results.yaml").exists()
    assert sum(line.startswith(f"{sweep}/") for line in out) == 2  # a result line per trial


def test_eta_and_spans_format():
    assert progress._clock(3725.4) == "1:02:05"
    assert progress._clock(math.nan) == "?"
    assert progress._span([0.5, None, math.nan, 0.25]) == "0.25..0.5"
    assert progress.varying_keys([{"optimizer.lr": 0.1, "seed": 0}] * 2) == ["optimizer.lr"]


def test_a_bad_progress_value_is_one_line(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", "train.progress=fancy", f"hydra.run.dir={run_dir}"]) == 2
    assert capsys.readouterr().err == (
        "lrbench: error: train.progress: Invalid value 'fancy', expected one of "
        "[auto, bar, lines, off]\n"
    )
    assert not run_dir.exists()
