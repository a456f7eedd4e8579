"""Train splits larger than the device budget: kept on the host, streamed in chunks.

A train split whose arrays take more than ``dataset.max_device_bytes`` (default 1 GiB)
stays in host memory. Each epoch draws the same permutation as an on-device run
(``batch_indices`` of (seed, epoch)), gathers its examples on the host in chunks of
``max_device_bytes / 4`` (whole batches, laid out (steps, batch, ...)), ships each chunk
and runs the usual compiled steps over it, step i on batch i: one shape per run, so one
compile (two when an epoch's last chunk is shorter). With a mesh every batch of a chunk is
split over the data axis and each process gathers and ships only the positions its devices
hold (``Layout.batch_columns``), so a process's host-to-device traffic is its share of the
batch. Dispatch is asynchronous, so the host gathers and ships chunk i+1 while the device
trains on chunk i; the host waits for chunk i-1 to finish before shipping i+1, so at most
two chunks (half the budget) are on device.
"""

from __future__ import annotations

from collections import deque

import jax
import jax.numpy as jnp
import numpy as np

from lrbench.config import Loop, Norms
from lrbench.train.runners import batch_indices, make_epoch_runner
from lrbench.train.sharding import ONE_DEVICE, Layout
from lrbench.train.state import TrainState
from lrbench.train.step import TrainStep

CHUNKS_PER_BUDGET = 4


def train_bytes(x: np.ndarray, y: np.ndarray) -> int:
    return x.nbytes + y.nbytes


def chunk_order(data_key: jax.Array, epoch: jax.Array, n: int, batch_size: int, n_steps: int):
    """Step i trains on batch i of a chunk (steps, batch, ...): already shuffled, and each
    batch already split over the data axis, so no step gathers across devices."""
    return jnp.arange(n_steps)


def fits_on_device(x: np.ndarray, y: np.ndarray, max_device_bytes: int | None) -> bool:
    """Small sets (no budget: the scikit-learn ones) always live on device."""
    return max_device_bytes is None or train_bytes(x, y) <= max_device_bytes


class StreamEpochs:
    """An epoch runner over host arrays ``x``, ``y`` (numpy), with the runners' interface."""

    def __init__(
        self,
        loop: Loop,
        step: TrainStep,
        *,
        x: np.ndarray,
        y: np.ndarray,
        data_key,
        batch_size: int,
        unroll: int,
        max_device_bytes: int,
        layout: Layout = ONE_DEVICE,
        norms: Norms = Norms.epoch_end,
    ):
        self.x, self.y, self.batch_size = x, y, batch_size
        batch_bytes = batch_size * (x[0].nbytes + y[0].nbytes)
        self.chunk_steps = max(1, max_device_bytes // CHUNKS_PER_BUDGET // batch_bytes)
        self._runner = make_epoch_runner(
            loop,
            step,
            x=None,
            y=None,
            data_key=data_key,
            batch_size=batch_size,
            unroll=unroll,
            layout=layout,
            order=chunk_order,
            norms=norms,
        )
        self._layout = layout
        self._columns = layout.batch_columns(batch_size)
        steps_per_epoch = len(y) // batch_size
        self._rows = jax.jit(
            lambda epoch: batch_indices(data_key, epoch, len(y), batch_size, steps_per_epoch)
        )
        self._next: tuple[int, jax.Array] | None = None

    @property
    def compile_s(self) -> float:
        return self._runner.compile_s

    def __call__(self, state: TrainState, epoch: int, n_steps: int):
        rows = self._epoch_rows(epoch)[:n_steps]
        metrics, in_flight = [], deque()
        for start in range(0, n_steps, self.chunk_steps):
            size = min(self.chunk_steps, n_steps - start)
            x, y = self._chunk(rows[start : start + size])
            state, chunk_metrics = self._runner.run(state, x, y, 0, size)
            metrics.append(chunk_metrics)
            in_flight.append(chunk_metrics)
            if len(in_flight) > 1:  # back-pressure: bounds the chunks alive on device
                jax.block_until_ready(in_flight.popleft())
        if len(metrics) == 1:
            return state, metrics[0]
        return state, jax.tree.map(lambda *ms: jnp.concatenate(ms), *metrics)

    def _epoch_rows(self, epoch: int) -> np.ndarray:
        """This epoch's batches as host indices. The next epoch's are dispatched now, ahead
        of this epoch's chunks, so reading them next time does not wait for the device."""
        ready = self._next[1] if self._next is not None and self._next[0] == epoch else None
        rows = self._rows(jnp.int32(epoch)) if ready is None else ready
        self._next = (epoch + 1, self._rows(jnp.int32(epoch + 1)))
        return np.asarray(rows)

    def _chunk(self, rows: np.ndarray) -> tuple[jax.Array, jax.Array]:
        """This process's part of the examples of ``rows`` (steps x batch), in order,
        padded to a whole chunk (one shape per run), as the chunk's global arrays."""
        local = rows[:, self._columns]
        shape = (self.chunk_steps, len(self._columns))
        x = np.zeros((*shape, *self.x.shape[1:]), self.x.dtype)
        y = np.zeros(shape, self.y.dtype)
        np.take(self.x, local, axis=0, out=x[: len(rows)], mode="clip")  # unbuffered
        np.take(self.y, local, out=y[: len(rows)], mode="clip")
        return self._layout.steps_of_batches((x, y), self.batch_size)
