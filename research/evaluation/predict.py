"""Predictions of a trained run on one split, as a table with documented columns."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import ml_collections
import numpy as np
import pandas as pd

from research import checkpoints
from research.data import protocol as run_data
from research.evaluation.prediction_table import PREDICTION_COLUMNS
from research.inference import predict_rows
from research.models.factory import create_model
from research.training.state import create_train_state


def load_run(workdir: Path,
             checkpoint_dir: Path | None = None) -> tuple[ml_collections.ConfigDict, dict, object]:
    """Config, best-checkpoint variables and the model of a run folder.

    ``checkpoint_dir`` defaults to ``workdir/checkpoints/best`` (checkpoints are git-ignored, so a
    clone may keep them elsewhere).
    """
    config = ml_collections.ConfigDict(json.loads((Path(workdir) / "config.json").read_text()))
    model = create_model(config.model)
    target = create_train_state(model, config, jax.random.key(0), steps_per_epoch=1)
    state, _ = checkpoints.restore(checkpoint_dir or Path(workdir) / "checkpoints" / "best", target)
    return config, {"params": state.params, "batch_stats": state.batch_stats}, model


def predict_split(workdir: Path, split: str, data: str | None = None) -> pd.DataFrame:
    config, variables, model = load_run(workdir)
    cached = run_data.open_protocol(config, data)
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

