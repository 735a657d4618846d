"""A decoded-image cache: every image of a split file, resized once, in one uint8 .npy file.

Decoding JPEGs dominates a CPU training epoch at low resolution, so training reads a
memory-mapped ``images.npy`` (N x S x S x 3, uint8) whose row order is ``index.csv``.
The cache is keyed by the split file's checksum and the size, and rebuilt when either changes.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from research.data import archive
from research.outputs import atomic_path, write_csv, write_json


@dataclasses.dataclass
class DecodedImages:
    """Images (memory-mapped uint8) and their label table, rows aligned."""

    images: np.ndarray
    table: pd.DataFrame
    source_sha256: str | None = None  # checksum of the archive the images were decoded from

    def split(self, name: str) -> tuple[np.ndarray, pd.DataFrame]:
        """Row indices and label rows of one split (train/val/test)."""
        rows = np.flatnonzero(self.table["split"].to_numpy() == name)
        return rows, self.table.iloc[rows].reset_index(drop=True)


def decode_resize(blob: bytes, size: int) -> np.ndarray:
    """Decode a JPEG and resize it to ``size`` x ``size`` RGB.

    ``draft`` lets libjpeg decode at a reduced DCT scale (1/2, 1/4, 1/8) no smaller than the
    target, which is several times cheaper than a full decode followed by a resize.
    """
    image = Image.open(io.BytesIO(blob))
    image.draft("RGB", (size, size))
    image = image.convert("RGB")
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
    return np.asarray(image, dtype=np.uint8)


def _decode_job(args: tuple[bytes, int]) -> np.ndarray:
    return decode_resize(*args)


def cache_dir(root: Path, split_csv: Path, size: int) -> Path:
    return Path(root) / f"{Path(split_csv).stem}_{size}px"


def build_cache(source: Path, split_csv: Path, size: int, out: Path, workers: int = 0) -> Path:
    """Decode every file of ``split_csv`` from ``source`` into ``out`` (images.npy, index.csv, meta.json).

    Returns ``out``. Skips the work when a cache with the same split checksum and size exists.
    """
    out = Path(out)
    meta = {"split_file": Path(split_csv).name, "split_sha256": archive.sha256_file(split_csv),
            "size": size}
    if is_current(out, meta):
        return out
    table = pd.read_csv(split_csv, keep_default_na=False)
    order = {name: i for i, name in enumerate(table["file"])}
    out.mkdir(parents=True, exist_ok=True)
    # Threads, not processes: PIL releases the GIL while decoding and resizing, and forking a
    # process that has initialised JAX (the training loop builds caches on demand) is unsafe.
    workers = workers or max(1, os.cpu_count() or 1)
    seen = np.zeros(len(table), bool)
    with atomic_path(out / "images.npy") as tmp:
        images = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                           shape=(len(table), size, size, 3))
        files = archive.iter_files(source, only=order)
        names, blobs = [], []
        bar = tqdm(total=len(table), desc=f"cache {size}px", unit="img")
        with ThreadPoolExecutor(workers) as pool, bar:
            for name, blob in files:
                names.append(name)
                blobs.append(blob)
                if len(blobs) == 256:
                    _store(pool, images, order, seen, names, blobs, size, bar)
                    names, blobs = [], []
            _store(pool, images, order, seen, names, blobs, size, bar)
        images.flush()
        del images
        if not seen.all():
            missing = table["file"][~seen].tolist()
            raise FileNotFoundError(f"{len(missing)} files of {split_csv} are not in {source}, "
                                    f"e.g. {missing[:3]}; was the split made from another archive?")
    write_csv(out / "index.csv", table)
    write_json(out / "source.json", {"source": source.name, "source_sha256": archive.data_checksum(source)})
    write_json(out / "meta.json", meta)
    return out


def _store(pool, images, order, seen, names, blobs, size, bar) -> None:
    for name, array in zip(names, pool.map(_decode_job, [(b, size) for b in blobs]), strict=True):
        images[order[name]] = array
        seen[order[name]] = True
    bar.update(len(names))


def is_current(out: Path, meta: dict) -> bool:
    path = Path(out) / "meta.json"
    complete = all((Path(out) / name).is_file() for name in ("images.npy", "index.csv", "source.json"))
    return complete and path.is_file() and json.loads(path.read_text()) == meta


def load_cache(out: Path) -> DecodedImages:
    """Open a built cache (images memory-mapped read-only)."""
    out = Path(out)
    if not (out / "meta.json").is_file():
        raise FileNotFoundError(f"no decoded-image cache at {out}; build it with scripts/build_cache.py")
    images = np.load(out / "images.npy", mmap_mode="r")
    table = pd.read_csv(out / "index.csv", keep_default_na=False)
    source = out / "source.json"
    sha = json.loads(source.read_text())["source_sha256"] if source.is_file() else None
    return DecodedImages(images=images, table=table, source_sha256=sha)
