"""CNN baseline: stages of (conv-BN-ReLU) x n followed by a 2x2 max-pool, then global pooling."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import flax.linen as nn
import jax.numpy as jnp

from research.models.heads import MultiTaskHeads
from research.models.layers import Conv, max_pool


class CNN(nn.Module):
    """``widths`` channels per stage, ``convs_per_stage`` 3x3 convolutions in each."""

    widths: Sequence[int] = (32, 64, 128, 256)
    convs_per_stage: int = 1
    age_head: str = "classification"
    dropout: float = 0.0
    conv_impl: str = "auto"
    dtype: jnp.dtype = jnp.float32
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> dict[str, jnp.ndarray]:
        conv = partial(Conv, kernel_size=(3, 3), use_bias=False, impl=self.conv_impl, dtype=self.dtype)
        norm = partial(nn.BatchNorm, use_running_average=not train, momentum=0.9, epsilon=1e-5,
                       dtype=self.dtype, axis_name=self.axis_name if train else None)
        x = x.astype(self.dtype)
        for width in self.widths:
            for _ in range(self.convs_per_stage):
                x = nn.relu(norm()(conv(width)(x)))
            x = max_pool(x, 2, 2)
        x = jnp.mean(x, axis=(1, 2))
        return MultiTaskHeads(self.age_head, self.dropout)(x, train)
