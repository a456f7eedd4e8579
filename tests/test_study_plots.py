"""The study's figures drawn from a hand-made study record and confirmation run directories:
the files written, and every line, band and marker where the record's numbers put it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fake_runs import config, curve_rows, make_run, summary
from matplotlib import colormaps
from PIL import Image

from lrbench.analysis.plots import to_bytes
from lrbench.study import plots
from lrbench.study.analysis import default_taus, performance_profile

TAB = list(colormaps["tab10"].colors)
# every optimizer label of the study, sorted: its tab10 colour
COLORS = {"adam": TAB[0], "adam (lr=auto)": TAB[1], "prodigy": TAB[2], "sgd": TAB[3]}
ACCURACY = {"metric": "val_accuracy", "mode": "final", "higher_is_better": True}
LOSS_BEST = {"metric": "val_loss", "mode": "best", "higher_is_better": False}
STEPS = (9, 18, 27, 36)  # curve_rows(36) evaluates every 9 steps
# (problem, optimizer): how much below curve_rows' val_accuracy its confirmation runs are
OFFSET = {("toy", "adam"): 0.0, ("toy", "sgd"): 0.1, ("toy", "prodigy"): 0.2}


def _point(lr, scores, diverged=0):
    """A sensitivity point of hand-made seed scores; a diverged seed counts as 0 in the mean."""
    scored = np.array(scores)
    counted = [*scores, *[0.0] * diverged]
    some = len(scores) > 0
    return {
        "lr": lr,
        "mean": float(np.mean(counted)),
        "std": float(scored.std()) if some else None,
        "min": min(scores) if some else None,
        "max": max(scores) if some else None,
        "n": len(counted),
        "diverged": diverged,
    }


SENSITIVITY = {
    ("toy", "adam"): [
        _point(0.001, [0.55, 0.65]),
        _point(0.01, [0.89, 0.91]),
        _point(0.1, [0.8], diverged=1),
        _point(1.0, [], diverged=2),
    ],
    ("toy", "sgd"): [_point(0.01, [0.5, 0.5]), _point(0.1, [0.7, 0.6]), _point(1.0, [0.8, 0.7])],
    ("digits", "adam"): [_point(0.001, [0.3, 0.2]), _point(0.01, [0.1, 0.15])],
}
EXPECTED = {
    ("toy", "adam"): {"k": [1, 2, 4, 8], "value": [0.55, 0.75, 0.86, 0.9]},
    ("toy", "sgd"): {"k": [1, 2, 4, 6], "value": [0.63, 0.72, 0.78, 0.79]},
    ("digits", "adam"): {"k": [1, 2, 4], "value": [0.19, 0.14, 0.11]},
}
TARGET_STEPS = {
    ("toy", "adam"): 100,
    ("toy", "sgd"): 200,
    ("toy", "prodigy"): None,
    ("toy", "adam (lr=auto)"): 150,
    ("digits", "adam"): 300,
    ("tiny", "prodigy"): 50,
}


def _rows(offset: float, seed: int, last_val_loss: float | None = None) -> list[dict]:
    """curve_rows with val_accuracy lowered by ``offset`` and 0.01 a seed (so seeds differ);
    ``last_val_loss``: the last evaluation's val_loss (worse than the best before it)."""
    rows = curve_rows(36, 0.01)
    for row in rows:
        if "val_accuracy" in row:
            row["val_accuracy"] -= offset + 0.01 * seed
    if last_val_loss is not None:
        rows[-1]["val_loss"] = last_val_loss
    return rows


def _unit(root, problem, optimizer, how, lr, selection, seeds, rows_of):
    dirs = []
    for seed in range(seeds):
        path = root / problem / f"{optimizer}-{how}" / str(seed)
        cfg = config(f"optimizer={optimizer}") | {"seed": seed}
        dirs.append(str(make_run(path, cfg, summary(steps=36), rows_of(seed))))
    label = f"{optimizer} (lr=auto)" if how == "auto" else optimizer
    return {
        "problem": problem,
        "optimizer": optimizer,
        "how": how,
        "lr": lr,
        "selection": selection,
        "sensitivity": SENSITIVITY.get((problem, optimizer), []) if how == "grid" else [],
        "expected_max": EXPECTED.get((problem, optimizer), {"k": [], "value": []})
        if how == "grid"
        else {"k": [], "value": []},
        "confirm_dirs": dirs,
        "target": {
            "metric": selection["metric"],
            "value": 0.9,
            "steps_median": TARGET_STEPS[(problem, label)],
            "seconds_median": None,
        },
    }


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """toy: adam and sgd on the grid, prodigy (free), adam with lr=auto; digits: adam on the
    grid, selected by its best val_loss; tiny: prodigy alone, one confirmation run."""
    root = tmp_path_factory.mktemp("study")

    def accuracy(problem, name):
        return lambda seed: _rows(OFFSET.get((problem, name), 0.05), seed)

    units = [
        _unit(root, "toy", "adam", "grid", 0.01, ACCURACY, 2, accuracy("toy", "adam")),
        _unit(root, "toy", "sgd", "grid", 1.0, ACCURACY, 2, accuracy("toy", "sgd")),
        _unit(root, "toy", "prodigy", "free", 1.0, ACCURACY, 2, accuracy("toy", "prodigy")),
        _unit(root, "toy", "adam", "auto", 0.003, ACCURACY, 1, accuracy("toy", "auto")),
        _unit(root, "digits", "adam", "grid", 0.01, LOSS_BEST, 3, lambda s: _rows(0, s, 1.0)),
        _unit(root, "tiny", "prodigy", "free", 1.0, ACCURACY, 1, accuracy("tiny", "prodigy")),
    ]
    return json.loads(json.dumps({"units": units}))  # as read back from study.json


