"""One-line messages for bad input, from our ConfigError or from Hydra/OmegaConf's errors,
and the checks of ``lrbench train|find-lr``'s arguments that run before Hydra sees them."""

from __future__ import annotations

import contextlib
import difflib
import io
import re
import typing
from argparse import Namespace
from dataclasses import fields, is_dataclass

from hydra.errors import (
    ConfigCompositionException,
    HydraException,
    MissingConfigException,
    OverrideParseException,
)
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    MissingMandatoryValue,
    OmegaConfBaseException,
)

from lrbench.errors import ArgumentError, ConfigError
from lrbench.paths import conf_dir

SCHEMA_SUFFIX = "_schema"  # the ConfigStore's typed bases (adam_schema): not options to choose
GRAMMAR = "https://hydra.cc/docs/advanced/override_grammar/basic/"
# argparse-style names of other trainers that are no key's name here (--learning-rate 0.1).
ALIASES = {"learning_rate": "lr", "wd": "weight_decay", "bs": "batch_size"}


def _chain(error: BaseException):
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


def _first_line(text: str) -> str:
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "")


def _omegaconf(error: OmegaConfBaseException) -> str:
    key = getattr(error, "full_key", None) or getattr(error, "key", None) or "?"
    if isinstance(error, ConfigKeyError | ConfigAttributeError):
        schema = getattr(error, "object_type", None)
        allowed = (
            f" (allowed: {', '.join(f.name for f in fields(schema))})"
            if schema is not None and is_dataclass(schema)
            else ""
        )
        return f"{key}: unknown key{allowed}"
    if isinstance(error, MissingMandatoryValue):
        return f"{key}: missing value"
    return f"{key}: {_first_line(getattr(error, 'msg', error))}"


def unknown_option(group: str, option: str, options) -> str:
    """``group=option: unknown option (allowed: ...)``, the ``*_schema`` entries left out."""
    choices = sorted(o for o in options if not o.endswith(SCHEMA_SUFFIX))
    return f"{group}={option}: unknown option (allowed: {', '.join(choices)})"


def _missing_option(error: MissingConfigException) -> str:
    missing = getattr(error, "missing_cfg_file", "") or ""
    group, _, option = str(missing).rpartition("/")
    options = getattr(error, "options", None)
    if group and options:
        return unknown_option(group, option, options)
    return _first_line(error)


def _unparsable(error: OverrideParseException) -> str:
    """An override Hydra's grammar rejects, named as typed (not ANTLR's token sets)."""
    override = error.override
    if override.startswith(",") or override.endswith(","):
        return (
            f"{override}: cannot parse this override: a space after a comma splits it in two "
            "(write a,b without spaces, or quote the whole override)"
        )
    if "=" not in override and not override.startswith("~"):
        return f"{override}: not an override (key=value or group=option, e.g. train.epochs=5)"
    return f"{override}: cannot parse this override (Hydra's grammar: {GRAMMAR})"


_AMBIGUOUS = re.compile(r"Ambiguous value for argument '(.*)'")
_SWEEP_IN_A_RUN = re.compile(r"Sweep parameters '(.*)' requires --multirun")


def _composition(error: ConfigCompositionException) -> str | None:
    """Hydra's refusal of several values without -m, as one line that keeps its hints."""
    text = _first_line(error)
    if match := _AMBIGUOUS.match(text):
        return f"{match[1]}: several values: use -m for a sweep, or [a,b] for a list"
    if match := _SWEEP_IN_A_RUN.match(text):
        return f"{match[1]}: a sweep: use -m"
    return None


def one_line_message(error: BaseException) -> str | None:
    """The one-line message for a known input error, or None for anything else (a bug)."""
    for cause in _chain(error):
        if isinstance(cause, ConfigError | ArgumentError):
            return str(cause)
        if isinstance(cause, MissingConfigException):
            return _missing_option(cause)
        if isinstance(cause, OmegaConfBaseException):
            return _omegaconf(cause)
    if isinstance(error, OverrideParseException):
        return _unparsable(error)
    if isinstance(error, ConfigCompositionException) and (message := _composition(error)):
        return message
    if isinstance(error, OverrideParseException | HydraException):
        return _first_line(error)
    return None


