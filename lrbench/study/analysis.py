"""The measures of a study (docs/study.md "Measures"): LR sensitivity and its choice,
tuneability, the expected best score after k trials, performance profiles.

Pure functions of numbers (numpy only), so each is tested against a hand computation and
the study's outputs are JSON as they come (Python floats, never numpy scalars).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Trial:
    """One tuning member."""

    lr: float
    seed: int
    score: float | None  # the selection metric; None: diverged before any evaluation
    diverged: bool
    steps: int  # member-steps it trained (pruned members: fewer)


@dataclass(frozen=True)
class LRPoint:
    """One grid LR over its seeds: the sensitivity curve's point."""

    lr: float
    mean: float | None  # failed seeds counted as the worst score; None: no finite worst
    std: float | None  # std, min, max: of the seeds that scored; None when none did
    min: float | None
    max: float | None
    n: int  # seeds
    diverged: int  # of them, diverged


def _scored(trial: Trial) -> bool:
    """A seed that counts as it is: it did not diverge and has a finite score."""
    return not trial.diverged and trial.score is not None and math.isfinite(trial.score)


def worst_score(trials: Iterable[Trial], higher_is_better: bool) -> float:
    """What a failed seed (diverged, or no finite score) counts as: no better than anything
    that scored. Higher is better (accuracy): 0.0, or the lowest score if some is below it.
    Lower is better (a loss has no worst value): the largest score in the whole grid, +inf
    when no seed scored."""
    scores = [t.score for t in trials if _scored(t)]
    if higher_is_better:
        return min([0.0, *scores])
    return max(scores, default=math.inf)


def trial_scores(trials: Sequence[Trial], higher_is_better: bool) -> list[float]:
    """Each member's score, a failed one's as ``worst_score``: what a random draw of a
    trial gets (the input of ``expected_max``)."""
    worst = worst_score(trials, higher_is_better)
    return [float(t.score) if _scored(t) else worst for t in trials]


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def sensitivity(trials: Sequence[Trial], higher_is_better: bool) -> list[LRPoint]:
    """Per grid LR, ascending: the mean over its seeds, each failed seed (diverged, or no
    finite score) counted as ``worst_score`` so an LR that sometimes diverges ranks below one
    that never does; std (population, ddof=0), min and max of the seeds that scored; the
    number of seeds and of those that diverged."""
    worst = worst_score(trials, higher_is_better)
    points = []
    for lr in sorted({t.lr for t in trials}):
        seeds = [t for t in trials if t.lr == lr]
        scored = np.array([t.score for t in seeds if _scored(t)], dtype=float)
        counted = [*scored, *[worst] * (len(seeds) - scored.size)]
        some = scored.size > 0
        points.append(
            LRPoint(
                lr=float(lr),
                mean=_finite_or_none(float(np.mean(counted))),
                std=float(np.std(scored)) if some else None,
                min=float(scored.min()) if some else None,
                max=float(scored.max()) if some else None,
                n=len(seeds),
                diverged=sum(t.diverged for t in seeds),
            )
        )
    return points


def _best_index(points: Sequence[LRPoint], higher_is_better: bool) -> int:
    """The point with the best mean among those where some seed scored; of equal means the
    first (the smallest LR when ``points`` ascend)."""
    best = None
    sign = 1.0 if higher_is_better else -1.0
    for i, point in enumerate(points):
        if point.min is None:  # no seed scored: its mean is only the worst score
            continue
        if best is None or sign * point.mean > sign * points[best].mean:
            best = i
    if best is None:
        raise ValueError("every learning rate of the grid diverged: no LR to choose")
    return best


def select_lr(trials: Sequence[Trial], higher_is_better: bool) -> float:
    """The grid LR with the best mean (as in ``sensitivity``); exact ties go to the smaller
    LR, the safer one. ValueError when every LR diverged on every seed."""
    points = sensitivity(trials, higher_is_better)
    return points[_best_index(points, higher_is_better)].lr


def tuneability_width(
    points: Sequence[LRPoint], higher_is_better: bool, tolerance: float = 0.01
) -> float:
    """How forgiving the LR is: the width in decades, log10(hi / lo), of the contiguous run
    of grid LRs around the best whose mean is within ``tolerance`` of the best's, relative
    (|best - mean| <= tolerance * |best|). An LR farther off, or where no seed scored, ends
    the run: good LRs beyond a bad one do not count. A single point: 0.0."""
    points = sorted(points, key=lambda p: p.lr)
    best = _best_index(points, higher_is_better)
    target = points[best].mean

    def close(i: int) -> bool:
        point = points[i]
        return point.min is not None and abs(target - point.mean) <= tolerance * abs(target)

    lo = hi = best
    while lo > 0 and close(lo - 1):
        lo -= 1
    while hi < len(points) - 1 and close(hi + 1):
        hi += 1
    return float(math.log10(points[hi].lr / points[lo].lr))


