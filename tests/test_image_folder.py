"""The image-folder loader on generated JPEG and PNG files of mixed sizes: decoding,
resizing, classes, carved splits, and every bad folder a one-line error (exit 2)."""

from __future__ import annotations

import numpy as np
import pytest
from image_files import solid_image, write_image_folder

from lrbench import data
from lrbench.cli import main
from lrbench.errors import ConfigError
from lrbench.runs import read_summary
from tests.conftest import compose_config


def load(root, *overrides: str):
    cfg = compose_config("dataset=image_folder", f"dataset.path={root}", *overrides)
    return data.load(cfg.dataset)


def test_pngs_of_one_size_load_pixel_exact_without_resizing(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = {}
    for split in ("train", "test"):
        for name in ("a", "b"):
            folder = tmp_path / split / name
            folder.mkdir(parents=True)
            for i in range(3):
                array = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
                Image.fromarray(array).save(folder / f"{i}.png")
                pixels[(split, name, i)] = array
    dataset = load(tmp_path, "dataset.val_split=test")
    assert dataset.spec.input_shape == (6, 5, 3)
    assert dataset.x_train.dtype == np.uint8
    expected = np.stack([pixels[("train", name, i)] for name in "ab" for i in range(3)])
    np.testing.assert_array_equal(dataset.x_train, expected)
    np.testing.assert_array_equal(dataset.y_train, [0, 0, 0, 1, 1, 1])
    assert dataset.spec.n_classes == 2


def test_mixed_sizes_are_resized_and_colors_survive(tmp_path):
    root = tmp_path / "pets"
    for split in ("train", "test"):
        for name, color in (("cat", (250, 0, 0)), ("dog", (0, 0, 250))):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i, size in enumerate([(40, 30), (7, 13), (64, 64)]):
                solid_image(color, size).save(folder / f"{i}.{'jpg' if i % 2 else 'png'}")
    dataset = load(root, "dataset.image_size=12", "dataset.val_split=test")
    assert dataset.x_train.shape == (6, 12, 12, 3)
    red = dataset.x_train[dataset.y_train == 0].reshape(-1, 3).mean(axis=0)
    blue = dataset.x_train[dataset.y_train == 1].reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(red, (250, 0, 0), atol=4)  # JPEG's chroma error is a few levels
    np.testing.assert_allclose(blue, (0, 0, 250), atol=4)


def test_val_split_is_carved_from_train_stratified_when_there_is_no_folder(tmp_path):
    root = write_image_folder(tmp_path / "pets", {"train": 20, "test": 4})
    dataset = load(root, "dataset.image_size=8", "dataset.val_fraction=0.25")
    assert np.bincount(dataset.y_val).tolist() == [5, 5]
    assert np.bincount(dataset.y_train).tolist() == [15, 15]
    assert np.bincount(dataset.y_test).tolist() == [4, 4]


def test_image_folder_trains_end_to_end_with_augmentation(tmp_path):
    root = write_image_folder(tmp_path / "pets", {"train": 24, "test": 6})
    run_dir = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "dataset=image_folder",
                f"dataset.path={root}",
                "dataset.image_size=16",
                "dataset.augment.flip=true",
                "dataset.augment.crop_padding=2",
                "train.epochs=6",
                "train.batch_size=8",
                f"hydra.run.dir={run_dir}",
            ]
        )
        == 0
    )
    summary = read_summary(run_dir)
    assert summary["status"] == "completed"
    assert summary["n_train"] == 44  # 48 minus a stratified 10% validation split
    assert summary["final"]["test_accuracy"] == 1.0  # two colors: easy once standardized


BAD_FOLDERS = [
    ("corrupt", [], "dataset.path={root}: cannot read image train/dog/3.jpg (cannot identify"),
    ("truncated", [], "dataset.path={root}: cannot read image train/cat/1.jpg ("),
    ("empty", [], "dataset.path={root}: no class folders in {root}/train"),
    (
        "class missing from test",
        [],
        "dataset.path={root}: the test split has no examples of class 'dog' (every split",
    ),
    ("unknown class in test", [], "dataset.path={root}: test/bird is not a class of the train"),
    ("no test folder", [], "dataset.test_split=test: no folder {root}/test (or dataset.test_"),
    ("sizes differ", ["dataset.image_size=null"], "dataset.image_size=None: images differ in size"),
    ("no such folder", [], "dataset.path={root}: no such folder"),
]


@pytest.mark.parametrize(("case", "extra", "message"), BAD_FOLDERS, ids=lambda v: str(v))
def test_bad_folder_is_one_line_exit_2_and_no_run_dir(tmp_path, capsys, case, extra, message):
    root = write_image_folder(tmp_path / "pets", {"train": 4, "test": 2})
    path = root
    if case == "corrupt":
        (root / "train" / "dog" / "3.jpg").write_bytes(b"not an image at all")
    elif case == "truncated":
        image = root / "train" / "cat" / "1.jpg"
        image.write_bytes(image.read_bytes()[:200])
    elif case == "empty":
        path = tmp_path / "empty"
        (path / "train").mkdir(parents=True)
    elif case == "class missing from test":
        for image in (root / "test" / "dog").iterdir():
            image.unlink()
    elif case == "unknown class in test":
        (root / "test" / "bird").mkdir()
    elif case == "no test folder":
        for image in (root / "test").rglob("*.*"):
            image.unlink()
        for folder in sorted((root / "test").rglob("*"), reverse=True):
            folder.rmdir()
        (root / "test").rmdir()
    elif case == "no such folder":
        path = root / "nowhere"
    run_dir = tmp_path / "run"
    args = [
        "train",
        "dataset=image_folder",
        f"dataset.path={path}",
        "dataset.image_size=8",
        *extra,
        f"hydra.run.dir={run_dir}",
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    expected = message.format(root=path if case in ("empty", "no such folder") else root)
    assert err.startswith(f"lrbench: error: {expected}"), err
    assert err.count("\n") == 1
    assert not run_dir.exists()


def test_image_folder_needs_a_path(tmp_path, capsys):
    assert main(["train", "dataset=image_folder", f"hydra.run.dir={tmp_path}/r"]) == 2
    assert "dataset.path=None: needed with dataset.source=image_folder" in capsys.readouterr().err


def test_unreadable_image_error_names_the_file(tmp_path):
    root = write_image_folder(tmp_path / "pets", {"train": 4, "test": 2})
    (root / "test" / "cat" / "0.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(ConfigError, match=r"cannot read image test/cat/0.png"):
        load(root, "dataset.image_size=8")
