"""Export a trained run's best checkpoint, or an ensemble run's members' best checkpoints, as a
release folder (see ``research.predict.release``).

Only this module touches orbax (through ``research.runs.restore.load_run``); the release it
writes is loaded without orbax and without training code.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jax
import numpy as np

from research.outputs import atomic_path, write_json
from research.predict.release import (
    MAX_RELEASE_BYTES,
    PARAMS_FILE,
    ensemble_bytes,
    load_inference,
    load_release,
    load_rules,
    params_bytes,
)
from research.provenance import provenance
from research.release import model_card
from research.release.rules import attach_rules
from research.runs.folder import RunFolder
from research.runs.restore import load_run

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


def _source(run: Path, summary: dict) -> dict:
    return {"path": str(run), "protocol": summary["protocol"], "profile": summary["profile"],
            "best_epoch": summary["best_epoch"], "epochs": summary["epochs"],
            "train_images": summary["train_images"], "split_sha256": summary["split_sha256"],
            "trained_at_commit": summary.get("provenance", {}).get("git_commit")}


def release_metadata(run: Path, blob: bytes, members: list[dict],
                     weights: dict[str, float] | None = None) -> dict:
    """Checksum, size and parameter count of the params file, the source run (for an ensemble its
    first member, and every member with its weight) and the run's test metrics."""
    summary = json.loads((run / "summary.json").read_text())
    metrics = json.loads((run / "metrics_test.json").read_text())
    boot = metrics.get("bootstrap", {})
    if weights:
        sources = [_source(run.parent / m, json.loads((run.parent / m / "summary.json").read_text()))
                   for m in weights]
        source = {**sources[0], "path": str(run), "members": [
            {**src, "name": m, "weight": w} for (m, w), src in zip(weights.items(), sources, strict=True)]}
    else:
        source = _source(run, summary)
    return {
        "name": summary["name"],
        "params_file": PARAMS_FILE,
        "params_sha256": hashlib.sha256(blob).hexdigest(),
        "params_bytes": len(blob),
        "num_parameters": int(sum(np.size(x) for v in members
                                  for x in jax.tree_util.tree_leaves(v["params"]))),
        "num_members": len(members),
        "source_run": source,
        "test_metrics": {"n": metrics["n"], "level": boot.get("level"), "resamples": boot.get("resamples"),
                         "metrics": test_metrics(metrics)},
        "operating_point": metrics.get("operating_point"),
        "interval_operating_point": metrics.get("interval_operating_point"),
        "provenance": provenance(data_sha256=metrics.get("provenance", {}).get("data_sha256")),
    }


ARCHITECTURE_KEYS = ("model", "image_size")
BIAS_SUMMARY = Path("results/bias/summary.json")  # the age correction's effect, for the card
ROBUSTNESS_SUMMARY = Path("results/robustness/summary.json")  # the corruption benchmark, for the card


def load_members(run: Path, checkpoint_dir: Path | None) -> tuple[dict, list[dict], dict[str, float] | None]:
    """Config, variables of each member and the weights (None for a single run) of a run folder.

    An ensemble run (summary kind "ensemble") is exported as its members' best checkpoints, which
    must share one architecture and input size so that one model applies them all.
    """
    summary = json.loads((run / "summary.json").read_text())
    if summary.get("kind") != "ensemble":
        config, variables, _ = load_run(run, checkpoint_dir)
        return config.to_dict(), [jax.device_get(variables)], None
    if checkpoint_dir is not None:
        raise ValueError(f"{run.name} is an ensemble: its members' checkpoints are read from their run "
                         "folders, so --checkpoint does not apply")
    weights = summary.get("weights") or {m: 1 / len(summary["members"]) for m in summary["members"]}
    loaded = [load_run(run.parent / m) for m in weights]
    configs = [c.to_dict() for c, _, _ in loaded]
    for name, config in zip(weights, configs, strict=True):
        for key in (*ARCHITECTURE_KEYS, "eval"):
            if config[key] != configs[0][key]:
                raise ValueError(f"ensemble member {name} differs from {next(iter(weights))} in `{key}`: "
                                 "a release ensemble needs members of one architecture and input")
    config = {**configs[0], "name": summary["name"],
              "ensemble": {"members": list(weights), "weights": list(weights.values()),
                           "weighting": summary.get("weighting", "equal")}}
    return config, [jax.device_get(v) for _, v, _ in loaded], weights