def fraction_diverged(trials: Sequence[Trial]) -> float:
    """The fraction of tuning members that diverged."""
    if not trials:
        raise ValueError("no tuning trials: nothing diverged or not")
    return sum(t.diverged for t in trials) / len(trials)


def expected_max(scores: Sequence[float], ks: Iterable[int], higher_is_better: bool) -> list[float]:
    """Dodge et al. 2019: the expected best of k trials drawn uniformly with replacement
    from the N scores, E[max_k] = sum_i v_(i) ((i/N)^k - ((i-1)/N)^k), v ascending; the
    expected min when lower is better. Exact, from the grid's results: no resampling."""
    values = np.asarray(scores, dtype=float)
    if values.size == 0 or not np.isfinite(values).all():
        raise ValueError("expected_max needs finite scores (a failed trial as its worst score)")
    sign = 1.0 if higher_is_better else -1.0
    ordered = np.sort(sign * values)
    cdf = np.arange(ordered.size + 1) / ordered.size
    return [float(sign * ordered @ np.diff(cdf**k)) for k in ks]


def trial_counts(n: int) -> list[int]:
    """1, 2, 4, 8, ... up to ``n``, and ``n`` itself when it is not a power of two."""
    counts = [2**i for i in range(n.bit_length()) if 2**i <= n]
    return counts if not counts or counts[-1] == n else [*counts, n]


Costs = dict[str, dict[str, float | None]]  # costs[problem][optimizer]


def _optimizers(costs: Costs) -> list[str]:
    return list(dict.fromkeys(o for row in costs.values() for o in row))


def cost_ratios(costs: Costs) -> dict[str, dict[str, float]]:
    """Per problem, each optimizer's cost over the problem's smallest: inf where it never
    reached the target (None, or absent) and on a problem no optimizer solved."""
    ratios = {}
    for problem, row in costs.items():
        finite = [c for c in row.values() if c is not None and math.isfinite(c)]
        if any(c <= 0 for c in finite):
            raise ValueError(f"{problem}: a cost to target must be > 0, got {min(finite)}")
        best = min(finite, default=None)
        ratios[problem] = {
            o: math.inf if best is None or row.get(o) is None else row[o] / best
            for o in _optimizers(costs)
        }
    return ratios


def performance_profile(costs: Costs, taus: Iterable[float]) -> dict[str, list[float]]:
    """Dolan & Moré 2002, AlgoPerf's form: rho_o(tau), the fraction of problems on which
    optimizer o's cost (time or steps to target; None: never reached) is within tau times
    the fastest optimizer's. A problem no optimizer solved counts as unsolved for all."""
    ratios = cost_ratios(costs)
    taus = list(taus)
    return {
        o: [sum(r[o] <= tau for r in ratios.values()) / len(ratios) for tau in taus]
        for o in _optimizers(costs)
    }


def default_taus(costs: Costs, points: int = 50) -> list[float]:
    """Log-spaced taus from 1 to the largest finite ratio (at least to 4), with every ratio
    itself among them, so the profile's steps are drawn where they happen."""
    finite = [r for row in cost_ratios(costs).values() for r in row.values() if math.isfinite(r)]
    top = max([4.0, *finite])
    return sorted({*np.geomspace(1.0, top, points).tolist(), *map(float, finite)})


def _finite(values: Iterable[float | None]) -> np.ndarray:
    array = np.array([v for v in values if v is not None], dtype=float)
    return array[np.isfinite(array)]


def summarize(values: Iterable[float | None]) -> dict:
    """Mean, std (ddof=0), min, max and n of the finite values; None for each stat when
    there is none."""
    array = _finite(values)
    if array.size == 0:
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0}
    return {
        "mean": float(array.mean()),
        "std": float(array.std()),
        "min": float(array.min()),
        "max": float(array.max()),
        "n": int(array.size),
    }


def median_or_none(values: Iterable[float | None]) -> float | None:
    """The median of costs to target over seeds, where None (never reached) counts as
    +inf as in AlgoPerf: a target reached by fewer than half the seeds has no median
    (None), and one reached by a lucky seed only does not look fast."""
    array = np.array([math.inf if v is None else v for v in values], dtype=float)
    if array.size == 0:
        return None
    return _finite_or_none(float(np.median(array)))
