"""``lrbench plot``: files written and non-trivial, lines where the numbers say, the
schedule preview equal to the LR a real run applied and to the formula."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from fake_runs import config, curve_rows, make_run, summary
from matplotlib import colormaps
from PIL import Image

from lrbench.analysis import plots
from lrbench.analysis.schedule_preview import preview
from lrbench.analysis.table import load_table
from lrbench.cli import main
from lrbench.runs import read_metrics

OPTIMIZERS = ("adam", "sgd", "rmsprop")
LRS = (0.01, 0.1)
TAB10 = [tuple(round(255 * c) for c in rgb) for rgb in colormaps["tab10"].colors]


def _best(name: str, lr: float, seed: int) -> float:
    return 0.5 + 0.1 * OPTIMIZERS.index(name) + lr + seed / 100


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """3 optimizers x 2 LRs x 2 seeds with curves, and sgd at lr 1.0 diverged."""
    root = tmp_path_factory.mktemp("study")
    job = 0
    for name in OPTIMIZERS:
        base = config(f"optimizer={name}")
        for lr in LRS:
            for seed in (0, 1):
                cfg = base | {"seed": seed, "optimizer": base["optimizer"] | {"lr": lr}}
                best = _best(name, lr, seed)
                rows = curve_rows(36, lr, loss_start=1 + OPTIMIZERS.index(name))
                make_run(root / str(job), cfg, summary(best_val_accuracy=best, steps=36), rows)
                job += 1
    base = config("optimizer=sgd")
    rows = curve_rows(20, 1.0)
    rows[-1]["train_loss"] = math.nan
    cfg = base | {"optimizer": base["optimizer"] | {"lr": 1.0}}
    make_run(root / str(job), cfg, summary("diverged", steps=20), rows)
    return root


def _pixels_near(png, rgb, alpha: float = 0.8, tolerance: float = 40) -> int:
    """Pixels of this colour, drawn opaque or at ``alpha`` over white."""
    image = np.asarray(Image.open(png).convert("RGB"), np.float64)
    count = 0
    for target in (np.array(rgb), alpha * np.array(rgb) + (1 - alpha) * 255):
        count += int((np.linalg.norm(image - target, axis=-1) < tolerance).sum())
    return count


def test_curves_png_has_one_colour_per_optimizer(study, tmp_path, capsys):
    out = tmp_path / "curves.png"
    assert main(["plot", "curves", str(study), "--y", "val_loss", "--hue", "optimizer.name",
                 "-o", str(out)]) == 0  # fmt: skip
    assert capsys.readouterr().out == f"wrote {out}\n"
    assert Image.open(out).size == (800, 500)
    for colour in TAB10[:3]:  # adam, rmsprop, sgd (sorted)
        assert _pixels_near(out, colour) > 300, colour
    assert _pixels_near(out, TAB10[3]) < 20  # no fourth optimizer


def test_curves_svg_is_vector_and_undated(study, tmp_path):
    out = tmp_path / "curves.svg"
    assert main(["plot", "curves", str(study), "--x", "epoch", "--y", "train_loss", "--logy",
                 "-o", str(out)]) == 0  # fmt: skip
    root = ET.parse(out).getroot()
    assert root.tag.endswith("svg")
    assert len(root.findall(".//{http://www.w3.org/2000/svg}path")) > 13  # 13 runs + axes
    assert "<dc:date>" not in out.read_text()


def test_sensitivity_draws_numpy_means_on_a_log_axis_and_marks_divergence(study, tmp_path):
    fig = plots.sensitivity(load_table([study]), "best_val_accuracy")
    (ax,) = [a for a in fig.axes if a.get_label() != "<colorbar>"]
    assert ax.get_xscale() == "log"
    lines = [line for line in ax.get_lines() if len(line.get_xdata())]
    assert len(lines) == 3
    for line, name in zip(lines, sorted(OPTIMIZERS), strict=True):
        assert list(line.get_xdata()) == list(LRS)
        means = [np.mean([_best(name, lr, seed) for seed in (0, 1)]) for lr in LRS]
        assert line.get_ydata() == pytest.approx(means, abs=1e-12)
    bands = [
        c
        for c in ax.collections
        if type(c).__name__ in ("PolyCollection", "FillBetweenPolyCollection")
    ]
    assert len(bands) == 3
    (diverged,) = [c for c in ax.collections if type(c).__name__ == "PathCollection"]
    assert diverged.get_offsets()[:, 0].tolist() == [1.0]
    assert ax.get_xlim()[0] < 0.01 and ax.get_xlim()[1] > 1.0  # every run is in view

    out = tmp_path / "sensitivity.png"
    assert (
        main(["plot", "sensitivity", str(study), "--metric", "best_val_accuracy", "-o", str(out)])
        == 0
    )
    assert Image.open(out).size == (800, 500)
    for colour in TAB10[:3]:
        assert _pixels_near(out, colour, alpha=0.2, tolerance=25) > 300, colour


@pytest.fixture(scope="module")
def warmup_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("warmup") / "run"
    overrides = ["schedule=warmup_cosine", "schedule.warmup=0.2", "optimizer.lr=0.01",
                 "train.epochs=3", "train.log_every=1"]  # fmt: skip
    assert main(["train", *overrides, f"hydra.run.dir={run}"]) == 0
    return run, overrides


def _warmup_cosine(total: int, peak: float, warmup: float, init: float, end: float) -> np.ndarray:
    """optax.warmup_cosine_decay_schedule at counts 0..total-1, in float64 numpy."""
    counts = np.arange(total, dtype=np.float64)
    w = round(warmup * total)
    rise = init + (1 - init) * counts / w
    decay = end + (1 - end) * 0.5 * (1 + np.cos(np.pi * (counts - w) / (total - w)))
    return peak * np.where(counts < w, rise, decay)


def test_schedule_preview_is_the_lr_a_real_run_applied_and_the_formula(warmup_run):
    run, overrides = warmup_run
    result = preview(overrides)
    logged = read_metrics(run)
    assert [r["step"] for r in logged] == result.steps.tolist() == list(range(1, 28))
    assert result.lrs == pytest.approx([r["lr"] for r in logged], rel=1e-5, abs=1e-12)
    schedule = result.config.schedule
    expected = _warmup_cosine(27, 0.01, 0.2, schedule.init_factor, schedule.end_factor)
    assert result.lrs == pytest.approx(expected, rel=1e-5, abs=1e-12)


def test_plot_lr_and_plot_schedule_write_their_files(warmup_run, tmp_path, capsys):
    run, overrides = warmup_run
    assert main(["plot", "lr", str(run), "-o", str(tmp_path / "lr.png")]) == 0
    assert _pixels_near(tmp_path / "lr.png", TAB10[0]) > 300
    out = tmp_path / "schedule.png"
    capsys.readouterr()
    assert main(["plot", "schedule", *overrides, "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"wrote {out}: schedule=warmup_cosine, optimizer.lr=0.01: 27 steps")
    assert "peak 0.01 at step 6" in printed  # warmup ends at count round(0.2 * 27) = 5
    assert _pixels_near(out, TAB10[0], alpha=1.0) > 300


BAD = [
    (["curves", "{study}", "--y", "accuracy"], "--y=accuracy: one of lr, train_loss,"),
    (["curves", "{study}", "--x", "wall"], "--x=wall: one of step, epoch, time"),
    (["curves", "{study}", "--hue", "optimiser"], "--hue=optimiser: unknown column"),
    (["lr", "{study}", "-o", "lr.jpg"], "-o=lr.jpg: must end in .png or .svg"),
    (
        ["sensitivity", "{study}", "--x", "optimizer.name"],
        "--x=optimizer.name: must be a positive number",
    ),
    (["sensitivity", "{study}", "--metric", "acc"], "--metric=acc: one of"),
    (["schedule", "schedule=cosinus"], "schedule=cosinus: unknown option (allowed:"),
    (["schedule", "schedule=warmup_cosine", "schedule.warmup=1.5"], "schedule.warmup=1.5:"),
    (["histogram"], "lrbench plot: argument KIND: invalid choice: 'histogram'"),
]


@pytest.mark.parametrize(
    ("args", "message"), BAD, ids=lambda v: " ".join(v) if isinstance(v, list) else ""
)
def test_bad_input_is_one_line_exit_2(args, message, study, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["plot", *(a.format(study=study) for a in args)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lrbench: error: {message}"), err
    assert err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
