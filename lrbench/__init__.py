"""lrbench: learning-rate and optimizer studies in JAX, one run directory per run."""

__version__ = "0.1.0"
