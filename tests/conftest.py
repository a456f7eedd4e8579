"""Shared helpers: run the real CLI in a subprocess, compose the real Hydra configs."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from lrbench.config import Config, register_schemas, resolved_dict, to_run_config
from lrbench.paths import conf_dir

REPO = Path(__file__).resolve().parents[1]

# absl (imported by optax and TensorFlow) keeps the sys.stderr of its import in a log handler
# and closes it whenever logging is reconfigured (every in-process Hydra run) if it is no
# longer sys.stderr: under pytest, a capture file still in use (the run crashes with "lost
# sys.stderr"). It never closes the real stderr, so point it there.
absl_logging = pytest.importorskip("absl.logging")
absl_logging.get_absl_handler().python_handler.setStream(sys.__stderr__)


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None):
    """``lrbench <args>`` as a user runs it; returns the CompletedProcess (text output)."""
    return subprocess.run(
        [sys.executable, "-m", "lrbench.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def compose_with_record(*overrides: str) -> tuple[Config, dict]:
    """The typed config ``lrbench train <overrides>`` would run, and its config.yaml."""
    register_schemas()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        composed = compose("config", overrides=list(overrides))
    return to_run_config(composed), resolved_dict(composed)


def compose_config(*overrides: str) -> Config:
    """The typed config ``lrbench train <overrides>`` would run."""
    return compose_with_record(*overrides)[0]


@pytest.fixture
def x64():
    """float64 for tight tolerances; restores the previous setting (as lrbench's run does)."""
    import jax

    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(autouse=True, scope="session")
def _compile_cache_outside_the_checkout(tmp_path_factory):
    """Runs cache compiled programs in a session folder, not the checkout's runs/.cache."""
    os.environ["LRBENCH_COMPILE_CACHE"] = str(tmp_path_factory.mktemp("compile_cache"))


@functools.cache
def _defines_module_fixtures(test_file: Path) -> bool:
    return test_file.is_file() and 'scope="module"' in test_file.read_text()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist (the default run's workers): a test file that defines a module-scoped
    fixture (often real training runs) runs whole on one worker, so the fixture is built
    once; every other test goes alone to whichever worker is free. (xdist's loadgroup marks
    do not work with pytest 9: it renames node ids through an attribute pytest 9 ignores.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleFixturesTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            test_file = nodeid.split("::", 1)[0]
            return test_file if _defines_module_fixtures(config.rootpath / test_file) else nodeid

    return ModuleFixturesTogether(config, log)
