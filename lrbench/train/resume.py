"""``resume=<run dir>|auto``: which run goes on, with which config, from which checkpoint.

``resume=<run dir>``: the run's own config.yaml is the base and the overrides typed with it
are the changes (``lrbench train resume=<dir>`` alone goes on as the run was). Hydra composes
with the run's group choices (``with_run_choices``, before Hydra parses the command line),
then every key the user did not type takes the run's value (``on_the_run``), and the result
is validated as any config. ``resume=auto`` (re-launched sweeps, which give every override
again) compares the composed config with the run's.

Everything is checked before any work (bad input: one line, exit 2, nothing touched): the
folder is a run directory whose files read, and the config equals the run's but for keys
that change no number (``FREE``) and those in ``resume_allow_changes``. A resumed run goes
on in its own directory from its newest usable checkpoint, or from step 0 if it has none.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf, open_dict

from lrbench.config import SCHEMAS, Config
from lrbench.errors import ConfigError
from lrbench.flat_config import flatten
from lrbench.paths import conf_dir
from lrbench.runs import read_config
from lrbench.summary import COMPLETED, DIVERGED, PRUNED, read_summary

AUTO = "auto"
FINISHED = (COMPLETED, DIVERGED, PRUNED)  # resume=auto skips these; the others go on
# Keys that change no number of a run: a resumed run may differ in them.
FREE = (
    "resume",
    "resume_allow_changes",
    "compile_cache",
    "train.checkpoint_every",
    "train.checkpoint_interval_s",
    "train.keep_checkpoints",
    "train.checkpoints_when_done",
    "train.progress",
)
# How this process joins a multi-process job (its id, the coordinator of this launch).
DISTRIBUTED = tuple(
    f"distributed.{key}"
    for key in ("name", "coordinator_address", "num_processes", "process_id", "timeout_s")
)
FREE += DISTRIBUTED
# Keys of this launch, never taken from the run's config.yaml: the resume keys, where
# this process keeps its compilation cache, and how it joins a multi-process job.
LAUNCH = ("resume", "resume_allow_changes", "compile_cache", "train.progress", *DISTRIBUTED)
# Keys whose change gives the state another structure, shapes or dtypes (named first when a
# checkpoint cannot take the changes): the model, the data's shape, the optimizer, the
# schedule (reduce_on_plateau keeps state), the dtype.
STATE_SHAPING = ("model", "dataset", "optimizer.name", "schedule.name", "train.dtype")
# Config groups whose option is a node of the config (``optimizer=adam`` -> ``optimizer``).
NODE_GROUPS = tuple(group for group in SCHEMAS if group != "sweep")
_ABSENT = "<absent>"


@dataclass(frozen=True)
class Resume:
    run_dir: Path
    summary: dict | None = None  # the run had finished: nothing to train
    changes: dict[str, tuple] = field(default_factory=dict)  # key -> (the run's, now)

    def cannot_take(self, mismatch: Exception) -> ConfigError:
        """The checkpoint's state has another structure, shapes or dtypes than this run's
        (``lrbench.train.checkpoint.StateMismatch``): the change that did it, in one line."""
        named = {k: v for k, v in self.changes.items() if _covers_any(STATE_SHAPING, k)}
        renamed = {k.rpartition(".")[0] for k in named if k.endswith(".name")}
        named = {
            k: v for k, v in named.items() if k.endswith(".name") or not _covers_any(renamed, k)
        }
        named = named or self.changes
        if not named:
            text = f"the checkpoint's state does not fit this run ({mismatch}): start a new run"
        else:
            shown = ", ".join(
                f"{k} (run: {_shown(a)}, now: {_shown(b)})" for k, (a, b) in named.items()
            )
            if len(named) == 1:
                key, rest = shown.split(" ", 1)
                text = f"{key} changed {rest}: the checkpoint cannot take it; start a new run"
            else:
                text = f"{shown} changed: the checkpoint cannot take them; start a new run"
        return ConfigError("resume", str(self.run_dir), text)


@dataclass(frozen=True)
class Typed:
    """The keys a user's overrides set (a key covers its sub-keys): with ``resume=<run
    dir>`` these alone may differ from the run's config."""

    keys: frozenset[str]

    def covers(self, key: str) -> bool:
        return _covers_any(self.keys, key)


