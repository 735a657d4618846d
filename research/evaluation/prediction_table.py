"""The predictions file format shared by evaluation, breakdowns and the report (no JAX needed)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

PREDICTION_COLUMNS = ["file", "age", "gender", "race", "pred_age", "age_std", "pred_gender",
                      "p_female", "pred_race", *[f"p_race{i}" for i in range(5)]]


def read_predictions(path: Path) -> pd.DataFrame:
    """A predictions CSV written by ``scripts/evaluate.py``, with a clear error if it is not one."""
    frame = pd.read_csv(path)
    missing = set(PREDICTION_COLUMNS) - set(frame.columns)
    if missing:
        raise ValueError(f"{path} is not a predictions file: columns {sorted(missing)} are missing")
    return frame
