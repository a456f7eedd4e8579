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
TAB_COLORS = list(colormaps["tab10"].colors)


def _best(name: str, lr: float, seed: int) -> float:
    return 0.5 + 0.1 * OPTIMIZERS.index(name) + lr + seed / 100


def _loss_start(name: str, seed: int) -> float:
    """The curves' scale: seeds differ, so their mean and band can be checked."""
    return 1 + OPTIMIZERS.index(name) + seed / 2


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
                rows = curve_rows(36, lr, loss_start=_loss_start(name, seed))
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


def _axes(fig):
    (ax,) = [a for a in fig.axes if a.get_label() != "<colorbar>"]
    return ax


def _lines(ax) -> list:
    return [line for line in ax.get_lines() if len(line.get_xdata())]


def _legend_is_outside(fig) -> bool:
    """Drawn, the legend's box and the axes' (where the data is) do not meet."""
    plots.to_bytes(fig, "png")  # lays the figure out
    ax = _axes(fig)
    legend = ax.get_legend()
    return legend is not None and not legend.get_window_extent().overlaps(ax.bbox)


def _curve(name: str, lr: float, seed: int, y: str = "val_loss") -> tuple[np.ndarray, np.ndarray]:
    rows = [r for r in curve_rows(36, lr, _loss_start(name, seed)) if y in r]
    return np.array([r["step"] for r in rows]), np.array([r[y] for r in rows])


def test_curves_draw_a_line_per_configuration_the_mean_over_seeds_and_its_band(study):
    fig = plots.curves(load_table([study]), "val_loss", hue="optimizer.name")
    ax = _axes(fig)
    assert ax.get_title() == "val_loss: 13 runs; line: mean over seeds, band: min to max"
    lines = _lines(ax)
    assert len(lines) == 6 + 1  # (3 optimizers x 2 LRs) means, the diverged run alone
    bands = [c for c in ax.collections if "Poly" in type(c).__name__]
    assert len(bands) == 6
    configurations = [(name, lr) for name in sorted(OPTIMIZERS) for lr in LRS]
    styles = {LRS[0]: lines[0].get_linestyle(), LRS[1]: lines[1].get_linestyle()}
    assert styles[LRS[0]] != styles[LRS[1]]  # a line style per LR, a colour per optimizer
    for (name, lr), line, band in zip(configurations, lines[:6], bands, strict=True):
        steps, seed0 = _curve(name, lr, 0)
        _, seed1 = _curve(name, lr, 1)
        assert line.get_xdata().tolist() == steps.tolist()
        assert line.get_ydata() == pytest.approx((seed0 + seed1) / 2, rel=1e-12)
        assert line.get_color() == TAB_COLORS[sorted(OPTIMIZERS).index(name)]
        assert line.get_linestyle() == styles[lr]
        outline = band.get_paths()[0].vertices
        assert outline[:, 1].min() == pytest.approx(seed0.min())  # min over seeds: seed 0
        assert outline[:, 1].max() == pytest.approx(seed1.max())  # max: seed 1
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [*sorted(OPTIMIZERS), "optimizer.lr=0.01", "optimizer.lr=0.1",
                      "optimizer.lr=1.0", "diverged"]  # fmt: skip
    assert _legend_is_outside(fig)


def test_a_diverged_run_is_drawn_up_to_its_divergence_with_an_x(study):
    fig = plots.curves(load_table([study]), "train_loss", hue="optimizer.name")
    ax = _axes(fig)
    diverged = _lines(ax)[-1]  # sgd at lr 1.0: train_loss is NaN at step 20
    assert diverged.get_xdata().tolist() == list(range(1, 20))
    assert diverged.get_ydata() == pytest.approx([2 / step for step in range(1, 20)])
    (x,) = [c for c in ax.collections if type(c).__name__ == "PathCollection"]
    assert x.get_offsets().tolist() == [[19, pytest.approx(2 / 19)]]
    assert tuple(x.get_facecolor()[0][:3]) == pytest.approx(TAB_COLORS[2])  # sgd's colour


@pytest.fixture
def pruned(tmp_path):
    """adam at lr 0.01, seed 2, stopped by a study's halving at step 18 with the best
    accuracy of all (0.99): an early value, not a final result."""
    adam = config("optimizer=adam")
    cfg = adam | {"seed": 2, "optimizer": adam["optimizer"] | {"lr": 0.01}}
    make_run(
        tmp_path, cfg, summary("pruned", best_val_accuracy=0.99, steps=18), curve_rows(18, 0.01)
    )
    return tmp_path


