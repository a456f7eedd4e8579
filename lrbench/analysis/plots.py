"""Figures of a run table: learning curves, LR sensitivity, the LR used, a schedule.

matplotlib's object API (``Figure``, no pyplot): no display, no global state, the Agg
renderer for PNG and the SVG one for SVG.
"""

from __future__ import annotations

import io
import numbers
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from lrbench.analysis.table import (
    METRICS,
    check_metric,
    config_text,
    independent_columns,
    is_auto,
    is_missing,
    status_counts,
    varying_columns,
    x_values,
)
from lrbench.errors import ConfigError
from lrbench.runs import METRIC_COLUMNS

X_AXES = {"step": "step", "epoch": "epoch", "time": "elapsed_s"}
Y_COLUMNS = tuple(c for c in METRIC_COLUMNS if c not in X_AXES.values())
FORMATS = (".png", ".svg")
SIZE = (8, 5)  # inches, at 100 dpi
DIVERGED = {"marker": "x", "s": 60, "linewidths": 2, "zorder": 3}
PRUNED = {"marker": "|", "s": 150, "linewidths": 2, "zorder": 3}
# Runs that stopped early, drawn alone up to where they stopped (never averaged with runs
# that went on), and the mark at their end.
STOPPED = {"diverged": DIVERGED, "pruned": PRUNED}
# optimizer.lr=auto runs on the sensitivity plot, at the LR they chose
AUTO_LOOK = {"marker": "*", "markersize": 13, "markeredgecolor": "black", "zorder": 4}
AUTO_MARK = {"marker": "*", "s": 170, "edgecolors": "black", "zorder": 4}
AUTO_LABEL = "lr=auto, at the LR it chose"
SEEDS = ("seed",)  # keys whose runs are averaged into one line
# A marker shape per hue value and a line style per value of the other keys that vary,
# so lines that coincide (the same LR schedule) stay apart and colour is not needed.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
LINE_STYLES = ("-", "--", ":", "-.", (0, (6, 2)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 3)))
MARK_EVERY = 0.12  # markers this far apart along a line (a fraction of the axes' diagonal)


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


def _legend(
    ax, colors: dict[str, tuple], hue: str | None, extra: list[Line2D], markers: bool = False
) -> None:
    """A legend outside the axes, at their right (it never covers data): an entry per hue
    colour (with its marker when lines carry them), or past ten a colour bar labelled with
    some values; then ``extra`` entries (line styles, diverged, pruned)."""
    handles = [
        Line2D([], [], color=c, label=label, marker=MARKERS[i % len(MARKERS)] if markers else "")
        for i, (label, c) in enumerate(colors.items())
    ]
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
    handles += extra
    if handles:
        ax.legend(
            handles=handles,
            title=hue if len(colors) <= 10 and colors else None,
            fontsize="small",
            loc="upper left",
            bbox_to_anchor=(1.02, 1),
            borderaxespad=0,
        )


def _end_handle(status: str) -> Line2D:
    """The legend entry of a stopped run's end mark (``STOPPED``)."""
    return Line2D(
        [], [], color="black", marker=STOPPED[status]["marker"], linestyle="", label=status
    )


def _check_hue(frame: pd.DataFrame, hue: str | None) -> None:
    if hue is not None and hue not in frame.columns:
        raise ConfigError("--hue", hue, "unknown column (e.g. optimizer.name, optimizer.lr, seed)")


def count(n: int, noun: str) -> str:
    """``1 run``, ``8 runs``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def read_curve(run: str, columns: list[str]) -> pd.DataFrame | None:
    """A run's metrics.csv (these columns), or None before its first row."""
    path = Path(run) / "metrics.csv"
    if not path.exists():
        return None
    return pd.read_csv(path, usecols=list(dict.fromkeys(columns)))


def line_keys(frame: pd.DataFrame, hue: str | None) -> list[str]:
    """The config keys that tell one line from another: those that vary, less the seed
    (seeds are averaged), and less keys fixed by the others (``optimizer.b1`` by
    ``optimizer.name``, the experiment's ``name``); ``hue`` first."""
    varying = [c for c in varying_columns(frame) if c not in (*SEEDS, hue)]
    names = [c for c in varying if c == "name"]  # a label made of the others: dropped first
    keys = [*([hue] if hue else []), *(c for c in varying if c != "name"), *names]
    return independent_columns(frame, keys) if keys else []


