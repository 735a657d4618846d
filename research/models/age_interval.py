"""The age interval read off a predicted age distribution, shared by evaluation and prediction."""

import numpy as np


def interval_lower_end(age, std, z: float) -> np.ndarray:
    """Lower end of the interval estimate - z * sd of the predicted age distribution, at least 0."""
    return np.maximum(0.0, np.asarray(age, dtype=float) - z * np.asarray(std, dtype=float))
