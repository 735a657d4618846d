"""Ensembles made from members' prediction files: a weighted mixture of their predicted
distributions (age as a mixture of the members' age distributions, gender and ethnicity
probabilities averaged with the same weights). Members must have predicted the same files of the
same split. Weights are equal, or chosen on the validation split by greedy ensemble selection."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from research.runs.folder import PREDICTION_COLUMNS

RACE_COLUMNS = [f"p_race{i}" for i in range(5)]


def aligned(members: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """The members' tables in file order; raises if they predicted different files or carry
    different labels."""
    frames = [m.sort_values("file").reset_index(drop=True) for m in members]
    for other in frames[1:]:
        if not other[["file", "age", "gender", "race"]].equals(frames[0][["file", "age", "gender", "race"]]):
            raise ValueError("ensemble members predicted different files or carry different labels")
    return frames


def average_predictions(members: list[pd.DataFrame], weights: list[float] | None = None) -> pd.DataFrame:
    """The mixture's predictions table (equal weights unless given; they are normalised to sum
    to 1); raises if the members' files or labels differ or a weight is negative."""
    if len(members) < 2:
        raise ValueError("an ensemble needs at least two members")
    w = np.ones(len(members)) if weights is None else np.asarray(weights, float)
    if w.shape != (len(members),) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"need one non-negative weight per member, not {weights} for {len(members)} members")
    w = w / w.sum()
    frames = aligned(members)
    first = frames[0]
    means = np.stack([f["pred_age"].to_numpy(float) for f in frames])
    stds = np.stack([f["age_std"].to_numpy(float) for f in frames])
    out = first[["file", "age", "gender", "race"]].copy()
    out["pred_age"] = w @ means
    # Variance of a mixture: weighted mean of second moments minus the squared mean.
    out["age_std"] = np.sqrt(np.maximum(w @ (stds**2 + means**2) - out["pred_age"] ** 2, 0.0))
    out["p_female"] = w @ np.stack([f["p_female"].to_numpy(float) for f in frames])
    out["pred_gender"] = (out["p_female"] > 0.5).astype(int)
    races = np.tensordot(w, np.stack([f[RACE_COLUMNS].to_numpy(float) for f in frames]), axes=1)
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


def greedy_weights(frames: dict[str, pd.DataFrame], steps: int) -> dict[str, float]:
    """Ensemble selection with replacement (Caruana et al., ICML 2004) on one split's prediction
    tables: start from nothing and, `steps` times, add the member whose addition gives the lowest
    age MAE of the mixture's expected age (ties go to the first name in sorted order). A member's
    weight is the share of steps that picked it; members never picked get 0."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, not {steps}")
    names = sorted(frames)
    tables = aligned([frames[n] for n in names])
    ages = tables[0]["age"].to_numpy(float)
    means = np.stack([t["pred_age"].to_numpy(float) for t in tables])
    counts = np.zeros(len(names))
    for _ in range(steps):
        # Expected age of the mixture after adding each candidate once more.
        trial = (counts @ means + means) / (counts.sum() + 1)
        counts[int(np.argmin(np.abs(trial - ages).mean(axis=1)))] += 1
    return {name: float(c / steps) for name, c in zip(names, counts, strict=True)}
