"""On-device augmentation and normalisation (inside the jitted step, deterministic per key).

Besides flips, zoom, shifts and brightness/contrast jitter, the corruption benchmark's train-time
counterparts (research/data/corruptions.py): grayscale, a colour cast, gamma, low resolution,
blur, a JPEG-like 8x8 block-DCT quantisation and noise, each applied to an image with its own
probability ``c.augment.<name>`` (ROBUST). At probability 0 (the default) an augmentation is not
traced at all, so a config without them trains exactly as before; its strength comes from the
``c.augment.<name>_*`` keys. They work on pixels in [0, 1] (mapped from and back to the house
normalisation, research/models/preprocessing.py) at the model's input size.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from research.models.preprocessing import MEAN, STD

# numpy constants: no JAX array is made at import (see research/models/preprocessing.py).
LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601, as research.data.corruptions
BLOCK = 8
# The JPEG standard's (Annex K) quantisation tables at quality 50, luma and chroma.
JPEG_LUMA = np.array([
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55], [14, 13, 16, 24, 40, 57, 69, 56],
    [14, 17, 22, 29, 51, 87, 80, 62], [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]], np.float32)
JPEG_CHROMA = np.full((8, 8), 99, np.float32)
JPEG_CHROMA[:4, :4] = [[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]]
# JFIF's full-range RGB <-> YCbCr.
YCBCR = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]],
                 np.float32)
RGB = np.linalg.inv(YCBCR).astype(np.float32)
LEVEL_SHIFT = np.array([128.0, 0.0, 0.0], np.float32)  # JPEG centres Y on 0; Cb and Cr already are


def _dct_matrix(n: int = BLOCK) -> np.ndarray:
    """The orthonormal DCT-II matrix: coefficients = D @ block @ D.T."""
    k, i = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    d = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    d[0] /= np.sqrt(2.0)
    return d.astype(np.float32)


def grayscale(key: jax.Array, p: jnp.ndarray, aug: ml_collections.ConfigDict) -> jnp.ndarray:
    """Every channel set to the luma."""
    return jnp.broadcast_to((p @ LUMA)[..., None], p.shape)


def colour_cast(key: jax.Array, p: jnp.ndarray, aug: ml_collections.ConfigDict) -> jnp.ndarray:
    """White-balance gains exp(s u): u a random direction orthogonal to grey, s up to the strength."""
    k_angle, k_strength = jax.random.split(key)
    angle = jax.random.uniform(k_angle, (), maxval=2 * math.pi)
    strength = jax.random.uniform(k_strength, (), maxval=aug.colour_cast_max_log_gain)
    direction = (jnp.cos(angle) * jnp.array([1.0, -1.0, 0.0]) / math.sqrt(2)
                 + jnp.sin(angle) * jnp.array([1.0, 1.0, -2.0]) / math.sqrt(6))
    return p * jnp.exp(strength * direction)


def gamma(key: jax.Array, p: jnp.ndarray, aug: ml_collections.ConfigDict) -> jnp.ndarray:
    """Tone curve x ** g, log g uniform in +-gamma_max_log (under- or overexposure)."""
    log_g = jax.random.uniform(key, (), minval=-aug.gamma_max_log, maxval=aug.gamma_max_log)
    return jnp.clip(p, 0.0, 1.0) ** jnp.exp(log_g)


def _resample_matrix(size: int, side: jnp.ndarray) -> jnp.ndarray:
    """(size x size) matrix R with R @ column = the column downscaled to ``side`` px (antialiased
    triangle filter) and upscaled back (linear, edges clamped). ``side`` may be traced."""
    s = side / size
    grid = jnp.arange(size, dtype=jnp.float32)
    centre = (grid[:, None] + 0.5) / s - 0.5  # row i: where the small image's pixel i sits
    down = jnp.maximum(0.0, 1.0 - jnp.abs(grid[None, :] - centre) * s)
    down = down / jnp.maximum(down.sum(axis=1, keepdims=True), 1e-6)
    source = jnp.clip((grid + 0.5) * s - 0.5, 0.0, side - 1.0)  # output y reads the small image here
    up = jnp.maximum(0.0, 1.0 - jnp.abs(grid[None, :] - source[:, None]))
    up = jnp.where(grid[None, :] < side, up, 0.0)  # rows of the small image beyond ``side`` do not exist
    return up @ down


def low_resolution(key: jax.Array, p: jnp.ndarray, aug: ml_collections.ConfigDict) -> jnp.ndarray:
    """Downscaled to a random side in [low_resolution_min_px, size) px and upscaled back."""
    size = p.shape[0]
    side = jax.random.randint(key, (), min(aug.low_resolution_min_px, size - 1), size).astype(jnp.float32)
    resample = _resample_matrix(size, side)
    return jnp.einsum("yh,hwc,xw->yxc", resample, p, resample)


def blur(key: jax.Array, p: jnp.ndarray, aug: ml_collections.ConfigDict) -> jnp.ndarray:
    """Separable Gaussian blur, sigma uniform in (0, blur_max_sigma] px (edges replicated)."""
    radius = max(1, math.ceil(3 * aug.blur_max_sigma))
    sigma = jax.random.uniform(key, (), minval=0.1, maxval=aug.blur_max_sigma)
    taps = jnp.exp(-0.5 * (jnp.arange(-radius, radius + 1) / sigma) ** 2)
    taps = taps / taps.sum()
    h, w = p.shape[:2]
    padded = jnp.pad(p, ((radius, radius), (0, 0), (0, 0)), mode="edge")
    p = sum(taps[i] * padded[i:i + h] for i in range(2 * radius + 1))
    padded = jnp.pad(p, ((0, 0), (radius, radius), (0, 0)), mode="edge")
    return sum(taps[i] * padded[:, i:i + w] for i in range(2 * radius + 1))


def jpeg_quantisation_tables(quality: jnp.ndarray) -> jnp.ndarray:
    """(3, 8, 8) luma, chroma, chroma quantisation steps at JPEG ``quality`` (IJG's scaling)."""
    scale = jnp.where(quality < 50, 5000.0 / quality, 200.0 - 2.0 * quality) / 100.0
    tables = jnp.stack([JPEG_LUMA, JPEG_CHROMA, JPEG_CHROMA])
    return jnp.clip(jnp.floor(tables * scale + 0.5), 1.0, 255.0)


def jpeg(key: jax.Array, p: jnp.ndarray, aug: ml_collections.ConfigDict) -> jnp.ndarray:
    """JPEG-like artefacts: YCbCr, 8x8 block DCT, coefficients rounded to the quantisation steps of a
    quality uniform in jpeg_quality (no chroma subsampling, no entropy coding: nothing else of JPEG
    changes pixels), and back."""
    low, high = aug.jpeg_quality
    quality = jax.random.uniform(key, (), minval=low, maxval=high)
    h, w = p.shape[:2]
    ph, pw = -h % BLOCK, -w % BLOCK
    x = jnp.pad(p * 255.0, ((0, ph), (0, pw), (0, 0)), mode="edge") @ YCBCR.T - LEVEL_SHIFT
    blocks = x.reshape((h + ph) // BLOCK, BLOCK, (w + pw) // BLOCK, BLOCK, 3)
    d = _dct_matrix()
    coefficients = jnp.einsum("ki,aibjc,lj->abckl", d, blocks, d)
    steps = jpeg_quantisation_tables(quality)
    coefficients = jnp.round(coefficients / steps) * steps
    blocks = jnp.einsum("ki,abckl,lj->aibjc", d, coefficients, d)
    x = blocks.reshape(h + ph, w + pw, 3) + LEVEL_SHIFT
    return (x @ RGB.T)[:h, :w] / 255.0


def noise(key: jax.Array, p: jnp.ndarray, aug: ml_collections.ConfigDict) -> jnp.ndarray:
    """Gaussian noise per pixel and channel, sd uniform in [0, noise_max_std] (of the [0, 1] range)."""
    k_std, k_noise = jax.random.split(key)
    std = jax.random.uniform(k_std, (), maxval=aug.noise_max_std)
    return p + std * jax.random.normal(k_noise, p.shape)


# name (its probability key) -> function, in the order they are applied: colour, then how a camera
# and its file degrade the picture. Each draws from its own key, so enabling one changes no other.
ROBUST = {"grayscale": grayscale, "colour_cast": colour_cast, "gamma": gamma,
          "low_resolution": low_resolution, "blur": blur, "jpeg": jpeg, "noise": noise}


def probability(aug: ml_collections.ConfigDict, name: str) -> float:
    """The probability of robust augmentation ``name`` (0 for a config from before it existed)."""
    return float(aug.get(name, 0.0))


def robust_enabled(aug: ml_collections.ConfigDict) -> bool:
    return any(probability(aug, name) > 0 for name in ROBUST)


def robust_key(key: str) -> bool:
    """Whether a c.augment key is a robust augmentation's probability or strength."""
    return any(key == name or key.startswith(f"{name}_") for name in ROBUST)


def as_before_robust(saved: dict, current: dict) -> dict:
    """A saved training config (a checkpoint's) from before the robust augmentations existed, read
    with the robust keys it lacks taken from ``current`` when ``current`` keeps them all off: that
    config trains exactly as the saved one did, so its checkpoint may be resumed."""
    saved_aug, current_aug = saved.get("augment"), current.get("augment")
    if not isinstance(saved_aug, dict) or not isinstance(current_aug, dict):
        return saved
    if any(name in saved_aug for name in ROBUST) or any(current_aug.get(name, 0) for name in ROBUST):
        return saved
    missing = {k: v for k, v in current_aug.items() if robust_key(k) and k not in saved_aug}
    return {**saved, "augment": {**saved_aug, **missing}}


def _robust_one(key: jax.Array, image: jnp.ndarray, aug: ml_collections.ConfigDict) -> jnp.ndarray:
    keys = jax.random.split(key, 2 * len(ROBUST))
    p = image * STD + MEAN  # house-normalised -> pixels in [0, 1]
    for i, (name, function) in enumerate(ROBUST.items()):
        if probability(aug, name) > 0:
            apply = jax.random.bernoulli(keys[2 * i], probability(aug, name))
            p = jnp.where(apply, function(keys[2 * i + 1], p, aug), p)
    return (p - MEAN) / STD


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
    if robust_enabled(aug):  # a key of its own: the draws above are those of a config without them
        image = _robust_one(jax.random.fold_in(key, 1), image, aug)
    return image


def augment(key: jax.Array, images: jnp.ndarray, aug: ml_collections.ConfigDict) -> jnp.ndarray:
    """Random flip, small zoom and shift, brightness and contrast jitter on normalised images, then
    the robust augmentations whose probability is above 0."""
    if not aug.enabled:
        return images
    keys = jax.random.split(key, images.shape[0])
    return jax.vmap(_augment_one, in_axes=(0, 0, None))(keys, images, aug)
