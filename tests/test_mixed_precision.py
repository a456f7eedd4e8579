"""Mixed precision, ``train.compute_dtype`` (docs/running.md "Mixed precision"): the model
computes in
bfloat16/float16 while parameters, optimizer state, the LR, the loss and BatchNorm
statistics stay float32; float16 trains with dynamic loss scaling (the rule checked against
a numpy transcription); unset, a run is bitwise the float32 run it always was."""

from __future__ import annotations

import shutil
import signal

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import yaml
from conftest import compose_config
from stopped_runs import TINY, rows, train_here

import lrbench.optim.loss_scale as loss_scale_module
from lrbench import faults, models, optim
from lrbench.cli import main
from lrbench.config.train import ComputeDType
from lrbench.optim.loss_scale import LossScaleState, dynamic_loss_scaling
from lrbench.optim.state_tree import find_states
from lrbench.runs import read_summary
from lrbench.train.evaluate import make_evaluate, pad_split
from lrbench.train.setup import prepared
from lrbench.train.state import create_state
from lrbench.train.step import make_train_step

HEAVY = ("dot_general", "conv_general_dilated")  # matmuls and convolutions


def equations(jaxpr) -> list:
    """Every equation of a jaxpr, those of its sub-jaxprs (jit, custom_jvp, map...) included."""
    found = []
    for eqn in jaxpr.eqns:
        found.append(eqn)
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            found += equations(sub)
    return found


def input_dtypes(eqns, *names: str) -> set[str]:
    return {
        str(var.aval.dtype) for eqn in eqns if eqn.primitive.name in names for var in eqn.invars
    }


def floating_dtypes(tree) -> set[str]:
    return {
        str(leaf.dtype)
        for leaf in jax.tree.leaves(tree)
        if hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jnp.floating)
    }


def initial(setup):
    return create_state(
        setup.model, setup.tx, setup.dataset.spec.input_shape, jax.random.key(0), setup.dtype
    )


@pytest.mark.parametrize(
    "overrides",
    [
        ("model.batch_norm=true", "model.dropout=0.1"),
        ("model=cnn", "model.channels=[4,8]", "model.dense=[16]", "model.batch_norm=true"),
    ],
    ids=["mlp", "cnn"],
)
def test_bfloat16_activations_with_float32_parameters_state_lr_and_loss(overrides):
    cfg = compose_config("train.compute_dtype=bfloat16", *overrides)
    with prepared(cfg) as setup:
        state = initial(setup)
        x = jnp.asarray(setup.dataset.x_train[:32], jnp.float32)
        y = jnp.asarray(setup.dataset.y_train[:32])
        variables = {"params": state.params, "batch_stats": state.batch_stats}
        # Every layer's output (Dense/Conv, BatchNorm, dropout, the logits) is bfloat16.
        logits, captured = setup.model.apply(
            variables, x, train=False, capture_intermediates=True, mutable=["intermediates"]
        )
        assert logits.dtype == jnp.bfloat16
        assert len(jax.tree.leaves(captured)) > 3
        assert floating_dtypes(captured) == {"bfloat16"}

        step = make_train_step(setup.model, setup.tx)
        eqns = equations(jax.make_jaxpr(step)(state, x, y).jaxpr)
        assert input_dtypes(eqns, *HEAVY) == {"bfloat16"}  # forward and backward
        assert input_dtypes(eqns, "exp", "log") == {"float32"}  # the softmax cross-entropy
        assert input_dtypes(eqns, "rsqrt") == {"float32"}  # BatchNorm's statistics

        new_state, metrics = jax.jit(step)(state, x, y)
        for tree in (new_state.params, new_state.opt_state, new_state.batch_stats, metrics):
            assert floating_dtypes(tree) == {"float32"}
        assert metrics.lr.dtype == jnp.float32 and np.isfinite(metrics.loss)
        assert not find_states(new_state.opt_state, LossScaleState)  # bfloat16: no scaling


