"""Ensembles made from members' prediction files: a weighted mixture of their predicted
distributions (age as a mixture of the members' age distributions, gender and ethnicity
probabilities averaged with the same weights). Members must have predicted the same files of the
same split. Weights are equal, or chosen on the validation split by greedy ensemble selection."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from research.outputs import write_csv, write_json
from research.provenance import provenance
from research.runs.folder import PREDICTION_COLUMNS, RunFolder, lineage_summaries, run_seconds
from research.vocabulary import NUM_ETHNICITIES

RACE_COLUMNS = [f"p_race{i}" for i in range(NUM_ETHNICITIES)]


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


SUBSETS_KEPT = 1023  # at most this many equal-weight subsets listed in a summary (2^10 - 1: all of ten)


def subset_scores(frames: dict[str, pd.DataFrame]) -> dict[str, float]:
    """Age MAE of every subset of the named prediction tables (one split), as its equal-weight
    mixture's expected age, by subset name ("a + b"): the arithmetic of ``average_predictions``
    on arrays (the same numbers, without building a table per subset)."""
    names = sorted(frames)
    tables = aligned([frames[n] for n in names])
    ages = tables[0]["age"].to_numpy(float)
    means = np.stack([t["pred_age"].to_numpy(float) for t in tables])
    scores = {}
    for k in range(1, len(names) + 1):
        w = np.ones(k) / k
        for subset in itertools.combinations(range(len(names)), k):
            if k == 1:  # a member's own table, in its own order
                frame = frames[names[subset[0]]]
                error = frame["pred_age"].to_numpy(float) - frame["age"].to_numpy(float)
            else:
                error = w @ means[list(subset)] - ages
            scores[" + ".join(names[i] for i in subset)] = float(np.abs(error).mean())
    return scores


def listed_subsets(scores: dict[str, float], kept: int = SUBSETS_KEPT) -> dict:
    """What a summary lists of ``scores``: all of them, or when there are more than ``kept``, the
    ``kept`` lowest (ties by name) with the count scored (2^n - 1 subsets of many members would make
    summary.json megabytes long)."""
    if len(scores) <= kept:
        return {"val_age_mae_of_subsets": scores}
    best = dict(sorted(scores.items(), key=lambda kv: (kv[1], kv[0]))[:kept])
    return {"val_age_mae_of_subsets": best, "subsets_scored": len(scores)}


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


def make_ensemble(name: str, recipe, runs_dir: Path) -> dict:
    """Write the run folder ``runs_dir/name`` of a registered ensemble ``recipe``
    (research.configs.experiments.Ensemble): the mixture's predictions on both splits, config.json
    with the weights, summary.json with the equal-weight subsets' validation MAE (the best of them,
    and how many were scored, when there are very many). Returns the summary. The test split is
    scored afterwards by evaluation, never here."""
    folders = {m: RunFolder(Path(runs_dir) / m) for m in recipe.inputs}
    for member, folder in folders.items():
        if not folder.predictions_file("val").is_file():
            raise FileNotFoundError(f"{folder.path} has no predictions_val.csv: make the run {member} "
                                    f"(and evaluate it) before the ensemble {name}")
    summaries = {m: f.summary() for m, f in folders.items()}
    protocols = {summaries[m]["protocol"] for m in recipe.members}
    if len(protocols) != 1:
        raise ValueError(f"ensemble {name}: members come from different protocols {sorted(protocols)}")
    val = {m: f.predictions("val") for m, f in folders.items()}
    scored = subset_scores(val)
    weights = ({m: 1 / len(recipe.members) for m in recipe.members} if recipe.weighting == "equal" else
               greedy_weights({m: val[m] for m in recipe.members}, recipe.steps))
    members = [m for m in recipe.members if weights[m] > 0]
    if len(members) < 2:
        raise ValueError(f"ensemble {name}: only {members} got weight ({recipe.weighting}): a single run")
    out = RunFolder(Path(runs_dir) / name)
    mixed = {}
    for split in ("val", "test"):
        mixed[split] = average_predictions([folders[m].predictions(split) for m in members],
                                           [weights[m] for m in members])
        write_csv(out.predictions_file(split), mixed[split], float_format="%.4f")
    greedy_steps = recipe.steps if recipe.weighting == "greedy" else None
    used = {m: weights[m] for m in members}
    write_json(out.config_file, {"name": name, "kind": "ensemble", "members": members,
                                 "candidates": list(recipe.members), "weighting": recipe.weighting,
                                 "greedy_steps": greedy_steps, "weights": used,
                                 "combine": "weighted mixture of predicted distributions"})
    first = summaries[members[0]]
    trained = {n: s for m in members for n, s in lineage_summaries(runs_dir, summaries[m]).items()}
    summary = {
        "name": name, "kind": "ensemble", "protocol": first["protocol"], "members": members,
        "weighting": recipe.weighting, "greedy_steps": greedy_steps, "weights": used,
        "val_age_mae": float((mixed["val"]["pred_age"] - mixed["val"]["age"]).abs().mean()),
        "member_devices": {m: summaries[m].get("device_kind") for m in members},
        "member_wall_time_s": {m: summaries[m].get("wall_time_s") for m in members},
        "wall_time_s": sum(run_seconds(s) for s in trained.values()),  # a shared ancestor counted once
        "device_kind": "+".join(sorted({str(summaries[m].get("device_kind")) for m in members})),
        "image_size": "+".join(map(str, sorted({summaries[m]["image_size"] for m in members}, reverse=True))),
        "reduced_run": any(summaries[m].get("reduced_run") for m in members),
        **listed_subsets(scored),
        "provenance": provenance(data_sha256=first["provenance"]["data_sha256"])}
    write_json(out.summary_file, summary)
    return summary
