"""The LR range test's analysis, on the host in numpy: smoothing, stop, suggestions.

The rules are fastai's (``fastai.callback.schedule``: ``LRFinder``, ``lr_find``, ``valley``,
``steep``, ``minimum``), which Lightning's ``Tuner.lr_find`` follows too. fastai ships them
inside a torch training framework, so they are re-implemented here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# fastai's lr_find leaves out the first num_it // 10 points and the last 5 before suggesting.
SKIP_START_DIVISOR = 10
SKIP_END = 5


def smooth(losses: np.ndarray, beta: float) -> np.ndarray:
    """Debiased exponential moving average (fastai's AvgSmoothLoss):
    a_i = beta a_{i-1} + (1 - beta) l_i, reported as a_i / (1 - beta^i)."""
    out = np.empty(len(losses))
    average = 0.0
    for i, loss in enumerate(np.asarray(losses, np.float64)):
        average = beta * average + (1 - beta) * loss
        out[i] = average / (1 - beta ** (i + 1))
    return out


def n_recorded(smoothed: np.ndarray, stop_factor: float) -> int:
    """Points the test keeps: up to and including the first whose smoothed loss exceeds
    stop_factor x the best so far (fastai's LRFinder stops there) or is not finite."""
    best = np.minimum.accumulate(np.where(np.isfinite(smoothed), smoothed, np.inf))
    diverged = ~np.isfinite(smoothed) | (smoothed > stop_factor * best)
    hits = np.flatnonzero(diverged)
    return len(smoothed) if hits.size == 0 else int(hits[0]) + 1


def valley(lrs: np.ndarray, losses: np.ndarray) -> int:
    """fastai's default: the longest decreasing subsequence of the losses (the longest
    "valley"), and the index (end - start) / 3 + (end - start) / 6 into it (both truncated).

    The bookkeeping is fastai's, quirks included: a valley's start is recorded as
    end - length at the moment its end first becomes the longest, while the length may still
    grow in the same pass; a start of -1 indexes from the end, as in Python.
    """
    n = len(losses)
    lds = np.ones(n, dtype=np.int64)  # longest decreasing subsequence ending at each point
    max_start, max_end = 0, 0
    for i in range(1, n):
        # lds[i] as fastai's inner loop over j = 0..i-1 grows it: a running maximum
        candidates = np.where(losses[:i] > losses[i], lds[:i] + 1, 1)
        running = np.maximum.accumulate(candidates)
        lds[i] = running[-1]
        longer = np.flatnonzero(running > lds[max_end])
        if longer.size:
            max_end, max_start = i, i - int(running[longer[0]])
    sections = (max_end - max_start) / 3
    return max_start + int(sections) + int(sections / 2)


def steepest(lrs: np.ndarray, losses: np.ndarray) -> int:
    """The most negative slope d loss / d log(lr); the index of its left point."""
    slopes = np.diff(losses) / np.diff(np.log(lrs))
    return int(np.argmin(slopes))


def minimum(lrs: np.ndarray, losses: np.ndarray) -> int:
    """The lowest loss (the suggestion is a tenth of its LR)."""
    return int(np.argmin(losses))


# name -> (index rule, factor applied to the LR at that index)
RULES = {"valley": (valley, 1.0), "steepest": (steepest, 1.0), "minimum": (minimum, 0.1)}


@dataclass(frozen=True)
class Suggestion:
    lr: float  # the suggested learning rate
    step: int  # the point the rule chose (0-based index into the test)
    loss: float  # the smoothed loss there

    def as_dict(self) -> dict:
        return {"lr": self.lr, "step": self.step, "loss": self.loss}


def suggest(lrs: np.ndarray, smoothed: np.ndarray, num_steps: int) -> dict[str, Suggestion | None]:
    """Every rule's suggestion from the recorded points, fastai's window: points
    [num_steps // 10, n - 5). None where the window is too short for the rule."""
    start = num_steps // SKIP_START_DIVISOR
    stop = len(smoothed) - SKIP_END
    window_lrs, window = lrs[start:stop], smoothed[start:stop]
    suggestions: dict[str, Suggestion | None] = {}
    for name, (rule, factor) in RULES.items():
        if len(window) < 2:
            suggestions[name] = None
            continue
        index = rule(window_lrs, window) % len(window)  # -1 (valley) is the last point
        suggestions[name] = Suggestion(
            float(window_lrs[index] * factor), start + index, float(window[index])
        )
    return suggestions
