"""The optax.contrib optimizers with the learning rate held in state.

Their update rules are optax's; what lrbench adds is the plumbing: the scheduled LR from
our state is the optimizer's own learning rate (or, for mechanize, its base optimizer's),
the effective step size is logged, and schedule-free runs are evaluated at their average.
So each is checked against optax's documented way to schedule it (inject_hyperparams with
a schedule), the logged LR against the step size in optax's state, and every one trains
the digits MLP with its default settings.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import compose_config
from optax import contrib

from lrbench import optim
from lrbench.cli import main
from lrbench.config import CosineConfig
from lrbench.optim.state_tree import find_states
from lrbench.runs import read_metrics, read_summary

N_STEPS = 12
SHAPES = {"w": (3, 4), "b": (4,)}
_rng = np.random.default_rng(3)
P0 = {key: _rng.normal(size=shape) for key, shape in SHAPES.items()}
TARGET = {key: _rng.normal(size=shape) for key, shape in SHAPES.items()}
NOISE = [
    {key: _rng.normal(scale=0.3, size=shape) for key, shape in SHAPES.items()}
    for _ in range(N_STEPS)
]
LR = 0.7
MULTIPLIER = optim.build_multiplier(CosineConfig(name="cosine", end_factor=0.2), N_STEPS, 4)


def schedule(count):
    return LR * MULTIPLIER(count)


def gradient(params, t):
    """A quadratic bowl around TARGET plus fixed noise, at the given parameters."""
    return jax.tree.map(lambda p, c, n: 1.5 * (p - c) + n, params, TARGET, NOISE[t])


def _reference_prodigy(c):
    return optax.inject_hyperparams(contrib.prodigy)(
        learning_rate=schedule, betas=(c.b1, c.b2), eps=c.eps, estim_lr0=c.estim_lr0,
        estim_lr_coef=c.estim_lr_coef, weight_decay=c.weight_decay,
        safeguard_warmup=c.safeguard_warmup,
    )  # fmt: skip


def _reference_dadapt(c):
    return optax.inject_hyperparams(contrib.dadapt_adamw)(
        learning_rate=schedule, betas=(c.b1, c.b2), eps=c.eps, estim_lr0=c.estim_lr0,
        weight_decay=c.weight_decay,
    )  # fmt: skip


def _reference_cocob(c):
    return optax.inject_hyperparams(contrib.cocob)(
        learning_rate=schedule, alpha=c.alpha, eps=c.eps, weight_decay=c.weight_decay
    )


def _reference_dog(c):
    return optax.inject_hyperparams(contrib.dog, static_args="init_step")(
        learning_rate=schedule, init_step=("heuristic", c.init_distance), eps=c.eps,
        weight_decay=c.weight_decay,
    )  # fmt: skip


def _reference_sf_adamw(c):
    return optax.inject_hyperparams(contrib.schedule_free_adamw)(
        learning_rate=schedule, b1=c.b1, b2=c.b2, eps=c.eps, weight_decay=c.weight_decay,
        weight_lr_power=c.weight_lr_power,
    )  # fmt: skip


def _reference_sf_sgd(c):
    return optax.inject_hyperparams(contrib.schedule_free_sgd)(
        learning_rate=schedule, b1=c.b1, weight_decay=c.weight_decay,
        weight_lr_power=c.weight_lr_power,
    )  # fmt: skip


def _reference_mechanize(c):
    return contrib.mechanize(
        optax.adam(schedule), weight_decay=c.weight_decay, eps=c.eps, s_init=c.s_init,
        num_betas=c.num_betas,
    )  # fmt: skip


# name -> (optax's own composition, the step size optax keeps: (state before, after) -> it)
CASES = {
    "prodigy": (_reference_prodigy, lambda b, a: find_states(b, contrib.ProdigyState)[0].estim_lr),
    "dadapt_adamw": (
        _reference_dadapt,
        lambda b, a: find_states(b, contrib.DAdaptAdamWState)[0].estim_lr,
    ),
    "cocob": (_reference_cocob, None),
    "dog": (
        _reference_dog,
        lambda b, a: (lambda s: s.max_dist / jnp.sqrt(s.sum_sq_norm_grads + 1e-8))(
            find_states(a, contrib.DoGState)[0]
        ),
    ),
    "schedule_free_adamw": (_reference_sf_adamw, None),
    "schedule_free_sgd": (_reference_sf_sgd, None),
    "mechanize": (
        _reference_mechanize,
        lambda b, a: jnp.sum(find_states(a, contrib.MechanicState)[0].s),
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_matches_optax_with_the_lr_as_a_schedule_and_logs_its_step_size(x64, name):
    """12 steps, float64, lr 0.7 x a cosine multiplier, weight decay 0.05: the parameters
    equal optax's own composition (rtol 1e-10), and current_lr is lr_t x the step size
    optax keeps in its state (D before the update, DoG's eta, mechanic's sum(s)), or lr_t."""
    overrides = [f"optimizer={name}", f"optimizer.lr={LR}", "optimizer.weight_decay=0.05"]
    cfg = compose_config(*overrides).optimizer
    reference_tx, step_size = CASES[name]
    reference_tx = reference_tx(cfg)
    tx = optim.build(cfg, MULTIPLIER, jnp.float64)
    params = ref_params = jax.tree.map(jnp.asarray, P0)
    state, ref_state = jax.jit(tx.init)(params), reference_tx.init(ref_params)
    update, ref_update = jax.jit(tx.update), jax.jit(reference_tx.update)
    for t in range(N_STEPS):
        updates, state = update(gradient(params, t), state, params)
        params = optax.apply_updates(params, updates)
        before = ref_state
        ref_updates, ref_state = ref_update(gradient(ref_params, t), ref_state, ref_params)
        ref_params = optax.apply_updates(ref_params, ref_updates)
        for key in SHAPES:
            np.testing.assert_allclose(params[key], ref_params[key], rtol=1e-10, atol=1e-12)
        factor = 1.0 if step_size is None else float(step_size(before, ref_state))
        expected = float(schedule(t)) * factor
        assert float(optim.current_lr(state)) == pytest.approx(expected, rel=1e-10)


def test_schedule_free_is_evaluated_at_its_average():
    """y = (1 - b1) z + b1 x (Defazio et al. 2024): the evaluation sees x, computed here from
    the state's y and z, not the y being trained."""
    from lrbench import data, models
    from lrbench.train.evaluate import Evaluator, make_evaluate, pad_split
    from lrbench.train.setup import run_keys
    from lrbench.train.state import create_state
    from lrbench.train.step import make_train_step

    cfg = compose_config("optimizer=schedule_free_adamw")
    dataset = data.load(cfg.dataset)
    model = models.build(cfg.model, dataset.spec, jnp.float32)
    tx = optim.build(cfg.optimizer, optax.constant_schedule(1.0), jnp.float32)
    state = create_state(model, tx, dataset.spec.input_shape, run_keys(0)[0], jnp.float32)
    step = jax.jit(make_train_step(model, tx))
    x, y = jnp.asarray(dataset.x_train[:128]), jnp.asarray(dataset.y_train[:128])
    for _ in range(20):
        state, _ = step(state, x, y)
    split = pad_split(dataset.x_val, dataset.y_val, 1024, np.float32)
    got = Evaluator(model, eval_params=optim.eval_params(cfg.optimizer))(state, {"val": split})
    z = find_states(state.opt_state, contrib.ScheduleFreeState)[0].z
    b1 = cfg.optimizer.b1
    average = jax.tree.map(lambda yi, zi: (yi - (1 - b1) * zi) / b1, state.params, z)
    evaluate = jax.jit(make_evaluate(model))
    want, trained = evaluate(state.replace(params=average), split), evaluate(state, split)
    np.testing.assert_allclose(got["val"].loss, want.loss, rtol=1e-5)
    assert abs(float(trained.loss) - float(want.loss)) > 1e-3  # y and x really differ


