"""metrics.csv's grad_norm, update_norm, param_norm and update_ratio (issue 13, item 8).

Each epoch's last step computes the global L2 norms of the gradient (unscaled, before
clipping), of the update optax returned and of the parameters the step started from; the
recorder writes them, and update_ratio = update_norm / param_norm, on the epoch's last row
(the other rows leave them empty). The reference here is an independent float64 numpy
replay of softmax regression on digits, trained full-batch (one step per epoch) so that
every step sees the whole train split whatever its order.
"""

from __future__ import annotations

import math
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import compose_config

from lrbench import data, models, optim
from lrbench.analysis import plots
from lrbench.analysis.table import load_table
from lrbench.cli import main
from lrbench.optim.loss_scale import dynamic_loss_scaling
from lrbench.runs import METRIC_COLUMNS, read_metrics
from lrbench.train import step as step_module
from lrbench.train.recorder import Recorder
from lrbench.train.setup import run_keys
from lrbench.train.state import create_state
from lrbench.train.step import StepMetrics, make_lbfgs_step, make_train_step

NORMS = ("grad_norm", "update_norm", "param_norm", "update_ratio")
OLD_COLUMNS = METRIC_COLUMNS[: METRIC_COLUMNS.index("elapsed_s") + 1]
SHORT = ["train.epochs=2", "train.log_every=4"]  # the default run (digits MLP, Adam), shorter


def _run(path, *overrides: str) -> list[dict]:
    assert main(["train", *overrides, f"hydra.run.dir={path}"]) == 0
    return read_metrics(path)


def _column(rows: list[dict], name: str) -> np.ndarray:
    return np.array([row[name] for row in rows], np.float64)


def _epoch_ends(rows: list[dict]) -> list[dict]:
    """The rows with the norms: each epoch's last (the others have none)."""
    return [row for row in rows if row["grad_norm"] is not None]


# ------------------------------------------------------------- the float64 numpy reference
def _softmax_regression(theta: tuple[np.ndarray, np.ndarray], x: np.ndarray, y: np.ndarray):
    """Mean cross-entropy of x @ W + b and its gradient (dW, db), in float64."""
    w, b = theta
    z = x @ w + b
    z -= z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    loss = np.mean(log_norm - z[np.arange(len(y)), y])
    dz = np.exp(z - log_norm[:, None])
    dz[np.arange(len(y)), y] -= 1.0
    dz /= len(y)
    return loss, (x.T @ dz, dz.sum(axis=0))


def _norm(tree) -> float:
    return math.sqrt(sum(float(np.sum(np.square(leaf))) for leaf in tree))


def _full_batch_problem(*overrides: str):
    """The config of a full-batch softmax regression run, its train split in float64 and
    the initial (W, b) of that run (the same init key and model)."""
    cfg = compose_config("model=linear", *overrides)
    dataset = data.load(cfg.dataset)
    model = models.build(cfg.model, dataset.spec, jnp.float32)
    init_key, _ = run_keys(cfg.seed)
    state = create_state(model, optax.sgd(0.0), dataset.spec.input_shape, init_key, jnp.float32)
    (bias, kernel) = sorted(jax.tree.leaves(state.params), key=lambda a: a.ndim)
    theta = (np.asarray(kernel, np.float64), np.asarray(bias, np.float64))
    x = dataset.x_train.astype(np.float64)
    return len(dataset.y_train), x, dataset.y_train.astype(np.int64), theta


def _replay(x, y, theta, steps: int, update_of) -> list[dict]:
    """The rows a run with log_every=1 should write: per step the loss, the norms and the
    ratio, from numpy; ``update_of(gradient, t)`` is the optimizer's update (float64)."""
    rows = []
    for t in range(1, steps + 1):
        loss, gradient = _softmax_regression(theta, x, y)
        update = update_of(gradient, t)
        rows.append(
            {
                "train_loss": loss,
                "grad_norm": _norm(gradient),
                "update_norm": _norm(update),
                "param_norm": _norm(theta),
                "update_ratio": _norm(update) / _norm(theta),
            }
        )
        theta = tuple(p + u for p, u in zip(theta, update, strict=True))
    return rows


