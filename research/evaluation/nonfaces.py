"""Test metrics with and without the confirmed non-face crops (research/configs/nonfaces.py).

The test split keeps every crop; this table shows what the non-faces do to each headline run's
numbers, from its committed predictions_test.csv (no model is run).

nonfaces_test_metrics.csv columns: run, test_set ("full" | "without_nonfaces"), images,
nonfaces_dropped, age_mae, age_mean_signed_error, gender_accuracy, ethnicity_accuracy,
challenge25_fpr_13_17 (13-17 year-olds estimated 25 or above), challenge25_friction_25plus.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from research.evaluation.metrics import FPR_MINORS, FRICTION_ADULTS, headline_metrics
from research.outputs import write_csv, write_json
from research.provenance import provenance
from research.runs.folder import RunFolder, read_predictions
from research.vocabulary import CHALLENGE_AGE

METRICS = ("age_mae", "age_mean_signed_error", "gender_accuracy", "ethnicity_accuracy",
           f"challenge{CHALLENGE_AGE}_{FPR_MINORS}", f"challenge{CHALLENGE_AGE}_{FRICTION_ADULTS}")
FULL, WITHOUT = "full", "without_nonfaces"


def with_and_without(predictions: pd.DataFrame, nonfaces: Iterable[str]) -> list[dict]:
    """The METRICS of a predictions table on every row, then without the ``nonfaces`` files."""
    dropped = predictions["file"].isin(frozenset(nonfaces))
    rows = []
    for test_set, part in ((FULL, predictions), (WITHOUT, predictions[~dropped])):
        metrics = headline_metrics(part)
        rows.append({"test_set": test_set, "images": int(len(part)),
                     "nonfaces_dropped": 0 if test_set == FULL else int(dropped.sum()),
                     **{k: metrics[k] for k in METRICS}})
    return rows


def nonface_metrics_table(runs: Iterable[str], runs_root: Path, nonfaces: Iterable[str]) -> pd.DataFrame:
    """with_and_without for every run in ``runs`` that has test predictions under ``runs_root``."""
    nonfaces = frozenset(nonfaces)
    rows = []
    for run in runs:
        file = RunFolder(runs_root / run).predictions_file("test")
        if file.is_file():
            predictions = read_predictions(file)
            rows += [{"run": run, **row} for row in with_and_without(predictions, nonfaces)]
    return pd.DataFrame(rows)


def scan_counts(scan: pd.DataFrame, nonfaces: Iterable[str]) -> dict:
    """Per split: crops, crops with no face found, confirmed non-faces (and those the scan found a
    face in: a listed file the detector does find is worth a second look)."""
    listed = scan["file"].isin(frozenset(nonfaces))
    out = {}
    for split, part in scan.groupby("split", sort=True):
        mask = listed[part.index]
        out[split] = {"crops": int(len(part)), "no_face_found": int((part["found_by"] == "none").sum()),
                      "confirmed_nonfaces": int(mask.sum()),
                      "confirmed_but_face_found": int((mask & (part["found_by"] != "none")).sum())}
    return out


def write_nonface_metrics(runs: Iterable[str], runs_root: Path, scan_csv: Path, nonfaces: dict[str, str],
                          out: Path) -> dict:
    """nonfaces_test_metrics.csv and nonfaces_test_metrics.json (counts, metrics, provenance)."""
    started = time.time()
    table = nonface_metrics_table(runs, runs_root, nonfaces)
    scan = pd.read_csv(scan_csv, keep_default_na=False)
    unknown = sorted(set(nonfaces) - set(scan["file"]))
    if unknown:
        raise ValueError(f"{len(unknown)} listed non-faces are not cleaned crops of the scan: {unknown[:3]}")
    reasons = pd.Series(list(nonfaces.values()), dtype=object).value_counts(sort=True)
    summary = {"confirmed_nonfaces": len(nonfaces), "reasons": {str(k): int(v) for k, v in reasons.items()},
               "per_split": scan_counts(scan, nonfaces),
               "metrics": table.to_dict(orient="records"), "wall_time_s": round(time.time() - started, 2),
               "provenance": provenance()}
    write_csv(out / "nonfaces_test_metrics.csv", table, float_format="%.6g")
    write_json(out / "nonfaces_test_metrics.json", summary)
    return summary
