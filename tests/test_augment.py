"""On-device preprocessing of image sets: augmentation against a numpy reference,
standardization against float64, determinism for a seed and novelty across epochs through
the real train step, no augmentation at evaluation; and the shared split/statistics code."""

from __future__ import annotations

import csv

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from image_files import write_mnist_like

from lrbench.cli import main
from lrbench.data.augment import Preprocess, augment, draw, standardize
from lrbench.data.dataset import DataSpec
from lrbench.data.images import Split, carve, fitted_statistics
from lrbench.models.input_stage import WithInputStage
from lrbench.models.mlp import MLP
from lrbench.train.state import create_state
from lrbench.train.step import make_train_step


def reference_augment(x: np.ndarray, offsets: np.ndarray, flips: np.ndarray, pad: int):
    """torchvision's RandomCrop(padding=pad) + RandomHorizontalFlip, one image at a time."""
    out = np.empty_like(x)
    _, h, w, _ = x.shape
    for i, image in enumerate(x):
        padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)))
        crop = padded[offsets[i, 0] : offsets[i, 0] + h, offsets[i, 1] : offsets[i, 1] + w]
        out[i] = crop[:, ::-1] if flips[i] else crop
    return out


@pytest.mark.parametrize(("pad", "flip"), [(2, True), (3, False), (0, True)])
def test_augment_matches_numpy_pad_crop_flip(pad, flip):
    x = np.random.default_rng(0).integers(0, 256, (16, 7, 9, 3), dtype=np.uint8)
    choices = draw(jax.random.key(1), 16, pad, flip)
    result = np.asarray(jax.jit(augment, static_argnums=2)(x, choices, pad))
    expected = reference_augment(x, np.asarray(choices.offsets), np.asarray(choices.flips), pad)
    np.testing.assert_array_equal(result, expected)
    assert result.dtype == np.uint8


def test_draw_covers_every_offset_and_flips_about_half():
    choices = draw(jax.random.key(0), 4000, 2, True)
    offsets = np.asarray(choices.offsets)
    assert set(np.unique(offsets)) == {0, 1, 2, 3, 4}
    assert np.bincount(offsets.ravel()).min() > 0.15 * offsets.size
    assert 0.45 < np.asarray(choices.flips).mean() < 0.55
    assert not np.asarray(draw(jax.random.key(0), 100, 2, False).flips).any()


def test_standardize_matches_float64_formula():
    x = np.random.default_rng(0).integers(0, 256, (4, 3, 3, 2), dtype=np.uint8)
    mean, std = (0.2, 0.7), (0.3, 0.1)
    expected = (x.astype(np.float64) / 255 - np.array(mean)) / np.array(std)
    np.testing.assert_allclose(
        standardize(x, mean, std, jnp.float32), expected, rtol=1e-5, atol=1e-5
    )
    # Inputs already cast to float (pixel values 0..255) give the same result.
    np.testing.assert_allclose(
        standardize(x.astype(np.float32), mean, std, jnp.float32), expected, rtol=1e-5, atol=1e-5
    )


def test_fitted_statistics_match_numpy_float64_per_channel():
    x = np.random.default_rng(0).integers(0, 256, (50, 4, 4, 3), dtype=np.uint8)
    x[..., 2] = 7  # a constant channel keeps std 1
    mean, std = fitted_statistics(x)
    reference = x.astype(np.float64) / 255
    np.testing.assert_allclose(mean, reference.mean(axis=(0, 1, 2)), rtol=1e-12)
    np.testing.assert_allclose(std[:2], reference.std(axis=(0, 1, 2))[:2], rtol=1e-12)
    assert std[2] == 1.0


