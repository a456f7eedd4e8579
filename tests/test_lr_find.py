"""The LR range test: fastai's rules (transcribed below from fastai.callback.schedule, the
reference), the ramp and data order on device, ``lrbench find-lr`` and ``optimizer.lr=auto``
end to end."""

from __future__ import annotations

import csv
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import compose_config

from lrbench.cli import main
from lrbench.lr_find.rules import minimum, n_recorded, smooth, steepest, suggest, valley
from lrbench.runs import read_config, read_metrics, read_summary


# ------------------------------------------------- fastai's published rules, transcribed
def fastai_valley(lrs, losses):
    """fastai.callback.schedule.valley, line for line."""
    n = len(losses)
    max_start, max_end = 0, 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(0, i):
            if (losses[i] < losses[j]) and (lds[i] < lds[j] + 1):
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    idx = max_start + int(sections) + int(sections / 2)
    return float(lrs[idx])


def fastai_steep(lrs, losses):
    """fastai.callback.schedule.steep."""
    grads = (losses[1:] - losses[:-1]) / (np.log(lrs[1:]) - np.log(lrs[:-1]))
    return float(lrs[grads.argmin()])


def fastai_minimum(lrs, losses):
    """fastai.callback.schedule.minimum."""
    return float(lrs[losses.argmin()]) / 10