def _adam(lr: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
    moments: dict = {}

    def update_of(gradient, t):
        m = moments.setdefault("m", [np.zeros_like(g) for g in gradient])
        v = moments.setdefault("v", [np.zeros_like(g) for g in gradient])
        update = []
        for i, g in enumerate(gradient):
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            m_hat, v_hat = m[i] / (1 - b1**t), v[i] / (1 - b2**t)
            update.append(-lr * m_hat / (np.sqrt(v_hat) + eps))
        return update

    return update_of


def _clipped_sgd(lr: float, max_norm: float):
    def update_of(gradient, t):
        scale = min(1.0, max_norm / _norm(gradient))
        return [-lr * scale * g for g in gradient]

    return update_of


def _assert_rows_match(rows: list[dict], expected: list[dict], rel: float) -> None:
    assert [r["step"] for r in rows] == list(range(1, len(expected) + 1))
    for row, want in zip(rows, expected, strict=True):
        for name, value in want.items():
            assert row[name] == pytest.approx(value, rel=rel), (row["step"], name)


# ------------------------------------------------------------------------------- the tests
def test_the_columns_equal_a_float64_numpy_replay(tmp_path):
    """Adam on full-batch softmax regression: each row (one step) holds the norms of that
    step's gradient, of Adam's update (not lr x gradient) and of the parameters it started
    from, as numpy computes them in float64 from the same initial parameters."""
    steps, lr = 5, 0.05
    overrides = [f"optimizer.lr={lr}", f"train.epochs={steps}", "train.log_every=1"]
    n_train, x, y, theta = _full_batch_problem(*overrides)
    rows = _run(tmp_path / "run", "model=linear", f"train.batch_size={n_train}", *overrides)
    expected = _replay(x, y, theta, steps, _adam(lr))
    _assert_rows_match(rows, expected, rel=1e-4)  # float32 training against float64
    for row in rows:
        assert row["update_ratio"] == pytest.approx(row["update_norm"] / row["param_norm"])
    # Adam's first update is ~lr * sign(g) per weight: nowhere near lr * |g|
    assert rows[0]["update_norm"] > 10 * lr * rows[0]["grad_norm"]


def test_grad_norm_is_taken_before_clipping(tmp_path):
    """A small grad_clip_norm shrinks the update to lr x clip; grad_norm stays the norm of
    the gradient itself."""
    steps, lr, clip = 4, 0.5, 0.01
    overrides = [
        "optimizer=sgd",
        f"optimizer.lr={lr}",
        f"optimizer.grad_clip_norm={clip}",
        f"train.epochs={steps}",
        "train.log_every=1",
    ]
    n_train, x, y, theta = _full_batch_problem(*overrides)
    rows = _run(tmp_path / "run", "model=linear", f"train.batch_size={n_train}", *overrides)
    _assert_rows_match(rows, _replay(x, y, theta, steps, _clipped_sgd(lr, clip)), rel=1e-4)
    assert _column(rows, "update_norm") == pytest.approx(lr * clip, rel=1e-5)
    assert (_column(rows, "grad_norm") > 20 * clip).all()


def test_the_epochs_last_row_holds_its_last_steps_norms():
    """log_every=3 over 7 steps: rows at steps 3, 6 and 7 (the epoch's end). Only step 7
    computed the norms (the runner's NaN elsewhere): they and their ratio are on row 7; a
    diverged epoch's rows end at its bad step, without them."""
    written: list[dict] = []
    run_dir = types.SimpleNamespace(append_metrics=written.extend)
    recorder = Recorder(run_dir, steps_per_epoch=7, log_every=3)
    nan = np.full(6, np.nan, np.float32)
    grad, update, param = (np.append(nan, v).astype(np.float32) for v in (7.0, 0.7, 30.0))
    ones = np.ones(7, np.float32)
    assert not recorder.record_epoch(StepMetrics(ones, ones, ones, grad, update, param), None, 1)
    assert [row["step"] for row in written] == [3, 6, 7]
    assert [set(NORMS) & set(row) for row in written[:2]] == [set(), set()]
    assert [written[-1][name] for name in NORMS] == pytest.approx([7.0, 0.7, 30.0, 0.7 / 30])
    diverging = np.array([1, 1, 1, 1, np.inf, 1, 1], np.float32)
    assert recorder.record_epoch(StepMetrics(diverging, ones, ones, grad, update, param), None, 2)
    assert [row["step"] for row in written[3:]] == [9, 12]
    assert not set(NORMS) & set(written[-1])


@pytest.fixture
def tiny_step():
    """Softmax regression on 32 digits, a step for a given optimizer."""
    cfg = compose_config("model=linear")
    dataset = data.load(cfg.dataset)
    model = models.build(cfg.model, dataset.spec, jnp.float32)
    x, y = jnp.asarray(dataset.x_train[:32], jnp.float32), jnp.asarray(dataset.y_train[:32])

    def step(tx):
        state = create_state(model, tx, dataset.spec.input_shape, jax.random.key(0), jnp.float32)
        new_state, metrics = jax.jit(make_train_step(model, tx))(state, x, y)
        return state, new_state, jax.device_get(metrics)

    return step


def test_a_scaled_loss_gives_the_unscaled_gradient_norm(tiny_step):
    """With loss scaling (float16 runs) the step differentiates loss x scale: the norm
    recorded is the true gradient's, equal to the unscaled step's (a power of two: exact)."""
    _, _, plain = tiny_step(optax.sgd(0.1))
    _, _, scaled = tiny_step(dynamic_loss_scaling(optax.sgd(0.1), initial_scale=2.0**12))
    for name in ("grad_norm", "update_norm", "param_norm"):
        assert getattr(scaled, name) == pytest.approx(getattr(plain, name), rel=1e-6), name
    # a scale that overflows: the update is skipped (0) and the gradient norm is not finite
    _, _, skipped = tiny_step(dynamic_loss_scaling(optax.sgd(0.1), initial_scale=3e38))
    assert not np.isfinite(skipped.grad_norm)
    assert skipped.update_norm == 0.0
    assert skipped.param_norm == pytest.approx(plain.param_norm, rel=1e-6)


def test_lbfgs_records_the_line_search_step(x64):
    """L-BFGS: update_norm is the norm of the step its line search took (parameter
    difference), grad_norm that of the objective's gradient (L2 penalty included)."""
    cfg = compose_config("experiment=lbfgs_softmax", "train.dtype=float64")
    wd = cfg.optimizer.weight_decay
    dataset = data.load(cfg.dataset)
    model = models.build(cfg.model, dataset.spec, jnp.float64)
    tx = optim.build(cfg.optimizer, optim.build_multiplier(cfg.schedule, 3, 1), jnp.float64)
    state = create_state(model, tx, dataset.spec.input_shape, jax.random.key(0), jnp.float64)
    step = jax.jit(make_lbfgs_step(model, tx, wd))
    x, y = dataset.x_train.astype(np.float64), dataset.y_train.astype(np.int64)
    for _ in range(3):
        before = [np.asarray(leaf) for leaf in jax.tree.leaves(state.params)]
        kernel, bias = sorted(before, key=lambda a: -a.ndim)
        _, (d_kernel, d_bias) = _softmax_regression((kernel, bias), x, y)
        state, metrics = step(state, jnp.asarray(x), jnp.asarray(y))
        after = [np.asarray(leaf) for leaf in jax.tree.leaves(state.params)]
        assert float(metrics.grad_norm) == pytest.approx(
            _norm([d_kernel + wd * kernel, d_bias + wd * bias]), rel=1e-9
        )
        assert float(metrics.update_norm) == pytest.approx(
            _norm([a - b for a, b in zip(after, before, strict=True)]), rel=1e-9
        )
        assert float(metrics.param_norm) == pytest.approx(_norm(before), rel=1e-12)
        assert float(metrics.update_norm) > 0


def test_an_lbfgs_run_writes_them(tmp_path):
    rows = _run(tmp_path / "run", "experiment=lbfgs_softmax", "train.epochs=3")
    assert [r["step"] for r in rows] == [1, 2, 3]
    for row in rows:
        assert all(np.isfinite(row[name]) and row[name] > 0 for name in NORMS)
        assert row["update_ratio"] == pytest.approx(row["update_norm"] / row["param_norm"])


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("default") / "run"
    return path, _run(path, *SHORT)


def test_a_default_run_keeps_its_old_columns_and_values(default_run, tmp_path, monkeypatch):
    """The new columns come after the ten there were, and the numbers of those ten are the
    same as a run whose step computes no norms (elapsed_s, wall time, aside)."""
    path, rows = default_run
    assert METRIC_COLUMNS[: len(OLD_COLUMNS)] == OLD_COLUMNS
    assert METRIC_COLUMNS[len(OLD_COLUMNS) :] == NORMS
    with open(path / "metrics.csv") as f:
        assert f.readline().strip().split(",") == list(METRIC_COLUMNS)
    ends = _epoch_ends(rows)
    assert [r["step"] for r in ends] == [r["step"] for r in rows if r["epoch"] in (1.0, 2.0)]
    for row in ends:
        assert all(np.isfinite(row[name]) and row[name] > 0 for name in NORMS)

    zero = jnp.zeros([], jnp.float32)
    monkeypatch.setattr(step_module, "norms", lambda *args: (zero, zero, zero))
    without = _run(tmp_path / "without", *SHORT)
    assert _column(_epoch_ends(without), "grad_norm").tolist() == [0.0] * len(ends)
    kept = [c for c in OLD_COLUMNS if c != "elapsed_s"]
    assert [{c: r[c] for c in kept} for r in rows] == [{c: r[c] for c in kept} for r in without]


def test_they_are_tensorboard_scalars(default_run, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard.compat.notf", types.ModuleType("notf"))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    path, rows = default_run
    rows = _epoch_ends(rows)
    (event_file,) = path.glob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(event_file))
    accumulator.Reload()
    for name in NORMS:
        scalars = accumulator.Scalars(name)
        assert [s.step for s in scalars] == [int(r["step"]) for r in rows], name
        assert [s.value for s in scalars] == pytest.approx(_column(rows, name), rel=1e-6), name


def test_plot_curves_draws_update_ratio(default_run, tmp_path, capsys):
    path, rows = default_run
    rows = _epoch_ends(rows)
    assert set(NORMS) <= set(plots.Y_COLUMNS)
    fig = plots.curves(load_table([path]), "update_ratio", hue="optimizer.name")
    (line,) = [line for line in fig.axes[0].get_lines() if len(line.get_xdata())]
    assert line.get_xdata().tolist() == [r["step"] for r in rows]
    assert line.get_ydata() == pytest.approx(_column(rows, "update_ratio"), rel=1e-12)
    assert fig.axes[0].get_ylabel() == "update_ratio"
    out = tmp_path / "ratio.png"
    assert main(["plot", "curves", str(path), "--y", "update_ratio", "-o", str(out)]) == 0
    assert out.stat().st_size > 10_000
    assert main(["plot", "curves", str(path), "--y", "grad_norm", "-o", str(out)]) == 0


def test_a_float16_run_records_unscaled_finite_norms(default_run, tmp_path):
    """Loss scaling multiplies the loss by 2**15: the gradient norm recorded is the true
    one, close to the float32 run's (float16 compute rounds: not equal)."""
    rows = _epoch_ends(default_run[1])
    half = _epoch_ends(_run(tmp_path / "half", *SHORT, "train.compute_dtype=float16"))
    assert [r["step"] for r in half] == [r["step"] for r in rows]
    for name in NORMS:
        assert np.isfinite(_column(half, name)).all(), name
        assert _column(half, name)[0] == pytest.approx(_column(rows, name)[0], rel=0.05), name


def test_vmap_members_each_get_their_own(tmp_path):
    """Two LRs in one vmapped program: each member's norms are its own, equal to those of
    the single run at its LR."""
    lrs = [1e-3, 1e-1]
    overrides = ["train.epochs=1", "train.log_every=3"]
    sweep = tmp_path / "sweep"
    args = ["train", "sweep=vmap", f"sweep.lr={lrs}", *overrides, f"hydra.run.dir={sweep}"]
    assert main(args) == 0
    members = sorted((p for p in sweep.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    slow, fast = (_epoch_ends(read_metrics(member)) for member in members)
    alone = _epoch_ends(_run(tmp_path / "alone", f"optimizer.lr={lrs[1]}", *overrides))
    assert _column(fast, "update_norm")[0] > 20 * _column(slow, "update_norm")[0]
    assert _column(slow, "param_norm")[0] != _column(fast, "param_norm")[0]
    for name in NORMS:  # batched kernels sum in another order: not bitwise
        assert _column(fast, name) == pytest.approx(_column(alone, name), rel=1e-4), name
