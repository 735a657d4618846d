"""One tiny end-to-end run (smoke CNN, 48 synthetic images), shared by the training and metrics tests.

Built at most once per pytest session under the session's base temporary folder: the helpers
reuse a finished run found there, so test modules can each ask for it.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import ml_collections
import pandas as pd

from research.configs import load_config
from research.configs.overrides import apply_overrides
from research.training.loop import train_and_evaluate

REPO = Path(__file__).resolve().parents[1]
NUM_IMAGES = 48  # 32 train (two batches of 16), 8 val, 8 test
EVAL_RESAMPLES = 200
EVAL_SEED = 3


def split_of(index: int) -> str:
    return {0: "val", 1: "test"}.get(index % 6, "train")


def write_split_csv(folder: Path, path: Path) -> pd.DataFrame:
    """A split file (file, sha256, age, gender, race, split) for every JPEG in ``folder``.

    Labels come from the names; two test rows and one train row lose their ethnicity (-1).
    """
    rows = []
    for file in sorted(folder.glob("*.jpg"), key=lambda p: int(p.name.split("_")[3].split(".")[0])):
        age, gender, race = (int(v) for v in file.name.split("_")[:3])
        rows.append({"file": file.name, "sha256": hashlib.sha256(file.read_bytes()).hexdigest(),
                     "age": age, "gender": gender, "race": race, "split": split_of(len(rows))})
    table = pd.DataFrame(rows)
    table.loc[[1, 7, 2], "race"] = -1  # rows 1 and 7 are test rows, row 2 a train row
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    return table


def prepare_data(root: Path, writer: Callable) -> Path:
    """The synthetic folder and ``splits/utkface.csv`` under ``root`` (written once)."""
    folder = root / "UTKFace"
    if not (root / "splits" / "utkface.csv").is_file():
        writer(folder, count=NUM_IMAGES, seed=0)
        write_split_csv(folder, root / "splits" / "utkface.csv")
    return folder


def smoke_config(root: Path, writer: Callable, overrides: dict | None = None) -> ml_collections.ConfigDict:
    """The cnn_baseline smoke config reading the synthetic data under ``root``."""
    folder = prepare_data(root, writer)
    config = load_config("cnn_baseline", "smoke")
    paths = {"data.path": str(folder), "data.split_dir": str(root / "splits"),
             "data.cache_root": str(root / "cache")}
    return apply_overrides(config, {**paths, **(overrides or {})})


def trained_run(root: Path, writer: Callable) -> Path:
    """``root/run``: the smoke config trained for its 2 epochs (reused when already complete)."""
    run = root / "run"
    if not (run / "summary.json").is_file():
        shutil.rmtree(run, ignore_errors=True)
        train_and_evaluate(smoke_config(root, writer), run)
    return run


def evaluated_run(root: Path, writer: Callable) -> Path:
    """``trained_run`` after ``scripts/predict_splits.py`` and ``scripts/evaluate.py``
    (predictions_*.csv, metrics_test.json)."""
    run = trained_run(root, writer)
    if not (run / "metrics_test.json").is_file():
        for command in (["scripts/predict_splits.py", "--run", str(run)],
                        ["scripts/evaluate.py", "--run", str(run), "--resamples", str(EVAL_RESAMPLES),
                         "--seed", str(EVAL_SEED)]):
            done = subprocess.run([sys.executable, *command], cwd=REPO, capture_output=True, text=True,
                                  timeout=300)
            assert done.returncode == 0, f"{command[0]} failed:\n{done.stderr[-3000:]}"
    return run
