"""Per-group breakdowns, Challenge-N by group and figures, on small hand-made prediction tables."""

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from research.data.labels import parse_filename
from research.evaluation import bootstrap, breakdowns, figures
from research.evaluation.metrics import bootstrap_intervals
from research.runs.folder import PREDICTION_COLUMNS


def predictions(rows: list[tuple]) -> pd.DataFrame:
    """A predictions table from (age, gender, race, pred_age, pred_gender, pred_race) tuples."""
    frame = pd.DataFrame(rows, columns=["age", "gender", "race", "pred_age", "pred_gender", "pred_race"])
    labels = zip(frame["age"], frame["gender"], frame["race"], strict=True)
    frame["file"] = [f"{a}_{g}_{r}_{20170116174525125 + i}.jpg.chip.jpg"
                     for i, (a, g, r) in enumerate(labels)]
    frame["age_std"] = 1.0
    frame["p_female"] = frame["pred_gender"].astype(float)
    for i in range(5):
        frame[f"p_race{i}"] = (frame["pred_race"] == i).astype(float)
    return frame[PREDICTION_COLUMNS]


# Errors chosen so each group's MAE is easy by hand. race -1 (last row) has no ethnicity.
HAND = predictions([
    (5, 0, 0, 7.0, 0, 0),     # 0-12  male   White  error +2
    (10, 1, 1, 6.0, 0, 1),    # 0-12  female Black  error -4, gender wrong
    (15, 0, 0, 26.0, 0, 2),   # 13-17 male   White  error +11, race wrong
    (30, 1, 2, 30.0, 1, 2),   # 25-34 female Asian  error 0
    (30, 0, 1, 33.0, 0, 1),   # 25-34 male   Black  error +3
    (70, 1, -1, 60.0, 1, 3),  # 60+   female (missing race)  error -10
])


def table_of(frame: pd.DataFrame, resamples: int = 200, seed: int = 0) -> pd.DataFrame:
    return breakdowns.by_group(frame, breakdowns.group_mae_draws(frame, resamples, seed))


def row(table: pd.DataFrame, group_type: str, group: str) -> pd.Series:
    match = table[(table["group_type"] == group_type) & (table["group"] == group)]
    assert len(match) == 1, (group_type, group)
    return match.iloc[0]


def test_by_group_values_match_hand_computation():
    table = table_of(HAND)
    assert list(table.columns) == breakdowns.BY_GROUP_COLUMNS
    expected_mae = {("overall", "all"): 30 / 6, ("age_group", "0-12"): 3.0, ("age_group", "13-17"): 11.0,
                    ("age_group", "25-34"): 1.5, ("age_group", "60+"): 10.0, ("gender", "male"): 16 / 3,
                    ("gender", "female"): 14 / 3, ("ethnicity", "White"): 6.5, ("ethnicity", "Black"): 3.5,
                    ("ethnicity", "Asian"): 0.0, ("ethnicity_x_gender", "Black female"): 4.0}
    for key, mae in expected_mae.items():
        assert row(table, *key)["age_mae"] == pytest.approx(mae)
    assert row(table, "age_group", "0-12")["mean_signed_error"] == pytest.approx(-1.0)
    assert row(table, "gender", "female")["gender_accuracy"] == pytest.approx(2 / 3)
    # race -1 counts for gender and age but never for ethnicity
    assert row(table, "gender", "female")["ethnicity_accuracy"] == pytest.approx(1.0)
    assert row(table, "overall", "all")["ethnicity_accuracy"] == pytest.approx(4 / 5)
    assert table[table["group_type"] == "ethnicity"]["n"].sum() == 5
    # empty groups (no 18-24, no Indian) are left out; order follows AGE_GROUPS
    groups = table[table["group_type"] == "age_group"]["group"].tolist()
    assert groups == ["0-12", "13-17", "25-34", "60+"]
    assert "Indian" not in table["group"].tolist()


