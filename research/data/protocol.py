"""Connect a config to its decoded-image cache (building it on first use)."""

from __future__ import annotations

from pathlib import Path

import ml_collections
import numpy as np

from research.data import cache, locate


def open_protocol(config: ml_collections.ConfigDict, data: str | None = None) -> cache.DecodedImages:
    """The cached images of ``config.protocol`` at ``config.image_size`` (built when missing)."""
    split_csv = Path(config.data.split_dir) / f"{config.protocol}.csv"
    if not split_csv.is_file():
        raise FileNotFoundError(f"split file {split_csv} not found; run scripts/make_splits.py first")
    out = cache.cache_dir(Path(config.data.cache_root), split_csv, config.image_size)
    meta = {"split_file": split_csv.name, "split_sha256": cache.archive.sha256_file(split_csv),
            "size": config.image_size}
    if not cache.is_current(out, meta):
        source = locate.locate_dataset(data or config.data.path or None)
        cache.build_cache(source, split_csv, config.image_size, out)
    return cache.load_cache(out)


def subset(rows: np.ndarray, limit: int) -> np.ndarray:
    """The first ``limit`` rows (all when 0): smoke runs train on a slice."""
    return rows[:limit] if limit else rows
