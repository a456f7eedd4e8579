"""The configuration reference: every key of an option, generated from its schema and yaml.

For each key: its type (the schema dataclass's annotation), its default (the option's yaml,
else the dataclass), its range (stated from the schema's range checks: ``self._positive("lr")``
reads "> 0") and its meaning (the yaml comment above the key). ``lrbench list optimizer=adam``
prints one option; ``python -m lrbench.config.reference`` writes docs/configuration.md (a test
checks the checked-in file equals its output, so the reference never drifts from the code).
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import inspect
import re
import sys
import textwrap
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import MISSING, OmegaConf

from lrbench.paths import conf_dir

# "config" is no group: the top-level keys of conf/config.yaml (seed, train.*, lr_find.*, ...).
TOP = "config"

# Meanings of keys that every option of a group shares and whose yaml says nothing of them.
SHARED_MEANINGS = {
    "name": "The option's name (set by its yaml).",
    "optimizer.lr": 'The peak learning rate: a number > 0, or "auto" (the LR range test picks it).',
    "optimizer.weight_decay": (
        "L2 penalty added to the gradient (decoupled for adamw and lion: docs/running.md"
        ' "Optimizers and their PyTorch counterparts").'
    ),
    "optimizer.grad_clip_norm": (
        "Clip the global gradient norm to this before the update (null: no clipping)."
    ),
}
# Keys whose annotation is wider than what they take (structured configs allow no unions).
TYPES = {"optimizer.lr": "float | auto"}

# The range checks of lrbench.config.base.Checked and how a reference states them.
_CHECKS = {
    "_positive": "> 0",
    "_non_negative": ">= 0",
    "_finite": "finite",
    "_seed": "[0, 2**32 - 1]",
}


@dataclass
class Key:
    key: str
    type: str
    default: str
    range: str
    meaning: str


def schema_of(group: str, option: str) -> type:
    return _load(group, option)[2]


def _load(group: str, option: str) -> tuple[dict, dict[str, str], type]:
    """An option's yaml keys, their comments and its schema, with the options it starts from
    (``defaults: [tfds, _self_]``: mnist is tfds's keys, then its own) merged in."""
    from lrbench.config.root import Config

    path = yaml_path(group, option)
    raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    assert isinstance(raw, dict)
    merged: dict = {}
    comments: dict[str, str] = {}
    schema: type = Config
    for entry in raw.pop("defaults", []) if group != TOP else []:
        if not isinstance(entry, str) or entry == "_self_":
            continue
        if entry.endswith("_schema"):
            schema = _schemas()[group][entry.removesuffix("_schema")]
        else:
            merged, comments, schema = _load(group, entry)
    raw.pop("defaults", None)
    return {**merged, **raw}, {**comments, **yaml_comments(path)}, schema


def _schemas() -> dict[str, dict[str, type]]:
    """``lrbench train``'s groups, and ``lrbench study``'s presets (conf/study/)."""
    from lrbench.config.root import SCHEMAS
    from lrbench.config.study import StudyConfig

    return {**SCHEMAS, "study": {"study": StudyConfig}}


def options() -> list[tuple[str, str]]:
    """(group, option) of every option with a schema, config first, in catalog order."""
    from lrbench.catalog import GROUPS

    schemas = _schemas()
    groups = [*GROUPS, *(g for g in schemas if g not in GROUPS)]
    found = [(TOP, TOP)]
    for group in (g for g in groups if g in schemas):
        found += [(group, p.stem) for p in sorted((conf_dir() / group).glob("*.yaml"))]
    return found


def yaml_path(group: str, option: str) -> Path:
    return conf_dir() / "config.yaml" if group == TOP else conf_dir() / group / f"{option}.yaml"


def yaml_comments(path: Path) -> dict[str, str]:
    """Dotted key -> the comment block right above it, as one line."""
    comments: dict[str, str] = {}
    block: list[str] = []
    parents: list[tuple[int, str]] = []
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            block.append(stripped.removeprefix("#").strip())
            continue
        match = re.match(r"( *)([A-Za-z_][\w]*):", line)
        if match and not stripped.startswith("-"):
            indent = len(match.group(1))
            parents = [(i, k) for i, k in parents if i < indent]
            key = ".".join([k for _, k in parents] + [match.group(2)])
            parents.append((indent, match.group(2)))
            if block:
                comments[key] = " ".join(t for t in block if t)
        block = []
    return comments


def _checks(schema: type) -> dict[str, list[str]]:
    """Key -> the ranges its schema's checks state (every method of the schema's classes)."""
    from lrbench.config.base import Checked

    found: dict[str, list[str]] = {}
    for cls in reversed(schema.__mro__):
        if cls is Checked or not (isinstance(cls, type) and issubclass(cls, Checked)):
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
        for node in ast.walk(tree):
            for key, text in _stated(node):
                if text not in found.setdefault(key, []):
                    found[key].append(text)
    return found


def _stated(node: ast.AST) -> list[tuple[str, str]]:
    if not (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "self"
    ):
        return []
    method = node.func.attr
    args = [a.value if isinstance(a, ast.Constant) else None for a in node.args]
    kwargs = {k.arg: k.value for k in node.keywords}
    if method in _CHECKS:
        text = _CHECKS[method]
    elif method == "_unit_interval":
        closed = kwargs.get("closed_right")
        text = "[0, 1]" if isinstance(closed, ast.Constant) and closed.value else "[0, 1)"
    elif method == "_at_least" and isinstance(kwargs.get("low"), ast.Constant):
        text = f">= {kwargs['low'].value:g}"  # type: ignore[attr-defined]
    elif method == "_in" and isinstance(args[:1] and args[0], str):
        text, args = args[0], args[1:]
    elif method == "_fail" and len(args) == 2 and isinstance(args[1], str):
        if not args[1].startswith("must be "):
            return []
        text, args = args[1].removeprefix("must be "), args[:1]
    else:
        return []
    return [(key, text) for key in args if isinstance(key, str)]


def _type_name(hint: Any) -> str:
    if hint is Any:
        return "any"
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in typing.get_args(hint) if a is not type(None)]
        null = type(None) in typing.get_args(hint)
        return " | ".join(names + (["null"] if null else []))
    if origin is not None:
        inner = ", ".join(_type_name(a) for a in typing.get_args(hint))
        return f"{origin.__name__}[{inner}]"
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return " | ".join(m.name for m in hint)
    if dataclasses.is_dataclass(hint):
        return "group"
    return getattr(hint, "__name__", str(hint))


