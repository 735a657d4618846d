"""A pretrained trunk with the shared age, gender and ethnicity heads."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from research.models.heads import MultiTaskHeads
from research.models.preprocessing import renormalize


def frame(x: jnp.ndarray, scale: float) -> jnp.ndarray:
    """Shrink each image about its centre by ``scale`` (<= 1), filling the border with 0 (the
    house mean grey), so that a face chip shows as much context as the backbone was trained on."""
    if scale == 1.0:
        return x
    if not 0.0 < scale < 1.0:
        raise ValueError(f"frame_scale must be in (0, 1], got {scale}")
    size = jnp.array(x.shape[1:3], jnp.float32)
    return jax.image.scale_and_translate(x, x.shape, (1, 2), jnp.array([scale, scale]),
                                         (1.0 - scale) * size / 2.0, method="linear")


class BackboneMultiTask(nn.Module):
    """House-normalised images -> framing -> the trunk's own normalisation -> trunk -> global
    average pool -> heads. Parameters: ``trunk`` (replaced by converted weights at init when
    the config asks for them) and ``heads``."""

    trunk: nn.Module
    input_norm: str = "house"
    frame_scale: float = 1.0
    age_head: str = "classification"
    dropout: float = 0.0

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> dict[str, jnp.ndarray]:
        x = renormalize(frame(x, self.frame_scale), self.input_norm)
        features = self.trunk(x, train)
        if features.ndim == 4:
            features = jnp.mean(features, axis=(1, 2))
        return MultiTaskHeads(self.age_head, self.dropout, name="heads")(features, train)
