"""Ablation table and figure from the run folders that scripts/ablate.py trained.

Each run is scored by its last epoch's validation metrics (``final_val`` in summary.json): no
checkpoint selection, no test split. Arms with a head switched off report no accuracy for it.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from research.runs.folder import run_seconds

METRICS = {"val_age_mae": "age_mae", "val_gender_accuracy": "gender_accuracy",
           "val_ethnicity_accuracy": "ethnicity_accuracy"}
HEAD_OF = {"val_gender_accuracy": "gender", "val_ethnicity_accuracy": "race"}


def run_dir(root: Path, arm: str, seed: int) -> Path:
    return Path(root) / "runs" / arm / f"seed{seed}"


def collect_runs(root: Path, arms: dict, seeds, disabled_heads) -> pd.DataFrame:
    """One row per finished (arm, seed) run; unfinished runs are left out."""
    rows = []
    for arm in arms:
        for seed in seeds:
            path = run_dir(root, arm, seed) / "summary.json"
            if not path.exists():
                continue
            summary = json.loads(path.read_text())
            row = {"arm": arm, "seed": seed, "epochs": summary["epochs"],
                   "image_size": summary["image_size"], "train_seconds": run_seconds(summary),
                   "device_kind": summary["device_kind"], "num_devices": summary["num_devices"],
                   "git_commit": summary.get("provenance", {}).get("git_commit")}
            for column, key in METRICS.items():
                off = HEAD_OF.get(column) in disabled_heads(arm)
                row[column] = np.nan if off else summary["final_val"][key]
            rows.append(row)
    return pd.DataFrame(rows)


def ablation_table(runs: pd.DataFrame, arms: dict, overrides_of) -> pd.DataFrame:
    """Mean and sample standard deviation over seeds, one row per arm, in declaration order."""
    rows = []
    for arm, (description, _) in arms.items():
        group = runs[runs["arm"] == arm]
        if group.empty:
            continue
        row = {"arm": arm, "description": description,
               "overrides": "; ".join(f"{k}={v}" for k, v in overrides_of(arm).items()),
               "n_seeds": len(group)}
        for column in METRICS:
            values = group[column].dropna()
            row[f"{column}_mean"] = values.mean() if len(values) else np.nan
            row[f"{column}_std"] = values.std(ddof=1) if len(values) > 1 else np.nan
        row["train_minutes_mean"] = group["train_seconds"].mean() / 60
        rows.append(row)
    return pd.DataFrame(rows)


def plot_ablations(table: pd.DataFrame, runs: pd.DataFrame, path: Path, title: str = "CNN baseline",
                   epochs: object = 4) -> None:
    """Three panels (age MAE, gender and ethnicity accuracy): bars = seed mean, dots = seeds."""
    panels = [("val_age_mae", "validation age MAE (years, lower is better)", 1.0),
              ("val_gender_accuracy", "validation gender accuracy (%)", 100.0),
              ("val_ethnicity_accuracy", "validation ethnicity accuracy (%)", 100.0)]
    fig, axes = plt.subplots(1, 3, figsize=(13, 0.45 * len(table) + 1.8), sharey=True)
    y = np.arange(len(table))
    for ax, (column, title, scale) in zip(axes, panels, strict=True):
        means = table[f"{column}_mean"].to_numpy() * scale
        colors = ["#4c72b0" if arm == "full" else "#a1b4d4" for arm in table["arm"]]
        ax.barh(y, np.nan_to_num(means), color=colors)
        for i, arm in enumerate(table["arm"]):
            seeds = runs.loc[runs["arm"] == arm, column].dropna().to_numpy() * scale
            ax.plot(seeds, np.full(len(seeds), i), "k.", markersize=6)
            ax.text(0.99, i, "head off" if np.isnan(means[i]) else f"{means[i]:.2f}", va="center", ha="right",
                    transform=ax.get_yaxis_transform(), fontsize=8)
        finite = means[np.isfinite(means)]
        if len(finite):  # bars start at zero, so their lengths compare; room on the right for the labels
            ax.set_xlim(0, finite.max() * 1.2)
        ax.ticklabel_format(axis="x", useOffset=False)
        ax.set_title(title, fontsize=9)
    axes[0].set_yticks(y, table["arm"])
    axes[0].invert_yaxis()
    fig.suptitle(f"{title} ablations ({epochs}-epoch profile, last-epoch validation metrics; dots = seeds)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
