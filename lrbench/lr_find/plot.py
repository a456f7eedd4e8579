"""lr_find.png: the smoothed loss against the LR (log axis), every suggestion marked."""

from __future__ import annotations

from pathlib import Path

from lrbench.lr_find.range_test import RangeTest
from lrbench.lr_find.rules import SKIP_END


def plot(result: RangeTest, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    n = max(result.n_recorded - SKIP_END, 1)  # fastai's plot leaves out the last 5 points too
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(result.lrs[:n], result.losses[:n], color="0.8", lw=0.8, label="batch loss")
    ax.plot(result.lrs[:n], result.smoothed[:n], color="C0", label="smoothed loss")
    for color, (name, suggestion) in zip(
        ("C1", "C2", "C3"), result.suggestions.items(), strict=True
    ):
        if suggestion is not None:
            ax.plot(
                result.lrs[suggestion.step],
                suggestion.loss,
                "o",
                color=color,
                label=f"{name}: {suggestion.lr:.3g}",
            )
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title(f"LR range test ({result.cfg.ramp.value} ramp, {result.n_recorded} steps)")
    ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
