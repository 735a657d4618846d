"""Per-epoch records, the loss-curve figure and the run summary with provenance."""

from __future__ import annotations

import os
from pathlib import Path

import ml_collections
import pandas as pd

from research.outputs import append_jsonl, save_figure, write_json
from research.provenance import provenance
from research.runs.folder import RunFolder


def epoch_record(epoch: int, sums: dict, steps: int, val: dict, lr: float, seconds: float,
                 batch_size: int) -> dict:
    """Metric names follow big_vision: ``train/...`` and ``val/...``."""
    n = float(sums["n"])
    return {"epoch": epoch + 1, "step": (epoch + 1) * steps,
            "train/loss": float(sums["loss"]) / steps,
            **{f"train/loss_{k}": float(sums[f"loss_{k}"]) / steps for k in ("age", "gender", "race")},
            "train/age_mae": float(sums["age_abs_error"]) / n,
            "train/gender_accuracy": float(sums["gender_correct"]) / n,
            "train/ethnicity_accuracy": float(sums["race_correct"]) / max(float(sums["race_n"]), 1.0),
            **{f"val/{k}": v for k, v in val.items()},
            "learning_rate": lr, "epoch_seconds": seconds, "images_per_s": steps * batch_size / seconds}


def rewrite_metrics(path: Path, history: list[dict]) -> None:
    """Make metrics.jsonl hold exactly ``history`` (on resume, drop epochs after the checkpoint)."""
    if path.exists():
        os.unlink(path)
    for record in history:
        append_jsonl(path, record)


def plot_loss_curves(history: pd.DataFrame, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    for ax, head in zip(axes[:3], ("age", "gender", "race"), strict=False):
        ax.plot(history["epoch"], history[f"train/loss_{head}"], marker="o", label="train loss")
        if f"val/loss_{head}" in history:
            ax.plot(history["epoch"], history[f"val/loss_{head}"], marker="o", label="validation loss")
        ax.set(title=f"{'ethnicity' if head == 'race' else head} loss", xlabel="epoch", ylabel="loss")
        ax.legend()
    ax = axes[3]
    ax.plot(history["epoch"], history["train/age_mae"], marker="o", label="train")
    ax.plot(history["epoch"], history["val/age_mae"], marker="o", label="validation")
    ax.set(title="age MAE", xlabel="epoch", ylabel="MAE (years)")
    ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(path, fig)


def write_summary(workdir: Path, config: ml_collections.ConfigDict, history: list[dict], devices: list,
                  wall_time: float, n_train: int, n_val: int, data_sha256: str | None,
                  commit: str, write: bool = True) -> dict:
    """The run's summary (``devices``: those of every process); written to summary.json if ``write``."""
    from research.data.archive import sha256_file

    best = min(history, key=lambda h: h["val/age_mae"])
    split_csv = Path(config.data.split_dir) / f"{config.protocol}.csv"
    summary = {
        "name": config.name, "profile": config.profile, "protocol": config.protocol,
        "image_size": config.image_size, "epochs": len(history), "train_images": n_train,
        "val_images": n_val, "best_epoch": best["epoch"],
        "best_val": {k[4:]: v for k, v in best.items() if k.startswith("val/")},
        "final_val": {k[4:]: v for k, v in history[-1].items() if k.startswith("val/")},
        "mean_images_per_s": float(pd.DataFrame(history)["images_per_s"].mean()),
        "wall_time_s": round(wall_time, 1),  # of this process; a resumed run also counts below
        "train_seconds_all_epochs": round(float(pd.DataFrame(history)["epoch_seconds"].sum()), 1),
        "reduced_run": config.profile != "gpu" and config.model.name == "resnet",
        "num_devices": len(devices), "device_kind": devices[0].device_kind,
        "split_sha256": sha256_file(split_csv),
        "config": config.to_dict(),
        "provenance": provenance(data_sha256=data_sha256, with_device=True),
    }
    processes = len({d.process_index for d in devices})
    if processes > 1:  # one-process summaries keep their keys
        summary["num_processes"] = processes
    summary["provenance"]["git_commit"] = commit
    if write:
        write_json(RunFolder(workdir).summary_file, summary)
    return summary