def _units(study, problem):
    return [u for u in study["units"] if u["problem"] == problem]


def _val_accuracy(offset, seed):
    return np.array([1 - 1 / step - offset - 0.01 * seed for step in STEPS])


def _legend_is_outside(fig) -> bool:
    to_bytes(fig, "png")  # lays the figure out
    (ax,) = fig.axes
    legend = ax.get_legend()
    return legend is not None and not legend.get_window_extent().overlaps(ax.bbox)


def test_write_plots_writes_every_figure_of_every_problem(study, tmp_path):
    written = plots.write_plots(study, tmp_path / "plots")
    names = [p.name for p in written]
    assert names == [
        "sensitivity_toy.png",
        "curves_toy.png",
        "expected_max_toy.png",
        "sensitivity_digits.png",
        "curves_digits.png",
        "expected_max_digits.png",
        "sensitivity_tiny.png",
        "curves_tiny.png",  # no expected_max: tiny has no grid-tuned optimizer
        "performance_profile.png",
    ]
    for path in written:
        assert Image.open(path).size == (800, 500)


def test_sensitivity_draws_the_means_band_chosen_lr_and_divergence(study):
    fig = plots.sensitivity_figure(_units(study, "toy"), plots.unit_colors(study))
    (ax,) = fig.axes
    assert ax.get_xscale() == "log"
    assert ax.get_title() == (
        "toy: val_accuracy (final) vs lr; line: mean over 2 seeds, band: min to max"
    )
    grid = [line for line in ax.get_lines() if line.get_marker() == "o"]
    for line, name in zip(grid, ("adam", "sgd"), strict=True):
        scored = [p for p in SENSITIVITY[("toy", name)] if p["min"] is not None]
        assert line.get_xdata().tolist() == [p["lr"] for p in scored]  # adam's 1.0: none scored
        assert line.get_ydata().tolist() == pytest.approx([p["mean"] for p in scored])
        assert line.get_color() == COLORS[name]
    bands = [c for c in ax.collections if "Poly" in type(c).__name__]
    adam_band = bands[0].get_paths()[0].vertices
    assert adam_band[:, 1].max() == pytest.approx(0.91) and adam_band[:, 1].min() == 0.55
    marks = [c for c in ax.collections if type(c).__name__ == "PathCollection"]
    assert marks[0].get_offsets().tolist() == [[0.01, pytest.approx(0.9)]]  # adam's chosen LR
    assert marks[1].get_offsets()[:, 0].tolist() == [0.1, 1.0]  # x's where a seed diverged
    assert marks[1].get_paths()[0].vertices.shape[0] < marks[0].get_paths()[0].vertices.shape[0]
    assert marks[2].get_offsets().tolist() == [[1.0, pytest.approx(0.75)]]  # sgd's chosen LR


def test_sensitivity_places_free_and_auto_methods_at_their_lr_and_confirm_mean(study):
    fig = plots.sensitivity_figure(_units(study, "toy"), plots.unit_colors(study))
    (ax,) = fig.axes
    final = {"prodigy": (0.2, 2), "adam (lr=auto)": (0.05, 1)}  # offset, seeds
    for label, lr in (("prodigy", 1.0), ("adam (lr=auto)", 0.003)):
        offset, seeds = final[label]
        mean = np.mean([_val_accuracy(offset, s)[-1] for s in range(seeds)])
        (dashed,) = [
            line
            for line in ax.get_lines()
            if line.get_linestyle() == "--" and line.get_color() == COLORS[label]
        ]
        assert list(dashed.get_ydata()) == pytest.approx([mean, mean])
        (diamond,) = [
            c
            for c in ax.collections
            if type(c).__name__ == "PathCollection"
            and tuple(c.get_facecolor()[0][:3]) == pytest.approx(COLORS[label])
        ]
        assert diamond.get_offsets().tolist() == [[lr, pytest.approx(mean)]]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["adam", "sgd", "prodigy", "adam (lr=auto)", "chosen LR", "diverged"]
    assert _legend_is_outside(fig)


