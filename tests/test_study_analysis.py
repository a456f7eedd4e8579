"""The study's measures against independent references: the expected best score against a
brute-force enumeration of every draw, the performance profile against a hand computation,
tuneability, the LR choice and the sensitivity statistics on hand-made numbers."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from lrbench.study.analysis import (
    LRPoint,
    Trial,
    default_taus,
    expected_max,
    fraction_diverged,
    median_or_none,
    performance_profile,
    select_lr,
    sensitivity,
    summarize,
    trial_counts,
    trial_scores,
    tuneability_width,
    worst_score,
)

SCORES = [0.3, 0.9, 0.5, 0.5, 0.7]


def _brute_force(scores, k, best):
    """The mean of the best over all N^k ordered draws with replacement."""
    draws = itertools.product(scores, repeat=k)
    return float(np.mean([best(draw) for draw in draws]))


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize(("higher_is_better", "best"), [(True, max), (False, min)])
def test_expected_max_equals_the_mean_over_every_draw(k, higher_is_better, best):
    (value,) = expected_max(SCORES, [k], higher_is_better)
    assert value == pytest.approx(_brute_force(SCORES, k, best), abs=1e-12)


def test_expected_max_of_one_trial_is_the_mean_and_of_many_the_best():
    one, many = expected_max(SCORES, [1, 200], True)
    assert one == pytest.approx(np.mean(SCORES), abs=1e-12)
    assert many == pytest.approx(0.9, abs=1e-12)
    assert expected_max(SCORES, [200], False)[0] == pytest.approx(0.3, abs=1e-12)
    assert type(one) is float


def test_expected_max_rises_with_k_by_hand_for_two_scores():
    # Two scores 0 and 1: the best of k draws is 0 only when every draw is 0: 1 - 2^-k.
    assert expected_max([0.0, 1.0], [1, 2, 4], True) == pytest.approx([0.5, 0.75, 0.9375])


def test_expected_max_refuses_scores_that_are_not_finite():
    with pytest.raises(ValueError, match="finite"):
        expected_max([0.5, math.nan], [1], True)


def test_trial_counts_are_powers_of_two_then_n():
    assert trial_counts(1) == [1]
    assert trial_counts(8) == [1, 2, 4, 8]
    assert trial_counts(12) == [1, 2, 4, 8, 12]
    assert trial_counts(0) == []


# Steps to target. p1: a=100, b=200, c=None (never). p2: a=300, b=150, c=150.
# p3: nobody reached it: unsolved for all.
COSTS = {
    "p1": {"a": 100.0, "b": 200.0, "c": None},
    "p2": {"a": 300.0, "b": 150.0, "c": 150.0},
    "p3": {"a": None, "b": None, "c": None},
}


def test_performance_profile_against_a_hand_computation():
    # ratios: p1 a=1, b=2, c=inf; p2 a=2, b=1, c=1; p3 all inf
    taus = [1.0, 1.5, 2.0, 10.0]
    profile = performance_profile(COSTS, taus)
    assert profile == {
        "a": [1 / 3, 1 / 3, 2 / 3, 2 / 3],
        "b": [1 / 3, 1 / 3, 2 / 3, 2 / 3],
        "c": [1 / 3, 1 / 3, 1 / 3, 1 / 3],
    }


def test_an_optimizer_missing_from_a_problem_never_reached_its_target():
    profile = performance_profile({"p1": {"a": 10.0}, "p2": {"a": 10.0, "b": 5.0}}, [1.0, 2.0])
    assert profile == {"a": [0.5, 1.0], "b": [0.5, 0.5]}


def test_default_taus_run_from_1_to_the_largest_ratio_with_every_ratio_in_them():
    taus = default_taus(COSTS)
    assert taus[0] == 1.0 and taus[-1] == 4.0  # largest finite ratio 2: at least to 4
    assert 2.0 in taus and taus == sorted(taus)
    wide = default_taus({"p": {"a": 1.0, "b": 7.5}})
    assert wide[-1] == 7.5 and 7.5 in wide
    assert default_taus({"p": {"a": None}}) == default_taus({"p": {"a": 1.0}})


def test_a_cost_that_is_not_positive_is_refused():
    with pytest.raises(ValueError, match="> 0"):
        performance_profile({"p": {"a": 0.0, "b": 1.0}}, [1.0])


def _point(lr, mean, scored=True):
    return LRPoint(lr, mean, 0.0, mean if scored else None, mean if scored else None, 1, 0)


def test_tuneability_of_a_single_point_is_zero():
    assert tuneability_width([_point(0.1, 0.9)], True) == 0.0


def test_tuneability_counts_the_contiguous_run_around_the_best():
    # within 1% of 0.90: >= 0.891. 1e-3 .. 1e-1 are: two decades.
    means = {1e-4: 0.5, 1e-3: 0.895, 1e-2: 0.9, 1e-1: 0.892, 1.0: 0.7}
    points = [_point(lr, m) for lr, m in means.items()]
    assert tuneability_width(points, True) == pytest.approx(2.0)
    assert tuneability_width(points, True, tolerance=0.001) == pytest.approx(0.0)


def test_tuneability_does_not_count_good_lrs_beyond_a_bad_one():
    means = {1e-3: 0.9, 1e-2: 0.5, 1e-1: 0.9, 1.0: 0.899}
    points = [_point(lr, m) for lr, m in reversed(means.items())]  # any order
    assert tuneability_width(points, True) == 0.0  # best: 1e-3 (tie, smaller LR); 1e-2 breaks


def test_tuneability_for_a_loss_and_a_point_where_nothing_scored():
    # lower is better: best 1.0, within 1%: <= 1.01
    points = [_point(1e-3, 1.2), _point(1e-2, 1.005), _point(1e-1, 1.0), _point(1.0, 1.0, False)]
    assert tuneability_width(points, False) == pytest.approx(1.0)


def _trials(table):
    """{lr: [score or "div", ...]} -> trials, seeds numbered."""
    return [
        Trial(lr, seed, None if s == "div" else s, s == "div", 100)
        for lr, scores in table.items()
        for seed, s in enumerate(scores)
    ]


def test_sensitivity_statistics_match_numpy_with_diverged_seeds_as_the_worst():
    trials = _trials({0.1: [0.8, "div", 0.6], 0.01: [0.7, 0.9, 0.5], 1.0: ["div", "div"]})
    points = sensitivity(trials, True)
    assert [p.lr for p in points] == [0.01, 0.1, 1.0]
    first, second, third = points
    assert first == LRPoint(0.01, *_stats([0.7, 0.9, 0.5], [0.7, 0.9, 0.5]), 3, 0)
    assert second == LRPoint(0.1, *_stats([0.8, 0.0, 0.6], [0.8, 0.6]), 3, 1)
    assert third == LRPoint(1.0, 0.0, None, None, None, 2, 2)
    assert json.loads(json.dumps([dataclasses.asdict(p) for p in points]))[0]["n"] == 3


def _stats(counted, scored):
    return (
        pytest.approx(np.mean(counted), abs=1e-12),
        pytest.approx(np.std(scored), abs=1e-12),
        min(scored),
        max(scored),
    )


def test_the_worst_loss_is_the_largest_loss_of_the_grid():
    trials = _trials({0.1: [2.0, "div"], 0.01: [3.0, 1.0]})
    assert worst_score(trials, False) == 3.0
    _, high = sensitivity(trials, False)
    assert high.mean == pytest.approx(2.5) and high.std == 0.0
    assert trial_scores(trials, False) == [2.0, 3.0, 3.0, 1.0]
    assert worst_score(_trials({0.1: ["div"]}), False) == math.inf
    assert sensitivity(_trials({0.1: ["div"]}), False)[0].mean is None  # JSON has no inf


def test_select_lr_takes_the_best_mean_and_a_tie_goes_to_the_smaller_lr():
    assert select_lr(_trials({0.01: [0.8, 0.9], 0.1: [0.85, 0.95]}), True) == 0.1
    assert select_lr(_trials({0.1: [0.8, 0.9], 0.01: [0.9, 0.8]}), True) == 0.01
    assert select_lr(_trials({0.01: [1.0, 1.2], 0.1: [0.5, 0.7]}), False) == 0.1


def test_select_lr_penalizes_an_lr_that_diverged_on_one_seed():
    # 0.1 is better on the seed that trained, but its diverged seed counts as 0
    assert select_lr(_trials({0.01: [0.8, 0.8], 0.1: [0.95, "div"]}), True) == 0.01
    # a loss: 0.1's diverged seed counts as 3.0, the grid's worst (from 0.001)
    assert select_lr(_trials({0.001: [3.0], 0.01: [1.0, 1.0], 0.1: [0.5, "div"]}), False) == 0.01


def test_select_lr_never_picks_an_lr_where_every_seed_diverged():
    # the diverged LR's mean (the worst loss, 2.0) ties 0.1's, and it is the smaller LR
    assert select_lr(_trials({0.001: ["div"], 0.1: [2.0]}), False) == 0.1


def test_select_lr_refuses_a_grid_that_all_diverged():
    with pytest.raises(ValueError, match="every learning rate of the grid diverged"):
        select_lr(_trials({0.1: ["div", "div"], 1.0: ["div"]}), True)


def test_fraction_diverged_is_over_members():
    assert fraction_diverged(_trials({0.1: [0.8, "div", 0.6], 1.0: ["div"]})) == 0.5
    with pytest.raises(ValueError):
        fraction_diverged([])


def test_summarize_and_median_keep_only_what_they_should():
    assert summarize([1.0, None, 3.0, math.nan]) == {
        "mean": 2.0,
        "std": 1.0,
        "min": 1.0,
        "max": 3.0,
        "n": 2,
    }
    assert summarize([None]) == {"mean": None, "std": None, "min": None, "max": None, "n": 0}
    assert median_or_none([3.0, 1.0, 2.0]) == 2.0
    assert median_or_none([10.0, None, 30.0]) == 30.0  # None: never reached, +inf
    assert median_or_none([10.0, None]) is None  # reached by half the seeds only
    assert median_or_none([]) is None


def test_analysis_imports_neither_jax_nor_matplotlib():
    code = (
        "import sys, lrbench.study.analysis; "
        "print([m for m in ('jax', 'tensorflow', 'matplotlib', 'pandas') if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr
