"""The ``lrbench`` command: dispatches sub-commands, turns bad input into one line + exit 2."""

from __future__ import annotations

import os
import sys

USAGE = """\
usage: lrbench <command> [args]

commands:
  train [overrides]   train one configuration (a Hydra app: -m for sweeps, --help for its options)
                      e.g. lrbench train model=cnn dataset=digits optimizer=sgd optimizer.lr=0.1
  find-lr [overrides] the LR range test of a configuration: lr_find.csv, lr_find.png, suggestions
                      e.g. lrbench find-lr model=cnn dataset=digits optimizer=adam
  list [group ...]    the models, datasets, optimizers, schedules and experiments available
  compare PATH...     runs as a table or CSV; --group-by aggregates over seeds, --where filters
                      e.g. lrbench compare runs/ --group-by optimizer.name,optimizer.lr -o out.csv
  plot KIND ...       curves | sensitivity | lr (runs) | schedule (overrides): PNG or SVG
                      e.g. lrbench plot schedule schedule=warmup_cosine train.epochs=30
  report PATH...      one self-contained HTML page: sorted table, plots, each run's config
  (each takes --help)

Each run writes runs/<name>/<timestamp>/ (config.yaml, metrics.csv, summary.json, train.log,
TensorBoard events: tensorboard --logdir runs/).
"""


def _train(args: list[str]) -> int:
    # Let Hydra's exceptions reach us, so bad input becomes one line and exit code 2.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    from lrbench.train_app import train

    sys.argv = ["lrbench train", *args]
    train()
    return 0


def _find_lr(args: list[str]) -> int:
    os.environ["HYDRA_FULL_ERROR"] = "1"  # as for train: bad input becomes one line, exit 2
    from lrbench.lr_find.app import find_lr

    sys.argv = ["lrbench find-lr", *args]
    find_lr()
    return 0


def _list(args: list[str]) -> int:
    from lrbench.catalog import GROUPS, render
    from lrbench.errors import ConfigError

    unknown = [g for g in args if g not in GROUPS]
    if unknown:
        raise ConfigError("group", unknown[0], f"one of {', '.join(GROUPS)}")
    print(render(tuple(args) or GROUPS))
    return 0


def _compare(args: list[str]) -> int:
    from lrbench.analysis.compare import main as compare

    return compare(args)


def _plot(args: list[str]) -> int:
    from lrbench.analysis.plot_cli import main as plot

    return plot(args)


def _report(args: list[str]) -> int:
    from lrbench.analysis.report import main as report

    return report(args)


COMMANDS = {
    "train": _train,
    "find-lr": _find_lr,
    "list": _list,
    "compare": _compare,
    "plot": _plot,
    "report": _report,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0
    command, args = argv[0], argv[1:]
    if command not in COMMANDS:
        print(
            f"lrbench: error: unknown command {command!r} (allowed: {', '.join(COMMANDS)})",
            file=sys.stderr,
        )
        return 2
    from lrbench.errors import BadInputExit
    from lrbench.train.interrupt import Interrupted

    try:
        return COMMANDS[command](args)
    except BadInputExit as exit_:
        from lrbench.input_errors import one_line_message

        print(f"lrbench: error: {one_line_message(exit_.error) or exit_.error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `lrbench list | head`: the reader left early; nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # as Python's docs advise
        return 0
    except Interrupted as stop:  # SIGTERM/Ctrl-C: the run stopped with a checkpoint
        print(f"lrbench: {stop.message}", file=sys.stderr)
        return stop.code
    except Exception as error:  # only known input errors are turned into a line
        from lrbench.input_errors import one_line_message

        message = one_line_message(error)
        if message is None:
            raise
        print(f"lrbench: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
