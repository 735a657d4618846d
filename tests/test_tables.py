"""The README/report headline table, built from metrics and summary files."""

import json

import pytest
from test_metrics import random_predictions

from research.evaluation.metrics import evaluate_predictions
from research.evaluation.tables import headline_table, run_seconds, timings_table, to_markdown


def write_run(folder, summary, seed):
    folder.mkdir(parents=True)
    frame = random_predictions(300, seed)
    metrics = evaluate_predictions(frame, frame, resamples=50, seed=0, max_minor_pass_rate=0.05)
    (folder / "metrics_test.json").write_text(json.dumps(metrics))
    (folder / "summary.json").write_text(json.dumps(summary))
    return metrics


def test_headline_table_rows_for_trained_runs_and_ensembles(tmp_path):
    runs = tmp_path / "runs"
    trained = {"protocol": "utkface", "profile": "cpu", "image_size": 64, "epochs": 3, "device_kind": "cpu",
               "num_devices": 2, "wall_time_s": 120.0, "train_seconds_all_epochs": 180.0}
    metrics = write_run(runs / "cnn_baseline", trained, seed=0)
    write_run(runs / "ensemble", {"kind": "ensemble", "protocol": "utkface", "members": ["a", "b"],
                                  "image_size": "200+64", "device_kind": "gpu+cpu", "wall_time_s": 600.0},
              seed=1)
    table = headline_table(runs).set_index("run")
    assert list(table.index) == ["cnn_baseline", "ensemble"]
    assert table.loc["cnn_baseline", "age_MAE"].startswith(f"{metrics['age_mae']:.2f} [")
    assert table.loc["cnn_baseline", "train_minutes"] == 3.0  # resumed run: the sum of its epochs
    assert table.loc["ensemble", "profile"] == "ensemble of a + b"
    assert table.loc["ensemble", "train_minutes"] == 10.0
    assert "| cnn_baseline |" in to_markdown(table.reset_index())
    stages = timings_table(tmp_path)["stage"].tolist()
    assert stages == ["train cnn_baseline (cpu profile)"]  # the ensemble trained nothing itself
    assert run_seconds(trained) == pytest.approx(180.0)
