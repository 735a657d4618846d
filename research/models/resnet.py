"""ResNet (v1.5, bottleneck blocks) after the Flax ImageNet example, with multi-task heads."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import flax.linen as nn
import jax.numpy as jnp

from research.models.heads import MultiTaskHeads
from research.models.layers import Conv, max_pool


class BottleneckBlock(nn.Module):
    filters: int
    conv: Callable
    norm: Callable
    strides: tuple[int, int] = (1, 1)

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        residual = x
        y = nn.relu(self.norm()(self.conv(self.filters, (1, 1))(x)))
        y = nn.relu(self.norm()(self.conv(self.filters, (3, 3), self.strides)(y)))
        y = self.norm(scale_init=nn.initializers.zeros)(self.conv(self.filters * 4, (1, 1))(y))
        if residual.shape != y.shape:
            residual = self.conv(self.filters * 4, (1, 1), self.strides, name="conv_proj")(residual)
            residual = self.norm(name="norm_proj")(residual)
        return nn.relu(residual + y)


class ResNet(nn.Module):
    stage_sizes: Sequence[int]
    num_filters: int = 64
    age_head: str = "classification"
    dropout: float = 0.0
    conv_impl: str = "auto"
    dtype: jnp.dtype = jnp.float32
    axis_name: str | None = None
    small_input_stem: bool = False  # 3x3/1 stem without max-pool, for 64 px inputs

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> dict[str, jnp.ndarray]:
        conv = partial(Conv, use_bias=False, impl=self.conv_impl, dtype=self.dtype)
        norm = partial(nn.BatchNorm, use_running_average=not train, momentum=0.9, epsilon=1e-5,
                       dtype=self.dtype, axis_name=self.axis_name if train else None)
        x = x.astype(self.dtype)
        if self.small_input_stem:
            x = nn.relu(norm(name="bn_init")(conv(self.num_filters, (3, 3), name="conv_init")(x)))
        else:
            x = conv(self.num_filters, (7, 7), (2, 2), padding=[(3, 3), (3, 3)], name="conv_init")(x)
            x = nn.relu(norm(name="bn_init")(x))
            x = max_pool(x, 3, 2, padding="SAME")
        for i, block_size in enumerate(self.stage_sizes):
            for j in range(block_size):
                strides = (2, 2) if i > 0 and j == 0 else (1, 1)
                x = BottleneckBlock(self.num_filters * 2**i, conv, norm, strides)(x)
        x = jnp.mean(x, axis=(1, 2))
        return MultiTaskHeads(self.age_head, self.dropout)(x, train)
