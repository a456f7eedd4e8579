"""Figures of a run table: learning curves, LR sensitivity, the LR used, a schedule.

matplotlib's object API (``Figure``, no pyplot): no display, no global state, the Agg
renderer for PNG and the SVG one for SVG.
"""

from __future__ import annotations

import io
import numbers
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from lrbench.analysis.table import METRICS, check_metric, config_text
from lrbench.errors import ConfigError
from lrbench.runs import METRIC_COLUMNS

X_AXES = {"step": "step", "epoch": "epoch", "time": "elapsed_s"}
Y_COLUMNS = tuple(c for c in METRIC_COLUMNS if c not in X_AXES.values())
FORMATS = (".png", ".svg")
SIZE = (8, 5)  # inches, at 100 dpi
DIVERGED = {"marker": "x", "s": 60, "linewidths": 2, "zorder": 3}


def _sort_key(value):
    """Hue values in numeric order when they are numbers (1e-3 before 1e-2)."""
    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    return (0, float(value), "") if is_number else (1, 0.0, config_text(value))


def hue_colors(values: pd.Series) -> dict[str, tuple]:
    """A colour per distinct value (by its config text): tab10 up to ten, else viridis."""
    distinct = sorted(set(values.tolist()), key=_sort_key)
    labels = list(dict.fromkeys(config_text(v) for v in distinct))
    from matplotlib import colormaps

    if len(labels) <= 10:
        palette = colormaps["tab10"].colors
        return {label: palette[i] for i, label in enumerate(labels)}
    return {label: colormaps["viridis"](i / (len(labels) - 1)) for i, label in enumerate(labels)}


def _legend(ax, colors: dict[str, tuple], hue: str | None, diverged: bool) -> None:
    """A legend entry per colour, or past ten a colour bar labelled with some values."""
    handles = [Line2D([], [], color=c, label=label) for label, c in colors.items()]
    if len(colors) > 10:
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        labels = list(colors)
        bar = ax.figure.colorbar(
            ScalarMappable(Normalize(0, len(labels) - 1), "viridis"), ax=ax, label=hue
        )
        ticks = np.unique(np.linspace(0, len(labels) - 1, 6).round().astype(int))
        bar.set_ticks(ticks, labels=[labels[i] for i in ticks])
        handles = []
    if diverged:
        handles.append(Line2D([], [], color="black", marker="x", linestyle="", label="diverged"))
    if handles:
        ax.legend(handles=handles, title=hue if len(colors) <= 10 else None, fontsize="small")


def _check_hue(frame: pd.DataFrame, hue: str | None) -> None:
    if hue is not None and hue not in frame.columns:
        raise ConfigError("--hue", hue, "unknown column (e.g. optimizer.name, optimizer.lr, seed)")


def read_curve(run: str, columns: list[str]) -> pd.DataFrame | None:
    """A run's metrics.csv (these columns), or None before its first row."""
    path = Path(run) / "metrics.csv"
    if not path.exists():
        return None
    return pd.read_csv(path, usecols=columns)


def curves(
    frame: pd.DataFrame, y: str, x: str = "step", hue: str | None = None, logy: bool = False
) -> Figure:
    """One line per run (colour by ``hue``); a diverged run's line ends in an x."""
    if y not in Y_COLUMNS:
        raise ConfigError("--y", y, f"one of {', '.join(Y_COLUMNS)}")
    if x not in X_AXES:
        raise ConfigError("--x", x, f"one of {', '.join(X_AXES)}")
    _check_hue(frame, hue)
    x_column = X_AXES[x]
    colors = hue_colors(frame[hue]) if hue else {}
    fig = Figure(figsize=SIZE, layout="constrained")
    ax = fig.subplots()
    drawn = 0
    any_diverged = False
    for run, status, label in zip(
        frame["run"], frame["status"], frame[hue] if hue else [None] * len(frame), strict=True
    ):
        data = read_curve(run, [x_column, y])
        data = data.dropna() if data is not None else None
        if data is None or data.empty:
            continue
        color = colors.get(config_text(label), "tab:blue")
        ax.plot(data[x_column], data[y], color=color, linewidth=1.2, alpha=0.8)
        if status == "diverged":
            any_diverged = True
            ax.scatter(data[x_column].iloc[-1:], data[y].iloc[-1:], color=color, **DIVERGED)
        drawn += 1
    if drawn == 0:
        raise ConfigError("--y", y, "no run has values of it yet")
    ax.set(xlabel=x_column, ylabel=y, title=f"{y} ({drawn} runs)")
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    _legend(ax, colors, hue, any_diverged)
    return fig


