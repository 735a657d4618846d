"""Image corruptions for the robustness benchmark (the ImageNet-C idea, Hendrycks and Dietterich,
2019), on uint8 face crops: pure numpy + PIL functions ``f(image, severity, rng) -> image``.

Every corruption has three severities (1 mild, 2 middle, 3 strong); ``SEVERITIES`` holds the
parameter of each, so the benchmark's definition is this table. The parameters are in the crop's
own pixels (the 200x200 UTKFace crops): a corruption is applied before the resize to a model's
input, so that a JPEG quality or a downscale to 24 px mean what they say. Corruptions with a random
part (noise, the direction of a colour cast, brightness, gamma or rotation) draw it from ``rng``;
``corruption_rng`` seeds one generator per (seed, corruption, image), so an image is corrupted the
same way whatever batch it is in and at every severity (only the strength grows).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageFilter

CLEAN = "clean"  # the name of the uncorrupted condition in the benchmark's tables
Corruption = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, as PIL's "L" conversion
SEPIA = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])

# name -> the parameter at severity 1, 2, 3 (what it means: each function's docstring).
SEVERITIES: dict[str, tuple[float, float, float]] = {
    "grayscale": (0.5, 0.8, 1.0),  # share of the colour removed (1: equal channels)
    "sepia": (0.4, 0.7, 1.0),  # blend towards the sepia tone
    "colour_cast": (0.15, 0.3, 0.5),  # log white-balance gain along a random chroma direction
    "blur": (1.5, 3.0, 5.0),  # Gaussian sigma, px of the crop
    "jpeg": (20, 10, 5),  # JPEG quality
    "low_resolution": (40, 32, 24),  # px the crop is downscaled to (then upscaled back)
    "noise": (10.0, 20.0, 35.0),  # Gaussian noise sd, of 255
    "brightness": (0.1, 0.2, 0.35),  # shift, share of 255, up or down at random
    "contrast": (0.7, 0.5, 0.3),  # contrast kept (1: unchanged)
    "gamma": (1.3, 1.7, 2.3),  # gamma or its inverse at random
    "rotation": (5.0, 10.0, 15.0),  # degrees, either way at random
}


def parameter(name: str, severity: int) -> float:
    """The SEVERITIES parameter of ``name`` at ``severity`` (1, 2 or 3)."""
    if name not in SEVERITIES:
        raise ValueError(f"unknown corruption {name!r}; corruptions: {', '.join(SEVERITIES)}")
    if severity not in (1, 2, 3):
        raise ValueError(f"severity must be 1, 2 or 3, not {severity!r}")
    return SEVERITIES[name][severity - 1]


def _as_uint8(pixels: np.ndarray) -> np.ndarray:
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8)


def _sign(rng: np.random.Generator) -> float:
    return 1.0 if rng.random() < 0.5 else -1.0


def grayscale(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Desaturation: the share ``p`` of the colour removed towards the luma; at 1 every channel
    equals the luma (a black-and-white photo)."""
    share = parameter("grayscale", severity)
    luma = image.astype(np.float64) @ LUMA
    return _as_uint8((1 - share) * image + share * luma[..., None])


def sepia(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """An old print's brown tone: a blend ``p`` towards the classic sepia matrix of the pixels."""
    share = parameter("sepia", severity)
    toned = np.clip(image.astype(np.float64) @ SEPIA.T, 0, 255)
    return _as_uint8((1 - share) * image + share * toned)


def colour_cast(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """A white-balance error: channel gains exp(p * u), u a random unit direction orthogonal to
    grey (so the gains' product is 1: the hue shifts, the overall level barely)."""
    strength = parameter("colour_cast", severity)
    angle = rng.uniform(0, 2 * np.pi)
    direction = (np.cos(angle) * np.array([1.0, -1.0, 0.0]) / np.sqrt(2)
                 + np.sin(angle) * np.array([1.0, 1.0, -2.0]) / np.sqrt(6))
    return _as_uint8(image * np.exp(strength * direction))


def blur(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur of standard deviation ``p`` px (PIL's GaussianBlur radius)."""
    radius = parameter("blur", severity)
    return np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius)), np.uint8)


def jpeg(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Re-encoded as a JPEG of quality ``p`` (libjpeg through PIL, 4:2:0 chroma) and decoded."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=int(parameter("jpeg", severity)))
    return np.asarray(Image.open(buffer).convert("RGB"), np.uint8)


def low_resolution(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Downscaled to ``p`` x ``p`` px (antialiased bilinear) and upscaled back (bilinear)."""
    side = int(parameter("low_resolution", severity))
    height, width = image.shape[:2]
    small = Image.fromarray(image).resize((side, side), Image.Resampling.BILINEAR, reducing_gap=None)
    return np.asarray(small.resize((width, height), Image.Resampling.BILINEAR), np.uint8)


def noise(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Additive Gaussian noise of standard deviation ``p`` (of 255), independent per pixel and channel."""
    return _as_uint8(image + parameter("noise", severity) * rng.standard_normal(image.shape))


def brightness(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Every pixel shifted by ``p`` x 255, brighter or darker at random (then clipped)."""
    return _as_uint8(image + _sign(rng) * parameter("brightness", severity) * 255)


def contrast(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Contrast scaled by ``p`` about the image's mean (a faded, low-contrast photo)."""
    kept = parameter("contrast", severity)
    mean = image.mean(axis=(0, 1), keepdims=True)
    return _as_uint8((image - mean) * kept + mean)


def gamma(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Tone curve 255 (x / 255) ** g with g = ``p`` or 1 / ``p`` at random (under- or overexposed)."""
    exponent = parameter("gamma", severity) ** _sign(rng)
    return _as_uint8(255 * (image / 255.0) ** exponent)


def rotation(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Rotated ``p`` degrees either way about the centre (bilinear); the corners are filled from a
    mirrored border rather than black, so that only the face's tilt changes."""
    angle = _sign(rng) * parameter("rotation", severity)
    height, width = image.shape[:2]
    pad = int(np.ceil(0.25 * max(height, width)))
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    turned = np.asarray(Image.fromarray(padded).rotate(angle, Image.Resampling.BILINEAR), np.uint8)
    return turned[pad:pad + height, pad:pad + width]


CORRUPTIONS: dict[str, Corruption] = {
    "grayscale": grayscale, "sepia": sepia, "colour_cast": colour_cast, "blur": blur, "jpeg": jpeg,
    "low_resolution": low_resolution, "noise": noise, "brightness": brightness, "contrast": contrast,
    "gamma": gamma, "rotation": rotation,
}


def corruption_rng(seed: int, name: str, key: str) -> np.random.Generator:
    """The generator of one image (``key``: its file name) under corruption ``name``: a function of
    the three alone, not of the severity, the batch or the order images are processed in."""
    words = [int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") for text in (name, key)]
    return np.random.default_rng([int(seed), *words])


def corrupt(image: np.ndarray, name: str, severity: int, seed: int, key: str) -> np.ndarray:
    """``image`` (uint8 H x W x 3) under corruption ``name`` at ``severity``, seeded by (seed, key)."""
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; corruptions: {', '.join(CORRUPTIONS)}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"a corruption takes a uint8 H x W x 3 image, not {image.dtype} {image.shape}")
    return CORRUPTIONS[name](image, severity, corruption_rng(seed, name, key))


def model_input(image: np.ndarray, size: int) -> np.ndarray:
    """A (corrupted) crop resized to a model's ``size`` x ``size`` input (antialiased bilinear)."""
    if image.shape[:2] == (size, size):
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR,
                                                    reducing_gap=None), np.uint8)