class Line(NamedTuple):
    """One configuration's runs: drawn as one line (their mean when several)."""

    hue: str | None  # the hue value's text
    rest: str  # the other line keys' values (``optimizer.lr=0.1``), "" when none
    runs: pd.DataFrame


def lines_of(frame: pd.DataFrame, hue: str | None) -> list[Line]:
    """The runs by configuration (all line keys equal), in hue then value order."""
    keys = line_keys(frame, hue)
    rest_keys = [k for k in keys if k != hue]
    if not keys:
        return [Line(None, "", frame)]
    label = frame[keys].map(config_text).agg("\x1f".join, axis=1)
    lines = []
    for _, runs in frame.groupby(label, sort=False):
        first = runs.iloc[0]
        rest = ", ".join(f"{k}={config_text(first[k])}" for k in rest_keys)
        lines.append(
            (
                tuple(_sort_key(first[k]) for k in keys),
                Line(config_text(first[hue]) if hue else None, rest, runs),
            )
        )
    return [line for _, line in sorted(lines, key=lambda pair: pair[0])]


def _runs_curves(
    runs: pd.DataFrame, x_column: str, y: str
) -> tuple[list[pd.DataFrame], dict[str, list[pd.DataFrame]]]:
    """The curves (step, x, y; rows with a value) of these runs: those that went on, and
    by status those that stopped early (``STOPPED``), a diverged one cut at its divergence
    (``diverged_at_step``), a pruned one where its metrics.csv ends."""
    kept: list[pd.DataFrame] = []
    stopped: dict[str, list[pd.DataFrame]] = {status: [] for status in STOPPED}
    for run, status, at in zip(runs["run"], runs["status"], runs["diverged_at_step"], strict=True):
        data = read_curve(run, ["step", x_column, y])
        if data is None:
            continue
        data = data[np.isfinite(data[[x_column, y]]).all(axis=1)]
        if status == "diverged" and not is_missing(at):
            data = data[data["step"] <= at]
        if not data.empty:
            stopped.get(status, kept).append(data)
    return kept, stopped


def _draw_stopped(
    ax, stopped: dict[str, list[pd.DataFrame]], x_column: str, y: str, look: dict
) -> list[np.ndarray]:
    """Each run that stopped early alone, its end marked as ``STOPPED`` says (no mean:
    it would drop where they stop); their y values."""
    ys = []
    for status, runs in stopped.items():
        for data in runs:
            ax.plot(data[x_column], data[y], linewidth=1.0, alpha=0.6, **look)
            end = (data[x_column].iloc[-1:], data[y].iloc[-1:])
            ax.scatter(*end, color=look["color"], **STOPPED[status])
            ys.append(data[y].to_numpy())
    return ys


def _mean_band(curves: list[pd.DataFrame], x_column: str, y: str) -> pd.DataFrame:
    """Per step, over the runs that have it: the mean x (the same for step and epoch) and
    the mean, min and max of y."""
    both = pd.concat(curves)
    return both.groupby("step").agg(
        x=(x_column, "mean"), mean=(y, "mean"), low=(y, "min"), high=(y, "max")
    )


def _spans_a_decade(values: list[np.ndarray]) -> bool:
    positive = np.concatenate([v[v > 0] for v in values]) if values else np.array([])
    return positive.size > 0 and positive.max() > 10 * positive.min()


