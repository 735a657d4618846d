"""On-device augmentation and normalisation (inside the jitted step, deterministic per key)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections


def _augment_one(key: jax.Array, image: jnp.ndarray, aug: ml_collections.ConfigDict) -> jnp.ndarray:
    k_flip, k_scale, k_shift, k_bright, k_contrast = jax.random.split(key, 5)
    size = image.shape[0]
    if aug.flip:
        image = jnp.where(jax.random.bernoulli(k_flip), image[:, ::-1], image)
    if aug.max_scale_delta or aug.max_shift:
        scale = 1.0 + jax.random.uniform(k_scale, (), minval=-aug.max_scale_delta, maxval=aug.max_scale_delta)
        shift = jax.random.uniform(k_shift, (2,), minval=-aug.max_shift, maxval=aug.max_shift) * size
        # Zoom about the centre, then shift: out = scale * (in - c) + c + shift.
        translation = (1.0 - scale) * size / 2.0 + shift
        image = jax.image.scale_and_translate(image, image.shape, (0, 1), jnp.array([scale, scale]),
                                              translation, method="linear")
    if aug.brightness:
        image = image + jax.random.uniform(k_bright, (), minval=-aug.brightness, maxval=aug.brightness)
    if aug.contrast:
        factor = 1.0 + jax.random.uniform(k_contrast, (), minval=-aug.contrast, maxval=aug.contrast)
        image = (image - image.mean()) * factor + image.mean()
    return image


def augment(key: jax.Array, images: jnp.ndarray, aug: ml_collections.ConfigDict) -> jnp.ndarray:
    """Random flip, small zoom and shift, brightness and contrast jitter on normalised images."""
    if not aug.enabled:
        return images
    keys = jax.random.split(key, images.shape[0])
    return jax.vmap(_augment_one, in_axes=(0, 0, None))(keys, images, aug)
