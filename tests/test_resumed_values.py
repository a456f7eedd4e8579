"""A resumed run's allowed changes reach the values its restored state holds (issue 13.1).

In-state values are checked against an independent reference: the state a fresh run of the
new config starts with. The ``seeds`` claims of the registry are checked by their effect:
a value listed there changes no update once the state exists, every other one does.
Real resumed runs (SIGTERM, then ``resume=`` with a change) show it end to end.
"""

from __future__ import annotations

import shutil
import signal

import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import compose_config
from param_trees import SHAPES
from stopped_runs import STEPS_PER_EPOCH, rows, train_here

from lrbench import faults, optim
from lrbench.errors import ConfigError
from lrbench.optim.hyperparams import sweepable
from lrbench.optim.optimizers import OPTIMIZERS
from lrbench.optim.plateau import PlateauState
from lrbench.optim.resumed_values import apply_resume_changes
from lrbench.optim.state_tree import find_states
from lrbench.runs import read_summary

PARAMS = {k: jnp.full(s, 0.5) for k, s in SHAPES.items()}
_rng = np.random.default_rng(7)
GRADS = [
    {k: jnp.asarray(_rng.normal(size=s), jnp.float32) for k, s in SHAPES.items()} for _ in range(30)
]
TRAINED = 20  # steps before the "checkpoint"


def build(*overrides: str):
    cfg = compose_config(*overrides)
    tx = optim.watch_validation(
        optim.build(cfg.optimizer, optim.build_multiplier(cfg.schedule, 100, 10)),
        cfg.schedule,
        jnp.float32,
    )
    return cfg, tx


def steps(tx, params, state, first: int, last: int):
    """Steps ``first`` to ``last - 1`` (gradients fixed per step, parameters moving):
    (params, state, the updates stacked)."""
    updates = []
    for t in range(first, last):
        update, state = tx.update(GRADS[t], state, params)
        params = optax.apply_updates(params, update)
        updates.append(update["w"])
    return params, state, np.stack(updates)


def trained_state(tx):
    params, state, _ = steps(tx, PARAMS, tx.init(PARAMS), 0, TRAINED)
    return params, state


def next_updates(tx, params, state):
    """What the state makes happen: the updates of the steps after the checkpoint."""
    return steps(tx, params, state, TRAINED, len(GRADS))[2]


def changed_value(name: str, value: float) -> float:
    """A clearly different value in the key's range (tiny ones such as eps become 0.05)."""
    if value <= 0.01:
        return 0.05
    return value * 0.5 if value < 1 else value * 2 + 0.25


def held_values(opt_state, name: str) -> list:
    return [float(v) for _, v in optax.tree_utils.tree_get_all_with_path(opt_state, name)]


# mechanize's scale starts at s_init = 1e-8: its weight decay term (x s) stays below float32
# resolution for many steps unless the scale starts larger
VISIBLE = {"mechanize": ("optimizer.s_init=0.01",)}
CASES = [
    (name, key)
    for name in sorted(OPTIMIZERS)
    for key in sweepable(name)
    if key != "lr" and key not in OPTIMIZERS[name].seeds
]


@pytest.mark.parametrize(("name", "key"), CASES)
def test_a_changed_hyperparameter_is_the_new_configs_value_and_acts(name, key):
    # lr 0.5: schedule-free weights steps by lr ** weight_lr_power, inert at lr = 1
    cfg, tx = build(f"optimizer={name}", "optimizer.lr=0.5", *VISIBLE.get(name, ()))
    old = getattr(cfg.optimizer, key)
    new = changed_value(key, old)
    params, state = trained_state(tx)
    resumed = apply_resume_changes(state, {f"optimizer.{key}": (old, new)}, cfg.optimizer)
    _, fresh_tx = build(f"optimizer={name}", f"optimizer.{key}={new}")
    reference = held_values(fresh_tx.init(PARAMS), key)  # a new run of the new config
    assert held_values(resumed, key) == pytest.approx(reference) and reference
    assert not np.array_equal(next_updates(tx, params, state), next_updates(tx, params, resumed)), (
        f"{name}.{key} changes nothing"
    )