# ------------------------------------------------------- arguments, before Hydra sees them
def check_arguments(args: list[str], command: str) -> Namespace | None:
    """Refuse what Hydra would report badly: an unknown ``--flag`` (argparse's usage and
    "unrecognized arguments"; suggests the key, ``--epochs 5`` -> ``train.epochs=5``) and a
    ``*_schema`` option (MissingMandatoryValue at the first interpolation). Returns Hydra's
    parsed flags (None when argparse rejects them: Hydra then reports it itself)."""
    from hydra._internal.utils import get_args_parser

    try:
        with contextlib.redirect_stderr(io.StringIO()):  # argparse's own report: Hydra's to give
            flags, unknown = get_args_parser().parse_known_args(args)
    except SystemExit:
        return None
    for flag in unknown:
        if flag.startswith("-"):
            raise ArgumentError(_unknown_flag(flag, args, command))
    _refuse_schema_options(flags.overrides)
    return flags


def _unknown_flag(flag: str, args: list[str], command: str) -> str:
    name, has_value, value = flag.partition("=")
    typed = flag
    if not has_value:
        position = args.index(flag) + 1
        following = args[position] if position < len(args) else None
        if following is not None and "=" not in following and not _is_flag(following):
            value, typed = following, f"{flag} {following}"
    key, is_bool = _closest_key(name.lstrip("-").replace("-", "_"))
    if key is None:
        return (
            f"{typed}: unknown flag (overrides are key=value, e.g. train.epochs=5; "
            f"lrbench {command} --help lists the keys)"
        )
    value = value or ("true" if is_bool else "<value>")
    return f"{typed}: unknown flag (overrides are key=value: {key}={value})"


def _is_flag(arg: str) -> bool:
    if not arg.startswith("-"):
        return False
    try:
        float(arg)
    except ValueError:
        return True
    return False  # a negative number: the flag's value


def _closest_key(name: str) -> tuple[str | None, bool]:
    """The config key a flag meant: a full key (``train.epochs``), a leaf (``epochs``) or a
    group (``optimizer``), exactly or nearly (``epoch``); whether the key is a bool."""
    keys, booleans = _config_keys()
    name = ALIASES.get(name, name)
    leaves: dict[str, str] = {}
    for key in keys:
        leaves.setdefault(key.rpartition(".")[2], key)
    if name in keys:
        return name, name in booleans
    if name in leaves:
        return leaves[name], leaves[name] in booleans
    close = difflib.get_close_matches(name, [*keys, *leaves], n=1, cutoff=0.8)
    if not close:
        return None, False
    key = close[0] if close[0] in keys else leaves[close[0]]
    return key, key in booleans


def _config_keys() -> tuple[list[str], set[str]]:
    """Every key of the config, in the order a bare name is looked up: top-level keys, the
    groups, then train, optimizer, schedule, dataset, model, the other groups' and lr_find
    (every option's keys); and those that are booleans."""
    from lrbench.config import SCHEMAS, Config, LRFindConfig, TrainConfig

    keys: list[str] = []
    booleans: set[str] = set()

    def add(prefix: str, schema: type) -> None:
        names = {f.name for f in fields(schema)}
        for name, kind in typing.get_type_hints(schema).items():
            key = f"{prefix}.{name}"
            if name not in names:
                continue
            if is_dataclass(kind):
                add(key, kind)
            elif key not in keys:
                keys.append(key)
                if kind is bool:
                    booleans.add(key)

    groups = sorted(p.name for p in conf_dir().iterdir() if p.is_dir() and p.name != "hydra")
    sections = {*groups, *SCHEMAS, "train", "lr_find"}
    keys += [f.name for f in fields(Config) if f.name not in sections] + groups
    add("train", TrainConfig)
    first = ("optimizer", "schedule", "dataset", "model")
    for group in [*first, *(g for g in SCHEMAS if g not in first)]:
        for schema in SCHEMAS[group].values():
            add(group, schema)
    add("lr_find", LRFindConfig)
    return keys, booleans


def _refuse_schema_options(overrides: list[str]) -> None:
    """``optimizer=adam_schema``: the typed base of an option, not one (its values are
    missing), refused as an unknown option."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    groups = {p.name for p in conf_dir().iterdir() if p.is_dir() and p.name != "hydra"}
    parser = OverridesParser.create()
    for text in overrides:
        try:
            (override,) = parser.parse_overrides([text])
        except HydraException:
            continue  # Hydra reports it (one_line_message)
        if override.key_or_group not in groups or override.is_delete():
            continue
        options = [str(override.value())]
        if override.is_sweep_override():
            options = []
            with contextlib.suppress(HydraException):  # glob(): needs Hydra's config loader
                options = list(override.sweep_string_iterator())
        for option in options:
            if option.endswith(SCHEMA_SUFFIX):
                group = override.key_or_group
                yamls = (p.stem for p in (conf_dir() / group).glob("*.yaml"))
                raise ArgumentError(unknown_option(group, option, yamls))
