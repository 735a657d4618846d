"""Ensembles made from members' prediction files: an equal-weight mixture of their predicted
distributions (age as a mixture of the members' age distributions, gender and ethnicity
probabilities averaged). Members must have predicted the same files of the same split."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from research.evaluation.prediction_table import PREDICTION_COLUMNS

RACE_COLUMNS = [f"p_race{i}" for i in range(5)]


def average_predictions(members: list[pd.DataFrame]) -> pd.DataFrame:
    """The mixture's predictions table; raises if the members' files or labels differ."""
    if len(members) < 2:
        raise ValueError("an ensemble needs at least two members")
    frames = [m.sort_values("file").reset_index(drop=True) for m in members]
    first = frames[0]
    for other in frames[1:]:
        if not other[["file", "age", "gender", "race"]].equals(first[["file", "age", "gender", "race"]]):
            raise ValueError("ensemble members predicted different files or carry different labels")
    means = np.stack([f["pred_age"].to_numpy(float) for f in frames])
    stds = np.stack([f["age_std"].to_numpy(float) for f in frames])
    out = first[["file", "age", "gender", "race"]].copy()
    out["pred_age"] = means.mean(0)
    # Variance of an equal-weight mixture: mean of second moments minus the squared mean.
    out["age_std"] = np.sqrt(np.maximum((stds**2 + means**2).mean(0) - out["pred_age"] ** 2, 0.0))
    out["p_female"] = np.mean([f["p_female"].to_numpy(float) for f in frames], axis=0)
    out["pred_gender"] = (out["p_female"] > 0.5).astype(int)
    races = np.mean([f[RACE_COLUMNS].to_numpy(float) for f in frames], axis=0)
    out[RACE_COLUMNS] = races
    out["pred_race"] = races.argmax(1)
    return out[PREDICTION_COLUMNS]


def subset_scores(frames: dict[str, pd.DataFrame]) -> dict[str, float]:
    """Age MAE of every subset of the named prediction tables (one split), as its mixture."""
    scores = {}
    names = sorted(frames)
    for k in range(1, len(names) + 1):
        for subset in itertools.combinations(names, k):
            frame = frames[subset[0]] if k == 1 else average_predictions([frames[m] for m in subset])
            scores[" + ".join(subset)] = float(np.abs(frame["pred_age"] - frame["age"]).mean())
    return scores
