"""Release tables (release_<split>.csv's columns) from synthetic age distributions, rules.json
written from them by research.evaluation.rules for a given release, and a tiny two-member release
folder: shared by the rules, prediction, decision and corruption tests."""

import hashlib
import json
from pathlib import Path

import jax
import numpy as np
import pandas as pd

from research.configs import load_config
from research.evaluation import decision
from research.evaluation import rules as evaluation_rules
from research.models.age_distribution import mass_below, moments
from research.models.factory import create_model
from research.models.heads import NUM_AGE_BINS
from research.predict.release import ensemble_bytes


def write_tiny_release(folder: Path, member_names: tuple[str, ...] | None = None) -> Path:
    """A two-member release (weights 0.6, 0.4) of randomly initialised smoke CNNs in ``folder``,
    written as export writes one; ``member_names`` go into metadata.json's source_run."""
    folder.mkdir(parents=True, exist_ok=True)
    config = load_config("cnn_baseline", "smoke")
    model = create_model(config.model)
    size = int(config.image_size)
    members = [jax.device_get(model.init({"params": jax.random.key(k), "dropout": jax.random.key(k)},
                                         np.zeros((1, size, size, 3), np.float32), train=False))
               for k in (1, 2)]
    blob = ensemble_bytes(members, [0.6, 0.4])
    (folder / "params.msgpack").write_bytes(blob)
    (folder / "config.json").write_text(json.dumps(config.to_dict()))
    metadata = {"params_sha256": hashlib.sha256(blob).hexdigest()}
    if member_names is not None:
        metadata["source_run"] = {"members": [{"name": name} for name in member_names]}
    (folder / "metadata.json").write_text(json.dumps(metadata))
    return folder


def synthetic_release_table(n: int, seed: int) -> pd.DataFrame:
    """Distributions around a noisy, slightly too old estimate of each true age."""
    rng = np.random.default_rng(seed)
    age = rng.integers(1, 80, n)
    centre = np.clip(age + rng.normal(2, 5, n), 1, 110)
    grid = np.arange(NUM_AGE_BINS)
    probs = np.exp(-0.5 * ((grid[None, :] - centre[:, None]) / 5) ** 2)
    probs /= probs.sum(axis=1, keepdims=True)
    mean, std = moments(probs)
    frame = pd.DataFrame({"file": [f"{i}.jpg" for i in range(n)], "age": age, "gender": rng.integers(0, 2, n),
                          "race": rng.integers(0, 5, n), "pred_age": mean, "age_std": std})
    for challenge in decision.DECISION_CHALLENGES:
        frame[decision.p_under_column(challenge)] = mass_below(probs, challenge)
    return frame


def synthetic_rules(out: Path, params_sha256: str, correction: dict | None = None, n: int = 3000,
                    resamples: int = 50) -> Path:
    """results/rules-style rules.json (and coverage.csv) in ``out`` for the release with those params."""
    out.mkdir(parents=True, exist_ok=True)
    source = out / "input.csv"
    source.write_text("synthetic")
    evaluation_rules.write_rules(synthetic_release_table(n, 0), synthetic_release_table(n, 1), correction,
                                 {"name": "synthetic", "params_sha256": params_sha256}, [source], out,
                                 resamples, 0, 0.95)
    return out / "rules.json"