def _value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def _field_default(field: dataclasses.Field) -> str:
    if field.default is not dataclasses.MISSING and field.default is not MISSING:
        return _value(field.default)
    if field.default_factory is not dataclasses.MISSING:
        return _value(field.default_factory())
    return "(required)"


def keys(group: str, option: str) -> list[Key]:
    """Every key of one option: the yaml's keys in its order, then the schema's others."""
    raw, comments, schema = _load(group, option)
    prefix = "" if group == TOP else f"{group}."
    return _keys(schema, raw, comments, "", prefix)


def _keys(schema: type, raw: dict, comments: dict, at: str, prefix: str) -> list[Key]:
    hints = typing.get_type_hints(schema)
    fields = {f.name: f for f in dataclasses.fields(schema)}
    checks = _checks(schema)
    found = []
    for name in [*(k for k in raw if k in fields), *(f for f in fields if f not in raw)]:
        field = fields[name]  # (config.yaml's hydra: Hydra's own settings, not lrbench's)
        hint = hints[name]
        nested = [a for a in (hint, *typing.get_args(hint)) if dataclasses.is_dataclass(a)]
        if nested and not prefix and at == "" and name not in raw:
            continue  # a config group (model, optimizer, ...): its own options
        if nested and isinstance(raw.get(name), dict):
            found += _keys(nested[0], raw[name], comments, f"{at}{name}.", prefix)
            continue
        if nested:
            continue  # a group chosen in the defaults list (sweep: null, mesh: single)
        full = f"{prefix}{at}{name}"
        found.append(
            Key(
                key=full,
                type=TYPES.get(full, _type_name(hint)),
                default=_value(raw[name]) if name in raw else _field_default(field),
                range=", ".join(checks.get(name, [])),
                meaning=comments.get(f"{at}{name}")
                or SHARED_MEANINGS.get(full)
                or SHARED_MEANINGS.get(name, ""),
            )
        )
    return found


def option_title(group: str, option: str) -> str:
    from lrbench.catalog import option_doc

    if group == TOP:
        return "conf/config.yaml: the top-level keys (the groups have their own options)"
    return f"{group}={option}: {option_doc(yaml_path(group, option))}"


def render(group: str, option: str, width: int = 100) -> str:
    """One option's keys, for the terminal (``lrbench list optimizer=adam``)."""
    lines = textwrap.wrap(option_title(group, option), width, subsequent_indent="  ")
    for key in keys(group, option):
        head = f"  {key.key}: {key.type} = {key.default}"
        lines.append(head + (f"  (range: {key.range})" if key.range else ""))
        if key.meaning:
            lines += textwrap.wrap(
                key.meaning, width, initial_indent=" " * 6, subsequent_indent=" " * 6
            )
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown() -> str:
    """docs/configuration.md: every option's keys, one table per option."""
    out = [
        "# Configuration reference",
        "",
        "<!-- Generated by `python -m lrbench.config.reference > docs/configuration.md`;",
        "     tests/test_docs.py checks this file equals its output. Do not edit by hand. -->",
        "",
        "Every key of every option: its type (the schema in `lrbench/config/`), its default",
        "(the option's yaml in `conf/`, else the schema), its range (stated from the schema's",
        "checks; a check that spans keys is not listed) and its meaning (the yaml comment above",
        "the key). `lrbench list GROUP=OPTION` prints the same for one option, e.g.",
        "`lrbench list optimizer=adam`; `lrbench list config` the top-level keys.",
    ]
    group_seen = None
    for group, option in options():
        if group != group_seen:
            out += ["", f"## {'Top level (`conf/config.yaml`)' if group == TOP else group}"]
            group_seen = group
        if group != TOP:
            from lrbench.catalog import option_doc

            out += ["", f"### `{group}={option}`", ""]
            doc = option_doc(yaml_path(group, option))
            if doc:
                out += [doc, ""]
        else:
            out.append("")
        out += ["| key | type | default | range | meaning |", "|---|---|---|---|---|"]
        for key in keys(group, option):
            cells = [f"`{key.key}`", key.type, f"`{key.default}`", key.range, key.meaning]
            out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
