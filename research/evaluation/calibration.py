"""Calibrated age intervals, fitted on validation: split-conformal within bands of the estimate, or
inverted per true age.

The model's own interval (estimate +- z sd of its age distribution) is not calibrated: nothing
makes a "90%" interval cover 90% of faces. Here the validation split calibrates it, three ways.

- "absolute", "normalised": the estimate is cut into bands of at least ``min_per_band`` validation
  faces (quantiles of the validation estimates); within each band the conformity score is the
  absolute error ("absolute") or the absolute error in units of the model's sd ("normalised"),
  and the interval's half width is the split-conformal quantile of the band's scores: the
  ceil((n + 1) level)-th smallest of n. Faces are exchangeable within a band, so a stated level
  covers at least that share of new faces whose estimate falls in the band (Vovk et al., 2005;
  Lei et al., 2018), but not of every true age: teenagers, estimated too old, fall in bands of
  adults and were covered far less often than the stated level.
- "inverted": for each true age, the central range of the estimates of the validation faces of
  about that age; the interval of an estimate is every true age whose range holds it (a Neyman
  construction), so the stated level holds at each true age, at the price of width.

The method is chosen on validation, out of fold (``out_of_fold_coverage``). The test split is only
scored. ``research.models.age_interval.calibrated_interval`` reads the result, so the prediction
command can use it without importing evaluation.

coverage.csv columns: method (absolute, normalised, inverted, uncalibrated: estimate +- the normal
quantile times sd), level, group_type (overall, age_group, gender, ethnicity), group, n, coverage,
coverage_low, coverage_high (percentile bootstrap), mean_width.
"""

from __future__ import annotations

import math
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.optimize import isotonic_regression

from research.data.archive import sha256_file
from research.evaluation.bootstrap import bootstrap_means, percentile_interval
from research.models.age_interval import calibrated_interval, level_key
from research.outputs import save_figure, write_csv, write_json
from research.provenance import provenance
from research.vocabulary import AGE_GROUPS, ETHNICITIES, GENDERS, age_group, describe_calibration

LEVELS = (0.8, 0.9, 0.95)
METHODS = ("absolute", "normalised", "inverted")
MIN_PER_BAND = 150  # validation faces per band of the estimate
NEIGHBOURS = 100  # inverted: validation faces nearest each true age (about 1 in 20 of them)
TRUE_AGES = tuple(range(0, 117))  # inverted: the true-age grid (the age head's range)
CHOICE_LEVEL = 0.9  # the level whose validation coverage and width choose the method
MIN_BAND_COVERAGE = 0.85  # a method qualifies when every age group reaches this on validation
CHOICE_FOLDS = 5  # the choice scores each method out of fold on validation
UNCALIBRATED = "uncalibrated"
CHOSEN_ON = (f"validation, out of fold ({CHOICE_FOLDS} folds): the narrowest method whose every age group "
             f"covers at least {MIN_BAND_COVERAGE:g} at {CHOICE_LEVEL:g}")


def conformity_scores(frame: pd.DataFrame, method: str) -> np.ndarray:
    error = np.abs(frame["age"].to_numpy(float) - frame["pred_age"].to_numpy(float))
    if method == "absolute":
        return error
    if method == "normalised":
        return error / np.maximum(frame["age_std"].to_numpy(float), 1e-6)
    raise ValueError(f"method must be one of {METHODS}, not {method!r}")


