"""The ``lrbench`` command: dispatches sub-commands, turns bad input into one line + exit 2."""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import sys
import threading

USAGE = """\
usage: lrbench <command> [args]

commands:
  train [overrides]   train one configuration (a Hydra app: -m for sweeps, --help for its options)
                      e.g. lrbench train model=cnn dataset=digits optimizer=sgd optimizer.lr=0.1
  find-lr [overrides] the LR range test of a configuration: lr_find.csv, lr_find.png, suggestions
                      e.g. lrbench find-lr model=cnn dataset=digits optimizer=adam
  study [overrides]   the optimizer-benchmark protocol: per problem and optimizer, a vectorized LR
                      grid, the best LR rerun over seeds; study.csv/json/html (docs/study.md)
                      e.g. lrbench study study.optimizers=[sgd,adam] study.prune.name=halving
  list [group ...]    the models, datasets, optimizers, schedules and experiments available;
                      group=option: its keys (type, default, range, meaning)
                      e.g. lrbench list optimizers; lrbench list optimizer=adam
  compare PATH...     runs as a table or CSV; --group-by aggregates over seeds, --where filters
                      e.g. lrbench compare runs/ --group-by optimizer.name,optimizer.lr -o out.csv
  plot KIND ...       curves | sensitivity | lr (runs) | schedule (overrides): PNG or SVG
                      e.g. lrbench plot schedule schedule=warmup_cosine train.epochs=30
  report PATH...      one self-contained HTML page: sorted table, plots, each run's config
  (each takes --help)

Each run writes runs/<name>/<timestamp>/ (config.yaml, metrics.csv, summary.json, train.log,
TensorBoard events: tensorboard --logdir runs/).
"""


def _hydra_app(app, command: str, args: list[str]) -> int:
    """Run a Hydra app with Hydra's exceptions reaching us (bad input becomes one line and
    exit code 2), after checks of what Hydra would report badly (input_errors)."""
    os.environ["HYDRA_FULL_ERROR"] = "1"
    from lrbench.input_errors import check_arguments

    flags = check_arguments(args, command)
    sys.argv = [f"lrbench {command}", *args]
    if flags is None or not flags.help:
        app()
        return 0
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            app()
    except SystemExit as stop:  # Hydra exits 0 after its help
        if stop.code:
            raise
    finally:
        print(hide_schemas(printed.getvalue()), end="")
    return 0


def hide_schemas(help_text: str) -> str:
    """Hydra's help less the ``*_schema`` options of its config groups: the ConfigStore's
    typed bases the yaml options start from (``adam_schema``), not options to choose."""
    lines, in_groups = [], False
    for line in help_text.splitlines(keepends=True):
        if line.startswith("== "):
            in_groups = line.startswith("== Configuration groups ==")
        group, colon, options = line.partition(": ")
        if in_groups and colon and " " not in group:
            kept = [o for o in options.strip().split(", ") if not o.endswith("_schema")]
            line = f"{group}: {', '.join(kept)}\n"
        lines.append(line)
    return "".join(lines)


def _train(args: list[str]) -> int:
    from lrbench.train_app import train

    return _hydra_app(train, "train", args)


def _find_lr(args: list[str]) -> int:
    from lrbench.lr_find.app import find_lr

    return _hydra_app(find_lr, "find-lr", args)


def _study(args: list[str]) -> int:
    from lrbench.errors import BadInputExit, ConfigError
    from lrbench.study.app import study, study_unit

    if any(a in ("-h", "--help", "--cfg", "-c", "--info") for a in args):
        return _hydra_app(study_unit, "study", args)
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        study(args)
    except ConfigError as error:
        raise BadInputExit(error) from error
    return 0


LIST_USAGE = """\
usage: lrbench list [group ...]
       lrbench list group=option ... | config

The options of each config group, each with the first sentence of its yaml's comment.
groups: model, dataset, optimizer, schedule, experiment (or their plurals: lrbench list optimizers)
group=option: every key of that option: type, default, range and meaning (lrbench list
optimizer=adam); config: the top-level keys (seed, train.*, lr_find.*). docs/configuration.md
has them all.
"""


def _list(args: list[str]) -> int:
    from lrbench.catalog import GROUPS, group_named, render
    from lrbench.errors import ConfigError

    if any(a in ("-h", "--help") for a in args):
        print(LIST_USAGE, end="")
        return 0
    groups, printed = [], []
    for name in args:
        if "=" in name or name == "config":
            printed.append(_option_reference(name))
            continue
        group = group_named(name)
        if group is None:
            raise ConfigError("group", name, f"unknown group (allowed: {', '.join(GROUPS)})")
        groups.append(group)
    if groups or not printed:
        printed.insert(0, render(tuple(groups) or GROUPS))
    print("\n".join(printed))
    return 0


def _option_reference(name: str) -> str:
    """``lrbench list optimizer=adam``: the option's keys (lrbench.config.reference)."""
    from lrbench.catalog import group_named, options
    from lrbench.config import reference
    from lrbench.config.root import SCHEMAS
    from lrbench.errors import ConfigError

    if name == "config":
        return reference.render(reference.TOP, reference.TOP)
    given, _, option = name.partition("=")
    group = group_named(given) or given.removesuffix("s")  # sweep: no group of `lrbench list`
    if group not in SCHEMAS:
        allowed = ", ".join(SCHEMAS)
        raise ConfigError("group", given, f"no option keys for it (allowed: {allowed})")
    if option not in options(group):
        raise ConfigError(group, option, f"unknown option (allowed: {', '.join(options(group))})")
    return reference.render(group, option)


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
    "study": _study,
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


def entry() -> None:
    """The ``lrbench`` process (the console script, ``python -m lrbench.cli``): ``main``,
    then out without the interpreter's teardown, which spent ~0.5 s of every run (measured:
    destroying XLA's client and every module just before the process ends). Only once
    ``main`` returned (every file of the run closed), atexit's handlers have run (logging's
    flush, JAX's distributed shutdown, the launchers') and no other thread is at work;
    otherwise, and where CPython's handler runner is missing, the usual exit."""
    code = main()
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)  # CPython's (not public)
    if run_exit_handlers is None or _threads_at_work():
        sys.exit(code)
    run_exit_handlers()
    with contextlib.suppress(BrokenPipeError):  # the reader left before our last lines
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _threads_at_work() -> bool:
    """Threads the normal exit would wait for."""
    return any(
        not thread.daemon and thread is not threading.main_thread()
        for thread in threading.enumerate()
    )


if __name__ == "__main__":
    entry()
