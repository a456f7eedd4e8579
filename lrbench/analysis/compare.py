"""``lrbench compare``: runs as a table (one row per run, or per group over seeds)."""

from __future__ import annotations

import sys

import pandas as pd

from lrbench.analysis import select
from lrbench.analysis.aggregate import aggregate, stat_column
from lrbench.analysis.args import Parser, add_selection, output_path, positive_int, write_output
from lrbench.analysis.table import (
    DEFAULT_METRIC,
    LR_KEY,
    METRICS,
    check_metric,
    config_columns,
    load_table,
    outcome_columns,
    shorten_runs,
    status_counts,
    varying_columns,
)
from lrbench.analysis.terminal import column_width, fit, render, terminal_width
from lrbench.errors import ConfigError

DESCRIPTION = """\
Compare runs: one row per run (the config keys that vary, status, final and best
metrics, steps, time), or with --group-by one row per group: n completed runs and the
mean, std (ddof=1), min, max of --metric over them; * marks the best group.
"""
ALL = "all"


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
    parser.add_argument(
        "--sort", metavar="KEY", help="sort by this column (metrics best first; groups: mean)"
    )
    parser.add_argument("--reverse", action="store_true", help="reverse the order")
    parser.add_argument("--top", type=positive_int, metavar="N", help="only the first N rows")
    parser.add_argument(
        "--columns",
        metavar="KEYS",
        help="the run table's columns, in this order (config keys and outcomes, a,b), or all: "
        "every one (default: the config keys that vary and the main outcomes)",
    )
    parser.add_argument("--all-columns", action="store_true", help="the same as --columns all")


def build_parser() -> Parser:
    parser = Parser(prog="lrbench compare", description=DESCRIPTION)
    add_table_options(parser)
    parser.add_argument("-o", "--output", metavar="FILE", help="write CSV to FILE (- for stdout)")
    return parser


def _order(table: pd.DataFrame, key: str, metric: str, reverse: bool) -> pd.DataFrame:
    """Best first for metrics (and an aggregate's statistics of one), ascending otherwise.
    Ranked by a metric, runs that did not complete come after those that did: a diverged
    run's last numbers are from before it diverged."""
    ranked_stats = [stat_column(metric, s) for s in ("mean", "min", "max")]
    ranked = METRICS.get(metric if key in ranked_stats else key)
    table = select.sort(table, key, bool(ranked) != reverse)
    return select.completed_first(table) if ranked is not None and "status" in table else table


def chosen_columns(frame: pd.DataFrame, options) -> list[str] | None:
    """``--columns`` (checked), every column for ``all`` or ``--all-columns``, or None."""
    if options.all_columns:
        return [*config_columns(frame), *outcome_columns(frame, brief=False)]
    keys = select.split_keys(options.columns)
    if keys == [ALL]:
        return [*config_columns(frame), *outcome_columns(frame, brief=False)]
    if not keys:
        return None
    if ALL in keys:
        raise ConfigError("--columns", options.columns, f"{ALL} alone, or a list of columns")
    select.check_columns(frame, keys, "--columns")
    return [k for k in dict.fromkeys(keys) if k != "run"]


def runs_view(frame: pd.DataFrame, options, brief: bool) -> pd.DataFrame:
    """One row per run: run, the varying config keys (with the --where keys) and the
    outcome, or the --columns asked for; then the --sort and --metric columns if not in."""
    metric = check_metric(options.metric) if options.metric else None
    sort_key = options.sort or metric
    select.check_columns(frame, [sort_key] if sort_key else [], "--sort")
    columns = chosen_columns(frame, options)
    if columns is None:
        asked = {c.partition("=")[0] for c in options.where}
        shown = asked | set(varying_columns(frame))
        config = [c for c in config_columns(frame) if c in shown]
        columns = [*config, *outcome_columns(frame, brief)]
    extra = [c for c in dict.fromkeys([metric, sort_key]) if c and c not in columns]
    if sort_key:  # on the whole frame: its status ranks unfinished runs last, shown or not
        frame = _order(frame, sort_key, metric or DEFAULT_METRIC, options.reverse)
    return select.top(frame[["run", *columns, *extra]], options.top)


def groups_view(frame: pd.DataFrame, options) -> pd.DataFrame:
    """One row per group: keys, n and the statistics of the metric (named after it),
    counts, the best marked. ``--sort mean`` (std, min, max) sorts by the metric's."""
    metric = check_metric(options.metric or DEFAULT_METRIC)
    keys = select.check_columns(frame, select.split_keys(options.group_by), "--group-by")
    table = aggregate(frame, keys, metric)
    sort_key = stat_column(metric, options.sort or "mean")
    select.check_columns(table, [sort_key], "--sort")
    table = _order(table, sort_key, metric, options.reverse)
    return select.top(table, options.top)


def _fitting_order(table: pd.DataFrame, frame: pd.DataFrame, columns: list[str]) -> list[str]:
    """Which varying config keys a narrow table keeps first: the choices of a config group
    (``optimizer.name``) and ``optimizer.lr``, then the other keys every run has, then
    those only some have (a choice's own settings, such as a CNN's ``model.channels``);
    narrowest first in each."""

    def rank(column: str) -> tuple[int, int]:
        everywhere = bool(frame[column].notna().all())
        first = column.endswith(".name") or column == LR_KEY
        tier = 0 if everywhere and first else 1 if everywhere else 2
        return tier, column_width(table, column)

    return sorted(columns, key=rank)


def _print_runs(table: pd.DataFrame, frame: pd.DataFrame, options) -> None:
    """The run table fitted to the terminal's width: when the config keys that vary do not
    all fit, those that do (``_fitting_order``), and a line saying how many were left out."""
    shown, root = shorten_runs(table)
    hidden: list[str] = []
    if chosen_columns(frame, options) is None:
        asked = {c.partition("=")[0] for c in options.where} | {options.sort, options.metric}
        optional = [c for c in varying_columns(frame) if c in shown and c not in asked]
        width = terminal_width()
        shown, hidden = fit(shown, _fitting_order(shown, frame, optional), width)
    print(render(shown))
    where = f" under {root}" if root else ""
    print(f"\n{len(frame)} runs{where}: {status_counts(frame)}")
    if hidden:
        print(
            f"{len(hidden)} more config keys vary, not shown in {width} characters: "
            f"--columns KEY,KEY,... shows those named, --columns {ALL} every column"
        )


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
    elif options.group_by:
        print(render(table))
        print(f"\n{len(frame)} runs: {status_counts(frame)}")
    else:
        _print_runs(table, frame, options)
    return 0
