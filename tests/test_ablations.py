"""Ablation declarations and the table built from finished run folders."""

import json

import numpy as np
import pytest

from research.configs import load_config
from research.configs.ablations import STUDIES
from research.configs.experiments import RUNS
from research.configs.overrides import apply_overrides
from research.evaluation.ablations import ablation_table, collect_runs, plot_ablations, run_dir

declared = STUDIES["cnn"]


@pytest.mark.parametrize("study", list(STUDIES))
def test_every_arm_applies_to_the_base_config_and_keeps_the_shared_profile(study):
    declared = STUDIES[study]
    names = set()
    for arm in declared.arms:
        for seed in declared.seeds:
            base = load_config(declared.base_config, declared.base_profile)
            config = apply_overrides(base, declared.arm_overrides(arm, seed))
            assert config.seed == seed and config.name == f"{declared.run_prefix}_{arm}_seed{seed}"
            assert config.optimizer.num_epochs == declared.profile["optimizer.num_epochs"]
            names.add(config.name)
    assert len(names) == len(declared.arms) * len(declared.seeds)
    assert "full" in declared.arms and declared.arms["full"][1] == {}
    with pytest.raises(ValueError, match="unknown ablation arm"):
        declared.arm_overrides("nope", 0)


def test_cnn_arms_that_switch_heads_off_are_known():
    assert declared.disabled_heads("age_only") == {"gender", "race"}
    assert declared.disabled_heads("age_gender") == {"race"}
    assert declared.disabled_heads("full") == set()


def test_the_pretrained_study_is_its_reference_run_on_a_shorter_schedule():
    study = STUDIES["pretrained"]
    reference = RUNS[study.reference_run]
    full = study.arm_overrides("full", 0)
    # every setting of the registered run but the schedule's length (and the device count)
    for key, value in reference.overrides:
        assert key == "optimizer.num_epochs" or full[key] == value, key
    assert full["optimizer.num_epochs"] < dict(reference.overrides)["optimizer.num_epochs"]
    assert study.init_from == reference.init_from
    # the augmentation arm switches off exactly the robust augmentations
    off = study.arms["no_robust_augment"][1]
    assert off and all(key.startswith("augment.") and value == 0.0 for key, value in off.items())


def fake_summary(root, arm, seed, mae):
    folder = run_dir(root, arm, seed)
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps({
        "epochs": 4, "image_size": 64, "wall_time_s": 600.0, "train_seconds_all_epochs": 660.0,
        "device_kind": "cpu", "num_devices": 1,
        "provenance": {"git_commit": "abc"},
        "final_val": {"age_mae": mae, "gender_accuracy": 0.9, "ethnicity_accuracy": 0.8},
        "best_val": {"age_mae": mae - 1, "gender_accuracy": 0.0, "ethnicity_accuracy": 0.0}}))


def test_table_takes_last_epoch_metrics_mean_and_spread_over_seeds(tmp_path):
    fake_summary(tmp_path, "full", 0, 6.0)
    fake_summary(tmp_path, "full", 1, 7.0)
    fake_summary(tmp_path, "age_only", 0, 6.5)  # seed 1 unfinished: left out
    runs = collect_runs(tmp_path, declared.arms, declared.seeds, declared.disabled_heads)
    assert len(runs) == 3
    table = ablation_table(runs, declared.arms, declared.overrides_of).set_index("arm")
    assert table.loc["full", "val_age_mae_mean"] == pytest.approx(6.5)
    assert table.loc["full", "val_age_mae_std"] == pytest.approx(np.std([6.0, 7.0], ddof=1))
    assert table.loc["full", "val_gender_accuracy_mean"] == pytest.approx(0.9)
    assert table.loc["age_only", "n_seeds"] == 1 and np.isnan(table.loc["age_only", "val_age_mae_std"])
    # heads switched off report no accuracy rather than a chance-level number
    assert np.isnan(table.loc["age_only", "val_gender_accuracy_mean"])
    assert "loss.weights.gender=0.0" in table.loc["age_only", "overrides"]
    assert table.loc["full", "train_minutes_mean"] == pytest.approx(11.0)  # resumed: all epochs count
    plot_ablations(table.reset_index(), runs, tmp_path / "ablations.png")
    assert (tmp_path / "ablations.png").stat().st_size > 10_000
