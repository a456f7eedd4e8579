"""A run's nested config as flat dotted keys: the columns of ``compare`` and TensorBoard's
hparams (``optimizer.lr``, ``model.widths``, ``seed``)."""

from __future__ import annotations

import json
from typing import Any

Scalar = str | int | float | bool | None


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Scalar]:
    """Nested dicts become dotted keys; lists become their JSON text (``[256,256]``, as a
    Hydra override writes them), so every value is a hashable scalar."""
    flat: dict[str, Scalar] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, list | tuple):
            flat[name] = json.dumps(value, separators=(",", ":"))
        else:
            flat[name] = value
    return flat