def plan_resume(
    cfg: Config, record: dict, out_dir: Path, multirun: bool, typed: Typed | None = None
) -> Resume | None:
    """The run to go on with, or None for a fresh run in ``out_dir`` (Hydra's folder).

    ``typed``: with ``resume=<run dir>``, the keys the user typed (``on_the_run``): only
    they can differ from the run's; None (``resume=auto``): every key is compared."""
    if cfg.resume is None:
        return None
    if cfg.resume == AUTO:
        if not (out_dir / "config.yaml").exists():
            return None
        run_dir = out_dir
    elif multirun:
        raise ConfigError(
            "resume",
            cfg.resume,
            "one run's directory, not with -m: re-launch a "
            "sweep with resume=auto and the same hydra.sweep.dir",
        )
    else:
        run_dir = _run_dir(cfg.resume)
    changes = _compare(cfg, record, _read_config(cfg.resume, run_dir), run_dir, typed)
    summary = _read_summary(cfg, run_dir)
    if summary is not None and summary.get("status") in FINISHED:
        return Resume(run_dir, summary=summary)
    return Resume(run_dir, changes=changes)


def _run_dir(resume: str) -> Path:
    run_dir = Path(resume)
    if not run_dir.is_dir():
        raise ConfigError("resume", resume, "no such run directory")
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError("resume", resume, "not a run directory (no config.yaml)")
    return run_dir


def on_the_run(cfg: DictConfig, overrides: list[str], resume: str) -> tuple[DictConfig, Typed]:
    """``resume=<run dir>``: the run's config.yaml with the user's ``overrides`` (as Hydra
    lists them) applied: ``cfg`` (composed with the run's group choices and the overrides)
    takes the run's value at every key the overrides do not set, but this launch's own
    (``LAUNCH``). Keys the run's config lacks (added to lrbench since) keep their defaults.
    Returns it, still to be validated (``to_run_config``), and the keys typed."""
    run_dir = _run_dir(resume)
    original = _read_config(resume, run_dir)
    typed = typed_keys(overrides, run_choices(run_dir, original))
    merged = cfg.copy()
    with open_dict(merged):
        for key, value in _leaves(original):
            if not typed.covers(key) and not _covers_any(LAUNCH, key):
                OmegaConf.update(merged, key, value, merge=False)
    return merged, typed