def test_evaluation_computes_in_bfloat16_and_sums_in_float32():
    cfg = compose_config("train.compute_dtype=bfloat16")
    with prepared(cfg) as setup:
        state = initial(setup)
        x, y = setup.dataset.x_train, setup.dataset.y_train  # 1257: sums beyond bfloat16's 256
        split = pad_split(x, y, 1024, setup.dtype)
        evaluate = make_evaluate(setup.model)
        eqns = equations(jax.make_jaxpr(evaluate)(state, split).jaxpr)
        assert input_dtypes(eqns, *HEAVY) == {"bfloat16"}
        assert input_dtypes(eqns, "reduce_sum", "exp", "log") == {"float32"}
        metrics = jax.jit(evaluate)(state, split)
        assert floating_dtypes(metrics) == {"float32"}
        logits = np.asarray(setup.model.apply({"params": state.params}, x, train=False), np.float32)
        hits = int((logits.argmax(-1) == y).sum())
        assert abs(float(metrics.accuracy) * len(y) - hits) <= 1  # a near tie may differ


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The default run (20 epochs of the digits MLP) with each compute dtype, and unset."""
    folder = tmp_path_factory.mktemp("precision")
    found = {}
    for name in ("unset", "float32", "bfloat16", "float16"):
        run_dir = folder / name
        key = [] if name == "unset" else [f"train.compute_dtype={name}"]
        assert main(["train", *key, f"hydra.run.dir={run_dir}"]) == 0
        found[name] = run_dir
    return found


def accuracy(run_dir) -> float:
    summary = read_summary(run_dir)
    assert summary["status"] == "completed"
    return summary["final"]["test_accuracy"]


def test_unset_is_float32_bitwise(runs):
    assert (
        yaml.safe_load((runs["unset"] / "config.yaml").read_text())["train"]["compute_dtype"]
        is None
    )
    assert rows(runs["unset"]) == rows(runs["float32"])
    assert accuracy(runs["unset"]) >= 0.95


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_trains_digits_within_one_point_of_float32(runs, dtype):
    assert abs(accuracy(runs[dtype]) - accuracy(runs["float32"])) <= 0.01
    assert rows(runs[dtype]) != rows(runs["float32"])  # it did compute in another precision


# -------------------------------------------------------------- dynamic loss scaling


def reference_scales(flags, initial_scale, period, factor, max_skips):
    """The dynamic loss-scaling rule transcribed (NVIDIA's mixed-precision guide, PyTorch's
    GradScaler.update, with jmp's floor of 1): the scale each step's loss is multiplied by,
    and whether its update is applied. A non-finite gradient skips the update and divides
    the scale by ``factor``; ``period`` finite ones in a row multiply it by ``factor``. After
    ``max_skips`` skips in a row the next non-finite update is applied anyway."""
    scale, finite_run, skipped_run = float(initial_scale), 0, 0
    scales, applied = [], []
    for finite in flags:
        scales.append(scale)
        if finite:
            skipped_run = 0
            applied.append(True)
            finite_run += 1
            if finite_run == period:
                scale, finite_run = scale * factor, 0
        else:
            skipped_run += 1
            applied.append(skipped_run > max_skips)
            scale, finite_run = max(scale / factor, 1.0), 0
    return np.array(scales), np.array(applied)


def test_loss_scaling_rule_against_numpy():
    rng = np.random.default_rng(0)
    flags = [False] * 3 + [True] * 7 + list(rng.random(40) < 0.7) + [False] * 5
    initial_scale, period, factor, max_skips = 4.0, 3, 2, 4
    expected_scales, expected_applied = reference_scales(
        flags, initial_scale, period, factor, max_skips
    )
    assert expected_scales.max() >= 8 and expected_scales.min() == 1 and expected_applied[-1]

    tx = dynamic_loss_scaling(optax.adam(0.1), initial_scale, period, factor, max_skips)
    params = {"w": jnp.ones(3)}
    state = tx.init(params)
    update = jax.jit(tx.update)
    scales, applied_steps = [], 0
    for i, finite in enumerate(flags):
        scale = float(state.scale)
        scales.append(scale)
        grad = jnp.array([0.5, -1.0, 2.0]) * (i + 1)
        grad = grad if finite else grad.at[1].set(jnp.inf)
        updates, state = update({"w": grad * scale}, state, params)
        adam = find_states(state, optax.ScaleByAdamState)[0]
        if expected_applied[i]:
            applied_steps += 1
            assert bool(jnp.all(updates["w"] != 0)) and (
                not finite or np.isfinite(updates["w"]).all()
            )
        else:
            assert bool(jnp.all(updates["w"] == 0))  # skipped: no update, Adam untouched
        assert int(adam.count) == applied_steps
        assert bool(state.inner_state.last_finite) == finite
    np.testing.assert_array_equal(scales, expected_scales)
    assert optim.skipped_steps(state) == sum(not f for f in flags)


def test_float16_step_halves_a_huge_scale_then_trains():
    """An overflow forced by a huge initial scale: the first updates are skipped (parameters
    and optimizer state unchanged, the loss finite), the scale halves until the float16
    gradients are finite, then doubles every ``period`` finite steps and halves again."""
    cfg = compose_config("train.compute_dtype=float16")
    with prepared(cfg) as setup:
        tx = dynamic_loss_scaling(
            optim.build(cfg.optimizer, lambda count: 1.0, setup.dtype), 2.0**40, period=4
        )
        model = models.build(cfg.model, setup.dataset.spec, setup.dtype, ComputeDType.float16)
        state = create_state(
            model, tx, setup.dataset.spec.input_shape, jax.random.key(0), setup.dtype
        )
        step = make_train_step(model, tx)

        @jax.jit
        def observed(state, x, y):
            """The step, and what it did: the scale it used, whether its gradients were
            finite, whether the parameters and the optimizer's own state changed."""
            new_state, metrics = step(state, x, y)
            (before,), (after,) = (
                find_states(s.opt_state, LossScaleState) for s in (state, new_state)
            )
            changed = [
                jnp.stack(
                    [jnp.any(a != b) for a, b in zip(*map(jax.tree.leaves, pair), strict=True)]
                ).any()
                for pair in (
                    (state.params, new_state.params),
                    (before.inner_state.inner_state, after.inner_state.inner_state),
                )
            ]
            finite = after.inner_state.last_finite
            return new_state, (before.scale, finite, *changed, metrics.loss)

        x, y = jnp.asarray(setup.dataset.x_train), jnp.asarray(setup.dataset.y_train)
        observations = []
        for i in range(60):
            batch = slice(128 * (i % 9), 128 * (i % 9 + 1))
            state, seen = observed(state, x[batch], y[batch])
            observations.append(jax.device_get(seen))
    scales, flags, params_changed, optimizer_changed, losses = map(
        np.array, zip(*observations, strict=True)
    )
    np.testing.assert_array_equal(params_changed, flags)  # a skipped step changes nothing
    np.testing.assert_array_equal(optimizer_changed, flags)  # (Adam's count and moments)
    skips = loss_scale_module.MAX_CONSECUTIVE_SKIPS
    expected, applied = reference_scales(flags, 2.0**40, 4, 2, skips)
    np.testing.assert_array_equal(scales, expected)
    np.testing.assert_array_equal(applied, flags)  # never given up
    assert not flags[0] and np.isfinite(losses).all()
    first = int(np.argmax(flags))
    assert first >= 10 and scales[first] <= 2.0**30  # halved at least 10 times in a row
    assert max(scales[first:]) > scales[first]  # and doubled after 4 finite steps
    assert not all(flags[first:]) and flags[first:].mean() > 0.7  # overflowing now and then
    assert np.mean(losses[-9:]) < 0.5 * losses[first]  # it trains


@pytest.fixture
def huge_initial_scale(monkeypatch):
    """Runs start float16 loss scaling at 2**40 and double after 5 finite steps."""
    monkeypatch.setattr(loss_scale_module, "INITIAL_SCALE", 2.0**40)
    monkeypatch.setattr(loss_scale_module, "PERIOD", 5)


def test_skipped_steps_are_not_divergence_and_a_resumed_run_keeps_its_scale(
    huge_initial_scale, tmp_path
):
    """The first ~20 steps of these runs are skipped; the run completes, every loss finite.
    Stopped by SIGTERM and resumed, it ends as the run never stopped: the loss scale and its
    counter come back from the checkpoint."""
    tiny = (*TINY, "train.compute_dtype=float16")
    reference = tmp_path / "reference"
    assert train_here(tmp_path, *tiny, f"hydra.run.dir={reference}") == 0
    summary = read_summary(reference)
    assert summary["status"] == "completed" and summary["diverged_at_step"] is None
    assert all(np.isfinite(float(row["train_loss"])) for row in rows(reference))

    stopped = tmp_path / "stopped"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(faults, "point", faults._point_from("epoch:4:TERM"))
        code = train_here(tmp_path, *tiny, f"hydra.run.dir={stopped}")
    assert code == 128 + signal.SIGTERM
    assert train_here(tmp_path, *tiny, f"resume={stopped}") == 0
    assert rows(stopped) == rows(reference)
    assert read_summary(stopped)["final"] == summary["final"]
    shutil.rmtree(tmp_path / "runs", ignore_errors=True)


def test_float16_refused_with_lbfgs(tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = ["train", "experiment=lbfgs_softmax", "train.compute_dtype=float16"]
    assert main([*args, f"hydra.run.dir={run_dir}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lrbench: error: train.compute_dtype=float16: not with optimizer=lbfgs")
    assert err.count("\n") == 1 and not run_dir.exists()


def test_float64_batch_norm_statistics_stay_float64(tmp_path):
    """float64 runs keep BatchNorm's statistics in float64 (flax's float32 running averages
    became float64 at their first update, and the epoch's scan refused the change)."""
    overrides = ("train.dtype=float64", "model.batch_norm=true", "train.epochs=1")
    with prepared(compose_config(*overrides)) as setup:
        state = initial(setup)
        assert floating_dtypes(state.batch_stats) == {"float64"}
        x = jnp.asarray(setup.dataset.x_train[:32], setup.dtype)
        y = jnp.asarray(setup.dataset.y_train[:32])
        new_state, _ = jax.jit(make_train_step(setup.model, setup.tx))(state, x, y)
        assert floating_dtypes(new_state.batch_stats) == {"float64"}
    run_dir = tmp_path / "run"
    assert main(["train", *overrides, "train.loop=scan", f"hydra.run.dir={run_dir}"]) == 0
    assert read_summary(run_dir)["status"] == "completed"
