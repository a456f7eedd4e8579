"""Command-line parsing shared by compare, plot and report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn

from lrbench.errors import ConfigError
from lrbench.runs import write_atomically


class UsageError(ConfigError):
    """argparse's complaint (unknown flag, missing path) as one line, like any bad input."""

    def __init__(self, prog: str, message: str) -> None:
        ValueError.__init__(self, f"{prog}: {message} (see {prog} --help)")
        self.key, self.value, self.allowed = prog, None, message


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(self.prog, message)


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(text)
    return value


positive_int.__name__ = "positive integer"  # argparse names the type in its message


def add_selection(parser: argparse.ArgumentParser) -> None:
    """The run paths and ``--where`` every reading command takes."""
    parser.add_argument("paths", nargs="+", metavar="PATH", help="a run, a sweep, or runs/")
    parser.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keep runs with this value (repeatable; KEY=a,b for either)",
    )


def output_path(text: str, suffixes: tuple[str, ...], flag: str = "-o") -> Path:
    """A file to write, whose suffix says the format (checked before any work)."""
    path = Path(text)
    if path.suffix.lower() not in suffixes:
        raise ConfigError(flag, text, f"must end in {' or '.join(suffixes)}")
    if path.is_dir():
        raise ConfigError(flag, text, "is a directory")
    return path


def write_output(path: Path, data: str | bytes) -> None:
    """Whole or not at all (temp file + rename); the folder is created if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, data)
