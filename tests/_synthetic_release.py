"""Release tables (release_<split>.csv's columns) from synthetic age distributions, and rules.json
written from them by research.evaluation.rules for a given release: shared by the rules and the
prediction tests."""

from pathlib import Path

import numpy as np
import pandas as pd

from research.evaluation import decision
from research.evaluation import rules as evaluation_rules
from research.models.age_distribution import mass_below, moments
from research.models.heads import NUM_AGE_BINS


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
