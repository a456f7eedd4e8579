"""Models: BatchNorm statistics (updated in training, used at evaluation), dropout masks (fresh
each step, off at evaluation), output sizes and parameter counts, and image-only conv nets."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import compose_config, compose_with_record

from lrbench import data, models, optim
from lrbench.config import Config
from lrbench.errors import ConfigError
from lrbench.train.evaluate import make_evaluate, pad_split
from lrbench.train.run import run
from lrbench.train.state import TrainState, count_params, create_state
from lrbench.train.step import make_train_step

BN_EPS = 1e-5  # flax.linen.BatchNorm's default epsilon
BN_MOMENTUM = 0.9  # lrbench.models.layers: running = 0.9 * running + 0.1 * batch


make_config = compose_config


def run_training(overrides: list[str], out_dir) -> dict:
    """lrbench.train.run.run on the composed config; returns its summary."""
    cfg, record = compose_with_record(*overrides)
    return run(cfg, record, out_dir, quiet=True)


@pytest.fixture(scope="module")
def digits():
    return data.load(make_config("dataset=digits").dataset)


def build(cfg: Config, dataset, seed: int = 0):
    """(model, tx, initial state) as run() builds them, in float32."""
    model = models.build(cfg.model, dataset.spec, jnp.float32)
    tx = optim.build(cfg.optimizer, optim.build_multiplier(cfg.schedule, 100, 10), jnp.float32)
    state = create_state(model, tx, dataset.spec.input_shape, jax.random.key(seed), jnp.float32)
    return model, tx, state


@functools.cache
def jitted_evaluate(model):
    return jax.jit(make_evaluate(model))


def evaluate(model, state, x, y, batch_size: int = 1024):
    """lrbench's evaluation (padded, masked batches) of one split: (mean loss, accuracy)."""
    metrics = jitted_evaluate(model)(state, pad_split(x, y, batch_size, jnp.float32))
    return float(metrics.loss), float(metrics.accuracy)


def abstract_init(cfg: Config, spec, x_shape: tuple[int, ...] | None = None):
    """(model, variables as shapes, logits as a shape): flax init and apply traced, not compiled."""
    model = models.build(cfg.model, spec, jnp.float32)
    x = jax.ShapeDtypeStruct(x_shape or (5, *spec.input_shape), jnp.float32)
    variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
    logits = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, x)
    return model, variables, logits


def tree_equal(a, b) -> bool:
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(leaves_a) == len(leaves_b) and all(
        np.array_equal(x, y) for x, y in zip(leaves_a, leaves_b, strict=True)
    )


# ----------------------------------------------------------------------------- BatchNorm
BN_MLP = ["model=mlp", "model.widths=[32]", "model.batch_norm=true", "optimizer=sgd"]


@pytest.fixture(scope="module")
def bn_mlp(digits):
    cfg = make_config(*BN_MLP, "optimizer.lr=0.1")
    model, tx, state = build(cfg, digits)
    return model, state, jax.jit(make_train_step(model, tx))


def test_batchnorm_running_statistics_start_at_zero_mean_unit_variance(bn_mlp):
    _, state, _ = bn_mlp
    stats = state.batch_stats["BatchNorm_0"]
    np.testing.assert_array_equal(stats["mean"], np.zeros(32))
    np.testing.assert_array_equal(stats["var"], np.ones(32))


