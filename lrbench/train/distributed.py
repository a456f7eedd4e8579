"""One job over several processes: ``jax.distributed.initialize``, before JAX's first use.

Every process runs the same program over the global mesh (multi-controller JAX); process 0
writes the run directory. On CPU the processes' collectives go through gloo, so a multi-host
run can be tried with local processes (the tests start two on 127.0.0.1).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import jax

from lrbench.config import DistributedConfig
from lrbench.errors import ConfigError


def start(cfg: DistributedConfig) -> None:
    """Join the job (once per process); ``none``: nothing."""
    if cfg.name == "none" or jax.distributed.is_initialized():
        return
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    kwargs = {"initialization_timeout": cfg.timeout_s}
    if cfg.name == "manual":
        kwargs |= {
            "coordinator_address": cfg.coordinator_address,
            "num_processes": cfg.num_processes,
            "process_id": cfg.process_id,
        }
    if cfg.name == "manual" and cfg.process_id != 0:
        _wait_for_coordinator(cfg)
    try:
        jax.distributed.initialize(**kwargs)
    except Exception as error:  # unreachable coordinator, missing cluster environment, ...
        where = cfg.coordinator_address if cfg.name == "manual" else "the environment"
        text = " ".join(str(error).split())[:200]
        raise ConfigError(
            "distributed",
            cfg.name,
            f"could not join the job via {where} within {cfg.timeout_s} s ({text})",
        ) from None


def _wait_for_coordinator(cfg: DistributedConfig) -> None:
    """JAX's client aborts the whole process (a C++ fatal error, no Python exception) when
    the coordinator cannot be reached: wait for its port here first, for at most timeout_s."""
    host, _, port = cfg.coordinator_address.rpartition(":")
    deadline = time.monotonic() + cfg.timeout_s
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=1):
                return
        except OSError as error:
            if time.monotonic() >= deadline:
                raise ConfigError(
                    "distributed",
                    cfg.name,
                    f"could not join the job via {cfg.coordinator_address} within "
                    f"{cfg.timeout_s} s (no coordinator answered: {error.strerror or error})",
                ) from None
            time.sleep(0.2)


def is_writer() -> bool:
    """Process 0 writes the run directory; the others train and write nothing."""
    return jax.process_index() == 0


@contextlib.contextmanager
def own_dir(run_dir: Path) -> Iterator[Path]:
    """Where this process writes: the run directory for process 0; for the others a scratch
    folder removed at the end (they run the same code, so they write the same files), and
    the run's train.log is left to process 0."""
    if is_writer():
        yield run_dir
        return
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, logging.FileHandler)]:
        root.removeHandler(handler)
        handler.close()
    scratch = Path(tempfile.mkdtemp(prefix=f"lrbench-process{jax.process_index()}-"))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
