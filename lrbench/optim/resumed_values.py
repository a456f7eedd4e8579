"""A resumed run's allowed changes to values that live in the optimizer state.

The optimizer is rebuilt from the new config, so a change to anything compiled into it (a
schedule's shape, a static flag, plateau ``factor``) takes effect by itself. Values held as
arrays in the state do not: the checkpoint brings back the old ones. Each is written into
the restored state here, from the resume step on:

- ``optimizer.lr``: the peak LR (``base_lr``), times the plateau reduction reached so far;
- every float hyperparameter ``inject_hyperparams`` holds (betas, momentum, weight decay,
  eps, ...), ``hypergrad_lr``, and reduce_on_plateau's ``patience``, ``cooldown``,
  ``min_scale``.

A value that only seeds adaptive state (a hypergradient method's starting LR, an LR-free
method's starting estimate, Adagrad's initial accumulator) has done its work at step 0;
changing it cannot mean anything for the steps left, so it is refused in one line.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax

from lrbench.config import AUTO_LR, OptimizerConfig
from lrbench.errors import ConfigError
from lrbench.optim.learning_rate import ScheduledLRState
from lrbench.optim.optimizers import FULL_BATCH, OPTIMIZERS
from lrbench.optim.plateau import PlateauState
from lrbench.optim.state_tree import find_states, map_states

GROUPS = ("optimizer", "schedule")  # the config groups with values in the state


def apply_resume_changes(
    opt_state: optax.OptState, changes: dict[str, tuple], optimizer: OptimizerConfig
) -> optax.OptState:
    """``opt_state`` restored from a checkpoint, with each changed value it holds set to the
    new one; ``changes``: flattened key -> (the run's value, the new value)."""
    for key, (_, now) in changes.items():
        group, _, name = key.partition(".")
        if group not in GROUPS or "." in name or name == "name":
            continue
        if group == "schedule":
            opt_state = map_states(
                opt_state,
                PlateauState,
                lambda s, n=name, v=now: PlateauState(_set(s.monitor, n, v)),
            )
        elif name == "lr":
            opt_state = _set_peak_lr(opt_state, optimizer, now)
        else:
            _refuse_seed(key, now, optimizer, name, opt_state)
            opt_state = _set(opt_state, name, now)
    return opt_state


def _set_peak_lr(opt_state: optax.OptState, optimizer: OptimizerConfig, lr) -> optax.OptState:
    if optimizer.name in FULL_BATCH:  # L-BFGS's LR is compiled into its line search
        return opt_state
    if lr == AUTO_LR:
        raise ConfigError(
            "optimizer.lr", lr, "a resumed run keeps its LR or takes a number, not a new range test"
        )
    _refuse_seed("optimizer.lr", lr, optimizer, "lr", opt_state)
    reached = [state.monitor.inner_state.scale for state in find_states(opt_state, PlateauState)]
    scale = reached[0] if reached else 1.0

    def peak(state):
        return state._replace(base_lr=jnp.asarray(lr * scale, state.base_lr.dtype))

    return map_states(opt_state, ScheduledLRState, peak)


def _refuse_seed(key: str, value, optimizer: OptimizerConfig, name: str, opt_state) -> None:
    entry = OPTIMIZERS[optimizer.name]
    if name in entry.seeds and (name == "lr" or _paths(opt_state, name)):
        raise ConfigError(
            key,
            value,
            f"only seeds {optimizer.name}'s adaptive state at step 0, so a resumed run cannot "
            "change it: start a new run",
        )


def _paths(tree, name: str) -> list:
    return optax.tree_utils.tree_get_all_with_path(tree, name)


def _set(tree, name: str, value):
    """``tree`` with every entry called ``name`` set to ``value`` (in that entry's dtype); no
    entry: the value is compiled into the optimizer, rebuilt from the new config."""
    found = _paths(tree, name)
    if not found:
        return tree
    dtype = jnp.asarray(found[0][1]).dtype
    return optax.tree_utils.tree_set(tree, **{name: jnp.asarray(value, dtype)})
