"""Evaluation metrics against hand-computed values, and scripts/evaluate.py on the tiny run:
its predictions files and a metrics_test.json that the predictions alone reproduce."""

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _tiny_run import EVAL_RESAMPLES, EVAL_SEED, evaluated_run

from research.evaluation.metrics import (
    BOOTSTRAP_METRICS,
    age_metrics,
    binary_auc,
    bootstrap_intervals,
    challenge_rates,
    confusion,
    ethnicity_metrics,
    evaluate_predictions,
    f1_score,
    gender_metrics,
    headline_metrics,
    operating_threshold,
)
from research.runs.folder import PREDICTION_COLUMNS, read_predictions


def test_age_metrics_by_hand():
    got = age_metrics(np.array([10.0, 20.0, 30.0, 40.0]), np.array([12.0, 20.0, 25.0, 41.0]))
    # errors +2, 0, -5, +1
    assert got == pytest.approx({"age_mae": 2.0, "age_rmse": np.sqrt(30 / 4), "age_median_ae": 1.5,
                                 "age_mean_signed_error": -0.5, "age_cs1": 0.5, "age_cs3": 0.75,
                                 "age_cs5": 1.0, "age_cs10": 1.0})


def brute_force_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counting one half."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_gender_metrics_by_hand():
    true = np.array([1, 1, 1, 0, 0, 0, 1, 0])
    pred = np.array([1, 1, 0, 0, 1, 0, 1, 0])
    p_female = np.array([0.9, 0.8, 0.4, 0.1, 0.6, 0.4, 0.7, 0.2])  # a tie at 0.4 across classes
    got = gender_metrics(true, pred, p_female)
    # female positive: tp 3, fp 1, fn 1 -> F1 = 6 / 8
    assert got["gender_accuracy"] == pytest.approx(6 / 8)
    assert got["gender_f1"] == pytest.approx(0.75)
    # pairs (pos, neg): 16; lost: 0.4 vs 0.6 (1), tied: 0.4 vs 0.4 (0.5) -> 14.5 / 16
    assert got["gender_auc"] == pytest.approx(14.5 / 16)
    assert brute_force_auc(true, p_female) == pytest.approx(14.5 / 16)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_matches_brute_force_with_ties(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 60)
    scores = np.round(rng.random(60) * 0.5 + 0.3 * labels, 1)  # coarse scores: many ties
    assert binary_auc(labels, scores) == pytest.approx(brute_force_auc(labels, scores), abs=1e-12)
    assert binary_auc(labels, scores) == pytest.approx(1 - binary_auc(1 - labels, scores), abs=1e-12)
    assert np.isnan(binary_auc(np.ones(5, int), scores[:5]))


def test_f1_of_an_absent_class_is_nan():
    assert np.isnan(f1_score(np.array([0, 0]), np.array([0, 0]), positive=1))
    assert f1_score(np.array([0, 1]), np.array([1, 0]), positive=1) == 0.0


def test_ethnicity_metrics_ignore_missing_labels():
    true = np.array([0, 1, 2, -1, 4, -1, 3])
    pred = np.array([0, 1, 1, 3, 4, 0, 3])
    got = ethnicity_metrics(true, pred)
    assert got["ethnicity_accuracy"] == pytest.approx(4 / 5)
    # per-class F1: 1, 2/3 (one false positive), 0 (missed), 1, 1; the -1 rows add no false positives
    assert got["ethnicity_macro_f1"] == pytest.approx((1 + 2 / 3 + 0 + 1 + 1) / 5)
    expected = np.zeros((5, 5), int)
    for t, p in [(0, 0), (1, 1), (2, 1), (4, 4), (3, 3)]:
        expected[t, p] += 1
    assert got["ethnicity_confusion"] == expected.tolist()