SEEDS = [(name, key) for name in sorted(OPTIMIZERS) for key in OPTIMIZERS[name].seeds]


@pytest.mark.parametrize(("name", "key"), [s for s in SEEDS if s[1] != "lr"])
def test_a_seed_value_changes_no_update_once_the_state_exists(name, key):
    """What the registry calls a seed really is one (else refusing it would be wrong)."""
    cfg, tx = build(f"optimizer={name}", "optimizer.lr=0.5")
    params, state = trained_state(tx)
    new = changed_value(key, getattr(cfg.optimizer, key))
    altered = optax.tree_utils.tree_set(state, **{key: jnp.asarray(new)})
    np.testing.assert_array_equal(
        next_updates(tx, params, state), next_updates(tx, params, altered)
    )


@pytest.mark.parametrize(("name", "key"), SEEDS)
def test_a_seed_value_is_refused_in_one_line(name, key):
    cfg, tx = build(f"optimizer={name}")
    old = getattr(cfg.optimizer, key)
    with pytest.raises(ConfigError, match=f"optimizer.{key}=.*start a new run"):
        apply_resume_changes(
            trained_state(tx)[1],
            {f"optimizer.{key}": (old, changed_value(key, old))},
            cfg.optimizer,
        )


@pytest.mark.parametrize("name", ["sgd", "adam", "prodigy", "mechanize", "schedule_free_adamw"])
def test_a_changed_peak_lr_is_applied_from_the_next_update(name):
    cfg, tx = build(f"optimizer={name}")
    params, state = trained_state(tx)
    resumed = apply_resume_changes(state, {"optimizer.lr": (cfg.optimizer.lr, 0.37)}, cfg.optimizer)
    _, state_after = tx.update(GRADS[TRAINED], resumed, params)
    _, fresh_tx = build(f"optimizer={name}", "optimizer.lr=0.37")
    fresh = fresh_tx.init(PARAMS)
    assert held_values(resumed, "base_lr") == pytest.approx(held_values(fresh, "base_lr"))
    # the scheduled factor applied to the next update is 0.37 x the multiplier (constant: 1)
    assert float(optim.current_lr(state_after)) / float(
        optim.current_lr(tx.update(GRADS[TRAINED], state, params)[1])
    ) == pytest.approx(0.37 / cfg.optimizer.lr, rel=1e-6)


def test_a_changed_peak_lr_keeps_the_plateau_reduction_reached():
    cfg, tx = build("optimizer=adam", "schedule=reduce_on_plateau")
    _, state = trained_state(tx)
    observe = optim.validation_observer(cfg.schedule, jnp.float32)
    for _ in range(12):  # a stalled validation loss: the LR is cut
        state = observe(state, jnp.float32(1.0))
    (plateau,) = find_states(state, PlateauState)
    scale = float(plateau.monitor.inner_state.scale)
    assert scale < 1
    resumed = apply_resume_changes(state, {"optimizer.lr": (cfg.optimizer.lr, 0.02)}, cfg.optimizer)
    assert held_values(resumed, "base_lr") == pytest.approx([0.02 * scale])


@pytest.mark.parametrize(("key", "new"), [("patience", 7), ("cooldown", 3), ("min_scale", 0.05)])
def test_changed_plateau_settings_are_the_new_configs(key, new):
    cfg, tx = build("optimizer=adam", "schedule=reduce_on_plateau")
    old = getattr(cfg.schedule, key)
    resumed = apply_resume_changes(
        trained_state(tx)[1], {f"schedule.{key}": (old, new)}, cfg.optimizer
    )
    _, fresh_tx = build("optimizer=adam", "schedule=reduce_on_plateau", f"schedule.{key}={new}")
    (plateau,) = find_states(resumed, PlateauState)
    (reference,) = find_states(fresh_tx.init(PARAMS), PlateauState)
    assert held_values(plateau, key) == held_values(reference, key) != [old]


def test_hypergradient_lr_is_written():
    cfg, tx = build("optimizer=adam_hd")
    resumed = apply_resume_changes(
        trained_state(tx),
        {"optimizer.hypergrad_lr": (cfg.optimizer.hypergrad_lr, 1e-5)},
        cfg.optimizer,
    )
    assert held_values(resumed, "hypergrad_lr") == pytest.approx([1e-5])


