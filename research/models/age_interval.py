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


def inverted_interval(age, level: float, calibration: dict) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of an inverted calibration (method "inverted"): the true ages ``a`` whose central
    ``level`` range of validation estimates, [low(a), high(a)] (``quantiles[level]``, monotone in
    ``a`` on the grid ``true_ages``), holds the estimate. A face of true age ``a`` is covered exactly
    when its estimate falls in that range, so the stated level is aimed at for every true age (as
    far as validation's faces of about that age stand for new ones)."""
    table = calibration["quantiles"].get(level_key(level))
    if table is None:
        raise ValueError(f"no calibrated {level:g} interval; levels: {', '.join(calibration['quantiles'])}")
    ages = np.asarray(calibration["true_ages"], dtype=float)
    lows, highs = np.asarray(table["low"], dtype=float), np.asarray(table["high"], dtype=float)
    # Beyond the validation estimates' range, the interval of the nearest end (not a single end age).
    age = np.clip(np.asarray(age, dtype=float), lows[0], highs[-1])
    last = len(ages) - 1
    low = ages[np.clip(np.searchsorted(highs, age, side="left"), 0, last)]  # first a with high(a) >= estimate
    high = ages[np.clip(np.searchsorted(lows, age, side="right") - 1, 0, last)]  # last a with low(a) <= it
    return low, np.maximum(high, low)


def calibrated_interval(age, std, level: float, calibration: dict) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of the calibrated ``level`` interval around each estimate; low at least 0."""
    if calibration["method"] == "inverted":
        return inverted_interval(age, level, calibration)
    half = calibrated_half_width(age, std, level, calibration)
    age = np.asarray(age, dtype=float)
    return np.maximum(0.0, age - half), age + half
