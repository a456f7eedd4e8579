"""Finding and rewriting states of one type inside a nested optimizer state.

optax states nest (chain tuples, inject_hyperparams, wrappers such as mechanize or
schedule-free); what reads or adjusts the learning rate needs the states of a given type
wherever they sit, without knowing how the optimizer was composed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import jax

S = TypeVar("S")


def find_states(tree: Any, state_type: type[S] | tuple[type, ...]) -> list[S]:
    """The outermost states of ``state_type`` (a type or a tuple of types), in tree order."""
    nodes = jax.tree.leaves(tree, is_leaf=lambda node: isinstance(node, state_type))
    return [node for node in nodes if isinstance(node, state_type)]


def map_states(tree: Any, state_type: type[S], fn: Callable[[S], S]) -> Any:
    """``tree`` with every outermost state of ``state_type`` replaced by ``fn(state)``."""
    return jax.tree.map(
        lambda node: fn(node) if isinstance(node, state_type) else node,
        tree,
        is_leaf=lambda node: isinstance(node, state_type),
    )
