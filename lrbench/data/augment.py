"""On-device input stage of image sets: uint8 pixels -> augmented -> scaled and standardized.

Runs inside the jitted train step and evaluation, on the gathered batch, so images stay
uint8 in memory and host-to-device traffic is a quarter of float32's. Augmentation (random
crop after zero padding, horizontal flip) is drawn from a key the train step derives from
(seed, step): deterministic for a seed, different at every step and so across epochs.
Evaluation applies the same scaling and standardization without augmentation.

Hand-written: each transform is one or two array operations here, while the libraries that
offer them work per image on the host (tf.image, torchvision) or would add a dependency for
a call each (dm-pix, which has no padded crop).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp

PIXEL_MAX = 255.0


@dataclass(frozen=True)
class Preprocess:
    """The per-channel statistics (in [0, 1] units) and the augmentation of a dataset."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_padding: int = 0
    flip: bool = False

    @property
    def augments(self) -> bool:
        return self.crop_padding > 0 or self.flip

    def __call__(self, x: jax.Array, dtype, key: jax.Array | None = None) -> jax.Array:
        """Augment (when a key is given and augmentation is on), then standardize."""
        if key is not None and self.augments:
            x = augment(x, draw(key, x.shape[0], self.crop_padding, self.flip), self.crop_padding)
        return standardize(x, self.mean, self.std, dtype)


def standardize(x: jax.Array, mean, std, dtype) -> jax.Array:
    """(x / 255 - mean) / std per channel, as one multiply-add."""
    scale = 1.0 / (PIXEL_MAX * jnp.asarray(std, dtype))
    shift = jnp.asarray(mean, dtype) / jnp.asarray(std, dtype)
    return x.astype(dtype) * scale - shift


class Draw(NamedTuple):
    """One batch's random choices: crop offsets (B, 2) in [0, 2 * padding], flips (B,)."""

    offsets: jax.Array
    flips: jax.Array


def draw(key: jax.Array, batch: int, crop_padding: int, flip: bool) -> Draw:
    crop_key, flip_key = jax.random.split(key)
    offsets = jax.random.randint(crop_key, (batch, 2), 0, 2 * crop_padding + 1)
    flips = jax.random.bernoulli(flip_key, 0.5, (batch,)) if flip else jnp.zeros(batch, bool)
    return Draw(offsets, flips)


def augment(x: jax.Array, choices: Draw, crop_padding: int) -> jax.Array:
    """Crop each image of (B, H, W, C) at its offsets from the zero-padded image, then
    mirror the flipped ones left to right (torchvision's RandomCrop(padding) + flip)."""
    if crop_padding:
        _, height, width, channels = x.shape
        pad = crop_padding
        padded = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
        x = jax.vmap(
            lambda image, at: jax.lax.dynamic_slice(
                image, (at[0], at[1], 0), (height, width, channels)
            )
        )(padded, choices.offsets)
    return jnp.where(choices.flips[:, None, None, None], x[:, :, ::-1, :], x)