def estimate_edges(estimates: np.ndarray, min_per_band: int) -> list[float]:
    """Inner edges cutting the estimates into equal-count bands of at least ``min_per_band``."""
    bands = max(1, len(estimates) // min_per_band)
    edges = np.quantile(np.asarray(estimates, float), np.arange(1, bands) / bands)
    return [float(e) for e in np.unique(np.round(edges, 4))]


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The ceil((n + 1) level)-th smallest score (the largest when that rank exceeds n)."""
    ordered = np.sort(np.asarray(scores, float))
    rank = min(math.ceil((len(ordered) + 1) * level), len(ordered))
    return float(ordered[rank - 1])


def inverted_calibration(val: pd.DataFrame, levels: tuple[float, ...] = LEVELS,
                         neighbours: int = NEIGHBOURS) -> dict:
    """{"method": "inverted", "true_ages", "quantiles": {level: {"low", "high"}}, "neighbours"}: for
    each true age ``a`` of the grid, the split-conformal lower and upper ranks of the estimates of
    the ``neighbours`` validation faces nearest ``a`` in true age (ties at the edge kept), made
    monotone in ``a`` (isotonic). research.models.age_interval.inverted_interval inverts them: the
    interval of an estimate is every ``a`` whose range holds it (a Neyman construction), so a face is
    covered when its estimate falls in its own age's range, whatever that age."""
    true, estimates = val["age"].to_numpy(float), val["pred_age"].to_numpy(float)
    k = min(neighbours, len(true))
    nearest = []
    for a in TRUE_AGES:
        distance = np.abs(true - a)
        nearest.append(np.sort(estimates[distance <= np.partition(distance, k - 1)[k - 1]]))
    quantiles = {}
    for level in levels:
        tail = (1 - level) / 2
        low = [s[max(math.floor((len(s) + 1) * tail), 1) - 1] for s in nearest]
        high = [s[min(math.ceil((len(s) + 1) * (1 - tail)), len(s)) - 1] for s in nearest]
        quantiles[level_key(level)] = {"low": [float(v) for v in isotonic_regression(low).x],
                                       "high": [float(v) for v in isotonic_regression(high).x]}
    return {"method": "inverted", "true_ages": list(TRUE_AGES), "quantiles": quantiles,
            "neighbours": int(k), "n": int(len(true))}


def calibrate(val: pd.DataFrame, method: str, levels: tuple[float, ...] = LEVELS,
              min_per_band: int = MIN_PER_BAND) -> dict:
    """{"method", "edges", "quantiles": {level: one per band}, "n_per_band"} from validation
    (method "inverted": ``inverted_calibration``)."""
    if method == "inverted":
        return inverted_calibration(val, levels)
    estimates = val["pred_age"].to_numpy(float)
    edges = estimate_edges(estimates, min_per_band)
    band = np.searchsorted(edges, estimates, side="right")
    scores = conformity_scores(val, method)
    bands = range(len(edges) + 1)
    return {"method": method, "edges": edges,
            "quantiles": {level_key(lv): [conformal_quantile(scores[band == b], lv) for b in bands]
                          for lv in levels},
            "n_per_band": [int((band == b).sum()) for b in bands]}


def interval_of(frame: pd.DataFrame, method: str, level: float, calibration: dict | None) -> tuple:
    """(low, high) per face: calibrated, or the uncalibrated estimate +- normal quantile x sd."""
    age, std = frame["pred_age"].to_numpy(float), frame["age_std"].to_numpy(float)
    if method == UNCALIBRATED:
        z = NormalDist().inv_cdf(0.5 + level / 2)
        return np.maximum(0.0, age - z * std), age + z * std
    return calibrated_interval(age, std, level, calibration)


def group_labels(frame: pd.DataFrame) -> dict[str, pd.Series]:
    return {"overall": pd.Series("all", index=frame.index), "age_group": frame["age"].map(age_group),
            "gender": frame["gender"].map(GENDERS), "ethnicity": frame["race"].map(ETHNICITIES)}


GROUP_ORDER = {"overall": ["all"], "age_group": [g for g, _, _ in AGE_GROUPS],
               "gender": list(GENDERS.values()), "ethnicity": list(ETHNICITIES.values())}


def group_rows(labels: dict[str, pd.Series], method: str, level: float, covered: np.ndarray,
               width: np.ndarray, resamples: int = 0, seed: int = 0, level_ci: float = 0.95) -> list[dict]:
    """coverage.csv's rows of one method and level: coverage (a bootstrap interval when
    ``resamples``) and mean width, overall and per group (``group_labels``)."""
    rows = []
    for t, (group_type, values) in enumerate(labels.items()):
        for g, group in enumerate(GROUP_ORDER[group_type]):
            mask = (values == group).to_numpy()
            if not mask.any():
                continue
            rng = np.random.default_rng([seed, t, g])
            ci = ([math.nan, math.nan] if not resamples else
                  percentile_interval(bootstrap_means(covered[mask], resamples, rng), level_ci))
            rows.append({"method": method, "level": level, "group_type": group_type, "group": group,
                         "n": int(mask.sum()), "coverage": covered[mask].mean(),
                         "coverage_low": ci[0], "coverage_high": ci[1],
                         "mean_width": float(width[mask].mean())})
    return rows


def coverage_table(frame: pd.DataFrame, calibrations: dict[str, dict], levels: tuple[float, ...] = LEVELS,
                   resamples: int = 0, seed: int = 0, level_ci: float = 0.95) -> pd.DataFrame:
    """Coverage (with bootstrap intervals when ``resamples``) and mean width of each method's
    intervals, overall and per group, on ``frame``."""
    rows = []
    labels = group_labels(frame)
    true = frame["age"].to_numpy(float)
    for method in (*calibrations, UNCALIBRATED):
        for level in levels:
            low, high = interval_of(frame, method, level, calibrations.get(method))
            covered = ((true >= low) & (true <= high)).astype(float)
            width = np.asarray(high - low)
            rows += group_rows(labels, method, level, covered, width, resamples, seed, level_ci)
    return pd.DataFrame(rows)


def out_of_fold_coverage(val: pd.DataFrame, methods: tuple[str, ...] = METHODS,
                         levels: tuple[float, ...] = (CHOICE_LEVEL,), folds: int = CHOICE_FOLDS,
                         seed: int = 0) -> pd.DataFrame:
    """``coverage_table`` on validation with every face's interval calibrated on the other folds:
    a method is not scored on the faces it was fitted to (in-sample, any method covers its level
    by construction, and 77 validation teenagers made a method look better than it was on test)."""
    fold = np.random.default_rng(seed).permutation(len(val)) % folds
    held = [val[fold == f].reset_index(drop=True) for f in range(folds)]
    scored = pd.concat(held, ignore_index=True)
    labels, true = group_labels(scored), scored["age"].to_numpy(float)
    rows = []
    for method in methods:
        intervals = [calibrated_interval(part["pred_age"], part["age_std"], levels[0],
                                         calibrate(val[fold != f], method, levels))
                     for f, part in enumerate(held)]
        low, high = (np.concatenate(ends) for ends in zip(*intervals, strict=True))
        covered = ((true >= low) & (true <= high)).astype(float)
        rows += group_rows(labels, method, levels[0], covered, high - low)
    return pd.DataFrame(rows)


def choose_method(val_coverage: pd.DataFrame, level: float = CHOICE_LEVEL,
                  min_band_coverage: float = MIN_BAND_COVERAGE) -> str:
    """On validation (out of fold: ``out_of_fold_coverage``): the narrowest calibrated method whose
    every age group reaches ``min_band_coverage`` at ``level``; else the one whose worst age group
    covers most."""
    at = val_coverage[(val_coverage["level"] == level) & (val_coverage["method"] != UNCALIBRATED)]
    worst = at[at["group_type"] == "age_group"].groupby("method")["coverage"].min()
    width = at[at["group_type"] == "overall"].set_index("method")["mean_width"]
    qualified = worst[worst >= min_band_coverage].index
    return str(width[qualified].idxmin()) if len(qualified) else str(worst.idxmax())


def plot_coverage(test: pd.DataFrame, method: str):
    """Coverage per age group on test of the calibrated intervals (each level) and of the
    uncalibrated ones, with 95% bootstrap intervals; and their mean widths."""
    fig = Figure(figsize=(12, 8), layout="constrained")
    cover_ax, width_ax = fig.subplots(2, 1, sharex=True)
    groups = GROUP_ORDER["age_group"]
    x = np.arange(len(groups))
    shown = [(method, lv) for lv in LEVELS] + [(UNCALIBRATED, CHOICE_LEVEL)]
    colors = ["#9ecae1", "#3b6ea8", "#08306b", "#d9822b"]
    step = 0.8 / len(shown)
    for i, ((name, level), color) in enumerate(zip(shown, colors, strict=True)):
        part = test[(test["method"] == name) & (test["level"] == level) & (test["group_type"] == "age_group")]
        part = part.set_index("group").reindex(groups)
        offset = x - 0.4 + step * (i + 0.5)
        err = np.clip(np.nan_to_num([part["coverage"] - part["coverage_low"],
                                     part["coverage_high"] - part["coverage"]]), 0, None) * 100
        label = f"{name} {100 * level:g}%"
        cover_ax.bar(offset, 100 * part["coverage"], step, yerr=err, color=color, capsize=2, label=label)
        cover_ax.axhline(100 * level, color=color, ls=":", lw=1)
        width_ax.bar(offset, part["mean_width"], step, color=color, label=label)
    cover_ax.set(ylabel="Test faces covered (%)", ylim=(50, 100),
                 title=f"Coverage per age group on test ({method} interval, calibrated on validation; "
                       "dotted: stated level)")
    width_ax.set(ylabel="Mean interval width (years)", xlabel="True age group")
    width_ax.set_xticks(x, groups)
    cover_ax.legend(loc="lower left", ncols=4, fontsize=9)
    return fig


def write_calibration(val: pd.DataFrame, test: pd.DataFrame, inputs: list[Path], run: str, out: Path,
                      resamples: int, seed: int, level_ci: float) -> dict:
    """intervals.json (the chosen method's quantiles, the other method's, provenance), coverage.csv
    (test) and coverage.png. The method is chosen on validation (``choose_method``)."""
    calibrations = {m: calibrate(val, m) for m in METHODS}
    chosen = choose_method(out_of_fold_coverage(val))
    table = coverage_table(test, calibrations, resamples=resamples, seed=seed, level_ci=level_ci)
    write_csv(out / "coverage.csv", table, float_format="%.4f")
    record = {**calibrations[chosen], "levels": list(LEVELS), "min_per_band": MIN_PER_BAND,
              "interval": describe_calibration(calibrations[chosen]),
              "chosen_on": CHOSEN_ON,
              "alternatives": {m: c for m, c in calibrations.items() if m != chosen},
              "source": {"run": run, "inputs": {str(p): sha256_file(p) for p in inputs}},
              "provenance": provenance()}
    write_json(out / "intervals.json", record)
    save_figure(out / "coverage.png", plot_coverage(table, chosen))
    return record
