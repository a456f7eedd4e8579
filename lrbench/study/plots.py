"""The study's figures, drawn from its record (study.json): per problem the LR sensitivity
of every optimizer, the chosen settings' learning curves and the expected best score against
the number of tuning trials; across problems the performance profile (docs/study.md).

The look of ``lrbench plot`` (lrbench/analysis/plots.py): its colours, sizes and markers,
legends outside the data, titles that count what they average.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import LogFormatter

from lrbench.analysis.plots import (
    AUTO_LOOK,
    AUTO_MARK,
    DIVERGED,
    LINE_STYLES,
    SIZE,
    count,
    hue_colors,
)
from lrbench.runs import METRICS_FILE, read_metrics
from lrbench.study.analysis import default_taus, performance_profile

# learning-rate-free and lr=auto methods, at the LR they ran with
FREE_MARK = {"marker": "D", "s": 60, "edgecolors": "black", "zorder": 4}
BAND = {"alpha": 0.2, "linewidth": 0}


def unit_label(unit: dict) -> str:
    """An optimizer's name in legends: lr=auto set apart from the same optimizer's grid."""
    return f"{unit['optimizer']} (lr=auto)" if unit["how"] == "auto" else unit["optimizer"]


def unit_colors(study: dict) -> dict[str, tuple]:
    """A colour per optimizer, the same in every figure of the study."""
    return hue_colors(pd.Series([unit_label(u) for u in study["units"]]))


def _legend(ax, handles: list[Line2D]) -> None:
    """Outside the axes, at their right: it never covers data."""
    ax.legend(
        handles=handles,
        fontsize="small",
        loc="upper left",
        bbox_to_anchor=(1.02, 1),
        borderaxespad=0,
    )


def _plain_log_x(ax, base: float = 10) -> None:
    """A log x axis labelled 1, 2, 4 (not 2^0, 2^1, 2^2) where plain numbers read better."""
    ax.set_xscale("log", base=base)
    ax.xaxis.set_major_formatter(LogFormatter(base, labelOnlyBase=False))
    ax.xaxis.set_minor_formatter(LogFormatter(base, labelOnlyBase=False))


def _better(selection: dict) -> str:
    return "higher" if selection["higher_is_better"] else "lower"


def evaluations(run_dir: str, metric: str) -> pd.DataFrame:
    """A confirmation run's evaluations of ``metric``: columns step and value (none before
    its first evaluation, or without a metrics.csv yet)."""
    if not (Path(run_dir) / METRICS_FILE).exists():
        return pd.DataFrame({"step": [], "value": []})
    rows = [(r["step"], r[metric]) for r in read_metrics(run_dir) if r.get(metric) is not None]
    frame = pd.DataFrame(rows, columns=["step", "value"])
    return frame[np.isfinite(frame["value"])]


def confirm_score(unit: dict, run_dir: str) -> float | None:
    """A confirmation run's score by the selection rule: its last evaluation (``final``) or
    its best (``best``); None before any evaluation."""
    selection = unit["selection"]
    values = evaluations(run_dir, selection["metric"])["value"]
    if values.empty:
        return None
    if selection["mode"] == "final":
        return float(values.iloc[-1])
    return float(values.max() if selection["higher_is_better"] else values.min())


def _draw_grid(ax, unit: dict, color) -> bool:
    """The sensitivity curve (means through the LRs where some seed scored, a band from
    their min to max), the chosen LR starred, an x along the bottom at each LR where a seed
    diverged. True when one did."""
    points = [p for p in unit["sensitivity"] if p["min"] is not None]
    lrs = [p["lr"] for p in points]
    ax.plot(lrs, [p["mean"] for p in points], color=color, marker="o", markersize=4)
    ax.fill_between(
        lrs, [p["min"] for p in points], [p["max"] for p in points], color=color, **BAND
    )
    means = {p["lr"]: p["mean"] for p in points}
    if unit["lr"] in means:
        ax.scatter([unit["lr"]], [means[unit["lr"]]], color=color, **AUTO_MARK)
    diverged = [p["lr"] for p in unit["sensitivity"] if p["diverged"]]
    if diverged:
        ax.scatter(
            diverged,
            np.full(len(diverged), 0.03),
            color=color,
            transform=ax.get_xaxis_transform(),
            **DIVERGED,
        )
    return bool(diverged)


def _draw_free(ax, unit: dict, color) -> None:
    """A method that chose its own LR: a diamond at that LR and a dashed line across at its
    confirmation runs' mean score, what the grid's curves have to beat."""
    scores = [s for s in (confirm_score(unit, d) for d in unit["confirm_dirs"]) if s is not None]
    if scores:
        mean = float(np.mean(scores))
        ax.scatter([unit["lr"]], [mean], color=color, **FREE_MARK)
        ax.axhline(mean, color=color, linestyle="--", linewidth=1)


def sensitivity_figure(units: list[dict], colors: dict[str, tuple]) -> Figure:
    """One problem's LR sensitivity, every optimizer: DeepOBS's tuneability plot."""
    selection = units[0]["selection"]
    fig = Figure(figsize=SIZE, layout="constrained")
    ax = fig.subplots()
    handles, any_diverged = [], False
    for unit in units:
        color = colors[unit_label(unit)]
        if unit["how"] == "grid":
            any_diverged |= _draw_grid(ax, unit, color)
            handles.append(Line2D([], [], color=color, marker="o", label=unit_label(unit)))
        else:
            _draw_free(ax, unit, color)
            look = {"marker": "D", "markeredgecolor": "black", "linestyle": "--"}
            handles.append(Line2D([], [], color=color, label=unit_label(unit), **look))
    seeds = max((p["n"] for u in units for p in u["sensitivity"]), default=0)
    title = f"{units[0]['problem']}: {selection['metric']} ({selection['mode']}) vs lr"
    if seeds:
        title += f"; line: mean over {count(seeds, 'seed')}, band: min to max"
        handles.append(Line2D([], [], color="0.5", linestyle="", label="chosen LR", **AUTO_LOOK))
    if any_diverged:
        handles.append(Line2D([], [], color="black", marker="x", linestyle="", label="diverged"))
    ax.set_xscale("log")
    ax.set(
        xlabel="lr", ylabel=f"{selection['metric']} ({_better(selection)} is better)", title=title
    )
    ax.grid(alpha=0.3, which="both")
    _legend(ax, handles)
    return fig


def _mean_band(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Per step, over the runs evaluated there: the mean, min and max."""
    return pd.concat(frames).groupby("step")["value"].agg(["mean", "min", "max"])


