"""``lrbench compare``: runs as a table (one row per run, or per group over seeds)."""

from __future__ import annotations

import sys

import pandas as pd

from lrbench.analysis import select
from lrbench.analysis.aggregate import aggregate
from lrbench.analysis.args import Parser, add_selection, output_path, positive_int, write_output
from lrbench.analysis.table import (
    DEFAULT_METRIC,
    METRICS,
    check_metric,
    config_columns,
    load_table,
    outcome_columns,
    shorten_runs,
    status_counts,
    varying_columns,
)
from lrbench.analysis.terminal import render

DESCRIPTION = """\
Compare runs: one row per run (the config keys that vary, status, final and best
metrics, steps, time), or with --group-by one row per group: mean, std (ddof=1), min, max
and n of --metric over the group's completed runs; * marks the best group.
"""


def add_table_options(parser: Parser) -> None:
    """The table's options, shared with ``report``."""
    add_selection(parser)
    parser.add_argument(
        "--group-by", metavar="KEYS", help="a row per combination of these keys (a,b), over seeds"
    )
    parser.add_argument(
        "--metric",
        help=f"rank and aggregate by this (default {DEFAULT_METRIC}): {', '.join(METRICS)}",
    )
    parser.add_argument("--sort", metavar="KEY", help="sort by this column (metrics best first)")
    parser.add_argument("--reverse", action="store_true", help="reverse the order")
    parser.add_argument("--top", type=positive_int, metavar="N", help="only the first N rows")
    parser.add_argument("--columns", metavar="KEYS", help="config keys to show even if constant")
    parser.add_argument("--all-columns", action="store_true", help="every config key")


def build_parser() -> Parser:
    parser = Parser(prog="lrbench compare", description=DESCRIPTION)
    add_table_options(parser)
    parser.add_argument("-o", "--output", metavar="FILE", help="write CSV to FILE (- for stdout)")
    return parser


def _order(table: pd.DataFrame, key: str, metric: str, reverse: bool) -> pd.DataFrame:
    """Best first for metrics (and an aggregate's statistics of one), ascending otherwise.
    Ranked by a metric, runs that did not complete come after those that did: a diverged
    run's last numbers are from before it diverged."""
    ranked = METRICS.get(metric if key in ("mean", "min", "max") else key)
    table = select.sort(table, key, bool(ranked) != reverse)
    return select.completed_first(table) if ranked is not None and "status" in table else table


def runs_view(frame: pd.DataFrame, options, brief: bool) -> pd.DataFrame:
    """One row per run: run, the varying (or asked-for) config keys, the outcome."""
    metric = check_metric(options.metric) if options.metric else None
    sort_key = options.sort or metric
    asked = select.split_keys(options.columns)
    asked += [c.partition("=")[0] for c in options.where]
    select.check_columns(frame, asked, "--columns")
    select.check_columns(frame, [sort_key] if sort_key else [], "--sort")
    shown = set(config_columns(frame) if options.all_columns else [*asked, *varying_columns(frame)])
    config = [c for c in config_columns(frame) if c in shown]
    outcomes = outcome_columns(frame, brief)
    extra = [c for c in (metric, sort_key) if c and c not in config and c not in outcomes]
    table = frame[["run", *config, *outcomes, *extra]]
    if sort_key:
        table = _order(table, sort_key, metric or DEFAULT_METRIC, options.reverse)
    return select.top(table, options.top)


def groups_view(frame: pd.DataFrame, options) -> pd.DataFrame:
    """One row per group: keys, statistics of the metric, counts, the best marked."""
    metric = check_metric(options.metric or DEFAULT_METRIC)
    keys = select.check_columns(frame, select.split_keys(options.group_by), "--group-by")
    table = aggregate(frame, keys, metric)
    sort_key = options.sort or "mean"
    select.check_columns(table, [sort_key], "--sort")
    table = _order(table, sort_key, metric, options.reverse)
    return select.top(table, options.top)


def main(args: list[str]) -> int:
    options = build_parser().parse_args(args)
    to_file = options.output not in (None, "-")
    path = output_path(options.output, (".csv",)) if to_file else None
    frame = select.where(load_table(options.paths), options.where)
    brief = options.output is None
    table = groups_view(frame, options) if options.group_by else runs_view(frame, options, brief)
    if options.output == "-":
        table.to_csv(sys.stdout, index=False)
    elif path is not None:
        write_output(path, table.to_csv(index=False))
        print(f"wrote {path} ({len(table)} rows)")
    else:
        shown, root = (table, "") if options.group_by else shorten_runs(table)
        print(render(shown))
        where = f" under {root}" if root else ""
        print(f"\n{len(frame)} runs{where}: {status_counts(frame)}")
    return 0