def test_a_pruned_run_is_drawn_up_to_where_it_stopped_with_a_bar(study, pruned):
    ax = _axes(plots.curves(load_table([study, pruned]), "val_loss", hue="optimizer.name"))
    adam_mean, alone = _lines(ax)[:2]  # adam at 0.01: the mean of seeds 0 and 1, then seed 2
    (_, seed0), (_, seed1) = _curve("adam", 0.01, 0), _curve("adam", 0.01, 1)
    assert adam_mean.get_ydata() == pytest.approx((seed0 + seed1) / 2)  # seed 2 not in it
    assert (alone.get_xdata().tolist(), alone.get_ydata().tolist()) == ([9, 18], [2 / 9, 2 / 18])
    ends = [
        c.get_offsets().tolist() for c in ax.collections if type(c).__name__ == "PathCollection"
    ]
    assert [[18, pytest.approx(2 / 18)]] in ends  # its end, marked
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()][-2:] == ["diverged", "pruned"]
    assert legend.legend_handles[-1].get_marker() == "|"
    assert ax.get_title().startswith("val_loss: 14 runs")


def test_sensitivity_leaves_a_pruned_run_out_and_says_so(study, pruned):
    ax = _axes(plots.sensitivity(load_table([study, pruned]), "best_val_accuracy"))
    adam = _lines(ax)[0]
    means = [np.mean([_best("adam", lr, seed) for seed in (0, 1)]) for lr in LRS]
    assert adam.get_ydata() == pytest.approx(means, abs=1e-12)  # without the pruned 0.99
    assert ax.get_title().endswith("\nleft out, no final result: 1 pruned")


def test_titles_count_runs_in_the_singular_too(study, tmp_path):
    table = load_table([study])
    one = table[table["run"] == str(study / "0")]
    ax = _axes(plots.curves(one, "val_loss", hue="optimizer.name"))
    assert ax.get_title() == "val_loss: 1 run"
    assert [c for c in ax.collections if "Poly" in type(c).__name__] == []  # nothing to band
    assert plots.count(8, "run") == "8 runs" and plots.count(0, "run") == "0 runs"


def test_plot_lr_keeps_lines_that_coincide_visible_and_its_legend_off_the_data(study, tmp_path):
    fig = plots.curves(load_table([study]), "lr", hue="optimizer.name")
    ax = _axes(fig)
    assert ax.get_yscale() == "log"  # 0.01 to 1.0: two decades
    at_001 = [line for line in _lines(ax) if set(line.get_ydata()) == {0.01}]
    assert len(at_001) == 3  # adam, rmsprop and sgd drew the same LR
    assert len({line.get_marker() for line in at_001}) == 3
    assert len({line.get_markevery()[0] for line in at_001}) == 3  # their markers alternate
    assert _legend_is_outside(fig)

    out = tmp_path / "lr.png"
    assert main(["plot", "lr", str(study), "--where", "optimizer.lr=0.01", "-o", str(out)]) == 0
    for colour in TAB10[:3]:  # every optimizer shows though all three lines coincide
        assert _pixels_near(out, colour, tolerance=30) > 150, colour  # a legend entry: ~50


@pytest.mark.parametrize(
    ("args", "scale"),
    [
        ([], "log"),  # 0.01 to 1.0
        (["--where", "optimizer.lr=0.01,0.1"], "linear"),  # one decade exactly: not more
        (["--where", "optimizer.lr=0.01,0.1", "--logy"], "log"),
        (["--no-logy"], "linear"),
    ],
)
def test_plot_lr_is_log_when_the_lrs_span_more_than_a_decade(study, args, scale):
    from lrbench.analysis import plot_cli

    options = plot_cli.build_parser().parse_args(["lr", str(study), *args])
    fig, _ = options.draw(options)
    assert _axes(fig).get_yscale() == scale


