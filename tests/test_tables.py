"""The README/report headline table, built from metrics and summary files."""

import json

import pandas as pd
import pytest
from test_metrics import random_predictions

from research.evaluation.metrics import evaluate_predictions
from research.report.tables import headline_table, timings_table, to_markdown
from research.runs.folder import run_seconds


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
    metrics = write_run(runs / "base", trained, seed=0)
    write_run(runs / "mix", {"kind": "ensemble", "protocol": "utkface", "members": ["a", "b"],
                             "image_size": "200+64", "device_kind": "gpu+cpu", "wall_time_s": 600.0}, seed=1)
    table = headline_table(runs, ("base", "absent", "mix")).set_index("run")
    assert list(table.index) == ["base", "mix"]  # the given order; runs without metrics left out
    assert table.loc["base", "age_MAE"].startswith(f"{metrics['age_mae']:.2f} [")
    assert table.loc["base", "train_minutes"] == 3.0  # resumed run: the sum of its epochs
    assert table.loc["mix", "profile"] == "ensemble of a + b"
    assert table.loc["mix", "train_minutes"] == 10.0
    assert "| base |" in to_markdown(table.reset_index())
    timings = timings_table(tmp_path, ("base", "mix"), seeds=())
    # the ensemble trained nothing itself; the last row totals the CPU rows
    assert timings["stage"].tolist() == ["train base (cpu profile)",
                                         "make clean all on the CPU (the rows above but the GPU runs)"]
    assert timings["minutes"].tolist() == [3.0, 3.0]
    assert run_seconds(trained) == pytest.approx(180.0)


def test_comparison_and_ablation_tables_say_how_to_make_missing_inputs(tmp_path):
    from research.report.tables import ablations_markdown_table, comparison_table

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


def test_a_study_measured_against_a_full_run_ends_with_its_row(tmp_path):
    import json

    from research.report.tables import ablations_markdown_table

    assert "make ablations_pretrained" in to_markdown(ablations_markdown_table(tmp_path, "pretrained"))
    folder = tmp_path / "ablations_pretrained"
    folder.mkdir()
    (folder / "ablations.csv").write_text(
        "arm,description,overrides,n_seeds,val_age_mae_mean,val_age_mae_std,val_gender_accuracy_mean,"
        "val_gender_accuracy_std,val_ethnicity_accuracy_mean,val_ethnicity_accuracy_std,train_minutes_mean\n"
        "full,the recipe,,1,4.75,,0.95,,0.87,,10.0\n")
    (folder / "summary.json").write_text(json.dumps({
        "reference_run": "big_run", "reference_epochs": 16, "reference_train_minutes": 130.24,
        "reference_val": {"age_mae": 4.644, "gender_accuracy": 0.951, "ethnicity_accuracy": 0.8715}}))
    table = ablations_markdown_table(tmp_path, "pretrained")
    assert table["arm"].tolist() == ["full", "(reference) big_run"]
    last = table.iloc[-1]
    shown = (last["val_age_MAE"], last["val_gender_acc_%"], last["val_ethnicity_acc_%"])
    assert shown == ("4.64", "95.1", "87.2")
    assert last["minutes_per_run"] == 130.2 and "16 epochs" in last["what changes"]


def test_seed_table_lists_each_seed_and_their_mean_and_sd(tmp_path):
    from research.report.tables import seed_runs, seed_table

    runs = tmp_path / "runs"
    seeds = ("base_s2", "base_s3", "base_s10")
    assert "SEED_RUNS" in to_markdown(seed_table(runs, "base", seeds))  # nothing trained yet: says how
    maes = {}
    for name, seed in (("base", 0), ("base_s2", 2), ("base_s10", 10)):
        summary = {"config": {"seed": seed}, "best_val": {"age_mae": 5.0 + seed / 10}, "wall_time_s": 60.0}
        maes[name] = write_run(runs / name, summary, seed=seed)["age_mae"]
    (runs / "base_s3").mkdir()  # a run that never wrote its summary is not a seed run yet
    (runs / "base_s4").mkdir()
    (runs / "base_s4" / "summary.json").write_text("{}")  # not registered: not a seed run
    assert seed_runs(runs, seeds) == ["base_s2", "base_s10"]
    table = seed_table(runs, "base", seeds).set_index("run")
    assert list(table["seed"]) == [0, 2, 10, "-"]
    assert table.loc["base_s10", "val_age_MAE"] == "6.00"
    values = pd.Series(list(maes.values()))
    assert table.loc["mean ± sd (3 seeds)", "test_age_MAE"] == f"{values.mean():.2f} ± {values.std():.2f}"
    assert table.loc["mean ± sd (3 seeds)", "train_minutes"] == "1.0 ± 0.0"


def test_weighted_ensemble_row_shows_its_weights(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs / "mix", {"kind": "ensemble", "protocol": "utkface", "members": ["a", "b"],
                             "weighting": "greedy", "weights": {"a": 0.75, "b": 0.25},
                             "image_size": "200+64", "device_kind": "gpu+cpu", "wall_time_s": 60.0}, seed=2)
    assert headline_table(runs, ("mix",)).loc[0, "profile"] == "ensemble of 0.75 a + 0.25 b"


