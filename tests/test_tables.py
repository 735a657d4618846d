"""The README/report headline table, built from metrics and summary files."""

import json

import pandas as pd
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


def test_comparison_and_ablation_tables_say_how_to_make_missing_inputs(tmp_path):
    from research.evaluation.tables import ablations_markdown_table, comparison_table

    assert "make peer" in to_markdown(comparison_table(tmp_path))
    assert "make ablations" in to_markdown(ablations_markdown_table(tmp_path))
    (tmp_path / "ablations").mkdir()
    (tmp_path / "ablations" / "ablations.csv").write_text(
        "arm,description,overrides,n_seeds,val_age_mae_mean,val_age_mae_std,val_gender_accuracy_mean,"
        "val_gender_accuracy_std,val_ethnicity_accuracy_mean,val_ethnicity_accuracy_std,train_minutes_mean\n"
        "full,all heads,,2,6.5,0.5,0.9,0.01,0.8,,9.87\n"
        "age_only,age head,x=0,1,6.0,,,,,,10.0\n")
    table = ablations_markdown_table(tmp_path).set_index("arm")
    assert table.loc["full", "val_age_MAE"] == "6.50 ± 0.50"
    assert table.loc["full", "val_ethnicity_acc_%"] == "80.0"  # one seed with a value: no spread
    assert table.loc["age_only", "val_gender_acc_%"] == "head off"


def test_seed_table_lists_each_seed_and_their_mean_and_sd(tmp_path):
    from research.evaluation.tables import seed_runs, seed_table

    runs = tmp_path / "runs"
    assert "SEED_RUNS" in to_markdown(seed_table(runs))  # nothing trained yet: says how
    maes = {}
    for name, seed in (("cnn_baseline", 0), ("cnn_baseline_s2", 2), ("cnn_baseline_s10", 10)):
        summary = {"config": {"seed": seed}, "best_val": {"age_mae": 5.0 + seed / 10}, "wall_time_s": 60.0}
        maes[name] = write_run(runs / name, summary, seed=seed)["age_mae"]
    (runs / "cnn_baseline_s3").mkdir()  # a run that never wrote its summary is not a seed run
    (runs / "cnn_baseline_sx").mkdir()
    assert seed_runs(runs, "cnn_baseline") == ["cnn_baseline_s2", "cnn_baseline_s10"]
    table = seed_table(runs).set_index("run")
    assert list(table["seed"]) == [0, 2, 10, "-"]
    assert table.loc["cnn_baseline_s10", "val_age_MAE"] == "6.00"
    values = pd.Series(list(maes.values()))
    assert table.loc["mean ± sd (3 seeds)", "test_age_MAE"] == f"{values.mean():.2f} ± {values.std():.2f}"
    assert table.loc["mean ± sd (3 seeds)", "train_minutes"] == "1.0 ± 0.0"


def test_weighted_ensemble_row_shows_its_weights(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs / "ensemble", {"kind": "ensemble", "protocol": "utkface", "members": ["a", "b"],
                                  "weighting": "greedy", "weights": {"a": 0.75, "b": 0.25},
                                  "image_size": "200+64", "device_kind": "gpu+cpu", "wall_time_s": 60.0},
              seed=2)
    assert headline_table(runs).loc[0, "profile"] == "ensemble of 0.75 a + 0.25 b"
