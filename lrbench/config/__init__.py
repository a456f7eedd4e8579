"""Typed configuration: the schemas Hydra checks at composition, and their value checks.

Each config-group option (``conf/optimizer/adam.yaml``, ...) starts from one of these
dataclasses (``defaults: [adam_schema]``), so a wrong type or an unknown key is rejected
while Hydra composes. The yaml files hold the values and their documentation; the
dataclasses hold types and ranges. ``to_run_config`` is the one place a composed config
becomes typed values: ``OmegaConf.to_object`` builds these dataclasses, and their
``__post_init__`` checks ranges, raising ``ConfigError`` with the full key.

One module per ``conf/`` group: ``model``, ``dataset``, ``optimizer``, ``schedule``,
``sweep``; ``train`` (the train and lr_find sections, device); ``root`` (the whole
``Config``, the ConfigStore, ``to_run_config`` and the rules that span groups); ``base``
(the range checks). ``Objective`` is read from a run's summary: ``lrbench.summary``.
"""

from lrbench.config.base import Checked
from lrbench.config.dataset import (
    DATASET_SCHEMAS,
    AugmentConfig,
    DatasetConfig,
    DataSource,
    ImageDatasetConfig,
    SklearnConfig,
    SyntheticConfig,
)
from lrbench.config.mesh import (
    DISTRIBUTED_SCHEMAS,
    MESH_SCHEMAS,
    REMAINING,
    DistributedConfig,
    MeshConfig,
)
from lrbench.config.model import (
    MODEL_SCHEMAS,
    Activation,
    CNNConfig,
    LinearConfig,
    MLPConfig,
    ModelConfig,
    ResNetConfig,
)
from lrbench.config.optimizer import (
    AUTO_LR,
    OPTIMIZER_SCHEMAS,
    AdagradConfig,
    AdamConfig,
    AdamHDConfig,
    CocobConfig,
    DAdaptAdamWConfig,
    DoGConfig,
    LBFGSConfig,
    LionConfig,
    MechanizeBase,
    MechanizeConfig,
    MomentumConfig,
    OptimizerConfig,
    ProdigyConfig,
    RMSpropConfig,
    ScheduleFreeAdamWConfig,
    ScheduleFreeSGDConfig,
    SGDConfig,
    SGDHDConfig,
)
from lrbench.config.root import (
    SCHEMAS,
    Config,
    allowed_keys,
    check_combination,
    register_schemas,
    resolved_dict,
    to_run_config,
)
from lrbench.config.schedule import (
    SCHEDULE_SCHEMAS,
    BoundaryUnit,
    ConstantConfig,
    CosineConfig,
    ExponentialConfig,
    LinearScheduleConfig,
    OneCycleConfig,
    PolynomialConfig,
    ReduceOnPlateauConfig,
    ScheduleConfig,
    StepConfig,
    WarmupCosineConfig,
)
from lrbench.config.sweep import SWEEP_SCHEMAS, VmapSweepConfig
from lrbench.config.train import (
    Device,
    DType,
    Loop,
    LRFindConfig,
    LRSuggestion,
    Norms,
    Ramp,
    TrainConfig,
)
from lrbench.summary import Objective

__all__ = [
    "AUTO_LR",
    "DATASET_SCHEMAS",
    "DISTRIBUTED_SCHEMAS",
    "MESH_SCHEMAS",
    "MODEL_SCHEMAS",
    "OPTIMIZER_SCHEMAS",
    "REMAINING",
    "SCHEDULE_SCHEMAS",
    "SCHEMAS",
    "SWEEP_SCHEMAS",
    "Activation",
    "AdagradConfig",
    "AdamConfig",
    "AdamHDConfig",
    "AugmentConfig",
    "BoundaryUnit",
    "CNNConfig",
    "Checked",
    "CocobConfig",
    "Config",
    "ConstantConfig",
    "CosineConfig",
    "DAdaptAdamWConfig",
    "DType",
    "DataSource",
    "DatasetConfig",
    "Device",
    "DistributedConfig",
    "DoGConfig",
    "ExponentialConfig",
    "ImageDatasetConfig",
    "LBFGSConfig",
    "LRFindConfig",
    "LRSuggestion",
    "LinearConfig",
    "LinearScheduleConfig",
    "LionConfig",
    "Loop",
    "MLPConfig",
    "MechanizeBase",
    "MechanizeConfig",
    "MeshConfig",
    "ModelConfig",
    "MomentumConfig",
    "Norms",
    "Objective",
    "OneCycleConfig",
    "OptimizerConfig",
    "PolynomialConfig",
    "ProdigyConfig",
    "RMSpropConfig",
    "Ramp",
    "ReduceOnPlateauConfig",
    "ResNetConfig",
    "SGDConfig",
    "SGDHDConfig",
    "ScheduleConfig",
    "ScheduleFreeAdamWConfig",
    "ScheduleFreeSGDConfig",
    "SklearnConfig",
    "StepConfig",
    "SyntheticConfig",
    "TrainConfig",
    "VmapSweepConfig",
    "WarmupCosineConfig",
    "allowed_keys",
    "check_combination",
    "register_schemas",
    "resolved_dict",
    "to_run_config",
]