def test_bootstrap_is_seeded_vectorised_and_brackets_the_estimate(monkeypatch):
    rng = np.random.default_rng(1)
    frame = predictions([(int(a), int(a) % 2, int(a) % 5, float(a + e), 0, 0)
                         for a, e in zip(rng.integers(1, 90, 300), rng.normal(0, 6, 300), strict=True)])
    first, again, other = table_of(frame, 1000, 0), table_of(frame, 1000, 0), table_of(frame, 1000, 1)
    pd.testing.assert_frame_equal(first, again)
    assert not np.allclose(first["age_mae_low"], other["age_mae_low"])
    assert (first["age_mae_low"] <= first["age_mae"]).all()
    assert (first["age_mae"] <= first["age_mae_high"]).all()
    assert (first["age_mae_high"] > first["age_mae_low"]).all()
    # the overall interval reproduces metrics.bootstrap_intervals (the interval in metrics_test.json)
    overall = row(first, "overall", "all")
    reference = bootstrap_intervals(frame, 1000, 0, names=("age_mae",))["age_mae"]
    assert [overall["age_mae_low"], overall["age_mae_high"]] == pytest.approx(reference)
    # blocked draws equal a plain resample-by-resample loop
    values = np.abs(frame["pred_age"] - frame["age"]).to_numpy()
    naive_rng = np.random.default_rng(7)
    naive = [values[naive_rng.integers(0, 300, 300)].mean() for _ in range(50)]
    monkeypatch.setattr(bootstrap, "_BLOCK", 900)  # three resamples per block
    assert bootstrap.bootstrap_means(values, 50, np.random.default_rng(7)) == pytest.approx(naive)


def test_constant_error_gives_a_zero_width_interval():
    frame = predictions([(a, 0, 0, a + 2.0, 0, 0) for a in range(20, 40)])
    overall = row(table_of(frame), "overall", "all")
    assert overall["age_mae_low"] == overall["age_mae_high"] == pytest.approx(2.0)


def test_fairness_gaps_worst_best_gap_and_ratio():
    rows = [(30, 0, 0, 34.0, 0, 0)] * 25 + [(30, 0, 1, 31.0, 0, 1)] * 25 + [(30, 0, 2, 60.0, 0, 2)] * 5
    frame = predictions(rows)
    draws = breakdowns.group_mae_draws(frame, 300, 0)
    gaps = breakdowns.fairness_gaps(breakdowns.by_group(frame, draws), draws, min_n=20)
    ethnicity = gaps.set_index("group_type").loc["ethnicity"]
    # Asian (5 images, MAE 30) is below min_n: White (4) vs Black (1)
    assert (ethnicity["worst_group"], ethnicity["best_group"]) == ("White", "Black")
    assert ethnicity["mae_gap"] == pytest.approx(3.0) and ethnicity["mae_ratio"] == pytest.approx(4.0)
    assert ethnicity["mae_gap_low"] == pytest.approx(3.0) and bool(ethnicity["intervals_separate"])
    assert "gender" not in gaps["group_type"].tolist()  # one gender only: no gap to report


def test_challenge_rates_by_group_by_hand():
    rows = [(13, 0, 0, 26.0, 0, 0), (15, 0, 0, 20.0, 0, 0), (16, 1, 1, 25.0, 1, 1), (17, 1, 1, 18.0, 1, 1),
            (20, 0, 0, 24.0, 0, 0), (22, 1, 1, 27.0, 1, 1), (30, 0, 0, 24.9, 0, 0), (40, 1, 1, 41.0, 1, 1)]
    table = breakdowns.challenge_by_group(predictions(rows), thresholds=(25,))
    c25 = table.set_index("group")
    assert c25.loc["all", "n_13_17"] == 4 and c25.loc["all", "fpr_13_17"] == pytest.approx(0.5)  # 26 and 25
    assert c25.loc["male", "fpr_13_17"] == pytest.approx(0.5) and c25.loc["female", "fpr_13_17"] == 0.5
    assert c25.loc["all", "friction_18_24"] == pytest.approx(0.5)
    assert c25.loc["all", "friction_25plus"] == pytest.approx(0.5)  # 24.9 asked, 41 not
    assert c25.loc["White", "friction_25plus"] == 1.0 and c25.loc["Black", "friction_25plus"] == 0.0
    assert (c25["fpr_13_17_low"] <= c25["fpr_13_17"]).all()
    assert (c25["fpr_13_17"] <= c25["fpr_13_17_high"]).all()
    assert set(c25.index) == {"all", "male", "female", "White", "Black"}


def test_wilson_interval_known_values():
    assert breakdowns.wilson_interval(0, 10) == pytest.approx((0.0, 3.8415 / 13.8415), abs=1e-4)
    low, high = breakdowns.wilson_interval(5, 10)
    assert (low + high) / 2 == pytest.approx(0.5) and low == pytest.approx(0.2366, abs=1e-4)
    assert np.isnan(breakdowns.wilson_interval(0, 0)).all()