def export_release(run: Path, out: Path, checkpoint_dir: Path | None = None,
                   breakdowns: Path | None = None, rules: Path | None = None) -> dict:
    """Write params.msgpack, config.json, metadata.json and MODEL_CARD.md for ``run`` into ``out``,
    and rules.json when ``rules`` (results/rules/rules.json) is given.

    ``run`` is a trained run or an ensemble run whose members share one architecture. Returns the
    metadata. Raises ValueError when the params exceed ``MAX_RELEASE_BYTES`` and checks that the
    written folder loads back to the same arrays.
    """
    run, out = Path(run), Path(out)
    config, members, weights = load_members(run, checkpoint_dir)
    blob = params_bytes(members[0]) if weights is None else ensemble_bytes(members, list(weights.values()))
    if len(blob) > MAX_RELEASE_BYTES:
        raise ValueError(f"{run.name}: params are {len(blob) / 1e6:.1f} MB, over the release limit of "
                         f"{MAX_RELEASE_BYTES / 1e6:.0f} MB")
    metadata = release_metadata(run, blob, members, weights)
    with atomic_path(out / PARAMS_FILE) as tmp:
        tmp.write_bytes(blob)
    write_json(out / "config.json", config)
    write_json(out / "metadata.json", metadata)
    release = load_release(out)
    restored = jax.tree_util.tree_leaves(release.members)
    inference = [{"params": v["params"], "batch_stats": v.get("batch_stats", {})} for v in members]
    exported = jax.tree_util.tree_leaves(inference)
    if not all(np.array_equal(a, b) for a, b in zip(restored, exported, strict=True)):
        raise AssertionError(f"{out / PARAMS_FILE} does not load back to the exported arrays")
    if rules is not None:
        attach_rules(out, rules)
    if (Path(breakdowns or RunFolder(run).breakdowns()) / "by_group.csv").is_file():
        write_card(out, run, breakdowns)
    else:  # a new release before its run is broken down: the card stage writes the card later
        print(f"{out}: no MODEL_CARD.md yet (break the run down, then export_model.py --card-only)")
    return metadata


def benchmark_of(robustness: Path, metadata: dict) -> dict | None:
    """The corruption benchmark's summary when it scored exactly this release's params, else None."""
    if not Path(robustness).is_file():
        return None
    summary = json.loads(Path(robustness).read_text())
    scored = summary.get("models", {}).get(metadata["name"], {})
    return summary if scored.get("params_sha256") == metadata["params_sha256"] else None


def write_card(release: Path, run: Path, breakdowns: Path | None = None, bias: Path = BIAS_SUMMARY,
               robustness: Path = ROBUSTNESS_SUMMARY) -> Path:
    """(Re)write ``release``/MODEL_CARD.md from the release folder's config, metadata and rules, the
    age-bias summary ``bias`` (when the release's rules carry an age correction), the corruption
    benchmark ``robustness`` (when it scored these params) and the results files of ``run`` (no
    checkpoint needed)."""
    release, folder = Path(release), RunFolder(run)
    config = json.loads((release / "config.json").read_text())
    metadata = json.loads((release / "metadata.json").read_text())
    split_summary = json.loads((Path(config["data"]["split_dir"]) / "summary.json").read_text())
    rules = load_rules(release, metadata)
    if rules and rules.get("age_correction") and not Path(bias).is_file():
        raise FileNotFoundError(f"{bias} is missing: the card states the age correction's effect from it "
                                "(scripts/age_bias.py)")
    summary = json.loads(Path(bias).read_text()) if rules and rules.get("age_correction") else None
    if summary is not None and summary["provenance"] != rules["age_correction"].get("provenance"):
        raise ValueError(f"{bias} is not from the run of scripts/age_bias.py whose correction the release's "
                         "rules carry: rerun scripts/release_rules.py and attach its rules")
    card = model_card.render(metadata, config, folder.path, breakdowns or folder.breakdowns(), split_summary,
                             rules, summary, benchmark_of(robustness, metadata),
                             load_inference(release, metadata))
    with atomic_path(release / "MODEL_CARD.md") as tmp:
        tmp.write_text(card)
    return release / "MODEL_CARD.md"
