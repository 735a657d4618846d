"""The percentile bootstrap every interval in results/ uses (metrics, breakdowns, release checks).

Rows are resampled with replacement; indices are drawn in memory-bounded blocks of whole
resamples, which gives exactly the draws of one ``rng.integers(0, n, n)`` call per resample.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

_BLOCK = 1 << 21  # indices drawn at most this many at a time (16 MB of int64)


def resample_indices(n: int, resamples: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Blocks of shape (k, n) of row indices, ``resamples`` rows in all."""
    per_block = max(1, _BLOCK // max(n, 1))
    for start in range(0, resamples, per_block):
        yield rng.integers(0, n, (min(per_block, resamples - start), n))


def bootstrap_means(values: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``resamples`` resamples of ``values``."""
    return np.concatenate([values[idx].mean(axis=1) for idx in resample_indices(len(values), resamples, rng)])


def rate_draws(event: np.ndarray, members: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Share of ``event`` among ``members`` in each resample (rows of ``idx``); NaN when a
    resample holds no member (a rate that does not exist, as in the point estimate)."""
    count = members[idx].sum(axis=1)
    hits = (event[idx] * members[idx]).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, hits / np.where(count > 0, count, 1), np.nan)


def percentile_interval(draws: np.ndarray, level: float) -> list[float]:
    """[low, high]: the central ``level`` share of the draws (NaN if any draw is NaN)."""
    tail = (1 - level) / 2 * 100
    return [float(np.percentile(draws, tail)), float(np.percentile(draws, 100 - tail))]