def typed_keys(overrides: list[str], choices: dict[str, str]) -> Typed:
    """The keys ``overrides`` set: a key's own; a group's whole node when it picks another
    option than the run's (``choices``; the same option changes nothing); an
    ``@package _global_`` option's keys (``experiment=toy``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import OverrideType

    keys: set[str] = set()
    for override in OverridesParser.create().parse_overrides(overrides):
        name = override.key_or_group
        if not (conf_dir() / name).is_dir():
            keys.add(name)
            continue
        option = None if override.type == OverrideType.DEL else override.value()
        keys |= _group_keys(name, option, override.package, choices)
    return Typed(frozenset(keys))


def _group_keys(group: str, option, package: str | None, choices: dict[str, str]) -> set[str]:
    file = _option_file(group, option)
    if file is not None and _is_global(file):
        content = yaml.safe_load(file.read_text()) or {}
        keys = {key for key, _ in _leaves({k: v for k, v in content.items() if k != "defaults"})}
        for entry in content.get("defaults") or []:
            for spec, chosen in entry.items() if isinstance(entry, dict) else ():
                picked = re.fullmatch(r"override\s+/([\w/]+)", str(spec).strip())
                if picked:
                    keys |= _group_keys(picked.group(1), chosen, None, choices)
        return keys
    if package is None and option is not None and choices.get(group) == option:
        return set()
    return {package or group}


def with_run_choices(args: list[str]) -> tuple[list[str], list[str]]:
    """``lrbench train`` arguments with ``resume=<run dir>``: the run's group choices
    (``optimizer=momentum``, ...) and name put first, unless typed, so that Hydra composes
    the run's groups (``optimizer.momentum=0.95`` is then a key it knows) and its run
    directory's name resolves. Returns the arguments and those put in (not the user's).
    Anything else (``-m``, ``resume=auto``, a folder that is no run, an ``@package
    _global_`` option such as ``experiment=...`` typed): the arguments as they are."""
    unchanged = args, []
    values = [arg.split("=", 1)[1] for arg in args if arg.startswith("resume=")]
    if "-m" in args or "--multirun" in args or not values or values[-1] in (AUTO, "null", ""):
        return unchanged
    run_dir = Path(values[-1])
    try:
        config = read_config(run_dir)
    except (OSError, yaml.YAMLError, ValueError):
        return unchanged  # plan_resume says what is wrong, in one line
    if not isinstance(config, dict):
        return unchanged
    typed = {}
    for arg in args:
        assignment = re.match(r"[+~]{0,2}([\w/.\-]+?)(?:@[\w.]*)?=(.*)", arg)
        if assignment:
            typed[assignment.group(1)] = assignment.group(2)
    if any(
        (file := _option_file(key, value)) is not None and _is_global(file)
        for key, value in typed.items()
    ):
        return unchanged
    inserted = [f"{g}={o}" for g, o in run_choices(run_dir, config).items() if g not in typed]
    name = config.get("name")
    if "name" not in typed and isinstance(name, str) and not set(name) & set("'\\$"):
        inserted.append(f"name='{name}'")
    return [*inserted, *args], inserted


def run_choices(run_dir: Path, config: dict) -> dict[str, str]:
    """The run's option of each config group that is a node (``optimizer`` -> ``adam``):
    its ``name`` when an option is so named, else what Hydra recorded at its first launch
    (``.hydra/hydra.yaml``; ``dataset=tfds`` runs are named after their TFDS set)."""
    recorded = None
    choices = {}
    for group in NODE_GROUPS:
        node = config.get(group)
        option = node.get("name") if isinstance(node, dict) else None
        if _option_file(group, option) is None:
            if recorded is None:
                recorded = _recorded_choices(run_dir)
            option = recorded.get(group)
        if _option_file(group, option) is not None:
            choices[group] = option
    return choices


def _recorded_choices(run_dir: Path) -> dict:
    try:
        hydra = yaml.load((run_dir / ".hydra" / "hydra.yaml").read_text(), Loader=_LOADER)
        choices = hydra["hydra"]["runtime"]["choices"]
    except (OSError, yaml.YAMLError, ValueError, KeyError, TypeError):
        return {}
    return choices if isinstance(choices, dict) else {}


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _option_file(group: str, option) -> Path | None:
    if not isinstance(option, str) or not re.fullmatch(r"[\w\-]+", option):
        return None
    file = conf_dir() / group / f"{option}.yaml"
    return file if file.is_file() else None


def _is_global(file: Path) -> bool:
    with open(file) as f:
        return any(line.split() == ["#", "@package", "_global_"] for line in f)


def _leaves(config: dict, prefix: str = ""):
    """(dotted key, value) of every value that is not a non-empty mapping (lists whole)."""
    for key, value in config.items():
        if isinstance(value, dict) and value:
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _problem(resume: str, run_dir: Path, text: str) -> ConfigError:
    where = "" if resume != AUTO else f"{run_dir}: "
    return ConfigError("resume", resume, where + text)


def _read_config(resume: str, run_dir: Path) -> dict:
    try:
        config = read_config(run_dir)
    except (yaml.YAMLError, ValueError) as error:
        raise _problem(
            resume, run_dir, f"config.yaml is not valid YAML ({_first(error)})"
        ) from None
    if not isinstance(config, dict):
        raise _problem(resume, run_dir, "config.yaml is not a mapping of keys to values")
    return config


def _read_summary(cfg: Config, run_dir: Path) -> dict | None:
    try:
        summary = read_summary(run_dir)
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError
        raise _problem(
            cfg.resume, run_dir, f"summary.json is not valid JSON ({_first(error)})"
        ) from None
    if summary is not None and not isinstance(summary, dict):
        raise _problem(cfg.resume, run_dir, "summary.json is not a JSON object")
    return summary


def _compare(
    cfg: Config, record: dict, original: dict, run_dir: Path, typed: Typed | None
) -> dict[str, tuple]:
    """The allowed differences; raises on any other (naming every differing key). With
    ``typed`` (``resume=<run dir>``) only the keys typed are compared: the others are the
    run's, or new keys the run's config.yaml predates."""
    now, then = flatten(record), flatten(original)
    keys = [k for k in dict.fromkeys([*then, *now]) if k not in FREE]
    allowed = cfg.resume_allow_changes
    for entry in allowed:
        if not any(_covers(entry, key) for key in keys):
            raise ConfigError(
                "resume_allow_changes",
                _list(allowed),
                f"{entry} is not a key or group of the config (e.g. train.epochs)",
            )
    differ = {
        k: (then.get(k, _ABSENT), now.get(k, _ABSENT))
        for k in keys
        if (typed is None or typed.covers(k)) and then.get(k, _ABSENT) != now.get(k, _ABSENT)
    }
    refused = {k: v for k, v in differ.items() if not any(_covers(e, k) for e in allowed)}
    if refused:
        shown = ", ".join(
            f"{k} (run: {_shown(a)}, now: {_shown(b)})" for k, (a, b) in refused.items()
        )
        advice = (
            f"give the run's overrides again, or resume_allow_changes={_list(refused)}"
            if typed is None
            else f"allow with resume_allow_changes={_list(refused)}, or leave those overrides out"
        )
        raise _problem(
            cfg.resume, run_dir, f"the config differs from the run's in {shown}: {advice}"
        )
    return differ


def _covers(entry: str, key: str) -> bool:
    return key == entry or key.startswith(entry + ".")


def _covers_any(entries, key: str) -> bool:
    return any(_covers(entry, key) for entry in entries)


def _shown(value) -> str:
    """A value for people: a list as ``[256, 256]`` (flattened configs hold ``[256,256]``)."""
    if isinstance(value, str) and value.startswith("["):
        try:
            return json.dumps(json.loads(value))
        except ValueError:
            return value
    return str(value)


def _list(values) -> str:
    return "[" + ",".join(values) + "]"


def _first(error: Exception) -> str:
    return " ".join(str(error).split())[:200]


def files_fit(run_dir: Path):
    """A checkpoint is usable when each file it counted holds at least its bytes then."""

    def problem(progress: dict) -> str | None:
        for name, size in progress["files"].items():
            file = run_dir / name
            have = file.stat().st_size if file.exists() else None
            if have is None or have < size:
                return f"{name} has {have or 0} bytes, fewer than the {size} it had then"
        return None

    return problem


def log_into(run_dir: Path) -> None:
    """Hydra opened the job's log in a new folder of its own; a run resumed elsewhere logs
    on in its own train.log (appended)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if not isinstance(handler, logging.FileHandler):
            continue
        target = (run_dir / Path(handler.baseFilename).name).absolute()
        if Path(handler.baseFilename) == target:
            continue
        moved = logging.FileHandler(target, mode="a")
        moved.setFormatter(handler.formatter)
        moved.setLevel(handler.level)
        root.removeHandler(handler)
        handler.close()
        root.addHandler(moved)
