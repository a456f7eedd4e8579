"""Sweeps: the vectorized in-process sweep and the sweep-level index of run directories."""

from pathlib import Path


def member_dir(sweep_dir: Path, index: int) -> Path:
    """A vmap sweep member's run directory, named as Hydra names a multirun's jobs."""
    return Path(sweep_dir) / str(index)
