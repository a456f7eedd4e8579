"""A config made into what trains it: data, step plan, optimizer, model, precision, device.

Everything here is validated before any file of a run is written (bad input: one line,
exit 2, nothing touched).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh

from lrbench import data, models, optim
from lrbench.config import Config, Device, DType, check_combination
from lrbench.errors import ConfigError
from lrbench.train import distributed
from lrbench.train.plan import Plan, make_plan
from lrbench.train.sharding import DATA, Layout, build_mesh
from lrbench.train.state import TrainState, run_once, state_initializer
from lrbench.train.stream import fits_on_device, train_bytes


@contextlib.contextmanager
def precision(dtype: DType):
    """float64 runs switch JAX to 64-bit for their duration only."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", dtype is DType.float64)
    try:
        yield jnp.float64 if dtype is DType.float64 else jnp.float32
    finally:
        jax.config.update("jax_enable_x64", previous)


def select_devices(device: Device) -> list[jax.Device]:
    """The devices of the chosen backend, all processes' (the first is the run's device)."""
    if device is Device.auto:
        return jax.devices()
    try:
        return jax.devices(device.value)
    except RuntimeError:
        raise ConfigError(
            "device", device.value, f"not available here (backend: {jax.default_backend()})"
        ) from None


def _mesh(cfg: Config, devices: list[jax.Device], plan: Plan) -> Mesh | None:
    mesh = build_mesh(cfg.mesh, devices)
    if mesh is None:
        return None
    if optim.is_full_batch(cfg.optimizer):
        raise ConfigError("mesh", cfg.mesh.name, f"optimizer={cfg.optimizer.name}: mesh=single")
    data = mesh.shape[DATA]
    if plan.batch_size % data:
        raise ConfigError(
            "train.batch_size",
            plan.batch_size,
            f"the global batch must split evenly over the data axis of {data} devices",
        )
    return mesh


@dataclass(frozen=True)
class Setup:
    """Everything built and validated from a config before any file is written."""

    cfg: Config
    dataset: data.Dataset
    plan: Plan
    tx: optax.GradientTransformation
    model: nn.Module
    dtype: jnp.dtype
    device: jax.Device
    load_s: float = 0.0  # reading the data into host memory (data.load)
    mesh: Mesh | None = None  # None: one device (mesh=single)

    def layout(self, members: bool = False) -> Layout:
        return Layout(self.mesh, members)

    @property
    def train_on_device(self) -> bool:
        return train_on_device(self.cfg, self.dataset)

    def too_big(self, needs: str) -> ConfigError:
        return too_big(self.cfg, self.dataset, needs)


def train_on_device(cfg: Config, dataset: data.Dataset) -> bool:
    """Whether the train split fits ``dataset.max_device_bytes`` (image sets have one; else
    it streams from the host)."""
    budget = getattr(cfg.dataset, "max_device_bytes", None)
    return fits_on_device(dataset.x_train, dataset.y_train, budget)


def too_big(cfg: Config, dataset: data.Dataset, needs: str) -> ConfigError:
    """The error for a train split over the device budget where ``needs`` it whole."""
    size = train_bytes(dataset.x_train, dataset.y_train)
    return ConfigError(
        "dataset.max_device_bytes",
        cfg.dataset.max_device_bytes,
        f"below the train split's {size} bytes: {needs} the whole split on device",
    )


@contextlib.contextmanager
def prepared(cfg: Config, *, lr_multiplier: optax.Schedule | None = None) -> Iterator[Setup]:
    """Validate and build; the block runs under the run's precision and device.

    ``lr_multiplier`` replaces the schedule's (the LR range test's ramp)."""
    check_combination(cfg)
    distributed.start(cfg.distributed)
    devices = select_devices(cfg.device)
    # this process's first device (in a multi-process job the first global one is process 0's)
    device = next(d for d in devices if d.process_index == jax.process_index())
    with precision(cfg.train.dtype) as dtype, jax.default_device(device):
        load_start = time.perf_counter()
        dataset = data.load(cfg.dataset)
        load_s = time.perf_counter() - load_start
        full_batch = optim.is_full_batch(cfg.optimizer)
        if full_batch and not train_on_device(cfg, dataset):
            raise too_big(cfg, dataset, f"optimizer={cfg.optimizer.name} needs")
        plan = make_plan(cfg.train, dataset.n_train, full_batch)
        mesh = _mesh(cfg, devices, plan)
        if lr_multiplier is None:
            lr_multiplier = optim.build_multiplier(
                cfg.schedule, plan.total_steps, plan.steps_per_epoch
            )
        tx = optim.watch_validation(
            optim.build(cfg.optimizer, lr_multiplier, dtype), cfg.schedule, dtype
        )
        tx = optim.with_loss_scaling(tx, cfg.train.compute_dtype, cfg.optimizer)
        model = models.build(cfg.model, dataset.spec, dtype, cfg.train.compute_dtype)
        yield Setup(cfg, dataset, plan, tx, model, dtype, device, load_s, mesh)


def _split(seed: jax.Array) -> tuple[jax.Array, jax.Array]:
    init_key, data_key = jax.random.split(jax.random.key(seed))
    return init_key, data_key


def _seeds(seeds) -> jax.Array:
    """Seeds as ``jax.random.key`` takes a Python int: int64, cut to int32 without x64."""
    return jnp.asarray(np.asarray(seeds, np.int64))


def run_keys(seed: int) -> tuple[jax.Array, jax.Array]:
    """(init key, data-order key) of a seed, as one compiled program (``run_once``: eagerly,
    key and split compiled an op each, ~0.2 s before the first step)."""
    return run_once(_split, _seeds(seed))


def member_keys(seeds: list[int]) -> tuple[jax.Array, jax.Array]:
    """``run_keys`` of every sweep member at once (stacked): one program, not a dispatch per
    member, and bit for bit each member's ``run_keys`` (integer arithmetic, lane by lane)."""
    return run_once(jax.vmap(_split), _seeds(seeds))


def seeded_state(setup: Setup, seed: int) -> tuple[TrainState, jax.Array]:
    """A single run's initial state and data-order key: ``run_keys`` and ``create_state`` as
    one compiled program (a compile fewer before the first step), the same numbers."""
    init = state_initializer(setup.model, setup.tx, setup.dataset.spec.input_shape, setup.dtype)

    def seeded(seed: jax.Array) -> tuple[TrainState, jax.Array]:
        init_key, data_key = _split(seed)
        return init(init_key), data_key

    return run_once(seeded, _seeds(seed))
