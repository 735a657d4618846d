"""Predictions of a trained run on one split, as a table with the run folder's columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from research.data import protocol
from research.inference import predict_rows
from research.runs.folder import PREDICTION_COLUMNS
from research.runs.restore import load_run


def predict_split(workdir: Path, split: str, data: str | None = None) -> pd.DataFrame:
    """Predict ``split`` with the run's best checkpoint; columns PREDICTION_COLUMNS."""
    config, variables, model = load_run(workdir)
    cached = protocol.open_protocol(config, data)
    rows, table = cached.split(split)
    pred = predict_rows(variables, model.apply, cached.images, rows, config)
    frame = table[["file", "age", "gender", "race"]].copy()
    frame["pred_age"] = pred["age"].astype(float)
    frame["age_std"] = pred["age_std"].astype(float)
    frame["pred_gender"] = pred["p_gender"].argmax(-1)
    frame["p_female"] = pred["p_gender"][:, 1].astype(float)
    frame["pred_race"] = pred["p_race"].argmax(-1)
    for i in range(pred["p_race"].shape[1]):
        frame[f"p_race{i}"] = np.round(pred["p_race"][:, i].astype(float), 5)
    frame = frame[PREDICTION_COLUMNS]
    frame.attrs["data_sha256"] = cached.source_sha256
    return frame
