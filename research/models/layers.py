"""Convolution and pooling layers with a CPU-friendly implementation chosen per backend.

XLA's CPU convolution kernels are slow for these shapes. ``Conv`` keeps exactly the parameters
of ``flax.linen.Conv`` (kernel ``(kh, kw, cin, cout)``, optional bias) and computes the same
function either natively (``lax.conv_general_dilated``, used on GPU/TPU) or as one matrix
product over shifted, strided slices of the padded input (im2col, used on CPU).
``DepthwiseConv`` does the same for depthwise convolutions (one filter per channel, as in
MobileNetV2): XLA's grouped convolution, or a sum of shifted multiply-adds (used on CPU).
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

Padding = str | Sequence[tuple[int, int]]


def resolve_impl(impl: str) -> str:
    """'auto' -> 'im2col' on CPU, 'native' elsewhere."""
    if impl == "auto":
        return "im2col" if jax.default_backend() == "cpu" else "native"
    if impl not in ("native", "im2col"):
        raise ValueError(f"conv_impl must be 'auto', 'native' or 'im2col', got {impl!r}")
    return impl


def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pads(x: jnp.ndarray, kernel: tuple[int, int], strides: tuple[int, int],
          padding: Padding) -> list[tuple[int, int]]:
    if padding == "SAME":
        return [_same_pads(x.shape[1 + i], kernel[i], strides[i]) for i in range(2)]
    if padding == "VALID":
        return [(0, 0), (0, 0)]
    return [tuple(p) for p in padding]


def im2col_conv(x: jnp.ndarray, kernel: jnp.ndarray, strides: tuple[int, int],
                padding: Padding) -> jnp.ndarray:
    """NHWC convolution as a matrix product over kh*kw shifted strided slices."""
    kh, kw, cin, cout = kernel.shape
    (pt, pb), (pl, pr) = _pads(x, (kh, kw), strides, padding)
    if pt or pb or pl or pr:
        x = jnp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    sh, sw = strides
    out_h = (x.shape[1] - kh) // sh + 1
    out_w = (x.shape[2] - kw) // sw + 1
    if kh == kw == 1:
        patches = x[:, : (out_h - 1) * sh + 1 : sh, : (out_w - 1) * sw + 1 : sw, :]
    else:
        patches = jnp.concatenate(
            [x[:, i : i + (out_h - 1) * sh + 1 : sh, j : j + (out_w - 1) * sw + 1 : sw, :]
             for i in range(kh) for j in range(kw)], axis=-1)
    # A 2-D matrix product: XLA's CPU backend runs it far faster than a 4-D dot_general.
    flat = patches.reshape(-1, kh * kw * cin) @ kernel.reshape(kh * kw * cin, cout)
    return flat.reshape(*patches.shape[:3], cout)


def native_conv(x: jnp.ndarray, kernel: jnp.ndarray, strides: tuple[int, int],
                padding: Padding) -> jnp.ndarray:
    pads = padding if isinstance(padding, str) else [tuple(p) for p in padding]
    return lax.conv_general_dilated(x, kernel, strides, pads,
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"))


class Conv(nn.Module):
    """Drop-in for ``nn.Conv`` (same parameter names and shapes) with a selectable kernel."""

    features: int
    kernel_size: tuple[int, int]
    strides: tuple[int, int] = (1, 1)
    padding: Padding = "SAME"
    use_bias: bool = True
    impl: str = "auto"
    dtype: jnp.dtype | None = None
    kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        shape = (*self.kernel_size, x.shape[-1], self.features)
        kernel = self.param("kernel", self.kernel_init, shape, jnp.float32)
        dtype = self.dtype or x.dtype
        x, kernel = x.astype(dtype), kernel.astype(dtype)
        conv = im2col_conv if resolve_impl(self.impl) == "im2col" else native_conv
        y = conv(x, kernel, tuple(self.strides), self.padding)
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32).astype(dtype)
        return y


def max_pool(x: jnp.ndarray, window: int, stride: int, padding: str = "VALID") -> jnp.ndarray:
    """Max pooling; the common 2x2/2 case is a reshape and a max, which XLA's CPU backend
    runs far faster than its generic reduce-window."""
    n, h, w, c = x.shape
    if window == stride == 2 and padding == "VALID" and h % 2 == 0 and w % 2 == 0:
        return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
    return nn.max_pool(x, (window, window), (stride, stride), padding=padding)


def resolve_depthwise_impl(impl: str) -> str:
    """'auto' -> 'shifted' on CPU, 'native' elsewhere."""
    if impl == "auto":
        return "shifted" if jax.default_backend() == "cpu" else "native"
    if impl not in ("native", "shifted"):
        raise ValueError(f"depthwise_impl must be 'auto', 'native' or 'shifted', got {impl!r}")
    return impl


def shifted_depthwise_conv(x: jnp.ndarray, kernel: jnp.ndarray, strides: tuple[int, int],
                           padding: Padding) -> jnp.ndarray:
    """Depthwise NHWC convolution (kernel ``(kh, kw, 1, C)``) as kh*kw shifted multiply-adds.

    XLA's CPU backend runs a grouped convolution with one channel per group as a slow generic
    loop; elementwise products of strided slices vectorise over the channels instead."""
    kh, kw, _, channels = kernel.shape
    (pt, pb), (pl, pr) = _pads(x, (kh, kw), strides, padding)
    if pt or pb or pl or pr:
        x = jnp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    sh, sw = strides
    out_h = (x.shape[1] - kh) // sh + 1
    out_w = (x.shape[2] - kw) // sw + 1
    taps = kernel.reshape(kh, kw, channels)
    y = None
    for i in range(kh):
        for j in range(kw):
            term = x[:, i : i + (out_h - 1) * sh + 1 : sh, j : j + (out_w - 1) * sw + 1 : sw, :] * taps[i, j]
            y = term if y is None else y + term
    return y


def native_depthwise_conv(x: jnp.ndarray, kernel: jnp.ndarray, strides: tuple[int, int],
                          padding: Padding) -> jnp.ndarray:
    pads = padding if isinstance(padding, str) else [tuple(p) for p in padding]
    return lax.conv_general_dilated(x, kernel, strides, pads, dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                    feature_group_count=x.shape[-1])


class DepthwiseConv(nn.Module):
    """``nn.Conv(C, k, feature_group_count=C)`` (same parameter names and shapes) with a
    selectable kernel: XLA's grouped convolution or shifted multiply-adds."""

    kernel_size: tuple[int, int] = (3, 3)
    strides: tuple[int, int] = (1, 1)
    padding: Padding = "SAME"
    use_bias: bool = False
    impl: str = "auto"
    dtype: jnp.dtype | None = None
    kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        channels = x.shape[-1]
        kernel = self.param("kernel", self.kernel_init, (*self.kernel_size, 1, channels), jnp.float32)
        dtype = self.dtype or x.dtype
        x, kernel = x.astype(dtype), kernel.astype(dtype)
        shifted = resolve_depthwise_impl(self.impl) == "shifted"
        conv = shifted_depthwise_conv if shifted else native_depthwise_conv
        y = conv(x, kernel, tuple(self.strides), self.padding)
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (channels,), jnp.float32).astype(dtype)
        return y
