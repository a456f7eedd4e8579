"""Streaming train splits that exceed dataset.max_device_bytes: the same batches, in the
same order, with the same augmentation as the on-device run, in fixed-shape chunks."""

from __future__ import annotations

import numpy as np
import pytest
from image_files import write_mnist_like

from lrbench.cli import main
from lrbench.runs import read_metrics, read_summary
from lrbench.train.stream import CHUNKS_PER_BUDGET, fits_on_device

EXAMPLE_BYTES = 10 * 10 + 4  # a 10x10 uint8 image and its int32 label
BATCH = 40
CHUNK_STEPS = 3  # 900 train examples: 22 steps per epoch = 7 chunks of 3 and one of 1
N_TRAIN = 900


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_mnist_like(tmp_path_factory.mktemp("idx"), n_train=1000, n_test=40)


def train(folder, run_dir, *extra: str) -> dict:
    args = [
        "train",
        "dataset=mnist",
        "dataset.source=idx",
        f"dataset.path={folder}",
        "dataset.mean=null",
        "dataset.std=null",
        "dataset.augment.flip=true",
        "dataset.augment.crop_padding=1",
        "train.epochs=2",
        f"train.batch_size={BATCH}",
        "train.log_every=1",
        *extra,
        f"hydra.run.dir={run_dir}",
    ]
    assert main(args) == 0
    return read_summary(run_dir)


def test_streamed_runs_match_the_on_device_run(folder, tmp_path):
    """Scan and one-step loops over streamed chunks: the on-device scan's numbers."""
    budget = CHUNKS_PER_BUDGET * CHUNK_STEPS * BATCH * EXAMPLE_BYTES
    assert budget < N_TRAIN * EXAMPLE_BYTES  # the train split does not fit: it streams
    assert train(folder, tmp_path / "device", "train.loop=scan")["loop"] == "scan"
    reference = read_metrics(tmp_path / "device")
    assert [r["step"] for r in reference] == list(range(1, 45))
    for loop in ("scan", "step"):
        summary = train(
            folder, tmp_path / loop, f"train.loop={loop}", f"dataset.max_device_bytes={budget}"
        )
        assert summary["loop"] == f"stream/{loop}"
        rows = read_metrics(tmp_path / loop)
        assert [r["step"] for r in rows] == list(range(1, 45))
        for key in ("lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss"):
            got = np.array([np.nan if r[key] is None else r[key] for r in rows], float)
            want = np.array([np.nan if r[key] is None else r[key] for r in reference], float)
            np.testing.assert_allclose(
                got, want, rtol=1e-5, equal_nan=True, err_msg=f"{loop}: {key}"
            )


def test_lbfgs_needs_the_train_split_on_device(folder, tmp_path, capsys):
    args = [
        "train",
        "dataset=mnist",
        "dataset.source=idx",
        f"dataset.path={folder}",
        "optimizer=lbfgs",
        "model=linear",
        "dataset.max_device_bytes=1000",
        f"hydra.run.dir={tmp_path}/r",
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "lrbench: error: dataset.max_device_bytes=1000: below the train "
        f"split's {N_TRAIN * EXAMPLE_BYTES} bytes: optimizer=lbfgs needs"
    )
    assert not (tmp_path / "r").exists()


def test_fits_on_device_compares_the_split_bytes_to_the_budget():
    x, y = np.zeros((10, 4), np.uint8), np.zeros(10, np.int32)
    assert fits_on_device(x, y, 80)
    assert not fits_on_device(x, y, 79)
    assert fits_on_device(x, y, None)  # no budget (the scikit-learn sets): always on device
