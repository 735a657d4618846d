"""Input normalisation shared by training, evaluation and prediction."""

import jax.numpy as jnp

# Fixed statistics that map uint8 pixels to roughly zero mean and unit variance.
MEAN = jnp.array([0.5, 0.5, 0.5], jnp.float32)
STD = jnp.array([0.25, 0.25, 0.25], jnp.float32)


def normalize(images: jnp.ndarray) -> jnp.ndarray:
    """uint8 NHWC -> float32, roughly zero mean and unit variance."""
    return (images.astype(jnp.float32) / 255.0 - MEAN) / STD
