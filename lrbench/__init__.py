"""lrbench: learning-rate and optimizer studies in JAX, one run directory per run."""

__version__ = "0.1.0"  # the one source: pyproject.toml reads it ([tool.hatch.version])