def test_curves_draw_the_mean_over_seeds_and_a_band_from_min_to_max(study):
    fig = plots.curves_figure(_units(study, "toy"), plots.unit_colors(study))
    (ax,) = fig.axes
    assert ax.get_title() == (
        "toy: val_accuracy at the chosen LR, 7 runs; line: mean over seeds, band: min to max"
    )
    lines = ax.get_lines()
    names = ("adam", "sgd", "prodigy", "adam (lr=auto)")
    assert [line.get_color() for line in lines] == [COLORS[name] for name in names]
    for line, offset in zip(lines[:3], (0.0, 0.1, 0.2), strict=True):
        assert line.get_xdata().tolist() == list(STEPS)
        seeds = [_val_accuracy(offset, s) for s in (0, 1)]
        assert line.get_ydata() == pytest.approx(np.mean(seeds, axis=0), abs=1e-12)
    assert lines[3].get_ydata() == pytest.approx(_val_accuracy(0.05, 0), abs=1e-12)
    bands = [c for c in ax.collections if "Poly" in type(c).__name__]
    assert len(bands) == 3  # lr=auto has one run: nothing to band
    outline = bands[0].get_paths()[0].vertices[:, 1]
    assert outline.min() == pytest.approx(_val_accuracy(0.0, 1).min())
    assert outline.max() == pytest.approx(_val_accuracy(0.0, 0).max())
    assert _legend_is_outside(fig)


def test_titles_count_one_run_in_the_singular(study):
    fig = plots.curves_figure(_units(study, "tiny"), plots.unit_colors(study))
    assert fig.axes[0].get_title() == "tiny: val_accuracy at the chosen LR, 1 run"
    sensitivity = plots.sensitivity_figure(_units(study, "tiny"), plots.unit_colors(study))
    assert sensitivity.axes[0].get_title() == "tiny: val_accuracy (final) vs lr"


def test_expected_max_draws_each_grid_optimizers_curve_on_a_log2_axis(study):
    fig = plots.expected_max_figure(_units(study, "toy"), plots.unit_colors(study))
    (ax,) = fig.axes
    assert ax.get_xscale() == "log" and ax.xaxis.get_transform().base == 2
    assert ax.get_title() == "toy: expected best of k trials, from 8 trials"
    lines = ax.get_lines()
    assert len(lines) == 2  # prodigy and lr=auto were not tuned on the grid
    for line, name in zip(lines, ("adam", "sgd"), strict=True):
        assert line.get_xdata().tolist() == EXPECTED[("toy", name)]["k"]
        assert line.get_ydata().tolist() == EXPECTED[("toy", name)]["value"]
        assert line.get_color() == COLORS[name]
    assert plots.expected_max_figure(_units(study, "tiny"), plots.unit_colors(study)) is None


def test_performance_profile_steps_are_the_profiles_values(study):
    fig = plots.profile_figure(study, plots.unit_colors(study))
    (ax,) = fig.axes
    assert ax.get_xscale() == "log"
    assert ax.get_title() == "performance profile: 3 problems, steps to target"
    costs = {
        "toy": {"adam": 100, "sgd": 200, "prodigy": None, "adam (lr=auto)": 150},
        "digits": {"adam": 300},
        "tiny": {"prodigy": 50},
    }
    assert plots.target_costs(study) == costs
    taus = default_taus(costs)
    profile = performance_profile(costs, taus)
    lines = ax.get_lines()
    assert [line.get_color() for line in lines] == [COLORS[name] for name in profile]
    for line, rho in zip(lines, profile.values(), strict=True):
        assert line.get_drawstyle() == "steps-post"
        assert line.get_xdata().tolist() == taus
        assert line.get_ydata().tolist() == rho
    # by hand: adam is the fastest on toy and digits; sgd within 2x on toy only
    at = {tau: i for i, tau in enumerate(taus)}
    assert profile["adam"][at[1.0]] == pytest.approx(2 / 3)
    assert profile["sgd"][at[1.0]] == 0 and profile["sgd"][at[2.0]] == pytest.approx(1 / 3)
    assert profile["prodigy"][-1] == pytest.approx(1 / 3)  # tiny only
    assert len({str(line.get_linestyle()) for line in lines}) == len(lines)
    assert _legend_is_outside(fig)


def test_confirm_score_follows_the_selection_rule(study):
    (digits,) = _units(study, "digits")
    run = digits["confirm_dirs"][0]
    assert plots.confirm_score(digits, run) == pytest.approx(2 / 27)  # the best val_loss
    final = digits | {"selection": LOSS_BEST | {"mode": "final"}}
    assert plots.confirm_score(final, run) == 1.0
    assert plots.confirm_score(digits, "/no/such/run") is None
