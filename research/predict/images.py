"""Reading a photo for prediction: every failure becomes a status with a clear message, never a crash.

Statuses: ok, not_found, empty_file, not_an_image, truncated, too_large, error. Memory stays
bounded: the pixel count is read from the header before decoding, large JPEGs are decoded at a
reduced DCT scale (``Image.draft``), and anything still over ``max_decode_pixels`` is refused.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

TRANSPARENT_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
BACKGROUND = (255, 255, 255)  # transparent pixels are shown on white


@dataclasses.dataclass
class LoadedImage:
    """An RGB uint8 array to detect faces in (or a failure status) and how it was obtained."""

    status: str
    message: str
    array: np.ndarray | None = None
    size: tuple[int, int] | None = None  # width, height of the upright image at full resolution
    scale: float = 1.0  # array pixels per original pixel (boxes are divided by it)
    notes: list[str] = dataclasses.field(default_factory=list)


def failure(status: str, message: str) -> LoadedImage:
    return LoadedImage(status=status, message=message)


def to_rgb(image: Image.Image, notes: list[str]) -> Image.Image:
    """Any Pillow mode as 8-bit RGB: 16-bit scaled (not clipped), alpha flattened on white."""
    if image.mode in SIXTEEN_BIT_MODES:
        values = np.asarray(image, dtype=np.float64)
        top = values.max() if values.size else 0.0
        divisor = 1.0 if top <= 255 else 257.0 if top <= 65535 else top / 255.0
        notes.append(f"{image.mode} scaled to 8 bits")
        image = Image.fromarray(np.clip(values / divisor, 0, 255).astype(np.uint8), "L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in TRANSPARENT_MODES:
        notes.append(f"{image.mode} flattened on white")
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
        return Image.alpha_composite(flat, rgba).convert("RGB")
    if image.mode != "RGB":
        notes.append(f"converted from {image.mode}")
        image = image.convert("RGB")
    return image


def _decode(path: Path, max_decode_pixels: int, max_side: int) -> LoadedImage:
    notes: list[str] = []
    with Image.open(path) as image:
        width, height = image.size
        if image.format == "JPEG" and max(width, height) > max_side:
            image.draft(image.mode if image.mode == "CMYK" else "RGB", (max_side, max_side))
            if image.size != (width, height):
                notes.append(f"decoded at {image.size[0]}x{image.size[1]} (JPEG reduced scale)")
        if image.size[0] * image.size[1] > max_decode_pixels:
            return failure("too_large", f"{width}x{height} pixels ({width * height / 1e6:.0f} MP) is more "
                           f"than the {max_decode_pixels / 1e6:.0f} MP this command decodes; "
                           "downscale it first (JPEGs this large are read at reduced scale)")
        image.load()
        orientation = image.getexif().get(0x0112, 1)
        upright = ImageOps.exif_transpose(image)
        if orientation not in (1, None):
            notes.append(f"rotated by EXIF orientation {orientation}")
        rgb = to_rgb(upright, notes)
    full = (height, width) if orientation in (5, 6, 7, 8) else (width, height)  # those swap the axes
    if max(rgb.size) > max_side:
        factor = max_side / max(rgb.size)
        rgb = rgb.resize((max(1, round(rgb.size[0] * factor)), max(1, round(rgb.size[1] * factor))),
                         Image.Resampling.BILINEAR, reducing_gap=2.0)
    scale = rgb.size[0] / full[0]
    if scale < 1:
        notes.append(f"downscaled from {full[0]}x{full[1]} to {rgb.size[0]}x{rgb.size[1]}")
    return LoadedImage(status="ok", message="read", array=np.ascontiguousarray(np.asarray(rgb, np.uint8)),
                       size=full, scale=scale, notes=notes)


def load_image(path: str | Path, max_decode_pixels: int, max_side: int) -> LoadedImage:
    """Read ``path`` as an upright RGB uint8 array at most ``max_side`` on its longer side."""
    path = Path(path)
    if not path.exists():
        return failure("not_found", "no such file")
    if not path.is_file():
        return failure("error", "not a regular file")
    if path.stat().st_size == 0:
        return failure("empty_file", "the file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            # The header check above replaces Pillow's decompression-bomb warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return _decode(path, max_decode_pixels, max_side)
    except Image.DecompressionBombError as error:
        return failure("too_large", f"refused by Pillow's decompression-bomb limit: {error}")
    except UnidentifiedImageError:
        return failure("not_an_image", "not an image file Pillow can read")
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        text = str(error)
        lowered = text.lower()
        if "truncated" in lowered or isinstance(error, EOFError) or "broken data stream" in lowered:
            return failure("truncated", f"the image data is truncated or corrupt ({text})")
        return failure("error", f"could not decode the image: {text}")
    except MemoryError:
        return failure("too_large", "ran out of memory decoding the image")