def curves(
    frame: pd.DataFrame,
    y: str,
    x: str = "step",
    hue: str | None = None,
    logy: bool | None = None,
) -> Figure:
    """A line per configuration, coloured by ``hue``: the mean over its seeds, with a band
    from their min to max when there are several. Each hue value has its marker shape
    (set off along the line by hue, so lines that coincide all show), each value of the
    other keys that vary its line style. Diverged and pruned runs are drawn alone up to
    where they stopped, which an x (diverged) or a bar (pruned) marks. ``logy`` None: log y
    for ``lr`` spanning over a decade."""
    if y not in Y_COLUMNS:
        raise ConfigError("--y", y, f"one of {', '.join(Y_COLUMNS)}")
    if x not in X_AXES:
        raise ConfigError("--x", x, f"one of {', '.join(X_AXES)}")
    _check_hue(frame, hue)
    x_column = X_AXES[x]
    colors = hue_colors(frame[hue]) if hue else {}
    hue_index = {label: i for i, label in enumerate(colors)}
    lines = lines_of(frame, hue)
    styles = {
        rest: LINE_STYLES[i % len(LINE_STYLES)]
        for i, rest in enumerate(dict.fromkeys(line.rest for line in lines))
    }
    fig = Figure(figsize=SIZE, layout="constrained")
    ax = fig.subplots()
    drawn = 0
    averaged = False
    ended: set[str] = set()  # the statuses of the stopped runs drawn
    ys: list[np.ndarray] = []
    for line in lines:
        kept, stopped = _runs_curves(line.runs, x_column, y)
        i = hue_index.get(line.hue, 0)
        look = {
            "color": colors.get(line.hue, "tab:blue"),
            "linestyle": styles[line.rest],
            "marker": MARKERS[i % len(MARKERS)],
            "markersize": 5,
            "markevery": (MARK_EVERY * (i + 0.5) / max(len(colors), 1), MARK_EVERY),
        }
        if kept:
            stats = _mean_band(kept, x_column, y)
            ax.plot(stats["x"], stats["mean"], linewidth=1.5, alpha=0.85, **look)
            if len(kept) > 1:
                averaged = True
                ax.fill_between(
                    stats["x"],
                    stats["low"],
                    stats["high"],
                    color=look["color"],
                    alpha=0.15,
                    linewidth=0,
                )
            ys.append(stats[["low", "high"]].to_numpy().ravel())
        ys += _draw_stopped(ax, stopped, x_column, y, look)
        ended.update(status for status, runs in stopped.items() if runs)
        drawn += len(kept) + sum(len(runs) for runs in stopped.values())
    if drawn == 0:
        raise ConfigError("--y", y, "no run has values of it yet")
    title = f"{y}: {count(drawn, 'run')}"
    if averaged:
        title += "; line: mean over seeds, band: min to max"
    ax.set(xlabel=x_column, ylabel=y, title=title)
    if logy or (logy is None and y == "lr" and _spans_a_decade(ys)):
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    extra = [
        Line2D([], [], color="black", linestyle=style, label=rest)
        for rest, style in styles.items()
        if len(styles) > 1
    ]
    ends = [_end_handle(status) for status in STOPPED if status in ended]
    _legend(ax, colors, hue, [*extra, *ends], True)
    return fig


def sensitivity(
    frame: pd.DataFrame, metric: str, x: str = "optimizer.lr", hue: str | None = "optimizer.name"
) -> Figure:
    """DeepOBS's LR sensitivity: the metric against ``x`` on a log axis, one line per
    ``hue`` through the mean over seeds, a band from their min to max; diverged runs are
    x's along the bottom at their ``x``. Runs with ``optimizer.lr=auto`` are placed at the
    LR their range test chose, and starred. Runs with no final result (pruned: stopped
    early by a study; failed, killed, going, ...) are left out, and the title counts them."""
    check_metric(metric)
    _check_hue(frame, hue)
    if x not in frame.columns:
        raise ConfigError("--x", x, "unknown column (e.g. optimizer.lr)")
    xs = x_values(frame, x)
    drawable = frame["status"].isin(["completed", "diverged"])
    auto = is_auto(frame[x])
    waiting = auto & ~drawable  # lr: auto, going or failed: maybe no LR chosen yet
    if not (xs[~waiting] > 0).all():
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
        chosen = done[auto[done.index]]
        if len(chosen):
            ax.scatter(chosen["_x"], chosen[metric], color=color, **AUTO_MARK)
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
    drawn = frame[drawable]["_x"]
    if len(drawn):  # the x's of diverged runs do not widen the axis by themselves
        ax.set_xlim(drawn.min() / 1.5, drawn.max() * 1.5)
    best = "higher" if METRICS[metric] else "lower"
    title = f"{metric} vs {x}: mean over seeds, band min to max"
    if not drawable.all():
        title += f"\nleft out, no final result: {status_counts(frame[~drawable])}"
    ax.set(xlabel=x, ylabel=f"{metric} ({best} is better)", title=title)
    ax.grid(alpha=0.3, which="both")
    extra = [_end_handle("diverged")] if any_diverged else []
    if (auto & (frame["status"] == "completed")).any():
        extra.append(Line2D([], [], color="0.5", linestyle="", label=AUTO_LABEL, **AUTO_LOOK))
    _legend(ax, colors if hue else {}, hue, extra)
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
