"""One run folder (``results/runs/<name>/``): the names of its files and the columns of its tables.

Every stage that reads or writes a run goes through ``RunFolder``, so a file name is spelled once:

  config.json           the run's config (an ensemble's: members, weights, weighting)
  metrics.jsonl         one JSON object per epoch (``train/...``, ``val/...``)
  history.csv           the same records as a table; loss_curves.png plots them
  summary.json          what training (or ensembling) reached, with provenance
  predictions_<split>.csv   one row per image, columns PREDICTION_COLUMNS (val and test)
  metrics_test.json     test metrics with bootstrap intervals and validation-chosen operating points
  checkpoints/{last,best}/  orbax checkpoints (git-ignored)
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd

from research.vocabulary import NUM_ETHNICITIES

RESULTS_DIR = Path("results")
SPLITS = ("val", "test")
PREDICTION_COLUMNS = ["file", "age", "gender", "race", "pred_age", "age_std", "pred_gender",
                      "p_female", "pred_race", *[f"p_race{i}" for i in range(NUM_ETHNICITIES)]]


def read_predictions(path: Path) -> pd.DataFrame:
    """A predictions CSV (columns PREDICTION_COLUMNS), with a clear error if it is not one."""
    frame = pd.read_csv(path)
    missing = set(PREDICTION_COLUMNS) - set(frame.columns)
    if missing:
        raise ValueError(f"{path} is not a predictions file: columns {sorted(missing)} are missing")
    return frame


def run_seconds(summary: dict) -> float:
    """Training time of a run from its summary.json: a resumed run's wall time covers only its last
    process, the sum of its epochs covers all of them."""
    return max(summary["wall_time_s"], summary.get("train_seconds_all_epochs", 0.0))


def lineage_summaries(runs_dir: str | Path, summary: dict) -> dict[str, dict]:
    """run name -> summary.json of a run and of each run it continued: ``model.init_from`` is a
    release folder (relative to the repository root above ``runs_dir``) whose metadata.json names
    its source run."""
    found = {summary.get("name", ""): summary}
    init_from = summary.get("config", {}).get("model", {}).get("init_from", "")
    if init_from:
        runs_dir = Path(runs_dir)
        meta = json.loads((runs_dir.parent.parent / init_from / "metadata.json").read_text())
        parent = runs_dir / Path(meta["source_run"]["path"]).name / "summary.json"
        found.update(lineage_summaries(runs_dir, json.loads(parent.read_text())))
    return found


def lineage(runs_dir: str | Path, summary: dict) -> tuple[float, int]:
    """Training seconds and epochs of a run with those of the runs it continued, so that a
    continuation states its whole cost."""
    runs = lineage_summaries(runs_dir, summary).values()
    return sum(run_seconds(s) for s in runs), sum(int(s.get("epochs", 0)) for s in runs)


@dataclasses.dataclass(frozen=True)
class RunFolder:
    """The files of one run folder; ``path`` need not exist yet."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @classmethod
    def named(cls, name: str, results: Path = RESULTS_DIR) -> RunFolder:
        """``results/runs/<name>``."""
        return cls(Path(results) / "runs" / name)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config_file(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics_log(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def history_file(self) -> Path:
        return self.path / "history.csv"

    @property
    def loss_curves(self) -> Path:
        return self.path / "loss_curves.png"

    @property
    def summary_file(self) -> Path:
        return self.path / "summary.json"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics_test.json"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / "best"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last"

    def predictions_file(self, split: str) -> Path:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return self.path / f"predictions_{split}.csv"

    def breakdowns(self, results: Path | None = None) -> Path:
        """``results/breakdowns/<name>``, beside ``results/runs`` unless ``results`` says otherwise."""
        return (Path(results) if results else self.path.parents[1]) / "breakdowns" / self.name

    def has_predictions(self) -> bool:
        return all(self.predictions_file(split).is_file() for split in SPLITS)

    def config(self) -> dict:
        return json.loads(self.config_file.read_text())

    def summary(self) -> dict:
        if not self.summary_file.is_file():
            raise FileNotFoundError(f"{self.summary_file} is missing: make the run {self.name} first")
        return json.loads(self.summary_file.read_text())

    def metrics(self) -> dict:
        return json.loads(self.metrics_file.read_text())

    def predictions(self, split: str) -> pd.DataFrame:
        return read_predictions(self.predictions_file(split))

    def is_ensemble(self) -> bool:
        return self.summary().get("kind") == "ensemble"
