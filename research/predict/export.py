"""Export a trained run's best checkpoint as a release folder (see ``research.predict.release``).

Only this module touches orbax (through ``research.evaluation.predict.load_run``); the release it
writes is loaded without orbax and without training code.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jax
import numpy as np

from research.evaluation.predict import load_run
from research.outputs import atomic_path, write_json
from research.predict import model_card
from research.predict.release import MAX_RELEASE_BYTES, PARAMS_FILE, load_release, params_bytes
from research.provenance import provenance

# Test metrics that the metadata carries, each with its bootstrap interval when metrics_test.json has one.
RELEASE_METRICS = ("age_mae", "age_rmse", "age_median_ae", "age_mean_signed_error", "gender_accuracy",
                   "gender_auc", "ethnicity_accuracy", "challenge25_fpr_13_17", "challenge25_friction_18_24",
                   "challenge25_friction_25plus")


def test_metrics(metrics: dict) -> dict:
    """``{name: {"value", "low", "high"}}`` from a metrics_test.json (low/high None without interval)."""
    intervals = metrics.get("bootstrap", {}).get("intervals", {})
    out = {}
    for name in RELEASE_METRICS:
        if name in metrics:
            low, high = intervals.get(name, (None, None))
            out[name] = {"value": metrics[name], "low": low, "high": high}
    return out


def release_metadata(run: Path, blob: bytes, variables: dict) -> dict:
    """Checksum, size and parameter count of the params file, the source run and its test metrics."""
    summary = json.loads((run / "summary.json").read_text())
    metrics = json.loads((run / "metrics_test.json").read_text())
    boot = metrics.get("bootstrap", {})
    return {
        "name": summary["name"],
        "params_file": PARAMS_FILE,
        "params_sha256": hashlib.sha256(blob).hexdigest(),
        "params_bytes": len(blob),
        "num_parameters": int(sum(np.size(x) for x in jax.tree_util.tree_leaves(variables["params"]))),
        "source_run": {"path": str(run), "protocol": summary["protocol"], "profile": summary["profile"],
                       "best_epoch": summary["best_epoch"], "epochs": summary["epochs"],
                       "train_images": summary["train_images"], "split_sha256": summary["split_sha256"],
                       "trained_at_commit": summary.get("provenance", {}).get("git_commit")},
        "test_metrics": {"n": metrics["n"], "level": boot.get("level"), "resamples": boot.get("resamples"),
                         "metrics": test_metrics(metrics)},
        "operating_point": metrics.get("operating_point"),
        "interval_operating_point": metrics.get("interval_operating_point"),
        "provenance": provenance(data_sha256=metrics.get("provenance", {}).get("data_sha256")),
    }


def export_release(run: Path, out: Path, checkpoint_dir: Path | None = None,
                   breakdowns: Path | None = None) -> dict:
    """Write params.msgpack, config.json, metadata.json and MODEL_CARD.md for ``run`` into ``out``.

    Returns the metadata. Raises ValueError when the params exceed ``MAX_RELEASE_BYTES`` and
    checks that the written folder loads back to the same arrays.
    """
    run, out = Path(run), Path(out)
    _, variables, _ = load_run(run, checkpoint_dir)
    variables = jax.device_get(variables)
    blob = params_bytes(variables)
    if len(blob) > MAX_RELEASE_BYTES:
        raise ValueError(f"{run.name}: params are {len(blob) / 1e6:.1f} MB, over the release limit of "
                         f"{MAX_RELEASE_BYTES / 1e6:.0f} MB")
    metadata = release_metadata(run, blob, variables)
    with atomic_path(out / PARAMS_FILE) as tmp:
        tmp.write_bytes(blob)
    write_json(out / "config.json", json.loads((run / "config.json").read_text()))
    write_json(out / "metadata.json", metadata)
    release = load_release(out)
    restored = jax.tree_util.tree_leaves(release.variables)
    if not all(np.array_equal(a, b) for a, b in zip(restored, jax.tree_util.tree_leaves(variables),
                                                      strict=True)):
        raise AssertionError(f"{out / PARAMS_FILE} does not load back to the exported arrays")
    breakdowns = breakdowns or run.parents[1] / "breakdowns" / run.name
    with atomic_path(out / "MODEL_CARD.md") as tmp:
        tmp.write_text(model_card.render(metadata, run, breakdowns))
    return metadata