def test_schedule_free_runs_evaluate_through_the_hook(tmp_path, monkeypatch):
    calls = []
    original = contrib.schedule_free_eval_params

    def counting(state, params):
        calls.append(1)
        return original(state, params)

    monkeypatch.setattr(contrib, "schedule_free_eval_params", counting)
    args = ["optimizer=schedule_free_sgd", "train.epochs=1", f"hydra.run.dir={tmp_path}"]
    assert main(["train", *args]) == 0
    assert calls, "the run's evaluation must use schedule_free_eval_params"


CONTRIB = [
    "prodigy",
    "dadapt_adamw",
    "cocob",
    "dog",
    "schedule_free_adamw",
    "schedule_free_sgd",
    "mechanize",
]


@pytest.mark.parametrize("name", CONTRIB)
def test_trains_the_digits_mlp_with_default_settings(name, tmp_path):
    """The default run (MLP 64-256-256-10, 20 epochs, batch 128) with the optimizer's
    defaults reaches >= 0.93 test accuracy; the lr column logs the effective step size."""
    assert main(["train", f"optimizer={name}", f"hydra.run.dir={tmp_path}"]) == 0
    summary = read_summary(tmp_path)
    assert summary["status"] == "completed"
    assert summary["final"]["test_accuracy"] >= 0.93
    lrs = [row["lr"] for row in read_metrics(tmp_path)]
    assert all(np.isfinite(lrs)) and all(lr > 0 for lr in lrs)


@pytest.mark.parametrize("name", ["sgd_hd", "prodigy", "mechanize"])
def test_states_vmap_over_sweep_members(name):
    """Vectorized sweeps vmap over the train state: two members whose peak LRs differ by 2x
    (set in the state), updated and fed a validation loss under vmap, keep that ratio."""
    from lrbench.optim.learning_rate import scale_base_lr

    cfg = compose_config(f"optimizer={name}", "schedule=reduce_on_plateau")
    tx = optim.watch_validation(
        optim.build(cfg.optimizer, optax.constant_schedule(1.0)), cfg.schedule, jnp.float32
    )
    observe = optim.validation_observer(cfg.schedule, jnp.float32)
    params = {"w": jnp.ones((2, 3))}
    state = scale_base_lr(jax.vmap(tx.init)(params), jnp.array([1.0, 0.5]))

    def step(state, params):
        updates, state = tx.update(jax.tree.map(lambda p: 2 * p, params), state, params)
        return observe(state, jnp.float32(1.0)), optax.apply_updates(params, updates)

    state, params = jax.jit(jax.vmap(step))(state, params)
    lr = np.asarray(jax.vmap(optim.current_lr)(state))
    assert lr[1] == pytest.approx(0.5 * lr[0], rel=1e-5)
