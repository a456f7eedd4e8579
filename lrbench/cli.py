"""The ``lrbench`` command: dispatches sub-commands, turns bad input into one line + exit 2."""

from __future__ import annotations

import os
import sys

USAGE = """\
usage: lrbench <command> [args]

commands:
  train [overrides]   train one configuration (a Hydra app: -m for sweeps, --help for its options)
                      e.g. lrbench train model=cnn dataset=digits optimizer=sgd optimizer.lr=0.1
  list [group ...]    the models, datasets, optimizers, schedules and experiments available

Each run writes runs/<name>/<timestamp>/ (config.yaml, metrics.csv, summary.json, train.log).
"""


def _train(args: list[str]) -> int:
    # Let Hydra's exceptions reach us, so bad input becomes one line and exit code 2.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    from lrbench.train_app import train

    sys.argv = ["lrbench train", *args]
    train()
    return 0


def _list(args: list[str]) -> int:
    from lrbench.catalog import GROUPS, render
    from lrbench.errors import ConfigError

    unknown = [g for g in args if g not in GROUPS]
    if unknown:
        raise ConfigError("group", unknown[0], f"one of {', '.join(GROUPS)}")
    print(render(tuple(args) or GROUPS))
    return 0


COMMANDS = {"train": _train, "list": _list}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0
    command, args = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"lrbench: error: unknown command {command!r} (allowed: {', '.join(COMMANDS)})",
              file=sys.stderr)
        return 2
    from lrbench.errors import BadInputExit

    try:
        return COMMANDS[command](args)
    except BadInputExit as exit_:
        print(f"lrbench: error: {exit_.error}", file=sys.stderr)
        return 2
    except Exception as error:  # only known input errors are turned into a line
        from lrbench.input_errors import describe

        message = describe(error)
        if message is None:
            raise
        print(f"lrbench: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
