"""The model and training sections: preprocessing and optimiser settings, layer tables, the
training runs and their loss curves."""

from __future__ import annotations

import pandas as pd
from IPython.display import Markdown

from research.configs import experiments
from research.report.results import Results, blocks, not_yet, num, paragraph, pct, table
from research.report.runs import TestedModels, run_minutes, training_description


def config_numbers(summary: dict) -> dict[str, object]:
    """Augmentation, loss and optimiser settings of one run's config (its summary.json)."""
    cfg = summary["config"]
    augment, loss, opt = cfg["augment"], cfg["loss"], cfg["optimizer"]
    return {
        "px": summary["image_size"],
        "shift": pct(augment["max_shift"], 0),
        "scale": pct(augment["max_scale_delta"], 0),
        "bright": augment["brightness"],
        "contrast": augment["contrast"],
        "sigma": loss["ldl_sigma"],
        "smooth": loss["label_smoothing"],
        "lr": opt["learning_rate"],
        "wd": opt["weight_decay"],
        "warmup": opt["warmup_epochs"],
        "final": pct(opt["final_lr_fraction"], 0),
        "batch": cfg["batch_size"],
        "clip": opt["clip_norm"],
        "dtype": cfg["model"]["dtype"],
        "dropout": cfg["model"]["dropout"],
    }


def architecture_section(results: Results, runs: dict[str, str] | None = None) -> Markdown:
    """Parameter counts of the baseline and the main model, and a layer table for each.

    ``runs``: run name -> how the text names it (default: the baseline and the main run)."""
    if not results.exists("models_summary/architectures.csv"):
        return not_yet("python scripts/model_summary.py")
    runs = runs or {experiments.BASELINE_RUN: "CNN baseline", experiments.MAIN_RUN: "ResNet-50 multi-task"}
    arch = results.csv("models_summary/architectures.csv")
    totals = arch[arch["block"] == "total"].set_index("run")["params"]
    (base, base_name), (main, _) = runs.items()
    text = paragraph(
        f"The {base_name} has {num(totals[base])} parameters; the ResNet-50 has {num(totals[main])}, "
        f"about {num(totals[main] / totals[base])} times as many. Both end in global average pooling "
        "and the same three heads."
    )
    return blocks(text, *(layer_table(arch, run, name) for run, name in runs.items()))


def layer_table(arch: pd.DataFrame, run: str, name: str) -> Markdown:
    """One model's blocks: layers, output shape and parameter counts."""
    rows = arch[arch["run"] == run]
    shown = (
        rows[["block", "layers", "output", "params", "batch_stats"]]
        .fillna("")
        .assign(params=rows["params"].map(num), batch_stats=rows["batch_stats"].map(num))
        .rename(columns={"batch_stats": "batch stats"})
    )
    return table(
        shown,
        f"{name} ({run}) at {rows['image_px'].iloc[0]} px: layers, output shape (height x width x "
        "channels) and parameters (results/models_summary/architectures.csv).",
        f"arch-{run.replace('_', '-')}",
    )


def training_table(models: TestedModels) -> Markdown:
    """The trained runs' best validation metrics and training time."""
    rows = []
    for name in models.trained():
        s = models.summaries[name]
        rows.append(
            {
                "run": name,
                "protocol": s["protocol"],
                "training": training_description(s),
                "best epoch": s["best_epoch"],
                "val age MAE": num(s["best_val"]["age_mae"], 2),
                "val gender %": num(100 * s["best_val"]["gender_accuracy"], 1),
                "val ethnicity %": num(100 * s["best_val"]["ethnicity_accuracy"], 1),
                "minutes": num(run_minutes(s), 1),
            }
        )
    reduced = [n for n in models.trained() if models.summaries[n].get("reduced_run")]
    note = "".join(f" {n} is a reduced run, not a full one." for n in reduced)
    return table(
        pd.DataFrame(rows),
        f"Training runs and their best validation metrics (results/runs/*/summary.json).{note}",
        "training",
    )


def loss_curves(results: Results, models: TestedModels, run: str, label: str, what: str) -> Markdown:
    """A run's loss-curve figure; the caption names the run and says which curves it holds."""
    s = models.summaries[run]
    logged_val_loss = any(k.startswith("val/loss") for k in _history_columns(results, run))
    curves = (
        "training and validation loss per head, training and validation age MAE per epoch"
        if logged_val_loss
        else "training loss per head and training and validation age MAE per epoch "
        "(this run predates the logging of validation losses)"
    )
    best = (
        "; its best validation MAE is at the last epoch"
        if s["best_epoch"] == s["epochs"]
        else f"; its best validation MAE is at epoch {s['best_epoch']} of {s['epochs']}"
    )
    return results.figure(
        f"runs/{run}/loss_curves.png",
        f"Training curves of {what} ({run}; {training_description(s)}): {curves}{best}.",
        label,
    )


def _history_columns(results: Results, run: str) -> list[str]:
    if not results.exists(f"runs/{run}/history.csv"):
        return []
    return list(pd.read_csv(results.path(f"runs/{run}/history.csv"), nrows=0).columns)


def run_numbers(models: TestedModels) -> dict[str, object]:
    """Image sizes of the main, baseline and reduced runs."""
    return {
        "main_px": models.summaries[experiments.MAIN_RUN]["image_size"],
        "base_px": models.summaries[experiments.BASELINE_RUN]["image_size"],
        "reduced_px": models.summaries[experiments.REDUCED_RUN]["image_size"],
    }