def test_batchnorm_train_step_moves_running_statistics_toward_the_batch_statistics(bn_mlp, digits):
    _, state, step = bn_mlp
    x, y = jnp.asarray(digits.x_train[:128]), jnp.asarray(digits.y_train[:128])
    new_state, _ = step(state, x, y)
    # The pre-BatchNorm activations of this batch, from the parameters before the update.
    dense = state.params["Dense_0"]
    h = np.asarray(x, np.float64) @ np.asarray(dense["kernel"]) + np.asarray(dense["bias"])
    stats = new_state.batch_stats["BatchNorm_0"]
    np.testing.assert_allclose(stats["mean"], (1 - BN_MOMENTUM) * h.mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(
        stats["var"], BN_MOMENTUM * 1.0 + (1 - BN_MOMENTUM) * h.var(axis=0), rtol=1e-4
    )
    # ... keep moving with every later step ...
    batch = slice(128, 256)
    later, _ = step(new_state, jnp.asarray(digits.x_train[batch]), digits.y_train[batch])
    assert not tree_equal(later.batch_stats, new_state.batch_stats)


def test_batchnorm_running_statistics_after_training_differ_from_their_init(bn_mlp, bn_trained):
    _, state, _ = bn_mlp
    assert jax.tree.structure(bn_trained.batch_stats) == jax.tree.structure(state.batch_stats)
    for name in ("mean", "var"):
        before = np.asarray(state.batch_stats["BatchNorm_0"][name])
        after = np.asarray(bn_trained.batch_stats["BatchNorm_0"][name])
        assert np.abs(after - before).max() > 1e-3, name


@pytest.fixture(scope="module")
def bn_trained(bn_mlp, digits):
    """The BatchNorm MLP after 20 SGD steps (running statistics far from their init)."""
    _, state, step = bn_mlp
    for i in range(20):
        batch = np.arange(128 * i, 128 * (i + 1)) % digits.n_train
        state, _ = step(state, jnp.asarray(digits.x_train[batch]), digits.y_train[batch])
    return state


def test_batchnorm_evaluation_normalizes_with_the_running_statistics(bn_mlp, bn_trained, digits):
    model, _, _ = bn_mlp
    state = bn_trained
    x = np.asarray(digits.x_val, np.float64)
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), state.params)
    stats = jax.tree.map(lambda a: np.asarray(a, np.float64), state.batch_stats)["BatchNorm_0"]
    h = x @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"]
    normalized = (h - stats["mean"]) / np.sqrt(stats["var"] + BN_EPS)
    hidden = np.maximum(normalized * p["BatchNorm_0"]["scale"] + p["BatchNorm_0"]["bias"], 0)
    expected = hidden @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"]

    variables = {"params": state.params, "batch_stats": state.batch_stats}
    logits = model.apply(variables, jnp.asarray(digits.x_val), train=False)
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)


def test_batchnorm_evaluation_loss_depends_on_the_running_statistics(bn_trained, bn_mlp, digits):
    model, _, _ = bn_mlp
    loss, _ = evaluate(model, bn_trained, digits.x_val, digits.y_val)
    shifted = {
        "BatchNorm_0": {
            "mean": bn_trained.batch_stats["BatchNorm_0"]["mean"] + 0.5,
            "var": bn_trained.batch_stats["BatchNorm_0"]["var"] * 3.0,
        }
    }
    other, _ = evaluate(model, bn_trained.replace(batch_stats=shifted), digits.x_val, digits.y_val)
    assert abs(other - loss) > 1e-3 * loss


def test_batchnorm_training_forward_uses_batch_statistics_not_running_ones(
    bn_trained, bn_mlp, digits
):
    model, _, _ = bn_mlp
    x = jnp.asarray(digits.x_train[:64])
    stats = bn_trained.batch_stats
    other = jax.tree.map(lambda a: a * 0 + 7.0, stats)

    def train_logits(batch_stats):
        variables = {"params": bn_trained.params, "batch_stats": batch_stats}
        return model.apply(variables, x, train=True, mutable=["batch_stats"])[0]

    np.testing.assert_allclose(train_logits(stats), train_logits(other), rtol=1e-6, atol=1e-6)