def test_sensitivity_places_lr_auto_runs_at_the_lr_they_chose(study, tmp_path):
    adam = config("optimizer=adam")
    auto = adam | {"optimizer": adam["optimizer"] | {"lr": "auto"}}
    chosen = {"lr_find": {"suggestion": "valley", "lr": 0.003}}
    make_run(tmp_path / "auto", auto, summary(best_val_accuracy=0.55, steps=36, **chosen))
    make_run(tmp_path / "going", auto | {"seed": 1}, None)  # no LR chosen yet: not drawn
    fig = plots.sensitivity(load_table([study, tmp_path]), "best_val_accuracy")
    ax = _axes(fig)
    adam_line = _lines(ax)[0]
    assert adam_line.get_xdata().tolist() == [0.003, *LRS]
    assert adam_line.get_ydata()[0] == 0.55
    (star,) = [c for c in ax.collections if c.get_offsets().tolist() == [[0.003, 0.55]]]
    assert star.get_paths()[0].vertices.shape[0] > 10  # a star, not the diverged x
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[-1] == "lr=auto, at the LR it chose"
    assert ax.get_xlim()[0] < 0.003
    assert _legend_is_outside(fig)


def _range_test(suggestion: str = "minimum"):
    """A range test's result on a made-up loss curve with a valley near lr 1e-2."""
    from lrbench.config import LRFindConfig, LRSuggestion, Ramp
    from lrbench.lr_find.range_test import RangeTest
    from lrbench.lr_find.rules import n_recorded, smooth, suggest

    cfg = LRFindConfig(
        min_lr=1e-7,
        max_lr=10.0,
        num_steps=100,
        ramp=Ramp.exponential,
        smoothing=0.9,
        stop_factor=4.0,
        suggestion=LRSuggestion(suggestion),
    )
    lrs = 1e-7 * 1e8 ** (np.arange(100) / 99)
    u = np.log10(lrs)
    losses = 2.3 - 2 / (1 + np.exp(-2 * (u + 4))) + 0.02 * np.exp(2.2 * (u + 2))
    smoothed = smooth(losses, cfg.smoothing)
    n = n_recorded(smoothed, cfg.stop_factor)
    return RangeTest(cfg, lrs, losses, smoothed, n, suggest(lrs[:n], smoothed[:n], 100), 0.0)


def test_lr_find_png_marks_each_suggestion_at_the_lr_it_suggests(tmp_path):
    from lrbench.lr_find import plot

    result = _range_test()
    n = result.n_recorded
    assert all(s is not None for s in result.suggestions.values())
    fig = plot.figure(result)
    ax = fig.axes[0]
    markers = {line.get_label().split(":")[0]: line for line in ax.get_lines()[2:]}
    assert list(markers) == ["valley", "steepest", "minimum"]
    for name, suggestion in result.suggestions.items():
        (x,), (y,) = markers[name].get_xdata(), markers[name].get_ydata()
        assert x == suggestion.lr  # the LR the label gives
        on_curve = np.interp(np.log(x), np.log(result.lrs[:n]), result.smoothed[:n])
        assert y == pytest.approx(on_curve, rel=1e-12)
        assert markers[name].get_label().startswith(f"{name}: {suggestion.lr:.3g}")
    minimum = result.suggestions["minimum"]
    lowest = result.lrs[minimum.step]  # where the lowest loss is: not where minimum points
    assert markers["minimum"].get_xdata()[0] == pytest.approx(lowest / 10, rel=1e-12)
    assert markers["minimum"].get_ydata()[0] > minimum.loss  # left of the lowest loss: higher
    for name in ("valley", "steepest"):  # recorded points: the loss there exactly
        assert markers[name].get_ydata()[0] == result.suggestions[name].loss

    out = tmp_path / "lr_find.png"
    plot.plot(result, out)
    fig.savefig(tmp_path / "drawn.png", dpi=100)  # the same figure, laid out here
    assert (tmp_path / "drawn.png").read_bytes() == out.read_bytes()
    image = np.asarray(Image.open(out).convert("RGB"), np.float64)
    assert image.shape == (450, 700, 3)
    red = np.array(colormaps["tab10"].colors[3]) * 255  # minimum's marker (C3)
    point = (markers["minimum"].get_xdata()[0], markers["minimum"].get_ydata()[0])
    px, py = ax.transData.transform(point)
    row, column = image.shape[0] - round(py), round(px)
    patch = image[row - 2 : row + 3, column - 2 : column + 3]
    assert (np.linalg.norm(patch - red, axis=-1) < 40).sum() >= 15  # the marker is drawn there


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
