"""Every option of every config group composes (real Hydra), converts to the typed config
and builds: the model, the optimizer with its schedule's multiplier, and the dataset spec.
A yaml drifting from its schema, or a schema from the registry that builds it, fails here.

Parametrized by file: a new ``conf/<group>/*.yaml`` is picked up without editing this test.
Nothing is skipped: TFDS sets cannot download here, so their config goes through the image
pipeline (``build_image_dataset``) with synthetic images of the set's native shape instead
of TFDS's reader; options that need a path (image_folder) get a small real folder.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from image_files import write_image_folder
from omegaconf import DictConfig, OmegaConf

from lrbench import data, models, optim
from lrbench.config import (
    MODEL_SCHEMAS,
    OPTIMIZER_SCHEMAS,
    SCHEDULE_SCHEMAS,
    SCHEMAS,
    SWEEP_SCHEMAS,
    Activation,
    Config,
    DataSource,
    ImageDatasetConfig,
    MechanizeBase,
    check_combination,
    register_schemas,
    resolved_dict,
    to_run_config,
)
from lrbench.data.images import RawImages, Split, build_image_dataset
from lrbench.models.layers import ACTIVATIONS
from lrbench.optim import schedules
from lrbench.optim.contrib import MECHANIZE_BASES
from lrbench.optim.optimizers import FULL_BATCH, OPTIMIZERS
from lrbench.paths import conf_dir
from lrbench.sweep.members import expand
from lrbench.train.plan import make_plan

CONF = conf_dir()
GROUPS = ("model", "dataset", "optimizer", "schedule", "experiment", "sweep")
# TFDS sets as TFDS serves them (shape None: sizes vary, dataset.image_size must be set):
# native image shape and number of classes. A new TFDS yaml needs its line here.
TFDS_SETS: dict[str, tuple[tuple[int | None, ...], int]] = {
    "mnist": ((28, 28, 1), 10),
    "fashion_mnist": ((28, 28, 1), 10),
    "cifar10": ((32, 32, 3), 10),
    "cats_vs_dogs": ((None, None, 3), 2),
}
TFDS_ANY = "mnist"  # dataset=tfds takes any TFDS name: this one stands in


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def compose_run(*overrides: str, hydra: bool = False) -> DictConfig:
    register_schemas()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=hydra)


def typed(composed: DictConfig) -> Config:
    """The typed config, as a run checks it; each group's schema is its registry's."""
    cfg = to_run_config(composed)
    check_combination(cfg)
    for group in ("model", "optimizer", "schedule"):
        node = getattr(cfg, group)
        assert type(node) is SCHEMAS[group][node.name], (group, node.name)
    assert type(cfg.dataset) in SCHEMAS["dataset"].values()
    if cfg.sweep is not None:
        assert type(cfg.sweep) is SCHEMAS["sweep"][cfg.sweep.name]
    return cfg


# ------------------------------------------------------------------------------ building
def dataset_for(cfg: Config, tmp_path: Path) -> data.Dataset:
    """The dataset a run would train on; TFDS sets (no download here) from synthetic images
    of their native shape, through the same pipeline as TFDS's reader."""
    loader = data.LOADERS[cfg.dataset.loader]  # the registry knows every source
    if not (isinstance(cfg.dataset, ImageDatasetConfig) and cfg.dataset.source is DataSource.tfds):
        return loader(cfg.dataset)
    assert loader is data.LOADERS["tfds"]
    shape, n_classes = TFDS_SETS[cfg.dataset.name]
    if None in shape:  # the reader refuses a set of varying sizes without image_size
        assert cfg.dataset.image_size is not None, f"{cfg.dataset.name}: set image_size"
    if cfg.dataset.image_size is not None:  # the reader resizes
        shape = (cfg.dataset.image_size, cfg.dataset.image_size, shape[2])
    rng = np.random.default_rng(0)

    def split(per_class: int) -> Split:
        y = np.arange(per_class * n_classes) % n_classes
        return Split(rng.integers(0, 256, (len(y), *shape), dtype=np.uint8), y)

    raw = RawImages(
        train=split(max(20, -(-2 * cfg.train.batch_size // n_classes))),  # a batch or more
        val=None if cfg.dataset.val_split is None else split(2),
        test=None if cfg.dataset.test_split is None else split(2),
        class_names=tuple(str(k) for k in range(n_classes)),
    )
    return build_image_dataset(cfg.dataset, raw)


def build_run(cfg: Config, dataset: data.Dataset) -> None:
    """What a run builds before training, traced (shapes only: nothing is computed)."""
    dtype = jnp.float32
    full_batch = optim.is_full_batch(cfg.optimizer)
    plan = make_plan(cfg.train, dataset.n_train, full_batch)
    multiplier = optim.build_multiplier(cfg.schedule, plan.total_steps, plan.steps_per_epoch)
    for step in (0, plan.total_steps // 2, plan.total_steps - 1):
        value = float(multiplier(step))
        assert math.isfinite(value) and value >= 0, (cfg.schedule.name, step, value)
    tx = optim.watch_validation(optim.build(cfg.optimizer, multiplier, dtype), cfg.schedule, dtype)
    observer = optim.validation_observer(cfg.schedule, dtype)
    model = models.build(cfg.model, dataset.spec, dtype)
    x = jnp.zeros((2, *dataset.spec.input_shape), dtype)
    key = jax.random.key(0)
    variables = jax.eval_shape(lambda: model.init(key, x, train=False))
    params = variables["params"]
    jax.eval_shape(
        lambda v: model.apply(v, x, train=True, rngs={"dropout": key}, mutable=["batch_stats"]),
        variables,
    )
    opt_state = jax.eval_shape(tx.init, params)
    if full_batch:

        def value_fn(p):
            return sum(jnp.sum(leaf) for leaf in jax.tree.leaves(p))

        def update(g, s, p):
            return tx.update(g, s, p, value=value_fn(p), grad=g, value_fn=value_fn)

        jax.eval_shape(update, params, opt_state, params)
    else:
        jax.eval_shape(tx.update, params, opt_state, params)
    if observer is not None:
        jax.eval_shape(observer, opt_state, jnp.ones((), dtype))


def option_overrides(group: str, option: str, tmp_path: Path) -> list[str]:
    """The overrides that make ``group=option`` a runnable config; what a user must add."""
    overrides = [f"{group}={option}"]
    if (group, option) == ("dataset", "tfds"):
        overrides.append(f"dataset.name={TFDS_ANY}")  # required: the TFDS set's name
    if (group, option) == ("dataset", "image_folder"):  # required: the folder
        # a batch of train.batch_size (128) left once val is carved from train
        splits = {"train": 80, "test": 4}
        folder = write_image_folder(tmp_path / "images", splits, sizes=((8, 8),))
        overrides.append(f"dataset.path={folder}")
    return overrides


# ----------------------------------------------------------------------------- the groups
@pytest.mark.parametrize(
    ("group", "option"), [(group, option) for group in GROUPS for option in options(group)]
)
def test_every_option_composes_converts_and_builds(group, option, tmp_path):
    composed = compose_run(*option_overrides(group, option, tmp_path))
    cfg = typed(composed)
    if cfg.sweep is not None:  # its members are single-run configs
        members = expand(cfg, resolved_dict(composed))
        assert members, option
        cfg = members[0].config
    build_run(cfg, dataset_for(cfg, tmp_path))


def test_every_group_option_has_a_schema_and_every_schema_name_an_option():
    """conf/<group>/*.yaml and the schema tables name the same options (datasets excepted:
    their schemas are kinds of data, not names)."""
    for group, schemas in (
        ("model", MODEL_SCHEMAS),
        ("optimizer", OPTIMIZER_SCHEMAS),
        ("schedule", SCHEDULE_SCHEMAS),
        ("sweep", SWEEP_SCHEMAS),
    ):
        assert options(group) == sorted(schemas), group


@pytest.mark.parametrize("option", options("hparams_search"))
def test_hparams_search_direction_matches_the_objective_and_its_ranges_convert(option):
    sweeper = compose_run(f"hparams_search={option}", hydra=True).hydra.sweeper
    cfg = compose_run(f"hparams_search={option}")
    objective = typed(cfg).objective
    assert sweeper.direction == ("maximize" if objective.higher_is_better else "minimize")
    parser = OverridesParser.create()
    for key, search in sweeper.params.items():
        interval = parser.parse_override(f"{key}={search}").value()
        assert OmegaConf.select(cfg, key, throw_on_missing=True) is not None, key
        for end in (interval.start, interval.end):  # both ends are valid configs
            typed(compose_run(f"hparams_search={option}", f"{key}={end}"))


@pytest.mark.parametrize("option", options("hydra/launcher"))
def test_every_launcher_composes_and_its_plugin_is_installed(option):
    launcher = compose_run(f"hydra/launcher={option}", hydra=True).hydra.launcher
    module, name = launcher._target_.rsplit(".", 1)
    assert hasattr(importlib.import_module(module), name), launcher._target_


# -------------------------------------------------------------- registries paired by name
def test_optimizer_schemas_and_builders_name_the_same_optimizers():
    assert set(OPTIMIZER_SCHEMAS) == set(OPTIMIZERS) | FULL_BATCH
    for name, entry in OPTIMIZERS.items():  # every value the builder reads is a field
        fields = {f.name for f in dataclasses.fields(OPTIMIZER_SCHEMAS[name])}
        assert set(entry.floats + entry.statics) <= fields, name


def test_model_and_schedule_schemas_match_their_builders():
    assert set(MODEL_SCHEMAS) == set(models.BUILDERS)
    assert set(SCHEDULE_SCHEMAS) == set(schedules.BUILDERS)


def test_image_sources_have_loaders():
    assert {source.value for source in DataSource} <= set(data.LOADERS)


def test_activation_enum_matches_the_models_activations():
    assert {a.value for a in Activation} == set(ACTIVATIONS)


def test_mechanize_base_enum_matches_the_bases_built():
    assert {b.value for b in MechanizeBase} == set(MECHANIZE_BASES)
