"""The whole run (``conf/config.yaml``): its schema, the ConfigStore, the one conversion
from Hydra's composed config to typed values, and the rules that span groups."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from lrbench.config.base import Checked
from lrbench.config.dataset import DATASET_SCHEMAS, DatasetConfig
from lrbench.config.mesh import DISTRIBUTED_SCHEMAS, MESH_SCHEMAS, DistributedConfig, MeshConfig
from lrbench.config.model import MODEL_SCHEMAS, ModelConfig
from lrbench.config.optimizer import OPTIMIZER_SCHEMAS, OptimizerConfig
from lrbench.config.schedule import SCHEDULE_SCHEMAS, ScheduleConfig
from lrbench.config.study import StudyAppConfig, StudyConfig
from lrbench.config.sweep import SWEEP_SCHEMAS, VmapSweepConfig
from lrbench.config.train import Device, LRFindConfig, TrainConfig
from lrbench.errors import ConfigError
from lrbench.summary import Objective


@dataclass
class Config(Checked):
    """The whole run: what ``lrbench train`` composes from ``conf/``."""

    name: str = MISSING
    seed: int = MISSING
    device: Device = MISSING
    model: ModelConfig = MISSING
    dataset: DatasetConfig = MISSING
    optimizer: OptimizerConfig = MISSING
    schedule: ScheduleConfig = MISSING
    train: TrainConfig = MISSING
    lr_find: LRFindConfig = MISSING
    objective: Objective = MISSING
    compile_cache: str | None = None
    sweep: VmapSweepConfig | None = None
    mesh: MeshConfig = MISSING
    distributed: DistributedConfig = MISSING
    # A run directory to go on with, or "auto" (docs/resuming.md "Checkpoints and resuming");
    # a string and a list of its own, not one `resume` group: Hydra cannot take both `resume=<path>`
    # and `resume.allow_changes=[...]` for one key.
    resume: str | None = None
    resume_allow_changes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._seed("seed")
        if self.resume == "auto" and self.sweep is not None:
            self._fail("resume", "resume=<sweep dir> for a vmap sweep (not auto)")
        if self.resume_allow_changes and self.resume is None:
            raise ConfigError(
                "resume_allow_changes",
                "[" + ",".join(self.resume_allow_changes) + "]",
                "only with resume=<run dir> or resume=auto",
            )


# Config group -> option name -> the schema its yaml starts from (``defaults: [<name>_schema]``).
SCHEMAS: dict[str, dict[str, type]] = {
    "sweep": SWEEP_SCHEMAS,
    "model": MODEL_SCHEMAS,
    "dataset": DATASET_SCHEMAS,
    "optimizer": OPTIMIZER_SCHEMAS,
    "schedule": SCHEDULE_SCHEMAS,
    "mesh": MESH_SCHEMAS,
    "distributed": DISTRIBUTED_SCHEMAS,
}


def register_schemas() -> None:
    """Store the schemas so yaml files can start from them (``defaults: [adam_schema]``).
    A schema shared by several names is stored once, under the first (adamw's: adam_schema)."""
    store = ConfigStore.instance()
    store.store(name="config_schema", node=Config)
    store.store(name="study_app_schema", node=StudyAppConfig)
    store.store(group="study", name="study_schema", node=StudyConfig)
    for group, schemas in SCHEMAS.items():
        stored: set[type] = set()
        for name, schema in schemas.items():
            if schema not in stored:
                stored.add(schema)
                store.store(group=group, name=f"{name}_schema", node=schema)


def to_run_config(cfg: DictConfig) -> Config:
    """Turn Hydra's composed config into typed, range-checked dataclasses."""
    run_config = OmegaConf.to_object(cfg)
    assert isinstance(run_config, Config)
    for name, value in vars(run_config).items():
        if is_dataclass(value):
            _reject_added_keys(value, name)
    return run_config


def _reject_added_keys(node: Any, prefix: str) -> None:
    """Keys added with ``+`` inside a group (``+train.epoch=3``, a typo Hydra lets through:
    OmegaConf sets them as plain attributes). Top-level ones (``+tag=x``) label runs."""
    allowed = allowed_keys(type(node))
    for name, value in vars(node).items():
        if name not in allowed:
            raise ConfigError(
                f"{prefix}.{name}", value, f"unknown key (allowed: {', '.join(allowed)})"
            )
        if is_dataclass(value):
            _reject_added_keys(value, f"{prefix}.{name}")


def allowed_keys(schema: type) -> list[str]:
    """Field names of a schema, for 'unknown key' messages."""
    return [f.name for f in fields(schema)]


def resolved_dict(cfg: DictConfig) -> dict:
    """The composed config, resolved, as plain values for config.yaml (keys added with
    ``+key=value`` included: they label runs for ``compare``)."""
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)


def check_combination(cfg: Config) -> None:
    """Rules that span groups: full-batch L-BFGS needs a deterministic, unclipped objective."""
    if cfg.optimizer.name != "lbfgs":
        return
    deterministic = "with optimizer=lbfgs (its line search needs a deterministic loss)"
    if getattr(cfg.model, "dropout", 0.0) > 0:
        raise ConfigError("model.dropout", cfg.model.dropout, f"must be 0 {deterministic}")
    if getattr(cfg.model, "batch_norm", False):
        raise ConfigError("model.batch_norm", True, f"must be false {deterministic}")
    if cfg.schedule.name != "constant":
        raise ConfigError(
            "schedule",
            cfg.schedule.name,
            "must be constant with optimizer=lbfgs (the line search sets the step)",
        )
    if cfg.optimizer.grad_clip_norm is not None:
        raise ConfigError(
            "optimizer.grad_clip_norm",
            cfg.optimizer.grad_clip_norm,
            "must be null with optimizer=lbfgs",
        )
    augment = getattr(cfg.dataset, "augment", None)
    if augment is not None and (augment.crop_padding or augment.flip):
        raise ConfigError(
            "dataset.augment",
            f"{{crop_padding: {augment.crop_padding}, flip: {str(augment.flip).lower()}}}",
            "must be off with optimizer=lbfgs (its line search needs a deterministic loss)",
        )
