"""Leaving confirmed non-face crops (research/configs/nonfaces.py) out of training.

Only the training and validation splits are ever filtered, and only when the run's config asks
(``config.data.exclude_nonfaces``); the test split is never filtered here, so its metrics stay
comparable across runs (results/cleaning/nonfaces_test_metrics.csv reports them without too).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from research.configs.nonfaces import NONFACES

FILTERED_SPLITS = ("train", "val")


def confirmed_nonfaces() -> frozenset[str]:
    """File names of the reviewed non-face crops."""
    return frozenset(NONFACES)


def keep_mask(files: pd.Series, nonfaces: Iterable[str]) -> np.ndarray:
    """True for every file not among ``nonfaces``."""
    return ~files.isin(frozenset(nonfaces)).to_numpy()


def training_split(cached, split: str, exclude: bool,
                   nonfaces: Iterable[str] | None = None) -> tuple[np.ndarray, pd.DataFrame]:
    """Row indices and label rows of ``split`` of a DecodedImages cache (research/data/cache.py),
    without the confirmed non-faces when ``exclude``; ``split`` must be train or val."""
    if split not in FILTERED_SPLITS:
        raise ValueError(f"non-faces are left out of {FILTERED_SPLITS} only, not {split!r}: "
                         "the test split is scored with and without them instead")
    rows, table = cached.split(split)
    if not exclude:
        return rows, table
    keep = keep_mask(table["file"], confirmed_nonfaces() if nonfaces is None else nonfaces)
    return rows[keep], table[keep].reset_index(drop=True)
