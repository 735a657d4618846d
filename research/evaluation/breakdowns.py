"""Per-group breakdowns and age-verification analysis of a run, from its predictions files only.

Inputs: a run folder's predictions_test.csv / predictions_val.csv (columns in
``research.runs.folder.PREDICTION_COLUMNS``), metrics_test.json (the operating threshold
chosen on validation) and summary.json (protocol). No model is loaded. Outputs in ``out``:

  by_group.csv            group_type, group, n, age_mae, age_mae_low, age_mae_high, mean_signed_error,
                          gender_accuracy, ethnicity_accuracy (one "overall" row, then each group)
  fairness_gaps.csv       per group_type: worst and best group by MAE, gap (max - min) with its
                          bootstrap interval, ratio (max / min)
  challenge_by_group.csv  Challenge-N rates, N in CHALLENGE_THRESHOLDS, overall / gender / ethnicity
  challenge_sweep.csv     Challenge-N rates for N = 10..45 step 0.5, test and validation splits
  summary.json            key numbers, sha256 of every input file, provenance
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

from research.data.archive import sha256_file
from research.evaluation import figures
from research.evaluation.bootstrap import bootstrap_means, percentile_interval
from research.evaluation.metrics import (
    CHALLENGE_THRESHOLDS,
    FPR_MINORS,
    FRICTION_ADULTS,
    age_metrics,
    challenge_rates,
)
from research.outputs import write_csv, write_json
from research.provenance import provenance
from research.runs.folder import RunFolder, read_predictions
from research.vocabulary import (
    AGE_GROUPS,
    CHALLENGE_AGE,
    ETHNICITIES,
    GENDERS,
    MINORS,
    YOUNG_ADULTS,
    age_group,
    band_key,
    band_label,
    in_band,
)

GROUP_TYPES = ("age_group", "gender", "ethnicity", "ethnicity_x_gender")
# Counts of the Challenge-N bands in challenge_by_group.csv.
N_MINORS, N_YOUNG, N_ADULTS = f"n_{band_key(MINORS)}", f"n_{band_key(YOUNG_ADULTS)}", f"n_{CHALLENGE_AGE}plus"
# How the intervals of each table are made (the report's and the model card's captions say so).
INTERVAL_METHODS = {
    "by_group": "percentile bootstrap intervals, rows resampled within each group",
    "fairness_gaps": "percentile bootstrap intervals of the worst-minus-best difference",
    "challenge_by_group": "Wilson score intervals of each proportion",
}
CHALLENGE_GROUP_TYPES = ("overall", "gender", "ethnicity")
SWEEP_THRESHOLDS = np.arange(10.0, 45.01, 0.5)
BY_GROUP_COLUMNS = ["group_type", "group", "n", "age_mae", "age_mae_low", "age_mae_high",
                    "mean_signed_error", "gender_accuracy", "ethnicity_accuracy"]


def group_labels(frame: pd.DataFrame) -> dict[str, pd.Series]:
    """group_type -> ordered categorical label per row; NaN where a row has no label (race -1)."""
    gender = frame["gender"].map(GENDERS)
    ethnicity = frame["race"].map(ETHNICITIES)
    orders = {
        "overall": ["all"],
        "age_group": [label for label, _, _ in AGE_GROUPS],
        "gender": list(GENDERS.values()),
        "ethnicity": list(ETHNICITIES.values()),
        "ethnicity_x_gender": [f"{e} {g}" for e in ETHNICITIES.values() for g in GENDERS.values()],
    }
    values = {
        "overall": pd.Series("all", index=frame.index),
        "age_group": frame["age"].map(age_group),
        "gender": gender,
        "ethnicity": ethnicity,
        "ethnicity_x_gender": ethnicity + " " + gender,
    }
    return {name: pd.Series(pd.Categorical(values[name], categories=orders[name]), index=frame.index)
            for name in orders}


def group_mae_draws(frame: pd.DataFrame, resamples: int, seed: int) -> dict[tuple[str, str], np.ndarray]:
    """Bootstrap draws of the age MAE of every non-empty group, resampled within the group.

    Each group has its own generator seeded by (seed, group type, group position), so a group's
    draws do not depend on which other groups are present. The overall row uses the generator
    ``default_rng(seed)`` and the draw order of ``metrics.bootstrap_intervals``, so its interval
    reproduces the age_mae interval in metrics_test.json (same seed and resamples).
    """
    abs_error = np.abs(frame["pred_age"].to_numpy(float) - frame["age"].to_numpy(float))
    draws = {}
    for t, (group_type, labels) in enumerate(group_labels(frame).items()):
        for g, group in enumerate(labels.cat.categories):
            mask = (labels == group).to_numpy()
            if mask.any():
                rng = np.random.default_rng(seed if group_type == "overall" else [seed, t, g])
                draws[group_type, group] = bootstrap_means(abs_error[mask], resamples, rng)
    return draws


def _accuracy(true: np.ndarray, pred: np.ndarray) -> float:
    # race -1: no label to compare with; a missing prediction: the model has no such head
    known = (true >= 0) & ~np.isnan(np.asarray(pred, dtype=float))
    return float((true[known] == pred[known]).mean()) if known.any() else float("nan")


def by_group(frame: pd.DataFrame, draws: dict[tuple[str, str], np.ndarray],
             level: float = 0.95) -> pd.DataFrame:
    """One row per non-empty group (and an "overall" row), columns BY_GROUP_COLUMNS."""
    rows = []
    for group_type, labels in group_labels(frame).items():
        for group in labels.cat.categories:
            part = frame[(labels == group).to_numpy()]
            if part.empty:
                continue
            ages = age_metrics(part["age"].to_numpy(float), part["pred_age"].to_numpy(float))
            low, high = percentile_interval(draws[group_type, group], level)
            rows.append({
                "group_type": group_type, "group": group, "n": len(part),
                "age_mae": ages["age_mae"], "age_mae_low": low, "age_mae_high": high,
                "mean_signed_error": ages["age_mean_signed_error"],
                "gender_accuracy": _accuracy(part["gender"].to_numpy(), part["pred_gender"].to_numpy()),
                "ethnicity_accuracy": _accuracy(part["race"].to_numpy(), part["pred_race"].to_numpy()),
            })
    return pd.DataFrame(rows, columns=BY_GROUP_COLUMNS)


def fairness_gaps(table: pd.DataFrame, draws: dict[tuple[str, str], np.ndarray], level: float = 0.95,
                  min_n: int = 20) -> pd.DataFrame:
    """Per group_type: worst and best group by MAE among groups of at least ``min_n`` images.

    The gap interval is the percentile interval of (worst - best) over the groups' independent
    draws; worst and best are picked on the point estimates, so it leans optimistic about the gap.
    """
    rows = []
    for group_type in GROUP_TYPES:
        part = table[(table["group_type"] == group_type) & (table["n"] >= min_n)]
        if len(part) < 2:
            continue
        worst, best = part.loc[part["age_mae"].idxmax()], part.loc[part["age_mae"].idxmin()]
        gap_draws = draws[group_type, worst["group"]] - draws[group_type, best["group"]]
        gap_low, gap_high = percentile_interval(gap_draws, level)
        rows.append({
            "group_type": group_type, "groups": len(part),
            "worst_group": worst["group"], "worst_n": int(worst["n"]), "worst_mae": worst["age_mae"],
            "best_group": best["group"], "best_n": int(best["n"]), "best_mae": best["age_mae"],
            "mae_gap": worst["age_mae"] - best["age_mae"], "mae_gap_low": gap_low, "mae_gap_high": gap_high,
            "mae_ratio": worst["age_mae"] / best["age_mae"] if best["age_mae"] > 0 else float("inf"),
            # Do the two groups' own intervals fail to overlap?
            "intervals_separate": bool(worst["age_mae_low"] > best["age_mae_high"]),
        })
    return pd.DataFrame(rows)


def has_minors(frame: pd.DataFrame) -> bool:
    """Whether any minors are present (the CORAL protocol, ages 21-60, has none)."""
    return bool(in_band(frame["age"], MINORS).any())


def wilson_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (sensible at small n and at 0% or 100%)."""
    if n == 0:
        return float("nan"), float("nan")
    z = statistics.NormalDist().inv_cdf(0.5 + level / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def challenge_by_group(frame: pd.DataFrame, thresholds: tuple[float, ...] = CHALLENGE_THRESHOLDS,
                       level: float = 0.95) -> pd.DataFrame:
    """Challenge-N rates per threshold, overall, per gender and per ethnicity, with counts and
    Wilson intervals for fpr_13_17 and friction_25plus (minor groups are small)."""
    labels = group_labels(frame)
    rows = []
    for threshold in thresholds:
        for group_type in CHALLENGE_GROUP_TYPES:
            for group in labels[group_type].cat.categories:
                part = frame[(labels[group_type] == group).to_numpy()]
                if part.empty:
                    continue
                true_age, pred_age = part["age"].to_numpy(float), part["pred_age"].to_numpy(float)
                rates = challenge_rates(true_age, pred_age, threshold)
                counts = {N_MINORS: int(in_band(true_age, MINORS).sum()),
                          N_YOUNG: int(in_band(true_age, YOUNG_ADULTS).sum()),
                          N_ADULTS: int((true_age >= CHALLENGE_AGE).sum())}
                row = {"threshold": threshold, "group_type": group_type, "group": group, **counts, **rates}
                for rate, n in ((FPR_MINORS, counts[N_MINORS]), (FRICTION_ADULTS, counts[N_ADULTS])):
                    hits = round(rates[rate] * n) if n else 0
                    row[f"{rate}_low"], row[f"{rate}_high"] = wilson_interval(hits, n, level)
                rows.append(row)
    return pd.DataFrame(rows)


def challenge_sweep(frame: pd.DataFrame, thresholds: np.ndarray = SWEEP_THRESHOLDS) -> pd.DataFrame:
    """Challenge-N rates (fpr_13_17, friction_18_24, friction_25plus) for every threshold."""
    true_age, pred_age = frame["age"].to_numpy(float), frame["pred_age"].to_numpy(float)
    return pd.DataFrame([{"threshold": float(t), **challenge_rates(true_age, pred_age, t)}
                         for t in thresholds])


def _key_numbers(table: pd.DataFrame, gaps: pd.DataFrame, challenge: pd.DataFrame | None) -> dict:
    overall = table[table["group_type"] == "overall"].iloc[0]
    out = {"overall_age_mae": [overall["age_mae"], overall["age_mae_low"], overall["age_mae_high"]],
           "fairness": {row["group_type"]: {k: row[k] for k in (
               "worst_group", "worst_mae", "best_group", "best_mae", "mae_gap", "mae_gap_low",
               "mae_gap_high", "mae_ratio", "intervals_separate")} for _, row in gaps.iterrows()}}
    if challenge is not None:
        c25 = challenge[challenge["threshold"] == CHALLENGE_AGE]
        out[f"challenge{CHALLENGE_AGE}"] = {row["group"]: {k: row[k] for k in (
            N_MINORS, FPR_MINORS, N_ADULTS, FRICTION_ADULTS)} for _, row in c25.iterrows()}
    return out


def breakdown_tables(test: pd.DataFrame, val: pd.DataFrame | None, metrics: dict, protocol: str | None,
                     resamples: int, seed: int, level: float = 0.95,
                     min_n: int = 20) -> tuple[dict[str, pd.DataFrame], dict]:
    """Every breakdown table of one model (name -> table, as written to <name>.csv) and the
    age-verification record of its summary; from its predictions and metrics alone."""
    draws = group_mae_draws(test, resamples, seed)
    tables = {"by_group": by_group(test, draws, level)}
    tables["fairness_gaps"] = fairness_gaps(tables["by_group"], draws, level, min_n)
    verification: dict = {"skipped": not has_minors(test)}
    if verification["skipped"]:
        verification["reason"] = (f"no {band_label(MINORS)} year-olds in the test split (protocol "
                                  f"{protocol or 'unknown'}): Challenge-N is not assessable")
    else:
        tables["challenge_by_group"] = challenge_by_group(test, level=level)
        splits = {"test": test, **({"val": val} if val is not None and has_minors(val) else {})}
        tables["challenge_sweep"] = pd.concat([challenge_sweep(frame).assign(split=split)
                                               for split, frame in splits.items()], ignore_index=True)
        verification["operating_point"] = metrics.get("operating_point")
    return tables, verification


TABLE_FLOAT_FORMAT = "%.6g"  # how the breakdown CSVs are written (verification rewrites them so)


def analyse_run(run: Path, out: Path, resamples: int, seed: int, data: Path | None = None,
                level: float = 0.95, min_n: int = 20) -> dict:
    """Write every table, figure and summary.json of one run folder to ``out``; return the summary.

    ``data`` is the UTKFace archive or folder the face grid is read from; None skips the grid.
    """
    start = time.time()
    run, out = Path(run), Path(out)
    folder = RunFolder(run)
    inputs = [folder.predictions_file("test"), folder.predictions_file("val"), folder.metrics_file,
              folder.summary_file]
    test = read_predictions(inputs[0])
    val = read_predictions(inputs[1]) if inputs[1].is_file() else None
    metrics = json.loads(inputs[2].read_text()) if inputs[2].is_file() else {}
    run_summary = json.loads(inputs[3].read_text()) if inputs[3].is_file() else {}

    tables, verification = breakdown_tables(test, val, metrics, run_summary.get("protocol"), resamples, seed,
                                            level, min_n)
    for name, table in tables.items():
        write_csv(out / f"{name}.csv", table, float_format=TABLE_FLOAT_FORMAT)

    written = figures.write_figures(out, test, tables, verification.get("operating_point"), data, seed)
    summary = {
        "run": run.name, "protocol": run_summary.get("protocol"), "split": "test", "n": len(test),
        "inputs": {p.name: {"path": str(p), "sha256": sha256_file(p)} for p in inputs if p.is_file()},
        "bootstrap": {"resamples": resamples, "seed": seed, "level": level,
                      "scheme": "percentile, rows resampled within each group"},
        "interval_methods": INTERVAL_METHODS,
        "min_group_n_for_gaps": min_n,
        **_key_numbers(tables["by_group"], tables["fairness_gaps"], tables.get("challenge_by_group")),
        "age_verification": verification,
        "tables": [f"{name}.csv" for name in tables], "figures": written,
        "wall_time_s": round(time.time() - start, 1),
        "provenance": provenance(data_sha256=run_summary.get("provenance", {}).get("data_sha256")),
    }
    write_json(out / "summary.json", summary)
    return summary
