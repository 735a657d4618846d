"""The age interval read off a predicted age distribution, shared by evaluation and prediction."""

import numpy as np


def interval_lower_end(age, std, z: float) -> np.ndarray:
    """Lower end of the interval estimate - z * sd of the predicted age distribution, at least 0."""
    return np.maximum(0.0, np.asarray(age, dtype=float) - z * np.asarray(std, dtype=float))


def level_key(level: float) -> str:
    """'0.9' for 0.9: how a coverage level names its quantiles in a calibration file."""
    return f"{level:g}"


def calibrated_half_width(age, std, level: float, calibration: dict) -> np.ndarray:
    """Half width of the calibrated ``level`` interval of each estimate.

    ``calibration`` is a split-conformal calibration (results/calibration/intervals.json, written by
    research.evaluation.calibration): ``edges`` cut the estimate into bands, ``quantiles[level]``
    holds one quantile of the conformity score per band; the score is the absolute error
    (``method`` "absolute") or the absolute error in units of the model's sd ("normalised").
    """
    age = np.asarray(age, dtype=float)
    quantiles = calibration["quantiles"].get(level_key(level))
    if quantiles is None:
        raise ValueError(f"no calibrated {level:g} interval; levels: {', '.join(calibration['quantiles'])}")
    q = np.asarray(quantiles, dtype=float)[np.searchsorted(calibration["edges"], age, side="right")]
    if calibration["method"] == "normalised":
        return q * np.asarray(std, dtype=float)
    if calibration["method"] == "absolute":
        return q * np.ones_like(age)
    raise ValueError(f"unknown calibration method {calibration['method']!r}")


def calibrated_interval(age, std, level: float, calibration: dict) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of the calibrated ``level`` interval around each estimate; low at least 0."""
    half = calibrated_half_width(age, std, level, calibration)
    age = np.asarray(age, dtype=float)
    return np.maximum(0.0, age - half), age + half
