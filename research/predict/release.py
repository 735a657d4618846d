"""The release model: one flax msgpack of params + BatchNorm statistics, its config and metadata.

A release folder (``results/models/<name>/``) holds

  params.msgpack   ``flax.serialization.to_bytes({"params": ..., "batch_stats": ...})``; for an
                   ensemble of runs of one architecture ``{"members": {"0": {...}, ...},
                   "weights": [...]}`` (the mixture weights are covered by the checksum too)
  config.json      the training config of the source run (model architecture, image size, TTA)
  metadata.json    sha256 and size of params.msgpack, source run, its test metrics with
                   bootstrap intervals, provenance of the export
  rules.json       optional: the prediction command's age correction, calibrated interval and
                   Challenge-N operating points (research.predict.rules), made for these params
                   (its ``release.params_sha256``), copied in by
                   ``research.release.rules.attach_rules`` from results/rules/rules.json
  rules.sha256     the sha256 of rules.json (``sha256sum`` format), written beside it
  inference.json   optional: how the command runs these params (``tta_flip``: mirror averaging
                   or one view), chosen on validation by ``research.release.inference``; applied
                   to the config ``load_release`` returns, so that every consumer runs the
                   release alike
  MODEL_CARD.md    written by ``research.release.model_card`` from results files

Loading needs neither orbax nor any training code: the bytes are restored without a target.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import flax.serialization
import ml_collections
import numpy as np

from research.configs.experiments import RELEASE_DIR
from research.models.factory import create_model

PARAMS_FILE = "params.msgpack"
# The release the prediction command uses by default: committed in this repository.
DEFAULT_RELEASE = Path(__file__).resolve().parents[2] / RELEASE_DIR
MAX_RELEASE_BYTES = 25_000_000  # issue 5: the shipped checkpoint is at most 25 MB


class ReleaseError(ValueError):
    """A release folder that is missing files or whose params do not match their checksum."""


@dataclasses.dataclass(frozen=True)
class Release:
    """What prediction needs: the config, each member's variables with its mixture weight (one
    member of weight 1 for a single run) and the (Flax) model that applies them."""

    config: ml_collections.ConfigDict
    members: tuple[dict, ...]
    weights: tuple[float, ...]
    model: object
    metadata: dict
    path: Path
    rules: dict | None = None  # rules.json (research.predict.rules); None: the command's fallback
    inference: dict | None = None  # inference.json (research.release.inference); None: the config's TTA


def _inference_variables(variables: dict) -> dict:
    return {"params": variables["params"], "batch_stats": variables.get("batch_stats", {})}


def params_bytes(variables: dict) -> bytes:
    """Serialise ``{"params", "batch_stats"}`` (nothing else: no optimizer state) to msgpack."""
    return flax.serialization.to_bytes(_inference_variables(variables))


def ensemble_bytes(members: list[dict], weights: list[float]) -> bytes:
    """Serialise several members' ``{"params", "batch_stats"}`` and their mixture weights."""
    if len(members) != len(weights) or len(members) < 2:
        raise ValueError(f"an ensemble release needs two or more members, one weight each "
                         f"(got {len(members)} members, {len(weights)} weights)")
    stored = {str(i): _inference_variables(v) for i, v in enumerate(members)}
    return flax.serialization.to_bytes({"members": stored, "weights": np.asarray(weights, np.float64)})


def load_release(directory: str | Path) -> Release:
    """Load a release folder written by ``research.release.export.export_release``.

    Checks that the params file matches the sha256 recorded in metadata.json.
    """
    directory = Path(directory)
    missing = [n for n in (PARAMS_FILE, "config.json", "metadata.json") if not (directory / n).is_file()]
    if missing:
        raise ReleaseError(f"{directory} is not a release model folder: missing {', '.join(missing)} "
                           "(make one with scripts/export_model.py)")
    blob = (directory / PARAMS_FILE).read_bytes()
    metadata = json.loads((directory / "metadata.json").read_text())
    digest = hashlib.sha256(blob).hexdigest()
    if digest != metadata.get("params_sha256"):
        raise ReleaseError(f"{directory / PARAMS_FILE}: sha256 {digest} does not match metadata.json "
                           f"({metadata.get('params_sha256')}); the file is corrupt or was replaced")
    rules = load_rules(directory, metadata)
    config = ml_collections.ConfigDict(json.loads((directory / "config.json").read_text()))
    inference = load_inference(directory, metadata)
    if inference is not None:
        config.eval.tta_flip = bool(inference["tta_flip"])
    restored = flax.serialization.msgpack_restore(blob)
    if "members" in restored:
        members = tuple(restored["members"][str(i)] for i in range(len(restored["members"])))
        weights = tuple(float(w) for w in np.asarray(restored["weights"]))
    else:
        members, weights = (restored,), (1.0,)
    return Release(config=config, members=members, weights=weights, model=create_model(config.model),
                   metadata=metadata, path=directory, rules=rules, inference=inference)


INFERENCE_FILE = "inference.json"


def load_inference(directory: Path, metadata: dict) -> dict | None:
    """The release's inference.json (None when it has none: the training config's TTA applies),
    checked against the params it was chosen for."""
    path = Path(directory) / INFERENCE_FILE
    if not path.is_file():
        return None
    inference = json.loads(path.read_text())
    made_for = inference.get("release", {}).get("params_sha256")
    if made_for != metadata.get("params_sha256"):
        raise ReleaseError(f"{path} was chosen for params {made_for}, not this release's "
                           f"{metadata.get('params_sha256')}: run scripts/release_inference.py for "
                           "this release")
    if not isinstance(inference.get("tta_flip"), bool):
        raise ReleaseError(f"{path}: 'tta_flip' must be true or false, got {inference.get('tta_flip')!r}")
    return inference


RULES_FILE, RULES_SHA256 = "rules.json", "rules.sha256"


def load_rules(directory: Path, metadata: dict) -> dict | None:
    """The release's rules.json, checked against rules.sha256 and against the params it was made
    for; None when the release carries none (the command's documented fallback)."""
    path, digest_file = Path(directory) / RULES_FILE, Path(directory) / RULES_SHA256
    if not path.is_file() and not digest_file.is_file():
        return None
    if not path.is_file() or not digest_file.is_file():
        missing = path if not path.is_file() else digest_file
        raise ReleaseError(f"{missing} is missing; re-attach the rules (export_model.py --rules-only)")
    blob = path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != digest_file.read_text().split()[0]:
        raise ReleaseError(f"{path}: sha256 does not match {RULES_SHA256}; it is corrupt or was replaced")
    rules = json.loads(blob)
    made_for = rules.get("release", {}).get("params_sha256")
    if made_for != metadata.get("params_sha256"):
        raise ReleaseError(f"{path} was made for params {made_for}, not this release's "
                           f"{metadata.get('params_sha256')}: run scripts/release_rules.py for this release")
    return rules
