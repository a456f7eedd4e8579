"""The ResNet-20-style model: its parameter count and feature-map sizes against the paper's
architecture, counted by hand; BatchNorm; the conv loop strategy on CPU; bad configs.
(It trains end to end in tests/test_datasets_tfds.py, on CIFAR-10's mock data.)"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from lrbench import models
from lrbench.config import Loop
from lrbench.data import DataSpec
from lrbench.train.runners import resolve_loop
from lrbench.train.state import count_params
from tests.conftest import compose_config

CIFAR = DataSpec(input_shape=(32, 32, 3), n_classes=10, image_shape=(32, 32, 3))


def conv_bn(k: int, c_in: int, c_out: int) -> int:
    """A bias-free k x k conv and its BatchNorm's scale and shift."""
    return k * k * c_in * c_out + 2 * c_out


def resnet_params(stage_blocks, width: int, channels: int, n_classes: int) -> int:
    """He et al. 2016, section 4.2, with 1x1 projection shortcuts where the shape changes."""
    total = conv_bn(3, channels, width)
    c_in = width
    for stage, n_blocks in enumerate(stage_blocks):
        c_out = width * 2**stage
        for _ in range(n_blocks):
            total += conv_bn(3, c_in, c_out) + conv_bn(3, c_out, c_out)
            if c_in != c_out:
                total += conv_bn(1, c_in, c_out)
            c_in = c_out
    return total + c_in * n_classes + n_classes


def abstract_init(spec=CIFAR):
    """(model, variables, input) as shapes: traced, not compiled."""
    model = models.build(compose_config("model=resnet").model, spec)
    x = jax.ShapeDtypeStruct((2, *spec.input_shape), jnp.float32)
    variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
    return model, variables, x


def test_resnet20_has_the_papers_272k_parameters_and_batch_norm_statistics():
    _, variables, _ = abstract_init()
    expected = resnet_params([3, 3, 3], 16, 3, 10)
    assert expected == 272_474  # "0.27M" in the paper's Table 6 (its option A: 0.27M too)
    assert count_params(variables["params"]) == expected
    n_batch_norms = 1 + 2 * 9 + 2  # stem, two per block, two projection shortcuts
    assert len(jax.tree.leaves(variables["batch_stats"])) == 2 * n_batch_norms


def test_resnet_stages_halve_the_resolution_and_double_the_channels():
    model, variables, x = abstract_init()
    logits, state = jax.eval_shape(
        lambda v, x: model.apply(v, x, train=False, capture_intermediates=True), variables, x
    )
    assert logits.shape == (2, 10)
    blocks = state["intermediates"]
    shapes = [blocks[f"BasicBlock_{i}"]["__call__"][0].shape[1:] for i in range(9)]
    assert shapes == [(32, 32, 16)] * 3 + [(16, 16, 32)] * 3 + [(8, 8, 64)] * 3


def test_resnet_is_convolutional_so_cpu_runs_take_one_step_per_dispatch():
    cfg = compose_config("model=resnet")
    assert models.is_convolutional(cfg.model)
    assert not models.is_convolutional(compose_config("model=mlp").model)
    assert resolve_loop(Loop.auto, models.is_convolutional(cfg.model), "cpu") is Loop.step
    assert resolve_loop(Loop.auto, True, "gpu") is Loop.scan


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["dataset=breast_cancer"], "model=resnet: needs an image dataset"),
        (["optimizer=lbfgs"], "model.batch_norm=True: must be false with optimizer=lbfgs"),
        (["model.stage_blocks=[]"], "model.stage_blocks=[]: a non-empty list"),
    ],
)
def test_bad_resnet_configs_are_one_line_exit_2(tmp_path, capsys, overrides, message):
    from lrbench.cli import main

    assert main(["train", "model=resnet", *overrides, f"hydra.run.dir={tmp_path}/r"]) == 2
    assert capsys.readouterr().err.startswith(f"lrbench: error: {message}")
