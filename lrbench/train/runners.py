"""Epoch runners: the compiled programs that apply a whole epoch (or a block) of steps.

Three strategies, chosen per backend and model by measurement (docs/design.md "Design", "Loop
strategies, by measurement"): ``scan`` compiles an epoch as one ``lax.scan``; ``unrolled``
compiles ``unroll`` steps as straight-line code and loops over such blocks from Python (on
XLA:CPU a conv net inside a rolled scan measured ~8x slower per step, see ``resolve_loop``);
``step`` is blocks of one step.
All draw batches from an on-device permutation, donate the state, and return per-step
metrics stacked on device, so nothing syncs with the host inside an epoch. Streamed
splits (``lrbench.train.stream``) run the same programs over chunks already in order.
With ``train.norms=epoch_end`` the scan computes the norms on each epoch's (or streamed
chunk's) last step only, traced apart from it (``step.norms_unless_skipped``: a ``lax.cond``
in the scan cost as much as computing them on every step; the second copy of the step costs
compile time instead); with ``every_step`` in its one step. The blocks of the other loops,
whose conv steps dwarf them, compute them on every step unless ``off``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp

from lrbench.config import Loop, Norms
from lrbench.train.executables import Executables
from lrbench.train.sharding import ONE_DEVICE, Layout
from lrbench.train.state import TrainState
from lrbench.train.step import StepMetrics, TrainStep

EpochRunner = Callable[[TrainState, int, int], tuple[TrainState, StepMetrics]]


# (data_key, epoch, n examples, batch_size, n_steps) -> (n_steps, batch_size) example indices
RowOrder = Callable[[jax.Array, jax.Array, int, int, int], jax.Array]


def batch_indices(data_key: jax.Array, epoch: jax.Array, n: int, batch_size: int, n_steps: int):
    """Rows of example indices for the epoch: a permutation seeded by (data_key, epoch)."""
    order = jax.random.permutation(jax.random.fold_in(data_key, epoch), n)
    return order[: n_steps * batch_size].reshape(n_steps, batch_size)


def sequential_rows(data_key: jax.Array, epoch: jax.Array, n: int, batch_size: int, n_steps: int):
    """Rows in stored order: for chunks that arrive already shuffled (streaming)."""
    return jnp.arange(n_steps * batch_size).reshape(n_steps, batch_size)


class ScanEpochs(Executables):
    def __init__(
        self,
        step: TrainStep,
        *,
        x,
        y,
        data_key,
        batch_size: int,
        layout: Layout = ONE_DEVICE,
        order: RowOrder = batch_indices,
        norms: Norms = Norms.epoch_end,
    ):
        super().__init__()
        self.x, self.y, self.data_key = x, y, data_key

        def epoch_fn(state, x, y, data_key, epoch, *, n_steps):
            rows = order(data_key, epoch, y.shape[0], batch_size, n_steps)

            def train(s, r, with_norms=norms is Norms.every_step):
                return step(s, *layout.batch((x[r], y[r])), with_norms)

            if norms is not Norms.epoch_end:
                return jax.lax.scan(train, state, rows)
            state, metrics = jax.lax.scan(partial(train, with_norms=False), state, rows[:-1])
            state, last = train(state, rows[-1], with_norms=True)  # the row the norms are on
            return state, jax.tree.map(lambda ms, m: jnp.concatenate([ms, m[None]]), metrics, last)

        def program(state, x, y, data_key, epoch, n_steps):
            in_axes = (0, None, None, 0, None)
            fn = layout.over_members(partial(epoch_fn, n_steps=n_steps), in_axes)
            return fn(state, x, y, data_key, epoch)

        self._jitted = jax.jit(program, static_argnums=5, donate_argnums=0)

    def __call__(self, state: TrainState, epoch: int, n_steps: int):
        return self.run(state, self.x, self.y, epoch, n_steps)

    def run(self, state: TrainState, x, y, epoch: int, n_steps: int):
        """The epoch's steps over examples ``x``, ``y`` (the runner's own, or a chunk)."""
        args = (state, x, y, self.data_key, jnp.int32(epoch))
        return self.get((n_steps, x.shape), self._jitted, *args, n_steps)(*args)


class BlockEpochs(Executables):
    def __init__(
        self,
        step: TrainStep,
        *,
        x,
        y,
        data_key,
        batch_size: int,
        block: int,
        layout: Layout = ONE_DEVICE,
        order: RowOrder = batch_indices,
        norms: Norms = Norms.epoch_end,
    ):
        super().__init__()
        self.x, self.y, self.data_key, self.block = x, y, data_key, block
        with_norms = norms is not Norms.off  # (every step: a conv step dwarfs them)

        def block_fn(state, x, y, rows, start, *, size):
            rows = jax.lax.dynamic_slice_in_dim(rows, start, size)
            metrics = []
            for i in range(size):  # unrolled at trace time: straight-line code
                state, m = step(state, *layout.batch((x[rows[i]], y[rows[i]])), with_norms)
                metrics.append(m)
            return state, jax.tree.map(lambda *ms: jnp.stack(ms), *metrics)

        def rows_fn(data_key, epoch, *, n_steps, n):
            return order(data_key, epoch, n, batch_size, n_steps)

        def block_program(state, x, y, rows, start, size):
            fn = layout.over_members(partial(block_fn, size=size), (0, None, None, 0, None))
            return fn(state, x, y, rows, start)

        def rows_program(data_key, epoch, n_steps, n):
            return layout.over_members(partial(rows_fn, n_steps=n_steps, n=n), (0, None))(
                data_key, epoch
            )

        self._block = jax.jit(block_program, static_argnums=5, donate_argnums=0)
        self._rows = jax.jit(rows_program, static_argnums=(2, 3))

    def __call__(self, state: TrainState, epoch: int, n_steps: int):
        return self.run(state, self.x, self.y, epoch, n_steps)

    def run(self, state: TrainState, x, y, epoch: int, n_steps: int):
        """The epoch's steps over examples ``x``, ``y`` (the runner's own, or a chunk)."""
        rows = self._rows(self.data_key, jnp.int32(epoch), n_steps, y.shape[0])
        chunks = []
        for start in range(0, n_steps, self.block):
            size = min(self.block, n_steps - start)
            args = (state, x, y, rows, jnp.int32(start))
            state, metrics = self.get((n_steps, size, x.shape), self._block, *args, size)(*args)
            chunks.append(metrics)
        if len(chunks) == 1:
            return state, chunks[0]
        return state, jax.tree.map(lambda *ms: jnp.concatenate(ms), *chunks)


class FullBatchEpochs(Executables):
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
    """auto: one jitted step per dispatch for conv nets (cnn, resnet: models.is_convolutional)
    on CPU (a rolled scan of convs ran ~8x slower per step there, unrolled blocks ~2x:
    docs/design.md "Design", "Loop strategies, by measurement"), a scan per epoch everywhere
    else."""
    if loop is not Loop.auto:
        return loop
    return Loop.step if has_conv and backend == "cpu" else Loop.scan


def make_epoch_runner(
    loop: Loop,
    step: TrainStep,
    *,
    x,
    y,
    data_key,
    batch_size: int,
    unroll: int,
    layout: Layout = ONE_DEVICE,
    order: RowOrder = batch_indices,
    norms: Norms = Norms.epoch_end,
) -> ScanEpochs | BlockEpochs:
    """``layout.members``: the state and data_key carry a leading axis of sweep members
    (vmapped); ``layout.mesh``: where the arrays live (``lrbench.train.sharding``);
    ``norms``: which steps compute the norms (``train.norms``)."""
    common = dict(
        x=x, y=y, data_key=data_key, batch_size=batch_size, layout=layout, order=order, norms=norms
    )
    if loop is Loop.scan:
        return ScanEpochs(step, **common)
    return BlockEpochs(step, block=1 if loop is Loop.step else unroll, **common)
