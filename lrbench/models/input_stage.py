"""The dataset's on-device preprocessing as the network's first, parameter-free stage.

Image sets keep uint8 pixels in memory; this stage scales, standardizes and (in training)
augments the gathered batch inside whatever jitted program applies the model: the train
step of every loop strategy, evaluation, L-BFGS's objective, vmapped sweeps. So each of
them preprocesses identically without a hook of its own.

Augmentation draws from the train step's per-step RNG stream ("dropout": the step folds
(seed, step) into it), under this module's own name, so it is deterministic for a seed,
new at every step, and independent of the network's dropout masks.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from lrbench.data.augment import Preprocess

STEP_RNG = "dropout"  # the stream lrbench.train.step provides at every training step


class WithInputStage(nn.Module):
    network: nn.Module
    preprocess: Preprocess
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        key = self.make_rng(STEP_RNG) if train and self.preprocess.augments else None
        return self.network(self.preprocess(x, self.dtype, key), train)