def test_default_tables_follow_the_registry():
    from pathlib import Path

    from research.configs import experiments
    from research.report.tables import seed_table

    runs = Path(__file__).resolve().parents[1] / "results" / "runs"
    found = [n for n in experiments.HEADLINE if (runs / n / "metrics_test.json").is_file()]
    assert list(headline_table(runs)["run"]) == found
    seeds = seed_table(runs)
    if "seed" in seeds:
        assert list(seeds["run"][:-1]) == [n for n in (experiments.SEED_BASE, *experiments.SEED_RUNS)
                                           if (runs / n / "metrics_test.json").is_file()]


def test_pretraining_table_pairs_each_pretrained_run_with_its_control(tmp_path):
    from research.report.tables import pretraining_table

    assert "make all" in to_markdown(pretraining_table(tmp_path))
    base = {"protocol": "utkface", "profile": "cpu", "image_size": 96, "epochs": 2, "device_kind": "cpu",
            "num_devices": 1, "wall_time_s": 600.0}
    metrics = write_run(tmp_path / "runs" / "mobilenet_v2_multitask_cpu",
                        {**base, "config": {"model": {"name": "mobilenet_v2", "init": "imagenet"}}}, seed=0)
    write_run(tmp_path / "runs" / "mobilenet_v2_scratch_cpu",
              {**base, "config": {"model": {"name": "mobilenet_v2", "init": "scratch"}}}, seed=1)
    (tmp_path / "models_summary").mkdir()
    (tmp_path / "models_summary" / "summary.json").write_text(json.dumps({
        "models": {"mobilenet_v2_multitask_cpu": {"config": "mobilenet_v2_multitask", "profile": "cpu",
                                                  "params": 2_382_716, "gflops_per_face_evaluated": 0.23}},
        # a run trained at another input size has its own operations per face
        "runs": {"mobilenet_v2_scratch_cpu": {"image_px": 128, "gflops_per_face_evaluated": 0.41}},
        "pretrained": {"mobilenet_v2_imagenet": {"model": "mobilenet_v2", "init": "imagenet",
                                                 "trained_on": "ImageNet-1k", "licence": "BSD-3-Clause"}}}))
    pairs = {"mobilenet_v2_multitask_cpu": "mobilenet_v2_scratch_cpu",
             "dlib_resnet_multitask_cpu": "dlib_resnet_scratch_cpu"}
    table = pretraining_table(tmp_path, pairs, ensembles=("absent",)).set_index("run")
    assert list(table.index) == ["mobilenet_v2_scratch_cpu", "mobilenet_v2_multitask_cpu"]  # control first
    row = table.loc["mobilenet_v2_multitask_cpu"]
    assert row["initialisation"] == "ImageNet"
    assert row["pretrained on (licence)"] == "ImageNet-1k (BSD-3-Clause)"
    assert table.loc["mobilenet_v2_scratch_cpu", "pretrained on (licence)"] == "-"
    assert row["age_MAE"].startswith(f"{metrics['age_mae']:.2f} [")
    assert row["params_M"] == 2.38 and row["GFLOPs_per_face"] == 0.23 and row["train_minutes"] == 10.0
    control = table.loc["mobilenet_v2_scratch_cpu"]
    assert control["GFLOPs_per_face"] == 0.41 and control["params_M"] == 2.38


def test_a_continued_run_states_the_epochs_and_minutes_of_its_whole_lineage(tmp_path):
    """A run that starts from another's release (model.init_from) adds that run's epochs and training
    time (recursively) to its own in the pretraining table."""
    from research.report.tables import pretraining_table

    results = tmp_path / "results"
    runs = ("dlib_resnet_robust_cpu", "dlib_resnet_continued_cpu", "dlib_resnet_continued2_cpu")
    base = {"protocol": "utkface", "profile": "cpu", "image_size": 112, "device_kind": "cpu",
            "num_devices": 1}
    model = {"name": "dlib_resnet", "init": "face"}
    write_run(results / "runs" / runs[0], {**base, "name": runs[0], "epochs": 6, "wall_time_s": 600.0,
                                           "config": {"model": model}}, seed=0)
    for parent, name in zip(runs, runs[1:], strict=False):
        release = results / "models" / parent
        release.mkdir(parents=True)
        (release / "metadata.json").write_text(json.dumps({"source_run": {"path": f"results/runs/{parent}"}}))
        continued = {**model, "init_from": f"results/models/{parent}"}
        write_run(results / "runs" / name, {**base, "name": name, "epochs": 4, "wall_time_s": 300.0,
                                             "config": {"model": continued}}, seed=1)
    table = pretraining_table(results, {}, ensembles=(), recipes=dict.fromkeys(runs, "")).set_index("run")
    assert list(table["epochs"]) == [6, 10, 14]
    assert list(table["train_minutes"]) == [10.0, 15.0, 20.0]
