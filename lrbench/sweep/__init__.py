"""Sweeps: the vectorized in-process sweep and the sweep-level index of run directories."""