def fastai_lr_find(lrs, raw_losses, num_it, beta=0.98):
    """LRFinder + Recorder + Learner.lr_find: the recorded smoothed losses (AvgSmoothLoss:
    lerp, debiased), stopping after the batch whose smoothed loss exceeds 4x the best, then
    the suggestions on recorded[num_it // 10 : -5]."""
    recorded_lrs, recorded, val, best = [], [], 0.0, math.inf
    for count, (lr, loss) in enumerate(zip(lrs, raw_losses, strict=True), start=1):
        val = loss + beta * (val - loss)  # torch.lerp(loss, val, beta)
        smooth_loss = val / (1 - beta**count)
        recorded_lrs.append(lr)
        recorded.append(smooth_loss)
        best = min(best, smooth_loss)
        if smooth_loss > 4 * best:
            break
    window_lrs = np.array(recorded_lrs[num_it // 10 : -5])
    window = np.array(recorded[num_it // 10 : -5])
    suggestions = {
        "valley": fastai_valley(window_lrs, window),
        "steepest": fastai_steep(window_lrs, window),
        "minimum": fastai_minimum(window_lrs, window),
    }
    return len(recorded), suggestions


def ours(lrs, raw_losses, num_it):
    smoothed = smooth(raw_losses, 0.98)
    n = n_recorded(smoothed, 4.0)
    return n, {name: s.lr for name, s in suggest(lrs[:n], smoothed[:n], num_it).items()}


# --------------------------------------------------------------------------------- rules
def test_rules_land_where_the_algorithms_say_on_a_curve_with_a_known_steep_region():
    """A piecewise-linear loss in log10(lr): flat to 1e-5, -0.2/decade to 1e-3, the steep
    region -1.5/decade to 1e-2, -0.1/decade to the minimum at 1e-1, then a steep rise."""
    lrs = np.logspace(-7, 1, 161)  # 20 points per decade
    x = np.log10(lrs)
    loss = np.interp(x, [-7, -5, -3, -2, -1, 1], [2.3, 2.3, 1.9, 0.4, 0.3, 5.0])
    decade = lambda e: int(np.argmin(np.abs(x - e)))  # noqa: E731
    # steepest: the left point of the steepest segment, inside [1e-3, 1e-2)
    assert decade(-3) <= steepest(lrs, loss) < decade(-2)
    # minimum: the lowest point, 1e-1 (its suggestion is a tenth of that)
    assert minimum(lrs, loss) == decade(-1)
    # valley: the longest strictly decreasing run starts at the last flat point (1e-5) and
    # ends at the minimum; fastai records its start as end - length = one point before it
    start, end = decade(-5) - 1, decade(-1)
    sections = (end - start) / 3
    assert valley(lrs, loss) == start + int(sections) + int(sections / 2)
    # and the pipeline on that (noise-free) curve agrees with fastai's transcription
    assert ours(lrs, loss, len(lrs)) == fastai_lr_find(lrs, loss, len(lrs))


@pytest.mark.parametrize("seed", range(8))
def test_suggestions_equal_fastai_on_noisy_range_test_curves(seed):
    """Noisy curves that fall, then diverge (so the 4x stop fires at different points)."""
    rng = np.random.default_rng(seed)
    num_it = int(rng.integers(60, 200))
    lrs = 1e-7 * (1e8) ** (np.arange(num_it) / (num_it - 1))
    x = np.log10(lrs)
    center = rng.uniform(-4, -2)
    loss = 2.3 - 2.0 / (1 + np.exp(-3 * (x - center))) + np.exp(2.5 * (x - center - 2.5))
    loss = loss * np.exp(rng.normal(scale=0.15, size=num_it))
    n, got = ours(lrs, loss, num_it)
    n_fastai, want = fastai_lr_find(lrs, loss, num_it)
    assert n == n_fastai
    for name in want:
        assert got[name] == pytest.approx(want[name], rel=1e-12), name


@pytest.mark.parametrize("seed", range(40))
def test_valley_equals_fastai_on_random_sequences(seed):
    """Random sequences exercise fastai's bookkeeping (the start taken when the end first
    becomes the longest, a start of -1) that smooth curves rarely reach."""
    rng = np.random.default_rng(seed)
    losses = rng.normal(size=int(rng.integers(2, 40)))
    lrs = np.arange(1, len(losses) + 1, dtype=float)
    assert float(lrs[valley(lrs, losses)]) == fastai_valley(lrs, losses)


def test_smoothing_is_the_debiased_moving_average():
    losses = np.random.default_rng(0).uniform(0, 3, size=50)
    i = np.arange(50)
    for beta in (0.0, 0.5, 0.98):
        lag = i[:, None] - i[None, :]  # weight of loss k in average i: (1 - beta) beta^(i - k)
        weights = np.where(lag >= 0, (1 - beta) * beta ** np.maximum(lag, 0), 0.0)
        expected = (weights @ losses) / (1 - beta ** (i + 1))
        np.testing.assert_allclose(smooth(losses, beta), expected, rtol=1e-12)


# ----------------------------------------------------------------------------- end to end
def _read_csv(path):
    with open(path / "lr_find.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {key: np.array([float(row[key]) for row in rows]) for key in rows[0]}


RAMPS = {
    "exponential": ([], lambda i, n: 1e-7 * 1e8 ** (i / (n - 1))),
    "linear": (
        ["lr_find.ramp=linear", "lr_find.max_lr=2.0", "lr_find.num_steps=40"],
        lambda i, n: 1e-7 + (2.0 - 1e-7) * i / (n - 1),
    ),
}


@pytest.mark.parametrize(("overrides", "ramp"), RAMPS.values(), ids=RAMPS.keys())
def test_find_lr_writes_csv_plot_and_summary(overrides, ramp, tmp_path):
    args = ["find-lr", "optimizer=sgd", *overrides, f"hydra.run.dir={tmp_path}"]
    assert main(args) == 0
    table = _read_csv(tmp_path)
    summary = read_summary(tmp_path)
    n, num_it = len(table["step"]), summary["num_steps"]
    np.testing.assert_array_equal(table["step"], np.arange(1, n + 1))
    np.testing.assert_allclose(table["lr"], ramp(np.arange(n), num_it), rtol=1e-14)
    np.testing.assert_allclose(table["smoothed_loss"], smooth(table["loss"], 0.98), rtol=1e-12)
    # the suggestions are fastai's on the logged raw losses (num_it points were computed)
    n_fastai, want = fastai_lr_find(table["lr"], table["loss"], num_it)
    assert summary["steps"] == n_fastai == n
    for name, lr in want.items():
        assert summary["suggestions"][name]["lr"] == pytest.approx(lr, rel=1e-12)
    assert summary["lr"] == summary["suggestions"]["valley"]["lr"]
    assert summary["status"] == "completed" and summary["kind"] == "lr_find"
    assert (tmp_path / "lr_find.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert read_config(tmp_path)["lr_find"]["num_steps"] == num_it


def test_range_test_applies_the_ramp_in_the_run_data_order(tmp_path):
    """SGD's losses during the test equal a replay: p <- p - lr_i * grad on the batches the
    training run would draw, from the run's initialization (float32, rtol 1e-3: an LR one
    ramp step off changes the late losses by ~10%; measured 1.5e-4 on an H200 GPU)."""
    from lrbench import data, models, optim
    from lrbench.train.objective import cross_entropy
    from lrbench.train.runners import batch_indices
    from lrbench.train.setup import run_keys
    from lrbench.train.state import create_state

    overrides = [
        "optimizer=sgd",
        "lr_find.num_steps=24",
        "lr_find.min_lr=1e-3",
        "lr_find.max_lr=1.0",
    ]
    assert main(["find-lr", *overrides, f"hydra.run.dir={tmp_path}"]) == 0
    table = _read_csv(tmp_path)

    cfg = compose_config(*overrides)
    dataset = data.load(cfg.dataset)
    model = models.build(cfg.model, dataset.spec, jnp.float32)
    init_key, data_key = run_keys(cfg.seed)
    tx = optim.build(cfg.optimizer, lambda count: 1.0, jnp.float32)
    params = create_state(model, tx, dataset.spec.input_shape, init_key, jnp.float32).params
    loss_and_grad = jax.jit(
        jax.value_and_grad(
            lambda p, x, y: cross_entropy(model.apply({"params": p}, x, train=False), y).mean()
        )
    )
    per_epoch = dataset.n_train // cfg.train.batch_size
    x_all, y_all = np.asarray(dataset.x_train, np.float32), np.asarray(dataset.y_train)
    losses = []
    for i, lr in enumerate(1e-3 * 1e3 ** (np.arange(24) / 23)):
        epoch, k = divmod(i, per_epoch)
        rows = np.asarray(
            batch_indices(data_key, jnp.int32(epoch), len(y_all), cfg.train.batch_size, per_epoch)
        )[k]
        loss, grads = loss_and_grad(params, x_all[rows], y_all[rows])
        losses.append(float(loss))
        params = jax.tree.map(lambda p, g, lr=lr: p - np.float32(lr) * g, params, grads)
    n = len(table["loss"])
    np.testing.assert_allclose(table["loss"], losses[:n], rtol=1e-3)


def test_lr_auto_runs_the_range_test_and_trains_with_its_suggestion(tmp_path):
    """optimizer.lr=auto on digits: the valley suggestion, recorded in summary.json, is the
    LR every step applied, and the MLP reaches >= 0.95 test accuracy."""
    assert main(["train", "optimizer=adam", "optimizer.lr=auto", f"hydra.run.dir={tmp_path}"]) == 0
    summary = read_summary(tmp_path)
    chosen = summary["lr_find"]["lr"]
    assert chosen == summary["lr_find"]["suggestions"]["valley"]["lr"]
    assert {row["lr"] for row in read_metrics(tmp_path)} == {float(str(np.float32(chosen)))}
    assert summary["final"]["test_accuracy"] >= 0.95
    assert read_config(tmp_path)["optimizer"]["lr"] == "auto"
    assert (tmp_path / "lr_find.csv").exists()


BAD_INPUTS = [
    (["find-lr", "lr_find.max_lr=1e-9"], "lr_find.max_lr=1e-09: must be > lr_find.min_lr"),
    (["find-lr", "lr_find.num_steps=5"], "lr_find.num_steps=5: must be >= 20"),
    (["find-lr", "optimizer=lbfgs"], "optimizer=lbfgs: the LR range test needs a minibatch"),
    (["train", "optimizer=lbfgs", "optimizer.lr=auto"], "optimizer=lbfgs: the LR range test"),
    (
        ["train", "optimizer=sgd", "optimizer.lr=auto", "lr_find.min_lr=1e3", "lr_find.max_lr=1e6"],
        "optimizer.lr=auto: the range test diverged after",
    ),
    (["train", "optimizer.lr=fast"], "optimizer.lr=fast: must be a number > 0 or auto"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS, ids=lambda v: str(v))
def test_bad_input_is_one_line_exit_2_and_leaves_no_run_dir(args, message, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main([*args, f"hydra.run.dir={run_dir}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lrbench: error: {message}"), err
    assert err.count("\n") == 1
    assert not run_dir.exists()


def test_range_test_keeps_images_uint8_on_device_and_streams_past_the_budget(tmp_path, monkeypatch):
    """The range test trains with the run's own runner (lrbench.train.program): MNIST-format
    images stay uint8 on device (a quarter of float32's bytes), and a train split over
    dataset.max_device_bytes streams from the host with the on-device test's losses."""
    from image_files import write_mnist_like

    from lrbench.lr_find import range_test
    from lrbench.train.stream import StreamEpochs

    folder = write_mnist_like(tmp_path, n_train=1000, n_test=40)
    overrides = [
        "dataset=mnist",
        "dataset.source=idx",
        f"dataset.path={folder}",
        "train.batch_size=40",
        "lr_find.num_steps=30",
    ]
    runners = []
    build_runner = range_test.build_runner

    def spy(*args, **kwargs):
        runners.append(build_runner(*args, **kwargs)[0])
        return runners[-1], "spied"

    monkeypatch.setattr(range_test, "build_runner", spy)
    on_device = range_test.run_range_test(compose_config(*overrides))
    assert runners[-1].x.dtype == np.uint8
    assert runners[-1].x.nbytes == 900 * 10 * 10  # the train split: 900 images of 10x10 bytes
    streamed = range_test.run_range_test(
        compose_config(*overrides, "dataset.max_device_bytes=20000")
    )
    assert isinstance(runners[-1], StreamEpochs)
    np.testing.assert_allclose(streamed.losses, on_device.losses, rtol=1e-5)
