"""make verify: the committed results recompute exactly, and a value altered by hand is reported."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from research.configs import experiments
from research.verify import Difference, checks, csv_differences, json_differences

REPO = Path(__file__).resolve().parents[1]


def copy_run(results: Path, name: str) -> Path:
    """One committed run folder (and, for an ensemble, its members) under ``results/runs``."""
    source = REPO / "results/runs" / name
    shutil.copytree(source, results / "runs" / name)
    config = json.loads((source / "config.json").read_text())
    for member in config.get("members", []) if config.get("kind") == "ensemble" else []:
        if not (results / "runs" / member).exists():
            shutil.copytree(REPO / "results/runs" / member, results / "runs" / member)
    return results / "runs" / name


def found(results: Path) -> list[Difference]:
    return [d for _, differences in checks(results, results / "README.md") for d in differences]


def is_ensemble(name: str) -> bool:
    return json.loads((REPO / "results/runs" / name / "config.json").read_text()).get("kind") == "ensemble"


def test_a_committed_run_and_its_ensemble_recompute_exactly(tmp_path):
    # The release when it is an ensemble, else the earlier release that was one.
    name = next(n for n in (experiments.RELEASE, *experiments.EARLIER_RELEASES) if is_ensemble(n))
    copy_run(tmp_path, name)
    shutil.copytree(REPO / "results/breakdowns" / name, tmp_path / "breakdowns" / name)
    what = [w for w, _ in checks(tmp_path, tmp_path / "README.md")]
    assert f"ensemble {name}" in what and f"breakdowns {name}" in what
    assert found(tmp_path) == []


def test_a_metric_altered_by_hand_is_reported_with_its_file_and_key(tmp_path):
    run = copy_run(tmp_path, experiments.BASELINE_RUN)
    metrics = json.loads((run / "metrics_test.json").read_text())
    metrics["age_mae"] += 0.01
    (run / "metrics_test.json").write_text(json.dumps(metrics))
    (difference,) = found(tmp_path)
    assert difference.file == str(run / "metrics_test.json") and difference.key == "/age_mae"
    assert difference.committed == metrics["age_mae"] and difference.recomputed == metrics["age_mae"] - 0.01


def test_the_command_exits_1_and_names_the_altered_value(tmp_path):
    run = copy_run(tmp_path, experiments.BASELINE_RUN)
    frame = pd.read_csv(run / "predictions_test.csv")
    frame.loc[0, "pred_age"] += 5  # a prediction changed: every metric computed from it moves
    frame.to_csv(run / "predictions_test.csv", index=False, float_format="%.4f")
    done = subprocess.run([sys.executable, "scripts/verify.py", "--results", str(tmp_path)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "DIFFERS  metrics" in done.stdout and "/age_mae:" in done.stdout


def test_csv_and_json_comparisons_name_cells_and_keys(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]}).to_csv(path, index=False)
    (cell,) = csv_differences(path, pd.DataFrame({"a": [1.0, 2.5], "b": ["x", "y"]}))
    assert cell.key == "row 2 a" and (cell.committed, cell.recomputed) == ("2.0", "2.5")
    (tmp_path / "m.json").write_text(json.dumps({"x": {"y": [1, float("nan")]}, "provenance": 1}))
    assert json_differences(tmp_path / "m.json", {"x": {"y": [1, float("nan")]}, "provenance": 2}) == []
    (key,) = json_differences(tmp_path / "m.json", {"x": {"y": [2, float("nan")]}})
    assert key.key == "/x/y[0]"
