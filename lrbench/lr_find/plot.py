"""lr_find.png: the smoothed loss against the LR (log axis), every suggestion marked at the
LR it suggests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lrbench.lr_find.range_test import RangeTest
from lrbench.lr_find.rules import RULES, SKIP_END

COLORS = ("C1", "C2", "C3")


def loss_at(lrs: np.ndarray, smoothed: np.ndarray, lr: float) -> float:
    """The smoothed loss at ``lr``, interpolated linearly in log(lr) between the recorded
    points (the curve is drawn on a log axis); an LR outside them takes the nearest end's."""
    return float(np.interp(np.log(lr), np.log(lrs), smoothed))


def suggestion_points(result: RangeTest) -> dict[str, tuple[float, float]]:
    """Each rule's marker: (the LR it suggests, the smoothed loss at that LR). ``minimum``
    suggests a tenth of the lowest loss's LR, so its marker is left of the lowest loss."""
    n = result.n_recorded
    return {
        name: (s.lr, loss_at(result.lrs[:n], result.smoothed[:n], s.lr))
        for name, s in result.suggestions.items()
        if s is not None
    }


def _label(name: str, lr: float) -> str:
    factor = RULES[name][1]
    note = f" (lowest loss's LR / {1 / factor:g})" if factor != 1 else ""
    return f"{name}: {lr:.3g}{note}"


def figure(result: RangeTest):
    """The plot as a matplotlib ``Figure`` (object API: no display, no global state)."""
    from matplotlib.figure import Figure

    n = max(result.n_recorded - SKIP_END, 1)  # fastai's plot leaves out the last 5 points too
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.subplots()
    ax.plot(result.lrs[:n], result.losses[:n], color="0.8", lw=0.8, label="batch loss")
    ax.plot(result.lrs[:n], result.smoothed[:n], color="C0", label="smoothed loss")
    points = suggestion_points(result)
    for color, name in zip(COLORS, RULES, strict=True):
        if name in points:
            lr, loss = points[name]
            ax.plot(lr, loss, "o", color=color, markersize=7, label=_label(name, lr))
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title(f"LR range test ({result.cfg.ramp.value} ramp, {result.n_recorded} steps)")
    ax.legend(loc="best")
    return fig


def plot(result: RangeTest, path: Path) -> None:
    figure(result).savefig(path, dpi=100)
