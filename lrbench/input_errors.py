"""One-line messages for bad input, from our ConfigError or from Hydra/OmegaConf's errors."""

from __future__ import annotations

from dataclasses import fields, is_dataclass

from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    MissingMandatoryValue,
    OmegaConfBaseException,
)

from lrbench.errors import ConfigError


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


def _missing_option(error: MissingConfigException) -> str:
    missing = getattr(error, "missing_cfg_file", "") or ""
    group, _, option = str(missing).rpartition("/")
    options = getattr(error, "options", None)
    if group and options:
        choices = sorted(o for o in options if not o.endswith("_schema"))
        return f"{group}={option}: unknown option (allowed: {', '.join(choices)})"
    return _first_line(error)


def one_line_message(error: BaseException) -> str | None:
    """The one-line message for a known input error, or None for anything else (a bug)."""
    for cause in _chain(error):
        if isinstance(cause, ConfigError):
            return str(cause)
        if isinstance(cause, MissingConfigException):
            return _missing_option(cause)
        if isinstance(cause, OmegaConfBaseException):
            return _omegaconf(cause)
    if isinstance(error, OverrideParseException | HydraException):
        return _first_line(error)
    return None
