"""``lrbench report``: one static HTML page, no server and no network assets.

The page holds the runs table sorted by the metric (each run's config.yaml on demand in a
<details>), the aggregate over seeds, and the plots inlined as base64 PNG.
"""

from __future__ import annotations

import base64
from argparse import Namespace
from html import escape
from pathlib import Path

import pandas as pd

from lrbench.analysis import plots
from lrbench.analysis.args import Parser, output_path, write_output
from lrbench.analysis.compare import add_table_options, groups_view, runs_view
from lrbench.analysis.select import where
from lrbench.analysis.table import (
    DEFAULT_METRIC,
    independent_columns,
    load_table,
    shorten_runs,
    status_counts,
    varying_columns,
    x_values,
)
from lrbench.analysis.terminal import cell_text
from lrbench.errors import ConfigError

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; vertical-align: top;
         white-space: nowrap; }
.scroll { overflow-x: auto; }
th { background: #f0f0f0; position: sticky; top: 0; }
td.text { text-align: left; }
tr.diverged td { background: #fde8e8; }
tr.failed td { background: #f6d5f7; }
tr.running td { background: #fff6d6; }
tr.pruned td { background: #e3edf9; }
tr.killed td, tr.stale td { background: #ececec; }
tr.best td { font-weight: bold; }
pre { text-align: left; font-size: 12px; margin: 4px 0; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
"""
SEEDS = "seed"


def build_parser() -> Parser:
    parser = Parser(prog="lrbench report", description=__doc__.splitlines()[0])
    add_table_options(parser)
    parser.add_argument("-o", "--output", default="report.html", help="FILE.html")
    return parser


def _html_table(
    table: pd.DataFrame,
    raw: dict[str, list[str]] | None = None,
    row_classes: list[str] | None = None,
) -> str:
    """Cells escaped, numbers as in the terminal; ``raw`` columns are HTML already."""
    raw = raw or {}
    columns = [*table.columns, *raw]
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    rows = []
    for i, record in enumerate(table.itertuples(index=False)):
        cells = [
            f'<td class="text">{escape(cell_text(v))}</td>'
            if isinstance(v, str)
            else f"<td>{escape(cell_text(v))}</td>"
            for v in record
        ] + [f'<td class="text">{raw[c][i]}</td>' for c in raw]
        css = f' class="{row_classes[i]}"' if row_classes else ""
        rows.append(f"<tr{css}>{''.join(cells)}</tr>")
    html = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    return f'<div class="scroll">{html}</div>'


def _config_details(run: str) -> str:
    text = (Path(run) / "config.yaml").read_text()
    return f"<details><summary>config</summary><pre>{escape(text)}</pre></details>"


def _image(fig, alt: str) -> str:
    data = base64.b64encode(plots.to_bytes(fig, "png")).decode("ascii")
    return f'<figure><img alt="{escape(alt)}" src="data:image/png;base64,{data}"></figure>'


def _default_groups(frame: pd.DataFrame) -> list[str]:
    """With several seeds per configuration: group by the other keys the sweep varied
    (not ``name``, a label made of them)."""
    varying = varying_columns(frame)
    if SEEDS not in varying:
        return []
    return independent_columns(frame, [c for c in varying if c not in (SEEDS, "name")])


def _figures(frame: pd.DataFrame, metric: str) -> list[str]:
    """The plots that make sense for these runs (each skipped when it has no data)."""
    hue = "optimizer.name" if "optimizer.name" in frame.columns else None
    wanted = [
        ("val_loss", lambda: plots.curves(frame, "val_loss", hue=hue)),
        ("val_accuracy", lambda: plots.curves(frame, "val_accuracy", hue=hue)),
        ("lr used", lambda: plots.curves(frame, "lr", hue=hue)),
    ]
    if "optimizer.lr" in frame and x_values(frame, "optimizer.lr").nunique() > 1:
        wanted.insert(0, ("LR sensitivity", lambda: plots.sensitivity(frame, metric, hue=hue)))
    images = []
    for alt, draw in wanted:
        try:
            images.append(f"<h3>{escape(alt)}</h3>" + _image(draw(), alt))
        except ConfigError:  # e.g. no run has evaluated yet
            continue
    return images


def render(frame: pd.DataFrame, options: Namespace, title: str) -> str:
    """The whole page; ``options`` are compare's (the metric defaults to val_accuracy)."""
    metric = options.metric or DEFAULT_METRIC
    options = Namespace(**vars(options) | {"metric": metric})
    runs = runs_view(frame, options, brief=True)
    sections = [
        f"<h1>{escape(title)}</h1>",
        f"<p>{len(frame)} runs: {escape(status_counts(frame))}. "
        f"Sorted by {escape(options.sort or metric)}.</p>",
    ]
    group_by = options.group_by or ",".join(_default_groups(frame))
    if group_by:
        groups = groups_view(
            frame, Namespace(**vars(options) | {"group_by": group_by, "sort": None})
        )
        sections += [
            f"<h2>{escape(metric)} by {escape(group_by.replace(',', ', '))}</h2>",
            "<p>mean, std (ddof=1), min, max over each group's completed runs.</p>",
            _html_table(groups, row_classes=["best" if b else "" for b in groups["best"]]),
        ]
    details = [_config_details(run) for run in runs["run"]]
    shown, root = shorten_runs(runs)
    sections += [
        "<h2>Runs</h2>",
        f"<p>Under {escape(root)}; click config for a run's config.yaml.</p>",
        _html_table(shown, {"config": details}, list(runs["status"])),
    ]
    sections += ["<h2>Plots</h2>", *_figures(frame, metric)]
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )


def main(args: list[str]) -> int:
    options = build_parser().parse_args(args)
    path = output_path(options.output, (".html",))
    frame = where(load_table(options.paths), options.where)
    title = "lrbench report: " + ", ".join(options.paths)
    write_output(path, render(frame, options, title))
    print(f"wrote {path} ({len(frame)} runs)")
    return 0