def curves_figure(units: list[dict], colors: dict[str, tuple]) -> Figure:
    """One problem's confirmation runs: the selection metric against step, per optimizer
    the mean over its seeds and a band from their min to max."""
    metric = units[0]["selection"]["metric"]
    fig = Figure(figsize=SIZE, layout="constrained")
    ax = fig.subplots()
    handles, runs, averaged = [], 0, False
    for unit in units:
        frames = [f for f in (evaluations(d, metric) for d in unit["confirm_dirs"]) if len(f)]
        if not frames:
            continue
        color = colors[unit_label(unit)]
        stats = _mean_band(frames)
        ax.plot(stats.index, stats["mean"], color=color, linewidth=1.5)
        if len(frames) > 1:
            ax.fill_between(stats.index, stats["min"], stats["max"], color=color, **BAND)
            averaged = True
        handles.append(Line2D([], [], color=color, label=unit_label(unit)))
        runs += len(frames)
    title = f"{units[0]['problem']}: {metric} at the chosen LR, {count(runs, 'run')}"
    if averaged:
        title += "; line: mean over seeds, band: min to max"
    ax.set(xlabel="step", ylabel=metric, title=title)
    ax.grid(alpha=0.3)
    _legend(ax, handles)
    return fig


def expected_max_figure(units: list[dict], colors: dict[str, tuple]) -> Figure | None:
    """One problem's expected best score after k random grid trials (Dodge et al. 2019),
    per grid-tuned optimizer: what a smaller tuning budget would have found. None when no
    optimizer of the problem was tuned on the grid."""
    grid = [u for u in units if u["expected_max"]["k"]]
    if not grid:
        return None
    selection = units[0]["selection"]
    fig = Figure(figsize=SIZE, layout="constrained")
    ax = fig.subplots()
    for unit in grid:
        curve = unit["expected_max"]
        ax.plot(
            curve["k"], curve["value"], color=colors[unit_label(unit)], marker="o", markersize=4
        )
    trials = max(k for u in grid for k in u["expected_max"]["k"])
    _plain_log_x(ax, base=2)
    ax.set(
        xlabel="tuning trials drawn at random from the grid (k)",
        ylabel=f"expected best {selection['metric']} ({_better(selection)} is better)",
        title=f"{units[0]['problem']}: expected best of k trials, from {count(trials, 'trial')}",
    )
    ax.grid(alpha=0.3, which="both")
    _legend(
        ax,
        [
            Line2D([], [], color=colors[unit_label(u)], marker="o", label=unit_label(u))
            for u in grid
        ],
    )
    return fig


