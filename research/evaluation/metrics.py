"""Metrics computed from a predictions table (so anyone can recompute them from the CSV).

Predictions columns: file, age, gender, race, pred_age, pred_gender, p_female, pred_race,
age_std (race -1 = missing label, excluded from ethnicity metrics).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from research.evaluation.bootstrap import percentile_interval, rate_draws, resample_indices
from research.models.age_interval import interval_lower_end
from research.vocabulary import (
    AGE_GROUPS,
    CHALLENGE_AGE,
    CHALLENGE_AGES,
    MINORS,
    NUM_ETHNICITIES,
    YOUNG_ADULTS,
    age_group,
    band_key,
    in_band,
)

CS_LEVELS = (1, 3, 5, 10)
CHALLENGE_THRESHOLDS = CHALLENGE_AGES
# Challenge-N rate names (columns of the breakdowns, keys of metrics_test.json after "challenge<N>_").
FPR_MINORS = f"fpr_{band_key(MINORS)}"
FRICTION_YOUNG = f"friction_{band_key(YOUNG_ADULTS)}"
FRICTION_ADULTS = f"friction_{CHALLENGE_AGE}plus"


def age_metrics(true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    error = pred - true
    absolute = np.abs(error)
    out = {
        "age_mae": float(absolute.mean()),
        "age_rmse": float(np.sqrt((error**2).mean())),
        "age_median_ae": float(np.median(absolute)),
        "age_mean_signed_error": float(error.mean()),
    }
    out.update({f"age_cs{k}": float((absolute <= k).mean()) for k in CS_LEVELS})
    return out


def binary_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve by the rank-sum (Mann-Whitney) formula, ties averaged."""
    ranks = pd.Series(scores).rank(method="average").to_numpy()
    positives = labels == 1
    n_pos, n_neg = positives.sum(), (~positives).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def f1_score(true: np.ndarray, pred: np.ndarray, positive: int) -> float:
    tp = np.sum((pred == positive) & (true == positive))
    fp = np.sum((pred == positive) & (true != positive))
    fn = np.sum((pred != positive) & (true == positive))
    return float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn else float("nan")


def gender_metrics(true: np.ndarray, pred: np.ndarray, p_female: np.ndarray) -> dict[str, float]:
    return {
        "gender_accuracy": float((true == pred).mean()),
        "gender_f1": f1_score(true, pred, positive=1),  # female as the positive class
        "gender_auc": binary_auc(true, p_female),
    }


def confusion(true: np.ndarray, pred: np.ndarray, classes: int) -> np.ndarray:
    matrix = np.zeros((classes, classes), int)
    np.add.at(matrix, (true, pred), 1)
    return matrix


def ethnicity_metrics(true: np.ndarray, pred: np.ndarray) -> dict:
    """Accuracy, macro F1 and confusion over known labels; all nan for a model with no ethnicity
    head (every prediction missing, as for the peer package)."""
    if np.isnan(np.asarray(pred, dtype=float)).all():
        return {"ethnicity_accuracy": float("nan"), "ethnicity_macro_f1": float("nan"),
                "ethnicity_confusion": None}
    known = true >= 0
    true, pred = true[known], pred[known]
    return {
        "ethnicity_accuracy": float((true == pred).mean()),
        "ethnicity_macro_f1": float(np.nanmean([f1_score(true, pred, c) for c in range(NUM_ETHNICITIES)])),
        "ethnicity_confusion": confusion(true, pred, NUM_ETHNICITIES).tolist(),
    }


def challenge_rates(true_age: np.ndarray, pred_age: np.ndarray, threshold: float) -> dict[str, float]:
    """Challenge-N: ID is asked when the estimate is below ``threshold``.

    fpr_13_17: share of minors (vocabulary.MINORS) estimated at the threshold or above (let through);
    friction_18_24 / friction_25plus: share of young adults, and of adults of the challenge age or
    over, asked for ID.
    """

    def share(mask, condition):
        return float(condition[mask].mean()) if mask.any() else float("nan")

    passed = pred_age >= threshold
    return {
        FPR_MINORS: share(in_band(true_age, MINORS), passed),
        FRICTION_YOUNG: share(in_band(true_age, YOUNG_ADULTS), ~passed),
        FRICTION_ADULTS: share(true_age >= CHALLENGE_AGE, ~passed),
    }


def headline_metrics(frame: pd.DataFrame) -> dict:
    """Every point metric of a predictions table (no intervals)."""
    true_age, pred_age = frame["age"].to_numpy(float), frame["pred_age"].to_numpy(float)
    out = {"n": int(len(frame))}
    out.update(age_metrics(true_age, pred_age))
    out.update(
        gender_metrics(
            frame["gender"].to_numpy(), frame["pred_gender"].to_numpy(), frame["p_female"].to_numpy(float)
        )
    )
    out.update(ethnicity_metrics(frame["race"].to_numpy(), frame["pred_race"].to_numpy()))
    groups = frame["age"].map(age_group)
    out["age_mean_signed_error_by_group"] = {
        label: float((pred_age - true_age)[(groups == label).to_numpy()].mean())
        for label, _, _ in AGE_GROUPS
        if (groups == label).any()
    }
    for n in CHALLENGE_THRESHOLDS:
        rates = challenge_rates(true_age, pred_age, n)
        out.update({f"challenge{n}_{k}": v for k, v in rates.items()})
    return out


