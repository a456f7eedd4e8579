"""``lrbench list``: the options of each config group, with the first line of their docs."""

from __future__ import annotations

from pathlib import Path

from lrbench.paths import conf_dir

GROUPS = ("model", "dataset", "optimizer", "schedule", "experiment")


def option_summary(path: Path) -> str:
    """The option's first comment line (experiments: skipping the @package line)."""
    for line in path.read_text().splitlines():
        text = line.lstrip("# ").strip()
        if line.startswith("#") and text and not text.startswith("@package"):
            return text
    return ""


def options(group: str) -> dict[str, str]:
    return {p.stem: option_summary(p) for p in sorted((conf_dir() / group).glob("*.yaml"))}


def render(groups: tuple[str, ...] = GROUPS) -> str:
    lines = []
    for group in groups:
        lines.append(f"{group}:")
        entries = options(group)
        width = max(map(len, entries), default=0)
        lines += [f"  {name:<{width}}  {doc}" for name, doc in entries.items()]
    return "\n".join(lines)