def test_confusion_rows_are_true_classes():
    matrix = confusion(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 2]), 3)
    np.testing.assert_array_equal(matrix, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    assert matrix.sum() == 6


def test_challenge_rates_by_hand():
    true = np.array([14, 15, 16, 17, 12, 18, 20, 24, 25, 30, 60])
    pred = np.array([20, 25, 24.9, 19, 40, 22, 26, 24, 25, 24.5, 50])
    got = challenge_rates(true, pred, 25)
    # 13-17: only the 15-year-old estimated at 25 (>= threshold) passes; the 12-year-old counts nowhere
    assert got["fpr_13_17"] == pytest.approx(1 / 4)
    assert got["friction_18_24"] == pytest.approx(2 / 3)  # 18 and 24 are asked for ID, 20 is not
    assert got["friction_25plus"] == pytest.approx(1 / 3)  # only the 30-year-old at 24.5
    empty = challenge_rates(np.array([30.0, 40.0]), np.array([20.0, 50.0]), 25)
    assert np.isnan(empty["fpr_13_17"]) and np.isnan(empty["friction_18_24"])
    assert empty["friction_25plus"] == 0.5


def random_predictions(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(1, 90, n)
    race = rng.integers(-1, 5, n)
    gender = rng.integers(0, 2, n)
    p_female = np.clip(0.5 + 0.4 * (2 * gender - 1) + rng.normal(0, 0.3, n), 0, 1)
    return pd.DataFrame({"file": [f"{i}.jpg" for i in range(n)], "age": age, "gender": gender, "race": race,
                         "pred_age": age + rng.normal(0, 6, n), "age_std": 5.0,
                         "pred_gender": (p_female > 0.5).astype(int), "p_female": p_female,
                         "pred_race": np.where(rng.random(n) < 0.7, np.maximum(race, 0),
                                               rng.integers(0, 5, n))})


def test_headline_metrics_collects_every_point_metric():
    frame = random_predictions(120, seed=0)
    got = headline_metrics(frame)
    assert got["n"] == 120
    assert got["age_mae"] == pytest.approx(np.abs(frame.pred_age - frame.age).mean())
    known = frame.race >= 0
    assert got["ethnicity_accuracy"] == pytest.approx((frame.race == frame.pred_race)[known].mean())
    rates = challenge_rates(frame.age.to_numpy(float), frame.pred_age.to_numpy(float), 21)
    assert got["challenge21_fpr_13_17"] == rates["fpr_13_17"]
    assert set(BOOTSTRAP_METRICS) <= set(got)
    minors = frame.age.between(13, 17)
    assert got["age_mean_signed_error_by_group"]["13-17"] == pytest.approx(
        (frame.pred_age - frame.age)[minors].mean())


def test_bootstrap_intervals_are_seeded_and_bracket_the_point_estimate():
    frame = random_predictions(200, seed=1)
    first = bootstrap_intervals(frame, resamples=300, seed=7)
    assert first == bootstrap_intervals(frame, resamples=300, seed=7)
    other = bootstrap_intervals(frame, resamples=300, seed=8)
    assert set(first) == set(other) == set(BOOTSTRAP_METRICS)
    assert first["age_mae"] != other["age_mae"] and first["age_rmse"] != other["age_rmse"]
    point = headline_metrics(frame)
    for name, (low, high) in first.items():
        assert low <= point[name] <= high, name
    assert first["age_mae"][0] < first["age_mae"][1]


def validation_frame(minor_preds: list[float]) -> pd.DataFrame:
    minors = [14, 15, 16, 17][: len(minor_preds)]
    return pd.DataFrame({"age": [*minors, 30, 40], "pred_age": [*minor_preds, 20.0, 44.0]})


def test_operating_threshold_picks_the_lowest_threshold_meeting_the_target():
    val = validation_frame([16.0, 19.0, 22.0, 30.0])
    # pass rate at t: 18 -> 3/4, 19 -> 3/4, 19.5 -> 2/4, 22.5 -> 1/4, 30.5 -> 0
    assert operating_threshold(val, 0.25) == (22.5, True)
    assert operating_threshold(val, 0.5) == (19.5, True)
    assert operating_threshold(val, 0.0) == (30.5, True)
    assert operating_threshold(val, 1.0) == (18.0, True)
    assert operating_threshold(val, 0.25, candidates=np.array([20.0, 25.0, 40.0])) == (25.0, True)


def test_operating_threshold_reports_a_target_out_of_reach():
    val = validation_frame([16.0, 50.0])  # a 15-year-old estimated above every candidate
    assert operating_threshold(val, 0.0) == (45.0, False)
    assert operating_threshold(val, 0.5) == (18.0, True)


def test_no_operating_point_without_minors_in_validation():
    test = random_predictions(50, seed=2)
    val = test[~test.age.between(13, 17)]
    got = evaluate_predictions(test, val, resamples=20, seed=0, max_minor_pass_rate=0.05)
    assert "operating_point" not in got and got["bootstrap"]["resamples"] == 20
    got = evaluate_predictions(test, test, resamples=20, seed=0, max_minor_pass_rate=0.05)
    assert got["operating_point"]["chosen_on"] == "validation"


def test_read_predictions_rejects_other_tables(tmp_path):
    path = tmp_path / "predictions_test.csv"
    random_predictions(5, seed=3).drop(columns=["p_female"]).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"not a predictions file: columns \['p_female', 'p_race0'"):
        read_predictions(path)


# --- scripts/evaluate.py on the tiny end-to-end run ---------------------------------------------

@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, utk_writer) -> Path:
    return evaluated_run(tmp_path_factory.getbasetemp() / "tiny_run", utk_writer)


