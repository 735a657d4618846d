"""torchvision's MobileNetV2 (ImageNet, 3.5 M parameters) in Flax, and its weight converter.

The layout follows torchvision.models.mobilenet_v2 exactly: a 3x3/2 stem, 17 inverted residual
blocks (1x1 expansion, 3x3 depthwise, linear 1x1 projection; ReLU6), a 1x1 conv to 1280
channels, global average pooling and a 1000-way classifier. BatchNorm stays BatchNorm (torch's
running statistics become ``batch_stats``); padding is torch's symmetric one, not 'SAME'.
"""

from __future__ import annotations

from functools import partial

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from research.models.layers import Conv, DepthwiseConv

# (expansion t, output channels c, repeats n, first stride s), torchvision's table.
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
            (6, 320, 1, 1))
STEM_CHANNELS = 32
NUM_FEATURES = 1280
NUM_IMAGENET_CLASSES = 1000
BN_EPSILON = 1e-5  # torch's default
BN_TENSORS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
TORCH_PAD = [(1, 1), (1, 1)]  # torch pads a 3x3 convolution by 1 on every side, whatever its stride


def block_settings() -> list[tuple[int, int, int]]:
    """(expansion, output channels, stride) of each of the 17 inverted residual blocks."""
    return [(t, c, s if i == 0 else 1) for t, c, n, s in SETTINGS for i in range(n)]


class ConvBN(nn.Module):
    """Convolution (dense or depthwise, no bias) + BatchNorm, optionally ReLU6."""

    features: int
    kernel: int
    strides: int
    depthwise: bool
    relu6: bool
    conv_impl: str
    depthwise_impl: str
    dtype: jnp.dtype
    norm: partial

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        pad = TORCH_PAD if self.kernel == 3 else "VALID"
        strides = (self.strides, self.strides)
        if self.depthwise:
            x = DepthwiseConv((3, 3), strides, pad, impl=self.depthwise_impl, dtype=self.dtype,
                              name="conv")(x)
        else:
            x = Conv(self.features, (self.kernel, self.kernel), strides, pad, use_bias=False,
                     impl=self.conv_impl, dtype=self.dtype, name="conv")(x)
        x = self.norm(name="bn")(x)
        return jnp.clip(x, 0.0, 6.0) if self.relu6 else x


class MobileNetV2Trunk(nn.Module):
    """Images normalised with ImageNet's mean/std -> the (N, h/32, w/32, 1280) feature map.

    ``bn_mode``: 'batch' normalises with batch statistics in training and updates the running
    ones (momentum ``bn_momentum``); 'frozen' always uses the running statistics, so that
    fine-tuning trains BatchNorm's scale and bias only."""

    conv_impl: str = "auto"
    depthwise_impl: str = "auto"
    dtype: jnp.dtype = jnp.float32
    axis_name: str | None = None
    bn_mode: str = "batch"
    bn_momentum: float = 0.9

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        if self.bn_mode not in ("batch", "frozen"):
            raise ValueError(f"bn_mode must be 'batch' or 'frozen', got {self.bn_mode!r}")
        batch_stats = train and self.bn_mode == "batch"
        norm = partial(nn.BatchNorm, use_running_average=not batch_stats, momentum=self.bn_momentum,
                       epsilon=BN_EPSILON, dtype=self.dtype,
                       axis_name=self.axis_name if batch_stats else None)
        layer = partial(ConvBN, conv_impl=self.conv_impl, depthwise_impl=self.depthwise_impl,
                        dtype=self.dtype, norm=norm)
        x = x.astype(self.dtype)
        x = layer(STEM_CHANNELS, 3, 2, False, True, name="features_0")(x)
        for i, (t, c, s) in enumerate(block_settings(), start=1):
            x = InvertedResidual(t, c, s, layer, name=f"features_{i}")(x)
        return layer(NUM_FEATURES, 1, 1, False, True, name=f"features_{len(block_settings()) + 1}")(x)


class InvertedResidual(nn.Module):
    expansion: int
    features: int
    strides: int
    layer: partial

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        hidden = x.shape[-1] * self.expansion
        y = x
        if self.expansion != 1:
            y = self.layer(hidden, 1, 1, False, True, name="expand")(y)
        y = self.layer(hidden, 3, self.strides, True, True, name="depthwise")(y)
        y = self.layer(self.features, 1, 1, False, False, name="project")(y)
        return x + y if self.strides == 1 and x.shape[-1] == self.features else y


class MobileNetV2Classifier(nn.Module):
    """The ImageNet classifier, to check the port against torchvision's predictions."""

    depthwise_impl: str = "auto"

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        features = MobileNetV2Trunk(depthwise_impl=self.depthwise_impl, name="trunk")(x).mean(axis=(1, 2))
        return nn.Dense(NUM_IMAGENET_CLASSES, name="classifier")(features.astype(jnp.float32))


def _torch_prefixes() -> dict[str, tuple[str, ...]]:
    """torch module path -> Flax module path, for every conv and BatchNorm of the trunk."""
    out = {"features.0.0": ("features_0", "conv"), "features.0.1": ("features_0", "bn")}
    for i, (t, _, _) in enumerate(block_settings(), start=1):
        names = (["expand"] if t != 1 else []) + ["depthwise"]
        for j, name in enumerate(names):
            out[f"features.{i}.conv.{j}.0"] = (f"features_{i}", name, "conv")
            out[f"features.{i}.conv.{j}.1"] = (f"features_{i}", name, "bn")
        out[f"features.{i}.conv.{len(names)}"] = (f"features_{i}", "project", "conv")
        out[f"features.{i}.conv.{len(names) + 1}"] = (f"features_{i}", "project", "bn")
    last = len(block_settings()) + 1
    out[f"features.{last}.0"] = (f"features_{last}", "conv")
    out[f"features.{last}.1"] = (f"features_{last}", "bn")
    return out


def _set(tree: dict, path: tuple[str, ...], value: np.ndarray) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def convert(state: dict[str, np.ndarray]) -> dict[str, dict]:
    """torchvision state dict -> ``{'params': {'trunk', 'classifier'}, 'batch_stats': {'trunk'}}``.

    Conv kernels go from (out, in, kh, kw) to (kh, kw, in, out) (depthwise: (kh, kw, 1, C)),
    the classifier from (out, in) to (in, out). Every tensor but ``num_batches_tracked`` is used.
    """
    params: dict = {}
    stats: dict = {}
    used = set()
    for prefix, path in _torch_prefixes().items():
        if path[-1] == "conv":
            _set(params, ("trunk", *path, "kernel"), state[f"{prefix}.weight"].transpose(2, 3, 1, 0))
            used.add(f"{prefix}.weight")
            continue
        _set(params, ("trunk", *path, "scale"), state[f"{prefix}.weight"])
        _set(params, ("trunk", *path, "bias"), state[f"{prefix}.bias"])
        _set(stats, ("trunk", *path, "mean"), state[f"{prefix}.running_mean"])
        _set(stats, ("trunk", *path, "var"), state[f"{prefix}.running_var"])
        used |= {f"{prefix}.{k}" for k in BN_TENSORS}
    params["classifier"] = {"kernel": state["classifier.1.weight"].T, "bias": state["classifier.1.bias"]}
    used |= {"classifier.1.weight", "classifier.1.bias"}
    if set(state) != used:
        raise ValueError(f"torch tensors not converted: {sorted(set(state) - used)[:5]}; "
                         f"missing from the file: {sorted(used - set(state))[:5]}")
    return {"params": params, "batch_stats": stats}