def test_sweep_is_monotone_and_exact_at_a_threshold():
    sweep = breakdowns.challenge_sweep(HAND)
    assert sweep["threshold"].iloc[0] == 10 and sweep["threshold"].iloc[-1] == 45 and len(sweep) == 71
    assert sweep["fpr_13_17"].is_monotonic_decreasing and sweep["friction_25plus"].is_monotonic_increasing
    at_26 = sweep.set_index("threshold").loc[26.0]
    assert at_26["fpr_13_17"] == 1.0 and at_26["friction_25plus"] == pytest.approx(0.0)
    assert sweep.set_index("threshold").loc[26.5, "fpr_13_17"] == 0.0


def write_run(run, frame: pd.DataFrame, protocol: str, operating_point: dict | None = None):
    run.mkdir(parents=True)
    frame.to_csv(run / "predictions_test.csv", index=False)
    frame.to_csv(run / "predictions_val.csv", index=False)
    metrics = {"operating_point": operating_point} if operating_point else {}
    (run / "metrics_test.json").write_text(json.dumps(metrics))
    run_summary = {"protocol": protocol, "provenance": {"data_sha256": "abc"}}
    (run / "summary.json").write_text(json.dumps(run_summary))
    return run


def test_analyse_run_writes_tables_figures_and_faces(tmp_path, utk_folder):
    files = sorted(p.name for p in utk_folder.iterdir())
    rows = []
    for i, name in enumerate(files):
        labels = parse_filename(name)
        rows.append((labels.age, labels.gender, labels.race, labels.age + (i % 7) - 3.0, labels.gender,
                     labels.race if i % 4 else (labels.race + 1) % 5))
    frame = predictions(rows).assign(file=files)
    point = {"threshold": 30.0, "max_minor_pass_rate": 0.05}
    run = write_run(tmp_path / "runs" / "tiny", frame, "utkface", point)
    summary = breakdowns.analyse_run(run, tmp_path / "out", resamples=100, seed=0, data=utk_folder)
    out = tmp_path / "out"
    for name in summary["tables"] + summary["figures"] + ["summary.json"]:
        assert (out / name).is_file(), name
    assert set(summary["figures"]) == {"mae_by_group.png", "pred_vs_true.png", "error_by_age.png",
                                       "confusion.png", "challenge_sweep.png", "challenge_by_group.png",
                                       "faces_grid.png"}
    for name in summary["figures"]:
        with Image.open(out / name) as image:
            assert image.format == "PNG" and min(image.size) > 200
    sha = hashlib.sha256((run / "predictions_test.csv").read_bytes()).hexdigest()
    assert summary["inputs"]["predictions_test.csv"]["sha256"] == sha
    assert summary["provenance"]["data_sha256"] == "abc" and not summary["age_verification"]["skipped"]
    assert summary["age_verification"]["operating_point"] == point
    sweep = pd.read_csv(out / "challenge_sweep.csv")
    assert set(sweep["split"]) == {"test", "val"}
    assert pd.read_csv(out / "by_group.csv")["n"].iloc[0] == len(files)


def test_coral_like_run_without_minors_skips_age_verification(tmp_path):
    frame = predictions([(a, a % 2, a % 5, a + 1.5, a % 2, a % 5) for a in range(21, 61)])
    run = write_run(tmp_path / "coral", frame, "coral")
    summary = breakdowns.analyse_run(run, tmp_path / "out", resamples=100, seed=0, data=None)
    verification = summary["age_verification"]
    assert verification["skipped"] and "coral" in verification["reason"]
    assert "challenge25" not in summary
    assert not (tmp_path / "out" / "challenge_by_group.csv").exists()
    assert not (tmp_path / "out" / "challenge_sweep.png").exists()
    assert "faces_grid.png" not in summary["figures"]
    groups = pd.read_csv(tmp_path / "out" / "by_group.csv")
    assert not {"0-12", "13-17"} & set(groups["group"])
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["age_verification"]["skipped"]


def test_face_selection_orders_best_and_worst():
    frame = predictions([(a, 0, 0, a + d, 0, 0) for a, d in
                         [(5, 0.1), (15, -9.0), (20, 2.0), (30, 0.0), (40, 30.0), (70, -1.0)]])
    chosen = figures.select_faces(frame, seed=0, extremes=2, per_group=1)
    assert chosen["best"]["age"].tolist() == [30, 5]
    assert chosen["worst"]["age"].tolist() == [40, 15]
    assert list(chosen["age_group"]) == ["0-12", "13-17", "18-24", "25-34", "35-44", "60+"]
