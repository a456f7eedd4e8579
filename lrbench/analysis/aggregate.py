"""Seeds (or any other key) aggregated away: one row per group with mean, std, min, max.

Statistics are over the group's completed runs; runs of every other status (diverged,
pruned, killed, running, ...) are counted beside them, never averaged in (a diverged
seed's last numbers, or a pruned one's, are not a final result).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lrbench.analysis.table import EVERY_STATUS, METRICS, config_text
from lrbench.summary import COMPLETED

STATS = ("n", "mean", "std", "min", "max")
SUMMARIZED = STATS[1:]  # named after the metric: val_accuracy_mean
COUNTED = tuple(s for s in EVERY_STATUS if s != COMPLETED)  # diverged, ..., killed, running
BEST_MARK = "*"


def stat_column(metric: str, stat: str) -> str:
    """A statistic's column, named after its metric (``val_accuracy_mean``); ``n`` is ``n``."""
    return f"{metric}_{stat}" if stat in SUMMARIZED else stat


def aggregate(frame: pd.DataFrame, keys: list[str], metric: str) -> pd.DataFrame:
    """One row per distinct combination of ``keys`` (first-seen order): ``n`` completed
    runs and the statistics of ``metric`` over them, named after it (``val_accuracy_mean``,
    ``_std`` with ddof=1, the sample standard deviation, NaN for a single run; ``_min``,
    ``_max``), counts of unfinished runs, and ``best`` marking the group with the best mean."""
    labels = frame[keys].map(config_text).agg("\x1f".join, axis=1)  # 0.001 == "0.001"
    rows = []
    for _, group in frame.groupby(labels, sort=False):
        done = group[group["status"] == COMPLETED][metric].dropna().to_numpy(np.float64)
        rows.append(
            dict(zip(keys, group[keys].iloc[0], strict=True))
            | {
                "n": len(done),
                "mean": done.mean() if len(done) else np.nan,
                "std": done.std(ddof=1) if len(done) > 1 else np.nan,
                "min": done.min() if len(done) else np.nan,
                "max": done.max() if len(done) else np.nan,
            }
            | {status: int((group["status"] == status).sum()) for status in COUNTED}
        )
    table = pd.DataFrame(rows, columns=[*keys, *STATS, *COUNTED])
    table["best"] = ""
    means = table["mean"]
    if means.notna().any():
        best = means.idxmax() if METRICS[metric] else means.idxmin()
        table.loc[best, "best"] = BEST_MARK
    return table.rename(columns={stat: stat_column(metric, stat) for stat in SUMMARIZED})
