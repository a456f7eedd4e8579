"""Where a program's arrays live: one device, or a ``jax.sharding`` mesh (members x data).

With a mesh the programs stay the same jitted functions; the layout only says where the
inputs are placed and constrains each step's batch to the data axis, and XLA partitions the
rest (GSPMD): the gradient all-reduce over ``data``, BatchNorm's batch statistics over the
global batch, and member lanes over ``members`` (``jax.vmap``'s ``spmd_axis_name``). Every
device computes the epoch's permutation (a few KB) and gathers only its own slice of each
batch from the replicated train split; a streamed split arrives in chunks of whole steps
whose batches are split over the data axis, each process putting only its devices' part.
Without a mesh every function here is the identity, so a plain run's programs are exactly
what they were.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from lrbench.config import REMAINING, MeshConfig
from lrbench.errors import ConfigError

MEMBERS, DATA = "members", "data"
STEP_BATCHES = P(None, DATA)  # (steps, batch, ...): every step's batch split over data


def build_mesh(cfg: MeshConfig, devices: list) -> Mesh | None:
    """The (members, data) mesh over the first members x data devices; None for one device
    and no mesh (``mesh=single``)."""
    if cfg.is_single:
        return None
    n = len(devices)
    members, data = cfg.members, cfg.data
    if members == REMAINING:
        members = n // data
    if data == REMAINING:
        data = n // members
    if members < 1 or data < 1 or members * data > n:
        raise ConfigError(
            "mesh",
            cfg.name,
            f"members {cfg.members} x data {cfg.data} needs more devices than the {n} present",
        )
    grid = np.array(devices[: members * data], dtype=object).reshape(members, data)
    return Mesh(grid, (MEMBERS, DATA))


@dataclass(frozen=True)
class Layout:
    mesh: Mesh | None = None
    members: bool = False  # arrays of the state carry a leading member axis

    @property
    def state(self) -> NamedSharding | None:
        if self.mesh is None:
            return None
        return NamedSharding(self.mesh, P(MEMBERS) if self.members else P())

    def place(self, tree, sharding: NamedSharding | None = None):
        """``tree`` (host or device arrays, typed PRNG keys included) on the mesh, laid out
        as ``sharding`` (default: the state's); unchanged without a mesh."""
        sharding = sharding or self.state
        if sharding is None:
            return tree

        def put(x):
            if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
                data = put(jax.random.key_data(x))
                return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
            return jax.device_put(np.asarray(x), sharding)

        return jax.tree.map(put, tree)

    def replicated(self, tree):
        """Host or device arrays every device reads whole (the train split, the eval
        splits), on the device, or on every device of the mesh."""
        if self.mesh is None:
            return jax.tree.map(jnp.asarray, tree)
        return self.place(tree, NamedSharding(self.mesh, P()))

    def batch(self, tree):
        """Inside the step: each array's leading (batch) axis split over the data axis."""
        if self.mesh is None:
            return tree
        return jax.lax.with_sharding_constraint(tree, NamedSharding(self.mesh, P(DATA)))

    def over_members(self, fn, in_axes):
        """``fn`` vmapped over the leading member axis (lanes split over ``members``)."""
        if not self.members:
            return fn
        axis = None if self.mesh is None else MEMBERS
        return jax.vmap(fn, in_axes=in_axes, spmd_axis_name=axis)

    def batch_columns(self, batch_size: int) -> np.ndarray:
        """The positions of each global batch that this process's devices hold, in the
        order ``steps_of_batches`` takes them; all of them without a mesh."""
        if self.mesh is None:
            return np.arange(batch_size)
        indices = NamedSharding(self.mesh, STEP_BATCHES).addressable_devices_indices_map(
            (1, batch_size)
        )
        return process_columns([index[1] for index in indices.values()], batch_size)

    def steps_of_batches(self, tree, batch_size: int):
        """Host arrays (steps, ``batch_columns``, ...) as arrays (steps, batch_size, ...)
        with every batch split over the data axis: each process ships only its own part
        (``jax.make_array_from_process_local_data``); on the device without a mesh."""
        if self.mesh is None:
            return jax.device_put(tree)
        sharding = NamedSharding(self.mesh, STEP_BATCHES)

        def put(local: np.ndarray) -> jax.Array:
            shape = (local.shape[0], batch_size, *local.shape[2:])
            return jax.make_array_from_process_local_data(sharding, local, shape)

        return jax.tree.map(put, tree)

    @staticmethod
    def to_host(tree):
        """Device arrays as numpy, on every process: a replicated array from this process's
        copy, one split across processes gathered from all (every process calls this)."""

        def fetch(x):
            if not isinstance(x, jax.Array) or x.is_fully_addressable:
                return jax.device_get(x)
            if x.is_fully_replicated:
                return np.asarray(x.addressable_data(0))
            return multihost_utils.process_allgather(x, tiled=True)

        return jax.tree.map(fetch, tree)

    @property
    def shape(self) -> dict[str, int] | None:
        return None if self.mesh is None else dict(self.mesh.shape)


def process_columns(slices: Iterable[slice], size: int) -> np.ndarray:
    """The positions of an axis of ``size`` covered by ``slices`` (one process's device
    shards), each once, by start: how ``jax.make_array_from_process_local_data`` lays a
    process's data out (replicas share a slice; the slices need not be adjacent)."""
    spans = sorted({s.indices(size)[:2] for s in slices})
    return np.concatenate([np.arange(start, stop) for start, stop in spans])


ONE_DEVICE = Layout()  # a plain run: no mesh, no member axis
