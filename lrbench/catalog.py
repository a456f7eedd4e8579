"""``lrbench list``: the options of each config group, with the first sentence of their docs."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from lrbench.paths import conf_dir

GROUPS = ("model", "dataset", "optimizer", "schedule", "experiment", "mesh", "distributed")
WIDTH = 100  # the lines of `lrbench list`, descriptions wrapped under their column

# Words whose period ends no sentence ("He et al. 2016", "e.g. adam").
_ABBREVIATIONS = {"e.g", "i.e", "al", "vs", "cf", "approx"}


def option_doc(path: Path) -> str:
    """The option's first comment block, as one line (experiments: less the @package line)."""
    block: list[str] = []
    for line in path.read_text().splitlines():
        text = line.strip().removeprefix("#").strip()
        if not line.startswith("#") or not text:
            if block:
                break
            continue
        if not text.startswith("@package"):
            block.append(text)
    return " ".join(block)


def first_sentence(text: str) -> str:
    """Up to the first period that ends a sentence: followed by a space or the end, outside
    brackets, after a word (not " . ", a dot product) that is no abbreviation. The whole
    text when there is none, so a description is never cut mid-sentence."""
    depth = 0
    for i, char in enumerate(text):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth = max(depth - 1, 0)
        elif char in ".!?" and depth == 0 and text[i + 1 : i + 2] in ("", " "):
            words = text[:i].split()
            word = words[-1].lstrip("([`'\"").lower() if words and text[i - 1] != " " else ""
            if word and word not in _ABBREVIATIONS:
                return text[: i + 1]
    return text


def option_summary(path: Path) -> str:
    return first_sentence(option_doc(path))


def options(group: str) -> dict[str, str]:
    return {p.stem: option_summary(p) for p in sorted((conf_dir() / group).glob("*.yaml"))}


def group_named(name: str) -> str | None:
    """The group a name means: ``optimizer`` or its plural ``optimizers`` (None: no group)."""
    return next((g for g in GROUPS if name in (g, f"{g}s")), None)


def render(groups: tuple[str, ...] = GROUPS) -> str:
    lines = []
    for group in groups:
        lines.append(f"{group}:")
        entries = options(group)
        width = max(map(len, entries), default=0)
        for name, doc in entries.items():
            first = f"  {name:<{width}}  "
            wrapped = textwrap.fill(
                re.sub(r"\s+", " ", doc),
                WIDTH,
                initial_indent=first,
                subsequent_indent=" " * len(first),
                break_long_words=False,
                break_on_hyphens=False,
            )
            lines.append(wrapped if doc else first.rstrip())
    return "\n".join(lines)