def test_batchnorm_evaluation_is_deterministic_and_independent_of_batch_composition(
    bn_trained, bn_mlp, digits
):
    model, _, _ = bn_mlp
    variables = {"params": bn_trained.params, "batch_stats": bn_trained.batch_stats}
    x = jnp.asarray(digits.x_val)
    alone = model.apply(variables, x[:10], train=False)
    among_others = model.apply(variables, x, train=False)[:10]
    shuffled = model.apply(variables, x[::-1], train=False)[::-1][:10]
    np.testing.assert_allclose(alone, among_others, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(alone, shuffled, rtol=1e-5, atol=1e-5)
    # Any eval batch size (the last batch padded and masked) gives the same means.
    results = [
        evaluate(model, bn_trained, digits.x_val, digits.y_val, size) for size in (1024, 7, 1024)
    ]
    for loss, accuracy in results[1:]:
        assert loss == pytest.approx(results[0][0], rel=1e-5)
        assert accuracy == pytest.approx(results[0][1], rel=1e-6)
    assert results[2] == results[0]


def test_batchnorm_mlp_trains_on_digits_to_over_90_percent_val_accuracy(tmp_path):
    summary = run_training(
        [
            "model=mlp",
            "model.widths=[128]",
            "model.batch_norm=true",
            "optimizer.lr=0.003",
            "train.batch_size=64",
            "train.epochs=3",
        ],
        tmp_path,
    )
    assert summary["status"] == "completed"
    assert summary["final"]["val_accuracy"] > 0.9
    assert summary["final"]["test_accuracy"] > 0.9


def test_batchnorm_cnn_trains_on_digits_to_over_90_percent_val_accuracy(tmp_path):
    cfg = make_config("experiment=digits_cnn")
    assert cfg.model.name == "cnn" and cfg.model.batch_norm
    summary = run_training(["experiment=digits_cnn", "train.epochs=3"], tmp_path)
    assert summary["status"] == "completed"
    assert summary["final"]["val_accuracy"] > 0.9
    assert summary["final"]["test_accuracy"] > 0.9


def test_cnn_with_batchnorm_keeps_running_statistics_for_every_normalized_layer(digits):
    cfg = make_config("experiment=digits_cnn")
    _, variables, _ = abstract_init(cfg, digits.spec)
    stats = variables["batch_stats"]
    # Two conv layers and one dense layer, each followed by BatchNorm.
    assert sorted(stats) == ["BatchNorm_0", "BatchNorm_1", "BatchNorm_2"]
    assert stats["BatchNorm_0"]["mean"].shape == (16,)
    assert stats["BatchNorm_1"]["mean"].shape == (32,)
    assert stats["BatchNorm_2"]["mean"].shape == (64,)
    assert stats["BatchNorm_2"]["var"].shape == (64,)


# ------------------------------------------------------------------------------- dropout
DROPOUT_MLP = ["model=mlp", "model.widths=[64]", "model.dropout=0.5", "optimizer=sgd"]


@pytest.fixture(scope="module")
def dropout_mlp(digits):
    cfg = make_config(*DROPOUT_MLP)
    model, tx, state = build(cfg, digits)
    return model, state, jax.jit(make_train_step(model, tx))


def test_dropout_draws_a_new_mask_at_each_step(dropout_mlp, digits):
    _, state, step = dropout_mlp
    x, y = jnp.asarray(digits.x_train[:256]), jnp.asarray(digits.y_train[:256])
    # Same params, same batch: only state.step differs, so only the dropout mask can.
    loss_at_0 = float(step(state, x, y)[1].loss)
    loss_at_1 = float(step(state.replace(step=jnp.asarray(1, jnp.int32)), x, y)[1].loss)
    assert loss_at_0 != loss_at_1
    params_0 = step(state, x, y)[0].params
    params_1 = step(state.replace(step=jnp.asarray(1, jnp.int32)), x, y)[0].params
    assert not tree_equal(params_0, params_1)
    # A step is reproducible: the mask is a function of (dropout_key, step), not global state.
    assert float(step(state, x, y)[1].loss) == loss_at_0


def test_dropout_is_active_in_training_forward_passes(dropout_mlp, digits):
    model, state, _ = dropout_mlp
    x = jnp.asarray(digits.x_train[:64])
    variables = {"params": state.params}
    evaluation = model.apply(variables, x, train=False)
    training = model.apply(variables, x, train=True, rngs={"dropout": jax.random.key(1)})
    assert not np.allclose(evaluation, training)


def test_evaluation_has_no_dropout(dropout_mlp, digits):
    model, state, _ = dropout_mlp
    no_dropout = models.build(
        make_config("model=mlp", "model.widths=[64]", "model.dropout=0.0").model, digits.spec
    )
    x = jnp.asarray(digits.x_val)
    expected = no_dropout.apply({"params": state.params}, x, train=False)
    np.testing.assert_allclose(
        model.apply({"params": state.params}, x, train=False), expected, rtol=1e-6
    )
    first = evaluate(model, state, digits.x_val, digits.y_val)
    again = evaluate(
        model, state.replace(step=jnp.asarray(5, jnp.int32)), digits.x_val, digits.y_val
    )
    assert first == again
    reference = evaluate(no_dropout, state, digits.x_val, digits.y_val)
    assert first == pytest.approx(reference, rel=1e-6)


# ------------------------------------------------------------------- sizes and outputs
def test_linear_model_on_digits_has_64x10_weights_plus_10_biases(digits):
    _, variables, logits = abstract_init(make_config("model=linear"), digits.spec)
    assert count_params(variables["params"]) == 64 * 10 + 10
    assert variables["params"]["Dense_0"]["kernel"].shape == (64, 10)
    assert "batch_stats" not in variables
    assert logits.shape == (5, 10)


def test_linear_model_on_breast_cancer_is_logistic_regression_with_one_logit():
    cfg = make_config("model=linear", "dataset=breast_cancer")
    dataset = data.load(cfg.dataset)
    model = models.build(cfg.model, dataset.spec, jnp.float32)
    params = model.init(jax.random.key(0), jnp.zeros((1, 30)), train=False)["params"]
    assert count_params(params) == 30 + 1
    logits = model.apply({"params": params}, jnp.asarray(dataset.x_val), train=False)
    assert logits.shape == (len(dataset.y_val), 1)
    # One logit means sigmoid cross-entropy and a 0 threshold in evaluation.
    z = np.asarray(logits[:, 0], np.float64)
    y = dataset.y_val
    state = TrainState(
        step=jnp.zeros([], jnp.int32),
        params=params,
        batch_stats={},
        opt_state=(),
        dropout_key=jax.random.key(0),
    )
    loss, accuracy = evaluate(model, state, dataset.x_val, y)
    assert loss == pytest.approx(np.mean(np.logaddexp(0, z) - y * z), rel=1e-5)
    assert accuracy == pytest.approx(np.mean((z > 0) == y), rel=1e-6)


@pytest.mark.parametrize("dataset_name", ["breast_cancer", "synthetic"])
def test_mlp_on_a_binary_dataset_has_one_output_logit(dataset_name):
    cfg = make_config("model=mlp", "model.widths=[8, 4]", f"dataset={dataset_name}")
    dataset = data.load(cfg.dataset)
    assert dataset.spec.n_classes == 2
    _, variables, logits = abstract_init(cfg, dataset.spec)
    assert variables["params"]["Dense_2"]["kernel"].shape == (4, 1)
    assert logits.shape == (5, 1)


@pytest.mark.parametrize("overrides", [["model=mlp"], ["experiment=digits_cnn"]])
def test_mlp_and_cnn_output_one_logit_per_class_on_digits(overrides, digits):
    _, _, logits = abstract_init(make_config(*overrides), digits.spec)
    assert logits.shape == (5, 10)


@pytest.mark.parametrize("dataset_name", ["breast_cancer", "synthetic"])
def test_cnn_on_a_non_image_dataset_raises_config_error(dataset_name, tmp_path):
    overrides = ["model=cnn", f"dataset={dataset_name}"]
    cfg = make_config(*overrides)
    dataset = data.load(cfg.dataset)
    assert dataset.spec.image_shape is None
    with pytest.raises(ConfigError) as error:
        models.build(cfg.model, dataset.spec)
    assert error.value.key == "model"
    # run() refuses it before it writes the run directory.
    out = tmp_path / "run"
    with pytest.raises(ConfigError):
        run_training(overrides, out)
    assert not out.exists() or not any(out.iterdir())
