"""``lrbench plot KIND``: curves, sensitivity, lr (from runs) and schedule (from overrides)."""

from __future__ import annotations

import argparse

from lrbench.analysis import plots, select
from lrbench.analysis.args import Parser, add_selection, output_path, write_output
from lrbench.analysis.table import DEFAULT_METRIC, METRICS, load_table


def _runs(options):
    return select.where(load_table(options.paths), options.where)


def _curves(options):
    return plots.curves(_runs(options), options.y, options.x, options.hue, options.logy), None


def _lr(options):
    return plots.curves(_runs(options), "lr", options.x, options.hue, options.logy), None


def _sensitivity(options):
    return plots.sensitivity(_runs(options), options.metric, options.x, options.hue), None


def _schedule(options):
    from lrbench.analysis.schedule_preview import preview  # JAX: only for this kind

    result = preview(options.overrides)
    figure = plots.schedule(result.steps, result.lrs, result.steps_per_epoch, result.title())
    return figure, result.describe()


def _add_curve_options(parser: argparse.ArgumentParser) -> None:
    add_selection(parser)
    parser.add_argument("--x", default="step", help=f"one of {', '.join(plots.X_AXES)}")
    parser.add_argument("--hue", default="optimizer.name", help="colour lines by this key")
    parser.add_argument(
        "--logy",
        action=argparse.BooleanOptionalAction,
        help="log scale for y (default: for lr, when the LRs span more than a decade)",
    )


def _add_sensitivity_options(parser: argparse.ArgumentParser) -> None:
    add_selection(parser)
    parser.add_argument("--metric", default=DEFAULT_METRIC, help=", ".join(METRICS))
    parser.add_argument("--x", default="optimizer.lr", help="the swept key (log axis)")
    parser.add_argument("--hue", default="optimizer.name", help="one line per value of this")


def _add_schedule_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("overrides", nargs="*", help="as for lrbench train")


# kind -> (what it draws, its options, how it draws)
KINDS = {
    "curves": (
        "learning curves, a line per configuration (the mean over seeds)",
        _add_curve_options,
        _curves,
    ),
    "lr": ("the LR each run applied per step (metrics.csv's lr)", _add_curve_options, _lr),
    "sensitivity": (
        "metric vs LR, log x, a line per optimizer",
        _add_sensitivity_options,
        _sensitivity,
    ),
    "schedule": (
        "the LR a configuration would apply, before training",
        _add_schedule_options,
        _schedule,
    ),
}


def build_parser() -> Parser:
    parser = Parser(prog="lrbench plot", description="Plots as PNG or SVG (from -o's suffix).")
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="KIND")
    for kind, (help_text, add_options, draw) in KINDS.items():
        sub = kinds.add_parser(kind, help=help_text, description=help_text)
        add_options(sub)
        if kind == "curves":
            sub.add_argument("--y", default="val_loss", help=", ".join(plots.Y_COLUMNS))
        sub.add_argument("-o", "--output", default=f"{kind}.png", help="FILE.png or FILE.svg")
        sub.set_defaults(draw=draw)
    return parser


def main(args: list[str]) -> int:
    options = build_parser().parse_args(args)
    path = output_path(options.output, plots.FORMATS)
    fig, note = options.draw(options)
    write_output(path, plots.to_bytes(fig, path.suffix.lower().lstrip(".")))
    print(f"wrote {path}" + (f": {note}" if note else ""))
    return 0
