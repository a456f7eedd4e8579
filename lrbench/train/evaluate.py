"""Evaluation of a whole split in fixed-size batches (padded and masked: one compile)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lrbench.data.dataset import model_input
from lrbench.train.executables import Executables
from lrbench.train.objective import correct, cross_entropy
from lrbench.train.sharding import ONE_DEVICE, Layout
from lrbench.train.state import TrainState


class EvalMetrics(NamedTuple):
    loss: jax.Array
    accuracy: jax.Array


class PaddedSplit(NamedTuple):
    """A split on device, padded to whole batches: x (n_batches, B, ...), y, mask."""

    x: jax.Array
    y: jax.Array
    mask: jax.Array


def pad_split(x: np.ndarray, y: np.ndarray, batch_size: int, dtype) -> PaddedSplit:
    batch = min(batch_size, len(y))
    n_batches = -(-len(y) // batch)
    pad = n_batches * batch - len(y)
    mask = np.concatenate([np.ones(len(y)), np.zeros(pad)]).astype(dtype)
    x = model_input(np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)]), dtype)
    y = np.concatenate([y, np.zeros(pad, y.dtype)])
    return PaddedSplit(
        x=jnp.asarray(x.reshape(n_batches, batch, *x.shape[1:])),
        y=jnp.asarray(y.reshape(n_batches, batch)),
        mask=jnp.asarray(mask.reshape(n_batches, batch)),
    )


class Evaluator(Executables):
    """Evaluates several splits (val, test) in one compiled program: one dispatch."""

    def __init__(self, model: nn.Module, layout: Layout = ONE_DEVICE, eval_params=None) -> None:
        """``layout.members``: the state has a leading axis of sweep members (vmapped);
        ``eval_params``: see ``make_evaluate``."""
        super().__init__()
        evaluate = make_evaluate(model, eval_params)

        def evaluate_splits(state, splits):
            return {name: evaluate(state, split) for name, split in splits.items()}

        self._jitted = jax.jit(layout.over_members(evaluate_splits, (0, None)))

    def __call__(self, state: TrainState, splits: dict[str, PaddedSplit]) -> dict[str, EvalMetrics]:
        key = tuple((name, split.x.shape, split.x.dtype) for name, split in splits.items())
        return self.get(key, self._jitted, state, splits)(state, splits)


def make_evaluate(
    model: nn.Module, eval_params: Callable[[Any, Any], Any] | None = None
) -> Callable[[TrainState, PaddedSplit], EvalMetrics]:
    """The pure evaluation function (jit it, or use ``Evaluator``). ``eval_params(opt_state,
    params)`` gives the parameters to evaluate (schedule-free: its average); default: params."""

    def evaluate(state: TrainState, split: PaddedSplit) -> EvalMetrics:
        params = state.params if eval_params is None else eval_params(state.opt_state, state.params)
        variables = {"params": params}
        if state.batch_stats:
            variables["batch_stats"] = state.batch_stats

        def batch_sums(batch):
            x, y, mask = batch
            logits = model.apply(variables, x, train=False)
            return (cross_entropy(logits, y) * mask).sum(), (correct(logits, y) * mask).sum()

        losses, hits = jax.lax.map(batch_sums, (split.x, split.y, split.mask))
        n = split.mask.sum()
        return EvalMetrics(losses.sum() / n, hits.sum() / n)

    return evaluate