def test_carve_is_stratified_disjoint_complete_and_fixed_by_the_seed():
    y = np.repeat(np.arange(3), [50, 30, 20])
    split = Split(np.arange(100)[:, None], y)
    rest, carved = carve(split, 0.2, seed=0, key="k")
    assert np.bincount(carved.y).tolist() == [10, 6, 4]
    assert sorted(np.concatenate([rest.x[:, 0], carved.x[:, 0]]).tolist()) == list(range(100))
    again = carve(split, 0.2, seed=0, key="k")[1]
    other = carve(split, 0.2, seed=1, key="k")[1]
    np.testing.assert_array_equal(again.x, carved.x)
    assert not np.array_equal(other.x, carved.x)


SPEC = DataSpec(input_shape=(6, 6, 1), n_classes=3, image_shape=(6, 6, 1))


def stepper(preprocess: Preprocess):
    """(loss of one train step at a given state.step, model, state) for a small MLP."""
    model = WithInputStage(network=MLP(widths=(8,), n_outputs=3), preprocess=preprocess)
    tx = optax.sgd(0.1)
    state = create_state(model, tx, SPEC.input_shape, jax.random.key(0), jnp.float32)
    step = jax.jit(make_train_step(model, tx))
    x = np.random.default_rng(0).integers(0, 256, (8, 6, 6, 1), dtype=np.uint8)
    y = np.arange(8) % 3

    def loss_at(step_number: int) -> float:
        return float(step(state.replace(step=jnp.int32(step_number)), x, y)[1].loss)

    return loss_at, model, state, x


AUGMENTED = Preprocess(mean=(0.5,), std=(0.25,), crop_padding=2, flip=True)


def test_augmentation_is_deterministic_per_step_and_new_at_each_step_and_epoch():
    loss_at, *_ = stepper(AUGMENTED)
    steps_per_epoch = 5
    assert loss_at(3) == loss_at(3)
    assert loss_at(3) != loss_at(3 + steps_per_epoch)  # the same batch one epoch later
    assert len({loss_at(s) for s in range(6)}) == 6


def test_without_augmentation_the_step_number_does_not_change_the_input():
    loss_at, *_ = stepper(Preprocess(mean=(0.5,), std=(0.25,)))
    assert loss_at(3) == loss_at(8)


def test_evaluation_standardizes_without_augmenting():
    _, model, state, x = stepper(AUGMENTED)
    variables = {"params": state.params}
    logits = model.apply(variables, x, train=False)
    network = MLP(widths=(8,), n_outputs=3)
    expected = network.apply(
        {"params": state.params["network"]},
        standardize(x, (0.5,), (0.25,), jnp.float32),
        train=False,
    )
    np.testing.assert_array_equal(logits, expected)


def metrics_rows(run_dir) -> list[dict]:
    with open(run_dir / "metrics.csv") as f:
        return [{k: v for k, v in row.items() if k != "elapsed_s"} for row in csv.DictReader(f)]


def test_augmented_runs_repeat_exactly_for_a_seed_and_differ_from_unaugmented(tmp_path):
    folder = write_mnist_like(tmp_path / "data", n_train=200, n_test=40)

    def run(name: str, *extra: str) -> list[dict]:
        args = [
            "train",
            "dataset=mnist",
            "dataset.source=idx",
            f"dataset.path={folder}",
            "dataset.mean=null",
            "dataset.std=null",
            "train.epochs=2",
            "train.batch_size=30",
            "train.log_every=1",
            *extra,
            f"hydra.run.dir={tmp_path / name}",
        ]
        assert main(args) == 0
        return metrics_rows(tmp_path / name)

    on = ("dataset.augment.crop_padding=2", "dataset.augment.flip=true")
    first = run("a", *on)
    assert run("b", *on) == first
    assert run("c") != first


def test_augmentation_with_lbfgs_is_rejected(tmp_path, capsys):
    args = [
        "train",
        "dataset=mnist",
        "dataset.source=idx",
        f"dataset.path={tmp_path}",
        "optimizer=lbfgs",
        "model=linear",
        "dataset.augment.flip=true",
        f"hydra.run.dir={tmp_path}/r",
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "lrbench: error: dataset.augment={crop_padding: 0, flip: true}: must "
        "be off with optimizer=lbfgs"
    )