def sensitivity(
    frame: pd.DataFrame, metric: str, x: str = "optimizer.lr", hue: str | None = "optimizer.name"
) -> Figure:
    """DeepOBS's LR sensitivity: the metric against ``x`` on a log axis, one line per
    ``hue`` through the mean over seeds, a band from their min to max; diverged runs are
    x's along the bottom at their ``x``."""
    check_metric(metric)
    _check_hue(frame, hue)
    if x not in frame.columns:
        raise ConfigError("--x", x, "unknown column (e.g. optimizer.lr)")
    xs = pd.to_numeric(frame[x], errors="coerce")
    if not (xs > 0).all():
        raise ConfigError("--x", x, "must be a positive number in every run (a log axis)")
    frame = frame.assign(_x=xs)
    colors = hue_colors(frame[hue]) if hue else {"all runs": "tab:blue"}
    labels = frame[hue].map(config_text) if hue else pd.Series("all runs", index=frame.index)
    fig = Figure(figsize=SIZE, layout="constrained")
    ax = fig.subplots()
    any_diverged = False
    for label, color in colors.items():
        runs = frame[labels == label]
        done = runs[runs["status"] == "completed"].dropna(subset=[metric])
        stats = done.groupby("_x")[metric].agg(["mean", "min", "max"]).sort_index()
        if not stats.empty:
            ax.plot(stats.index, stats["mean"], color=color, marker="o", markersize=4)
            ax.fill_between(stats.index, stats["min"], stats["max"], color=color, alpha=0.2)
        diverged = runs[runs["status"] == "diverged"]["_x"]
        if len(diverged):
            any_diverged = True
            ax.scatter(
                diverged,
                np.full(len(diverged), 0.03),
                color=color,
                transform=ax.get_xaxis_transform(),
                **DIVERGED,
            )
    ax.set_xscale("log")
    drawn = frame[frame["status"].isin(["completed", "diverged"])]["_x"]
    if len(drawn):  # the x's of diverged runs do not widen the axis by themselves
        ax.set_xlim(drawn.min() / 1.5, drawn.max() * 1.5)
    best = "higher" if METRICS[metric] else "lower"
    ax.set(
        xlabel=x,
        ylabel=f"{metric} ({best} is better)",
        title=f"{metric} vs {x}: mean over seeds, band min to max",
    )
    ax.grid(alpha=0.3, which="both")
    _legend(ax, colors if hue else {}, hue, any_diverged)
    return fig


def schedule(steps: np.ndarray, lrs: np.ndarray, steps_per_epoch: int, title: str) -> Figure:
    """The LR each step applies, as a run would log it; epochs along the top."""
    fig = Figure(figsize=SIZE, layout="constrained")
    ax = fig.subplots()
    ax.plot(steps, lrs, color="tab:blue")
    ax.set(xlabel="step", ylabel="lr", title=title)
    top = ax.secondary_xaxis(
        "top", functions=(lambda s: s / steps_per_epoch, lambda e: e * steps_per_epoch)
    )
    top.set_xlabel("epoch")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    return fig


def to_bytes(fig: Figure, fmt: str) -> bytes:
    """PNG or SVG (``fmt`` without the dot); SVG without a date, so it is reproducible."""
    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else None
    fig.savefig(buffer, format=fmt, dpi=100, metadata=metadata)
    return buffer.getvalue()
