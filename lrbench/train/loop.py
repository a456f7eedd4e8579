"""Epoch runners: the compiled programs that apply a whole epoch (or a block) of steps.

Three strategies, chosen per backend and model by measurement (README, "Loop strategies"):
``scan`` compiles an epoch as one ``lax.scan``; ``unrolled`` compiles ``unroll`` steps
as straight-line code and loops over such blocks from Python (on XLA:CPU a conv net
inside a rolled scan measured ~10x slower per step); ``step`` is blocks of one step.
All draw batches from an on-device permutation, donate the state, and return per-step
metrics stacked on device, so nothing syncs with the host inside an epoch.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from lrbench.config import Loop
from lrbench.train.compile_cache import CompileCache
from lrbench.train.state import TrainState
from lrbench.train.step import StepMetrics, TrainStep

EpochRunner = Callable[[TrainState, int, int], tuple[TrainState, StepMetrics]]


def batch_indices(data_key: jax.Array, epoch: jax.Array, n: int, batch_size: int, n_steps: int):
    """Rows of example indices for the epoch: a permutation seeded by (data_key, epoch)."""
    order = jax.random.permutation(jax.random.fold_in(data_key, epoch), n)
    return order[: n_steps * batch_size].reshape(n_steps, batch_size)


class ScanEpochs(CompileCache):
    def __init__(self, step: TrainStep, x, y, data_key, batch_size: int):
        super().__init__()
        self.x, self.y, self.data_key = x, y, data_key

        def epoch_fn(state, x, y, data_key, epoch, n_steps):
            rows = batch_indices(data_key, epoch, y.shape[0], batch_size, n_steps)
            return jax.lax.scan(lambda s, r: step(s, x[r], y[r]), state, rows)

        self._jitted = jax.jit(epoch_fn, static_argnums=5, donate_argnums=0)

    def __call__(self, state: TrainState, epoch: int, n_steps: int):
        args = (state, self.x, self.y, self.data_key, jnp.int32(epoch))
        return self.get(n_steps, self._jitted, *args, n_steps)(*args)


class BlockEpochs(CompileCache):
    def __init__(self, step: TrainStep, x, y, data_key, batch_size: int, block: int):
        super().__init__()
        self.x, self.y, self.data_key, self.block = x, y, data_key, block

        def block_fn(state, x, y, rows, start, size):
            rows = jax.lax.dynamic_slice_in_dim(rows, start, size)
            metrics = []
            for i in range(size):  # unrolled at trace time: straight-line code
                state, m = step(state, x[rows[i]], y[rows[i]])
                metrics.append(m)
            return state, jax.tree.map(lambda *ms: jnp.stack(ms), *metrics)

        def rows_fn(data_key, epoch, n_steps):
            return batch_indices(data_key, epoch, y.shape[0], batch_size, n_steps)

        self._block = jax.jit(block_fn, static_argnums=5, donate_argnums=0)
        self._rows = jax.jit(rows_fn, static_argnums=2)

    def __call__(self, state: TrainState, epoch: int, n_steps: int):
        rows = self._rows(self.data_key, jnp.int32(epoch), n_steps)
        chunks = []
        for start in range(0, n_steps, self.block):
            size = min(self.block, n_steps - start)
            args = (state, self.x, self.y, rows, jnp.int32(start))
            state, metrics = self.get((n_steps, size), self._block, *args, size)(*args)
            chunks.append(metrics)
        if len(chunks) == 1:
            return state, chunks[0]
        return state, jax.tree.map(lambda *ms: jnp.concatenate(ms), *chunks)


class FullBatchEpochs(CompileCache):
    """One step on the whole train split per 'epoch' (L-BFGS)."""

    def __init__(self, step: TrainStep, x, y):
        super().__init__()
        self.x, self.y = x, y

        def epoch_fn(state, x, y):
            state, metrics = step(state, x, y)
            return state, jax.tree.map(lambda m: m[None], metrics)

        self._jitted = jax.jit(epoch_fn, donate_argnums=0)

    def __call__(self, state: TrainState, epoch: int, n_steps: int):
        args = (state, self.x, self.y)
        return self.get(None, self._jitted, *args)(*args)


def resolve_loop(loop: Loop, has_conv: bool, backend: str) -> Loop:
    """auto: one jitted step per dispatch for conv nets on CPU (a rolled scan of convs ran
    ~8x slower per step there, unrolled blocks ~2x: README "Loop strategies"), a scan per
    epoch everywhere else."""
    if loop is not Loop.auto:
        return loop
    return Loop.step if has_conv and backend == "cpu" else Loop.scan


def make_epoch_runner(
    loop: Loop, step: TrainStep, x, y, data_key, batch_size: int, unroll: int
) -> ScanEpochs | BlockEpochs:
    if loop is Loop.scan:
        return ScanEpochs(step, x, y, data_key, batch_size)
    block = 1 if loop is Loop.step else unroll
    return BlockEpochs(step, x, y, data_key, batch_size, block)
