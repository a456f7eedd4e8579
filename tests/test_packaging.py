"""A non-editable install works: the wheel carries conf/ and runs from any directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO, run_cli


def test_wheel_ships_the_configs_and_trains_from_another_directory(tmp_path):
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(REPO),
        ],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("lrbench-*.whl")
    site = tmp_path / "site"
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(site),
            str(wheel),
        ],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = dict(os.environ, PYTHONPATH=str(site))

    where = subprocess.run(
        [sys.executable, "-c", "from lrbench.paths import conf_dir; print(conf_dir())"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )
    assert Path(where.stdout.strip()) == site / "lrbench" / "conf"
    assert (site / "lrbench" / "conf" / "optimizer" / "adam.yaml").exists()

    result = run_cli("train", "train.epochs=1", cwd=elsewhere, env=env)
    assert result.returncode == 0, result.stderr
    assert list((elsewhere / "runs" / "digits-mlp-adam").glob("*/summary.json"))
