"""Full-batch L-BFGS on L2-regularized softmax regression over digits (experiment=lbfgs_softmax).

The problem is strictly convex, so its optimum is unique: lrbench's L-BFGS (optax, zoom line
search) must reach the objective value that scipy's L-BFGS-B reaches on the same objective
written independently in numpy float64.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
from conftest import compose_config, compose_with_record
from threadpoolctl import threadpool_limits

from lrbench import data, models, optim
from lrbench.config import (
    check_combination,
)
from lrbench.errors import ConfigError
from lrbench.runs import read_metrics, read_summary
from lrbench.train.run import run
from lrbench.train.state import create_state
from lrbench.train.step import lbfgs_objective, make_lbfgs_step

PRESET = ["experiment=lbfgs_softmax", "train.dtype=float64"]


make_config = compose_config


def run_training(overrides: list[str], out_dir) -> dict:
    """lrbench.train.run.run on the composed config; returns its summary."""
    cfg, record = compose_with_record(*overrides)
    return run(cfg, record, out_dir, quiet=True)


# ------------------------------------------------------------------ the reference in numpy
def unpack(theta: np.ndarray, n_features: int, n_classes: int):
    w = theta[: n_features * n_classes].reshape(n_features, n_classes)
    return w, theta[n_features * n_classes :]


def softmax_objective(theta: np.ndarray, x: np.ndarray, y: np.ndarray, weight_decay: float):
    """(mean softmax cross-entropy + 0.5 * wd * (||W||^2 + ||b||^2), its gradient, data loss)."""
    n, n_features = x.shape
    n_classes = int(y.max()) + 1
    w, b = unpack(theta, n_features, n_classes)
    z = x @ w + b
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    data_loss = np.mean(log_norm - z[np.arange(n), y])
    dz = np.exp(z - log_norm[:, None])
    dz[np.arange(n), y] -= 1.0
    dz /= n
    grad = np.concatenate([(x.T @ dz).ravel(), dz.sum(axis=0)]) + weight_decay * theta
    return data_loss + 0.5 * weight_decay * (theta @ theta), grad, data_loss


@pytest.fixture(scope="module")
def problem():
    """The preset's config, its train split in float64, and scipy's optimum."""
    cfg = make_config(*PRESET)
    assert cfg.model.name == "linear" and cfg.optimizer.name == "lbfgs"
    assert cfg.optimizer.weight_decay == pytest.approx(1e-3)
    dataset = data.load(cfg.dataset)
    x = dataset.x_train.astype(np.float64)
    y = dataset.y_train.astype(np.int64)
    wd = cfg.optimizer.weight_decay
    # One BLAS thread: OpenBLAS threads contend with XLA's on 2 cores (100x slower).
    with threadpool_limits(limits=1, user_api="blas"):
        result = scipy.optimize.minimize(
            lambda t: softmax_objective(t, x, y, wd)[:2],
            np.zeros(x.shape[1] * 10 + 10),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-10},
        )
    assert result.success, result.message
    value, gradient, data_loss = softmax_objective(result.x, x, y, wd)
    assert np.abs(gradient).max() < 1e-6  # scipy's point is a stationary point: the optimum
    return {"cfg": cfg, "x": x, "y": y, "optimum": value, "optimum_data_loss": data_loss}


def lrbench_theta(params) -> np.ndarray:
    """lrbench's linear-model params in the reference's layout (W row-major, then b)."""
    dense = params["Dense_0"]
    kernel, bias = np.asarray(dense["kernel"]), np.asarray(dense["bias"])
    return np.concatenate([kernel.ravel(), bias])


@pytest.fixture(scope="module")
def trained(problem):
    """Drive lrbench's pieces as run() does (data.load, models.build, optim.build,
    create_state, jit(make_lbfgs_step)) for the preset's iterations, in float64."""
    cfg = problem["cfg"]
    wd = cfg.optimizer.weight_decay
    iterations = cfg.train.epochs
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        dataset = data.load(cfg.dataset)
        model = models.build(cfg.model, dataset.spec, jnp.float64)
        multiplier = optim.build_multiplier(cfg.schedule, iterations, 1)
        tx = optim.build(cfg.optimizer, multiplier, jnp.float64)
        key = jax.random.key(cfg.seed)
        state = create_state(model, tx, dataset.spec.input_shape, key, jnp.float64)
        step = jax.jit(make_lbfgs_step(model, tx, wd))
        x = jnp.asarray(dataset.x_train, jnp.float64)
        y = jnp.asarray(dataset.y_train)
        objective = jax.jit(lambda params: lbfgs_objective(model, params, x, y, wd))
        start_value = float(objective(state.params)[0])
        lrs = []
        for _ in range(iterations):
            state, metrics = step(state, x, y)
            lrs.append(metrics.lr)
        lrs = [float(lr) for lr in jax.device_get(lrs)]
        value, (data_loss, _) = objective(state.params)
        return {
            "dtypes": {str(p.dtype) for p in jax.tree.leaves(state.params)},
            "theta": lrbench_theta(state.params),
            "value": float(value),
            "data_loss": float(data_loss),
            "start_value": start_value,
            "lrs": lrs,
        }
    finally:
        jax.config.update("jax_enable_x64", previous)


