"""Calibrated age intervals (research.evaluation.calibration, research.models.age_interval):
conformal quantiles by hand, coverage near the level on synthetic data, the interval function the
prediction command will read, the method choice and the written files."""

import json

import numpy as np
import pandas as pd
import pytest

from research.evaluation import calibration
from research.models.age_interval import calibrated_interval
from research.vocabulary import describe_calibration


def synthetic(n: int, seed: int) -> pd.DataFrame:
    """Estimates over 0-80 with errors whose spread grows with the estimate; sd a noisy guess of it."""
    rng = np.random.default_rng(seed)
    est = rng.uniform(0, 80, n)
    spread = 1 + est / 10
    age = np.clip(np.round(est + rng.normal(0, spread)), 1, 116).astype(int)  # labels are whole years
    return pd.DataFrame({"age": age, "pred_age": est,
                         "age_std": spread * rng.uniform(0.7, 1.3, n), "gender": rng.integers(0, 2, n),
                         "race": rng.integers(0, 5, n)})


def test_conformal_quantile_is_the_finite_sample_rank():
    scores = np.arange(1.0, 10.0)  # 9 scores
    assert calibration.conformal_quantile(scores, 0.8) == 8.0  # ceil(10 x 0.8) = 8th smallest
    assert calibration.conformal_quantile(scores, 0.95) == 9.0  # rank 10 > 9: the largest
    assert calibration.estimate_edges(np.arange(100.0), 25) == [24.75, 49.5, 74.25]


def test_calibrated_interval_reads_the_band_of_the_estimate():
    cal = {"method": "absolute", "edges": [10.0, 20.0], "quantiles": {"0.9": [1.0, 2.0, 3.0]}}
    low, high = calibrated_interval([5.0, 15.0, 25.0, 0.5], [9, 9, 9, 9], 0.9, cal)
    np.testing.assert_allclose(low, [4.0, 13.0, 22.0, 0.0])  # never below 0
    np.testing.assert_allclose(high, [6.0, 17.0, 28.0, 1.5])
    low, high = calibrated_interval([15.0], [2.0], 0.9, {**cal, "method": "normalised"})
    assert (low[0], high[0]) == (11.0, 19.0)
    with pytest.raises(ValueError, match="no calibrated 0.8 interval"):
        calibrated_interval([15.0], [2.0], 0.8, cal)


@pytest.mark.parametrize("method", ("absolute", "normalised"))
def test_conformal_coverage_on_synthetic_data_is_near_the_level(method):
    val, test = synthetic(6000, 0), synthetic(30000, 1)
    cal = calibration.calibrate(val, method, min_per_band=300)
    assert len(cal["edges"]) == 19 and sum(cal["n_per_band"]) == 6000
    table = calibration.coverage_table(test, {method: cal})
    ours = table[(table["method"] == method) & (table["group_type"] == "overall")].set_index("level")
    for level in calibration.LEVELS:
        assert ours.loc[level, "coverage"] == pytest.approx(level, abs=0.015)
    # within bands of the estimate too (exchangeable within each band)
    low, high = calibrated_interval(test["pred_age"], test["age_std"], 0.9, cal)
    covered = (test["age"] >= low) & (test["age"] <= high)
    by_band = covered.groupby(np.searchsorted(cal["edges"], test["pred_age"], side="right")).mean()
    assert by_band.between(0.85, 0.95).all()
    # the uncalibrated comparison (estimate +- normal quantile x sd) is scored beside it
    uncal = table[(table["method"] == "uncalibrated") & (table["group_type"] == "overall")]
    assert len(uncal) == len(calibration.LEVELS)


def shrunk(n: int, seed: int) -> pd.DataFrame:
    """True ages over 0-80 whose estimates are pulled towards 35 (the young estimated too old, the
    old too young), with noise growing with age: what a real age model does."""
    rng = np.random.default_rng(seed)
    age = rng.integers(0, 81, n)
    est = 35 + 0.7 * (age - 35) + rng.normal(0, 2 + age / 10)
    return pd.DataFrame({"age": age, "pred_age": est, "age_std": np.full(n, 5.0),
                         "gender": rng.integers(0, 2, n), "race": rng.integers(0, 5, n)})


def test_inverted_interval_is_every_true_age_whose_range_holds_the_estimate():
    cal = {"method": "inverted", "true_ages": [10, 11, 12, 13],
           "quantiles": {"0.9": {"low": [12.0, 13.0, 15.0, 16.0], "high": [18.0, 19.0, 21.0, 22.0]}}}
    low, high = calibrated_interval([18.5, 15.0], [1, 1], 0.9, cal)
    # 18.5: high(a) >= 18.5 from a = 11; low(a) <= 18.5 up to a = 13
    np.testing.assert_array_equal(low, [11, 10])
    np.testing.assert_array_equal(high, [13, 12])
    # beyond the range of the estimates (above high(13), below low(10)): the interval of the nearest
    # end, every age whose range reaches it, not one end age alone
    ends = {**cal, "quantiles": {"0.9": {"low": [12.0, 12.0, 15.0, 16.0], "high": [18.0, 19.0, 22.0, 22.0]}}}
    low, high = calibrated_interval([30.0, 5.0], [1, 1], 0.9, ends)
    np.testing.assert_array_equal(low, [12, 10])
    np.testing.assert_array_equal(high, [13, 11])
    with pytest.raises(ValueError, match="no calibrated 0.8 interval"):
        calibrated_interval([15.0], [2.0], 0.8, cal)