def test_evaluate_writes_predictions_with_documented_columns(evaluated):
    split = pd.read_csv(evaluated.parent / "splits" / "utkface.csv", keep_default_na=False)
    for name in ("val", "test"):
        frame = read_predictions(evaluated / f"predictions_{name}.csv")
        assert list(frame.columns) == PREDICTION_COLUMNS
        rows = split[split.split == name].reset_index(drop=True)
        assert frame["file"].tolist() == rows["file"].tolist()
        labels = ["age", "gender", "race"]
        assert (frame[labels].to_numpy() == rows[labels].to_numpy()).all()
        assert frame["pred_age"].between(0, 116).all() and (frame["age_std"] >= 0).all()
        assert frame["p_female"].between(0, 1).all() and frame["pred_gender"].isin([0, 1]).all()
        p_race = frame[[f"p_race{i}" for i in range(5)]].to_numpy()
        np.testing.assert_allclose(p_race.sum(axis=1), 1.0, atol=1e-4)
        assert (frame["pred_race"] == p_race.argmax(axis=1)).all()
    assert (read_predictions(evaluated / "predictions_test.csv")["race"] == -1).sum() == 2


def test_metrics_file_is_reproduced_from_the_predictions_files(evaluated):
    written = json.loads((evaluated / "metrics_test.json").read_text())
    provenance = written.pop("provenance")
    test = read_predictions(evaluated / "predictions_test.csv")
    val = read_predictions(evaluated / "predictions_val.csv")
    recomputed = json.loads(json.dumps(evaluate_predictions(test, val, EVAL_RESAMPLES, EVAL_SEED, 0.05)))
    np.testing.assert_equal(written, recomputed)  # NaN-aware, exact
    assert written["n"] == 8 and written["bootstrap"]["seed"] == EVAL_SEED
    assert written["operating_point"]["chosen_on"] == "validation"  # val holds a 15-year-old
    known = test.race >= 0
    assert written["ethnicity_accuracy"] == pytest.approx((test.race == test.pred_race)[known].mean())
    summary = json.loads((evaluated / "summary.json").read_text())
    assert provenance["data_sha256"] == summary["provenance"]["data_sha256"]
    # The predictions come from the best checkpoint: their validation MAE is the one training logged.
    val_mae = np.abs(val.pred_age - val.age).mean()
    assert val_mae == pytest.approx(summary["best_val"]["age_mae"], abs=1e-3)


def test_interval_operating_point_picks_the_smallest_z_on_validation():
    from research.evaluation.metrics import interval_operating_point

    # Minors estimated at 26 with sd 2 pass at z = 0 and are stopped once 26 - 2z < 25 (z > 0.5).
    val = pd.DataFrame({"age": [15, 16, 30, 40], "pred_age": [26.0, 26.0, 30.0, 40.0],
                        "age_std": [2.0, 2.0, 2.0, 2.0]})
    test = pd.DataFrame({"age": [15, 30], "pred_age": [27.0, 28.0], "age_std": [1.0, 4.0]})
    got = interval_operating_point(val, test, max_minor_pass_rate=0.0)
    assert got["z"] == pytest.approx(0.55) and got["target_reached_on_validation"]
    assert got["validation"]["fpr_13_17"] == 0.0 and got["validation"]["friction_25plus"] == 0.0
    # test: the minor (27 - 0.55) passes; the adult's interval (28 - 2.2) stays above 25
    assert got["test"]["fpr_13_17"] == 1.0 and got["test"]["friction_25plus"] == 0.0
    assert interval_operating_point(val.assign(age_std=np.nan), test, 0.05) is None
    assert not interval_operating_point(val, test, 0.0, zs=[0.0, 0.5])["target_reached_on_validation"]