# ------------------------------------------------------------------------------- the tests
def test_lbfgs_objective_is_mean_cross_entropy_plus_l2_on_weights_and_bias(problem, trained):
    wd = problem["cfg"].optimizer.weight_decay
    reference, _, reference_data_loss = softmax_objective(
        trained["theta"], problem["x"], problem["y"], wd
    )
    assert trained["value"] == pytest.approx(reference, rel=1e-12)
    assert trained["data_loss"] == pytest.approx(reference_data_loss, rel=1e-12)


def test_lbfgs_reaches_scipy_lbfgsb_optimum_of_l2_softmax_regression(problem, trained):
    assert trained["dtypes"] == {"float64"}
    assert trained["theta"].shape == (64 * 10 + 10,)
    wd = problem["cfg"].optimizer.weight_decay
    # The objective written in numpy, at lrbench's final params, is scipy's optimum.
    reached, _, _ = softmax_objective(trained["theta"], problem["x"], problem["y"], wd)
    assert reached == pytest.approx(problem["optimum"], rel=1e-6)
    assert reached >= problem["optimum"] * (1 - 1e-9)  # nobody goes below the optimum
    # The starting point was far from it: convergence, not a lucky initialization.
    assert trained["start_value"] > 2 * problem["optimum"]


def test_lbfgs_run_completes_and_its_final_train_loss_is_scipys_optimal_data_loss(
    problem, tmp_path
):
    cfg = problem["cfg"]
    x64_before = jax.config.jax_enable_x64
    summary = run_training(PRESET, tmp_path)

    assert jax.config.jax_enable_x64 == x64_before  # run() restores the precision it switched
    assert summary["status"] == "completed"
    assert summary["loop"] == "full_batch"
    assert summary["steps"] == cfg.train.epochs  # one full-batch L-BFGS iteration per epoch
    assert summary["n_params"] == 64 * 10 + 10
    assert summary["n_train"] == len(problem["y"])
    # train_loss is the mean cross-entropy (the data part, without L2) of the last iteration.
    final_loss = summary["final"]["train_loss"]
    assert final_loss == pytest.approx(problem["optimum_data_loss"], rel=1e-6)
    assert summary["final"]["val_accuracy"] > 0.93

    written = read_summary(tmp_path)
    assert written["status"] == "completed"
    assert written["final"]["train_loss"] == pytest.approx(final_loss, rel=1e-12)
    rows = read_metrics(tmp_path)
    assert len(rows) == cfg.train.epochs  # log_every=1
    assert rows[-1]["train_loss"] == pytest.approx(final_loss, rel=1e-12)
    assert rows[-1]["train_loss"] < 0.2 * rows[0]["train_loss"]  # it trained from a poor start


def test_lbfgs_line_search_takes_the_unit_step_near_the_optimum(trained):
    """Quasi-Newton steps have natural length 1: optax.lbfgs (initial_guess_strategy='one')
    and PyTorch's strong-Wolfe LBFGS start every line search at 1. Near the optimum of a
    smooth convex problem the unit step satisfies the Wolfe conditions and is taken, which
    gives L-BFGS its superlinear rate."""
    last = trained["lrs"][-10:]
    assert last == [1.0] * 10, f"accepted step sizes of the last 10 iterations: {last}"


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["model=mlp", "model.dropout=0.1"], "model.dropout"),
        (["model=mlp", "model.batch_norm=true"], "model.batch_norm"),
        (["model=cnn", "model.batch_norm=true"], "model.batch_norm"),
        (["schedule=cosine"], "schedule"),
        (["schedule=warmup_cosine"], "schedule"),
        (["optimizer.grad_clip_norm=1.0"], "optimizer.grad_clip_norm"),
    ],
)
def test_lbfgs_rejects_a_nondeterministic_or_scheduled_objective_naming_the_key(
    overrides, key, tmp_path
):
    cfg, record = compose_with_record(*PRESET, *overrides)
    with pytest.raises(ConfigError) as error:
        check_combination(cfg)
    assert error.value.key == key
    assert str(error.value).startswith(f"{key}=")
    # run() refuses it before it writes anything.
    out = tmp_path / "run"
    with pytest.raises(ConfigError) as error:
        run(cfg, record, out, quiet=True)
    assert error.value.key == key
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize(
    "overrides",
    [
        ["model=mlp", "model.dropout=0.0", "model.batch_norm=false"],
        ["optimizer=adam", "model=mlp", "model.dropout=0.1", "schedule=cosine"],
    ],
)
def test_deterministic_lbfgs_or_any_other_optimizer_passes_the_combination_check(overrides):
    check_combination(make_config(*PRESET, *overrides))