def test_inverted_coverage_holds_at_every_true_age_where_conformal_misses_the_ends():
    val, test = shrunk(8000, 0), shrunk(30000, 1)
    groups = test["age"].map(lambda a: min(a // 10, 7))
    by_method = {}
    for method in ("absolute", "inverted"):
        cal = calibration.calibrate(val, method)
        low, high = calibrated_interval(test["pred_age"], test["age_std"], 0.9, cal)
        by_method[method] = ((test["age"] >= low) & (test["age"] <= high)).groupby(groups).mean()
    assert by_method["inverted"].between(0.86, 0.95).all(), by_method["inverted"]
    assert by_method["absolute"].min() < 0.8  # the shrunk ends fall out of bands of the estimate
    cal = calibration.calibrate(val, "inverted")
    lows = np.asarray(cal["quantiles"]["0.9"]["low"])
    assert (np.diff(lows) >= 0).all() and cal["neighbours"] == calibration.NEIGHBOURS


def test_the_out_of_fold_choice_takes_the_interval_that_covers_every_age_group():
    table = calibration.out_of_fold_coverage(shrunk(4000, 2))
    assert set(table["method"]) == set(calibration.METHODS)
    worst = table[table["group_type"] == "age_group"].groupby("method")["coverage"].min()
    assert worst["inverted"] >= calibration.MIN_BAND_COVERAGE > worst["absolute"]
    assert calibration.choose_method(table) == "inverted"


def test_method_choice_prefers_the_narrowest_that_covers_every_age_group():
    rows = []
    for method, worst, width in (("absolute", 0.86, 20.0), ("normalised", 0.84, 18.0)):
        rows += [{"method": method, "level": 0.9, "group_type": "overall", "group": "all", "coverage": 0.9,
                  "mean_width": width},
                 {"method": method, "level": 0.9, "group_type": "age_group", "group": "13-17",
                  "coverage": worst, "mean_width": width}]
    table = pd.DataFrame(rows)
    assert calibration.choose_method(table) == "absolute"  # normalised is narrower but misses 0.85
    table.loc[table["method"] == "absolute", "coverage"] = 0.80
    assert calibration.choose_method(table) == "normalised"  # none qualifies: the best worst group


def test_write_calibration_writes_the_quantiles_coverage_and_figure(tmp_path):
    val, test = synthetic(1200, 2), synthetic(1500, 3)
    inputs = []
    for name, frame in (("val", val), ("test", test)):
        inputs.append(tmp_path / f"{name}.csv")
        frame.to_csv(inputs[-1], index=False)
    record = calibration.write_calibration(val, test, inputs, "synthetic", tmp_path / "out", 50, 0, 0.95)
    written = json.loads((tmp_path / "out" / "intervals.json").read_text())
    assert written["method"] == record["method"] in calibration.METHODS
    assert set(written["quantiles"]) == {"0.8", "0.9", "0.95"} and "git_commit" in written["provenance"]
    assert set(written["alternatives"]) == set(calibration.METHODS) - {written["method"]}
    coverage = pd.read_csv(tmp_path / "out" / "coverage.csv")
    assert set(coverage["method"]) == {*calibration.METHODS, "uncalibrated"}
    assert (coverage["coverage_low"] <= coverage["coverage"] + 1e-9).all()
    assert (tmp_path / "out" / "coverage.png").stat().st_size > 10_000


def test_the_script_calibrates_a_run_and_names_the_chosen_interval(tmp_path, monkeypatch, capsys):
    """scripts/calibrate_intervals.py end to end on a run folder's prediction files (any method)."""
    import runpy
    import sys
    from pathlib import Path

    run = tmp_path / "runs" / "synthetic"
    run.mkdir(parents=True)
    for split, seed in (("val", 4), ("test", 5)):
        frame = shrunk(1500, seed)
        frame.insert(0, "file", [f"{i}.jpg" for i in range(len(frame))])
        frame["pred_gender"], frame["p_female"], frame["pred_race"] = frame["gender"], 0.5, frame["race"]
        for k in range(5):
            frame[f"p_race{k}"] = 0.2
        frame.to_csv(run / f"predictions_{split}.csv", index=False)
    script = Path(__file__).resolve().parents[1] / "scripts" / "calibrate_intervals.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--run", "synthetic", "--runs-dir", str(tmp_path / "runs"),
                                      "--out", str(tmp_path / "out"), "--resamples", "20"])
    runpy.run_path(str(script), run_name="__main__")
    record = json.loads((tmp_path / "out" / "intervals.json").read_text())
    assert record["method"] == "inverted"  # the shrunk estimates miss teenagers in bands of the estimate
    assert describe_calibration(record) in capsys.readouterr().out