BOOTSTRAP_METRICS = (
    "age_mae",
    "age_rmse",
    "gender_accuracy",
    "ethnicity_accuracy",
    f"challenge{CHALLENGE_AGE}_{FPR_MINORS}",
    f"challenge{CHALLENGE_AGE}_{FRICTION_ADULTS}",
)


def bootstrap_intervals(
    frame: pd.DataFrame,
    resamples: int,
    seed: int,
    names: tuple[str, ...] = BOOTSTRAP_METRICS,
    level: float = 0.95,
) -> dict:
    """Percentile bootstrap intervals (research.evaluation.bootstrap) of the headline metrics; the
    Challenge rates at the challenge age (vocabulary.CHALLENGE_AGE)."""
    rng = np.random.default_rng(seed)
    true_age, pred_age = frame["age"].to_numpy(float), frame["pred_age"].to_numpy(float)
    gender_ok = (frame["gender"] == frame["pred_gender"]).to_numpy(float)
    race_known = ((frame["race"] >= 0).to_numpy() & frame["pred_race"].notna().to_numpy()).astype(float)
    race_ok = (frame["race"] == frame["pred_race"]).to_numpy(float)
    minor = in_band(true_age, MINORS).astype(float)
    adult = (true_age >= CHALLENGE_AGE).astype(float)
    passed = (pred_age >= CHALLENGE_AGE).astype(float)
    draws: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for idx in resample_indices(len(frame), resamples, rng):
        err = pred_age[idx] - true_age[idx]
        values = {
            "age_mae": np.abs(err).mean(axis=1),
            "age_rmse": np.sqrt((err**2).mean(axis=1)),
            "gender_accuracy": gender_ok[idx].mean(axis=1),
            "ethnicity_accuracy": rate_draws(race_ok, race_known, idx),
            # A resample without anyone in the age band has no rate (nan), as in challenge_rates.
            BOOTSTRAP_METRICS[4]: rate_draws(passed, minor, idx),
            BOOTSTRAP_METRICS[5]: rate_draws(1 - passed, adult, idx),
        }
        for name in names:
            draws[name].append(values[name])
    return {name: percentile_interval(np.concatenate(v), level) for name, v in draws.items()}


def operating_threshold(val: pd.DataFrame, max_minor_pass_rate: float, candidates=None) -> tuple[float, bool]:
    """Lowest estimated-age threshold whose share of 13-17 year-olds let through on the
    *validation* split is at most ``max_minor_pass_rate`` (fewest adults asked for ID).

    Returns (threshold, reached); when no candidate reaches the target, the highest candidate
    is returned with ``reached`` False.
    """
    candidates = np.arange(18.0, 45.01, 0.5) if candidates is None else candidates
    true_age, pred_age = val["age"].to_numpy(float), val["pred_age"].to_numpy(float)
    for threshold in candidates:
        if challenge_rates(true_age, pred_age, threshold)[FPR_MINORS] <= max_minor_pass_rate:
            return float(threshold), True
    return float(candidates[-1]), False


def interval_operating_point(val: pd.DataFrame, test: pd.DataFrame, max_minor_pass_rate: float,
                             challenge: float = CHALLENGE_AGE, zs=None) -> dict | None:
    """Challenge N with the age interval (the prediction command's rule): ask for ID when the lower
    end of the interval is below N. z is the smallest on the grid whose share of 13-17 year-olds
    let through on *validation* is at most ``max_minor_pass_rate``; test is only scored with it.
    None for models without an age spread (no ``age_std``) or without minors in validation."""
    if val["age_std"].isna().any() or not in_band(val["age"], MINORS).any():
        return None
    zs = np.round(np.arange(0.0, 3.001, 0.05), 2) if zs is None else np.asarray(zs)

    def rates(frame: pd.DataFrame, z: float) -> dict[str, float]:
        low = interval_lower_end(frame["pred_age"], frame["age_std"], z)
        return challenge_rates(frame["age"].to_numpy(float), low, challenge)

    chosen = next((z for z in zs if rates(val, z)[FPR_MINORS] <= max_minor_pass_rate), None)
    z = float(zs[-1] if chosen is None else chosen)
    return {"chosen_on": "validation", "challenge": challenge, "max_minor_pass_rate": max_minor_pass_rate,
            "z": z, "target_reached_on_validation": chosen is not None,
            "validation": rates(val, z), "test": rates(test, z)}


def evaluate_predictions(
    test: pd.DataFrame, val: pd.DataFrame | None, resamples: int, seed: int, max_minor_pass_rate: float,
    level: float = 0.95,
) -> dict:
    """metrics_test.json: point metrics, bootstrap intervals, and the validation-chosen threshold."""
    out = headline_metrics(test)
    out["bootstrap"] = {
        "resamples": resamples,
        "seed": seed,
        "level": level,
        "intervals": bootstrap_intervals(test, resamples, seed, level=level),
    }
    if val is not None and in_band(val["age"], MINORS).any():
        # (the CORAL protocol, ages 21-60, has no minors: no operating point to choose)
        threshold, reached = operating_threshold(val, max_minor_pass_rate)
        out["operating_point"] = {
            "chosen_on": "validation",
            "max_minor_pass_rate": max_minor_pass_rate,
            "threshold": threshold,
            "target_reached_on_validation": reached,
            "validation": challenge_rates(
                val["age"].to_numpy(float), val["pred_age"].to_numpy(float), threshold
            ),
            "test": challenge_rates(test["age"].to_numpy(float), test["pred_age"].to_numpy(float), threshold),
        }
        interval_point = interval_operating_point(val, test, max_minor_pass_rate)
        if interval_point is not None:
            out["interval_operating_point"] = interval_point
    return out