def target_costs(study: dict) -> dict[str, dict[str, float | None]]:
    """costs[problem][optimizer]: the median steps to the problem's target over the
    confirmation seeds, None when not reached (or no target)."""
    costs: dict[str, dict[str, float | None]] = {}
    for unit in study["units"]:
        target = unit.get("target") or {}
        costs.setdefault(unit["problem"], {})[unit_label(unit)] = target.get("steps_median")
    return costs


def profile_figure(study: dict, colors: dict[str, tuple]) -> Figure:
    """AlgoPerf's performance profile over the study's problems: per optimizer, the fraction
    of problems it reached the target on within tau times the fastest one's steps. Line
    styles differ so profiles that coincide stay visible."""
    costs = target_costs(study)
    taus = default_taus(costs)
    fig = Figure(figsize=SIZE, layout="constrained")
    ax = fig.subplots()
    handles = []
    for i, (label, rho) in enumerate(performance_profile(costs, taus).items()):
        look = {"color": colors[label], "linestyle": LINE_STYLES[i % len(LINE_STYLES)]}
        ax.step(taus, rho, where="post", linewidth=1.5, **look)
        handles.append(Line2D([], [], label=label, **look))
    _plain_log_x(ax)
    ax.set_ylim(-0.03, 1.03)
    ax.set(
        xlabel="tau (steps to target / the fastest optimizer's)",
        ylabel="fraction of problems",
        title=f"performance profile: {count(len(costs), 'problem')}, steps to target",
    )
    ax.grid(alpha=0.3, which="both")
    _legend(ax, handles)
    return fig


def _file_name(kind: str, problem: str) -> str:
    """``sensitivity_<problem>.png``, the problem's name made safe for a file name."""
    return f"{kind}_{re.sub(r'[^A-Za-z0-9_.-]+', '_', problem)}.png"


def write_plots(study: dict, out_dir: Path) -> list[Path]:
    """Every figure of the study as a PNG in ``out_dir``: per problem sensitivity_, curves_
    and (with grid-tuned optimizers) expected_max_, then performance_profile.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    colors = unit_colors(study)
    figures: list[tuple[str, Figure | None]] = []
    for problem in dict.fromkeys(u["problem"] for u in study["units"]):
        units = [u for u in study["units"] if u["problem"] == problem]
        figures += [
            (_file_name("sensitivity", problem), sensitivity_figure(units, colors)),
            (_file_name("curves", problem), curves_figure(units, colors)),
            (_file_name("expected_max", problem), expected_max_figure(units, colors)),
        ]
    figures.append(("performance_profile.png", profile_figure(study, colors)))
    written = []
    for name, fig in figures:
        if fig is not None:
            fig.savefig(out_dir / name, dpi=100)
            written.append(out_dir / name)
    return written