# ------------------------------------------------------------- real runs, stopped and resumed
RUN = ("model.widths=[32]", "train.epochs=6", "train.log_every=1", "train.checkpoint_every=1")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("resumed_values")


def stopped_run(work, name: str, *overrides: str):
    """A run stopped by SIGTERM in its 3rd epoch (checkpoint at step 27)."""
    run_dir = work / name
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(faults, "point", faults._point_from("epoch:3:TERM"))
        code = train_here(work, *RUN, *overrides, f"hydra.run.dir={run_dir}")
    assert code == 128 + signal.SIGTERM
    return run_dir


def lr_column(run_dir) -> list[float]:
    return [float(row["lr"]) for row in rows(run_dir)]


def test_a_resumed_run_with_a_new_lr_trains_and_records_it(work):
    """lr 1e-3 for 3 epochs then 1e-2 equals one run whose step schedule multiplies 1e-3 by
    10 at epoch 3 (Adam's update is lr x direction: the same numbers but rounding)."""
    run_dir = stopped_run(work, "lr")
    code = train_here(
        work, *RUN, "optimizer.lr=0.01", f"resume={run_dir}", "resume_allow_changes=[optimizer.lr]"
    )
    assert code == 0
    boundary = 3 * STEPS_PER_EPOCH
    lrs = lr_column(run_dir)
    assert lrs[:boundary] == pytest.approx([1e-3] * boundary)
    assert lrs[boundary:] == pytest.approx([1e-2] * (len(lrs) - boundary))
    reference = work / "step_schedule"
    step = ("schedule=step", "schedule.boundaries=[3]", "schedule.unit=epoch", "schedule.factor=10")
    assert train_here(work, *RUN, *step, f"hydra.run.dir={reference}") == 0
    for got, want in zip(rows(run_dir), rows(reference), strict=True):
        for column in ("lr", "train_loss", "val_loss", "val_accuracy"):
            if want[column]:
                assert float(got[column]) == pytest.approx(float(want[column]), rel=2e-4, abs=1e-6)
    assert read_summary(run_dir)["resume_changes"] == {"optimizer.lr": [0.001, 0.01]}


@pytest.mark.parametrize(
    ("name", "run", "change"),
    [
        ("weight_decay", ("optimizer=adamw",), "optimizer.weight_decay=0.5"),
        ("b1", ("optimizer=adam",), "optimizer.b1=0.5"),
        (
            "patience",
            ("optimizer.lr=0.05", "schedule=reduce_on_plateau", "schedule.patience=4"),
            "schedule.patience=1",
        ),
    ],
)
def test_a_resumed_run_with_a_changed_state_value_takes_it(work, name, run, change):
    """Before the fix the restored state kept the old value: the numbers were the plain
    run's. Now they part from it at the resume step, and only there."""
    plain = work / f"plain_{name}"
    assert train_here(work, *RUN, *run, f"hydra.run.dir={plain}") == 0
    run_dir = stopped_run(work, name, *run)
    key = change.split("=")[0]
    assert (
        train_here(work, *RUN, *run, change, f"resume={run_dir}", f"resume_allow_changes=[{key}]")
        == 0
    )
    boundary = 3 * STEPS_PER_EPOCH
    losses = [[row["train_loss"] for row in rows(d)] for d in (run_dir, plain)]
    assert losses[0][:boundary] == losses[1][:boundary]
    assert losses[0][boundary + 1 :] != losses[1][boundary + 1 :]


def test_a_seed_value_change_is_refused_and_touches_nothing(work, cli):
    run_dir = stopped_run(work, "seed_value", "optimizer=adam_hd")
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    result = cli(
        "train",
        *RUN,
        "optimizer=adam_hd",
        "optimizer.lr=0.01",
        f"resume={run_dir}",
        "resume_allow_changes=[optimizer.lr]",
        cwd=work,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "lrbench: error: optimizer.lr=0.01: only seeds adam_hd's adaptive state at "
        "step 0, so a resumed run cannot change it: start a new run"
    ]
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before
    shutil.rmtree(run_dir)
