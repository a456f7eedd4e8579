"""Setting the float hyperparameters that live in an optimizer state (sweep members)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from lrbench.optim.optimizers import OPTIMIZERS


def sweepable(optimizer_name: str) -> tuple[str, ...]:
    """The hyperparameters held as arrays in this optimizer's state."""
    entry = OPTIMIZERS.get(optimizer_name)
    return () if entry is None else ("lr", "weight_decay", *entry.floats)


def with_hyperparams(opt_state: optax.OptState, values: dict[str, jax.Array]) -> optax.OptState:
    """A copy of ``opt_state`` with the named hyperparameters replaced (keeping dtypes).

    ``lr`` is the peak LR of the scheduled-LR state; the others are inject_hyperparams' entries.
    """
    renamed = {"base_lr" if name == "lr" else name: value for name, value in values.items()}
    current = {name: optax.tree.get(opt_state, name) for name in renamed}
    return optax.tree.set(
        opt_state,
        **{name: jnp.asarray(value, current[name].dtype) for name, value in renamed.items()},
    )
