"""Shared fixtures: a tiny synthetic UTKFace-style folder of JPEGs, and a tarball writer."""

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from research.configs.experiments import force_host_devices

# Before anything imports jax: engine tests compare pmap on 2 forced CPU devices with 1 device.
force_host_devices()

# One age per group boundary and a few inside: every AGE_GROUPS bucket is covered twice over.
SYNTHETIC_AGES = (1, 5, 12, 13, 15, 17, 18, 21, 24, 25, 30, 34, 35, 40, 44, 45, 52, 59, 60, 116)
SYNTHETIC_COUNT = 40


def synthetic_name(index: int, age: int, gender: int, race: int) -> str:
    """A real-style name: [age]_[gender]_[race]_[17-digit stamp].jpg.chip.jpg, unique per index."""
    return f"{age}_{gender}_{race}_{20170116174525125 + index}.jpg.chip.jpg"


def synthetic_labels(count: int = SYNTHETIC_COUNT) -> list[tuple[int, int, int]]:
    """(age, gender, race) per image: all age groups, both genders, all 5 races."""
    return [(SYNTHETIC_AGES[i % len(SYNTHETIC_AGES)], i % 2, (i // 2) % 5) for i in range(count)]


def synthetic_pixels(rng: np.random.Generator, size: int = 200) -> np.ndarray:
    """A smooth random colour field plus a gradient and mild noise: distinct per draw, JPEG-friendly."""
    coarse = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8))
    smooth = np.asarray(coarse.resize((size, size), Image.Resampling.BICUBIC), np.float32)
    ramp = np.linspace(-30, 30, size, dtype=np.float32)
    smooth = smooth + (ramp[None, :, None] if rng.random() < 0.5 else ramp[:, None, None])
    noise = rng.normal(0, 4, smooth.shape)
    return np.clip(smooth + noise, 0, 255).astype(np.uint8)


def jpeg_bytes(pixels: np.ndarray, quality: int = 90, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    image = Image.fromarray(pixels)
    (image.convert(mode) if mode else image).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def write_utk_folder(folder: Path, count: int = SYNTHETIC_COUNT, seed: int = 0) -> Path:
    """Write ``count`` distinct 200x200 RGB JPEGs with UTKFace-style names into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for index, (age, gender, race) in enumerate(synthetic_labels(count)):
        (folder / synthetic_name(index, age, gender, race)).write_bytes(jpeg_bytes(synthetic_pixels(rng)))
    return folder


def write_tarball(folder: Path, path: Path, order_seed: int | None = None) -> Path:
    """Pack ``folder``'s files as ``UTKFace/<name>`` (as in the official archive) into a .tar.gz.

    Files go in sorted order, or shuffled with ``order_seed`` (archive order is not name order).
    """
    files = sorted(p for p in Path(folder).iterdir() if p.is_file())
    if order_seed is not None:
        files = [files[i] for i in np.random.default_rng(order_seed).permutation(len(files))]
    with tarfile.open(path, "w:gz") as tar:
        for file in files:
            tar.add(file, arcname=f"UTKFace/{file.name}")
    return path


@pytest.fixture
def utk_folder(tmp_path: Path) -> Path:
    """A tiny synthetic UTKFace folder (40 JPEGs, every age group, both genders, all races)."""
    return write_utk_folder(tmp_path / "UTKFace")


@pytest.fixture(scope="session")
def utk_writer():
    """``write_utk_folder(folder, count=40, seed=0)``, for module-scoped folders."""
    return write_utk_folder


@pytest.fixture(scope="session")
def tarball_writer():
    """``write_tarball(folder, path, order_seed=None)``: pack a folder like the official archive."""
    return write_tarball
