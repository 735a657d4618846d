"""Challenge-N decision curves (research.evaluation.decision): end points and rules recomputed by
hand on constructed tables, the validation-chosen operating point, the bootstrap bands, and the
release's age distribution on the tiny synthetic folder."""


import numpy as np
import pandas as pd
import pytest
from _synthetic_release import write_tiny_release

from research.data.cache import decode_resize
from research.evaluation import decision
from research.evaluation.bootstrap import rate_draws, resample_indices
from research.evaluation.ensemble import average_predictions
from research.inference import mixture_step, predict_rows
from research.predict.release import load_release
from research.runs.folder import PREDICTION_COLUMNS

# Three minors (13-17; two of them 13-16), two young adults, three adults 25+.
AGES = [14, 16, 17, 19, 23, 26, 30, 41]
ESTIMATES = [18.0, 26.0, 15.0, 22.0, 27.0, 24.0, 33.0, 45.0]
STDS = [2.0, 1.0, 4.0, 3.0, 2.0, 1.0, 5.0, 2.0]


def table(ages=AGES, estimates=ESTIMATES, stds=STDS) -> pd.DataFrame:
    return pd.DataFrame({"file": [f"{i}.jpg" for i in range(len(ages))], "age": ages, "gender": 0,
                         "race": 0, "pred_age": estimates, "age_std": stds})


def test_threshold_curve_end_points_and_a_middle_point_by_hand():
    grids = {"threshold": np.array([0.0, 25.0, 500.0])}
    curve = decision.curves(table(), 0, 0, 0.95, ("threshold",), group_types=("overall",), grids=grids)
    at = curve.set_index("parameter")
    rates = ["fpr_13_17", "fpr_13_16", "friction_25plus", "friction_18_24"]
    # 0: nobody asked, every minor let through; 500: everyone asked, no minor through.
    assert at.loc[0.0, rates].tolist() == [1, 1, 0, 0]
    assert at.loc[500.0, rates].tolist() == [0, 0, 1, 1]
    # 25: ages 14, 17 (estimates 18, 15) asked, 16 (26) through; 26 (24) asked, 30 and 41 not;
    # 19 asked, 23 not.
    assert at.loc[25.0, "fpr_13_17"] == pytest.approx(1 / 3)
    assert at.loc[25.0, "fpr_13_16"] == pytest.approx(1 / 2)
    assert at.loc[25.0, "friction_25plus"] == pytest.approx(1 / 3)
    assert at.loc[25.0, "friction_18_24"] == pytest.approx(1 / 2)
    assert at.loc[25.0, ["n_13_17", "n_13_16", "n_25plus", "n_18_24"]].tolist() == [3, 2, 3, 2]


def test_interval_rule_asks_when_the_lower_end_is_below_n():
    ask = decision.asks(table(), "interval", 25, np.array([0.0, 1.0, 20.0]))
    est, std = np.array(ESTIMATES), np.array(STDS)
    np.testing.assert_array_equal(ask[0], est < 25)
    np.testing.assert_array_equal(ask[1], est - std < 25)  # 26 - 1 = 25 is not below 25
    assert ask[1].tolist() == [True, False, True, True, False, True, False, False]
    assert ask[2].all()


def test_probability_rule_decides_on_the_distributions_mass_below_n():
    probs = np.zeros((3, 117))
    probs[0, [20, 30]] = [0.3, 0.7]  # P(age < 25) = 0.3
    probs[1, [24, 25]] = [0.5, 0.5]  # the bin of age 25 is not below 25: 0.5
    probs[2, 60] = 1.0  # 0
    frame = table(ages=[15, 20, 60], estimates=probs @ np.arange(117), stds=[1, 1, 1])
    frame["p_under_25"] = decision.mass_below(probs, 25)
    np.testing.assert_allclose(frame["p_under_25"], [0.3, 0.5, 0.0])
    ask = decision.asks(frame, "probability", 25, np.array([0.0, 0.2, 0.3, 0.49, 0.5]))
    assert ask.tolist() == [[True, True, False], [True, True, False], [False, True, False],
                            [False, True, False], [False, False, False]]


def test_operating_point_is_the_fewest_adults_asked_under_the_minors_cap():
    val = pd.DataFrame({"parameter": [0.0, 0.5, 1.0, 1.5, 2.0],
                        "fpr_13_17": [0.10, 0.03, 0.02, 0.015, 0.0],
                        "friction_25plus": [0.05, 0.10, 0.30, 0.30, 0.60]})
    assert decision.choose_parameter(val, 0.02) == (1.5, True)  # 1.0 ties on friction, lets more through
    assert decision.choose_parameter(val, 0.05) == (0.5, True)
    assert decision.choose_parameter(val.iloc[:2], 0.02) == (0.5, False)  # none reaches: fewest minors


def test_operating_points_are_chosen_on_validation_and_read_off_test():
    val = table()
    test = table(estimates=[30.0, 30.0, 30.0, 20.0, 20.0, 20.0, 20.0, 20.0])
    grids = {"threshold": np.array([0.0, 17.0, 19.0, 27.0, 40.0]), "interval": np.array([0.0, 1.0])}
    curves = decision.decision_table({"m": {"val": val, "test": test}}, 50, 0, 0.95,
                                     ("threshold", "interval"), grids=grids)
    assert set(curves["split"]) == {"val", "test"}
    assert set(curves[curves["split"] == "val"]["group_type"]) == {"overall"}
    points = decision.operating_points(curves, max_minor_pass_rate=0.0)
    # Validation: only thresholds 27 and 40 let no minor through; 27 asks 1 of 3 adults (the 26-year-old).
    chosen = points["m"]["threshold"]["any"]
    assert chosen["parameter"] == 27.0 and chosen["target_reached_on_validation"]
    assert chosen["validation"]["friction_25plus"][0] == pytest.approx(1 / 3)
    # test is only scored at that threshold: its minors (estimated 30) pass, its adults (20) are asked
    assert chosen["test"]["fpr_13_17"][0] == 1 and chosen["test"]["friction_25plus"][0] == 1
    assert set(points["m"]["interval"]) == {"21", "25", "30"}
    assert "gender:male" in chosen["test_by_group"]


def test_bands_come_from_the_shared_bootstrap_and_hold_the_point():
    rng = np.random.default_rng(1)
    ages = rng.integers(10, 60, 300)
    frame = table(ages=ages, estimates=ages + rng.normal(0, 5, 300), stds=np.full(300, 3.0))
    ask = decision.asks(frame, "threshold", None, np.array([20.0, 25.0]))
    draws = decision.band_draws(ask, ages.astype(float), 100, np.random.default_rng(7))
    minors = ((ages >= 13) & (ages <= 17)).astype(float)
    idx = np.concatenate(list(resample_indices(300, 100, np.random.default_rng(7))))
    expected = rate_draws((~ask[1]).astype(float), minors, idx)
    np.testing.assert_allclose(draws["fpr_13_17"][:, 1], expected, atol=1e-6)
    curve = decision.curves(frame, 200, 0, 0.95, ("threshold",), group_types=("overall", "gender"))
    assert (curve["fpr_13_17_low"] <= curve["fpr_13_17"] + 1e-9).all()
    assert (curve["fpr_13_17"] <= curve["fpr_13_17_high"] + 1e-9).all()
    assert (curve["fpr_13_17_high"] - curve["fpr_13_17_low"]).max() > 0


# ---- the release's age distribution on the synthetic folder --------------------------------

@pytest.fixture(scope="module")
def tiny_ensemble_release(tmp_path_factory):
    """A two-member release of randomly initialised smoke CNNs, written as export writes one."""
    return load_release(write_tiny_release(tmp_path_factory.mktemp("release")))


def test_release_distributions_match_the_mixture_and_the_committed_path(tiny_ensemble_release, utk_folder):
    release = tiny_ensemble_release
    files = sorted(p.name for p in utk_folder.glob("*.jpg"))
    labels = pd.DataFrame({"file": files, "age": [int(f.split("_")[0]) for f in files],
                           "gender": [int(f.split("_")[1]) for f in files],
                           "race": [int(f.split("_")[2]) for f in files]})
    size, tta = int(release.config.image_size), bool(release.config.eval.tta_flip)
    images = decision.decoded_images(utk_folder, labels["file"], size)
    np.testing.assert_array_equal(images[3], decode_resize((utk_folder / files[3]).read_bytes(), size))
    frame = decision.release_distributions(release.members, release.weights, release.model.apply, tta, images,
                                           labels, batch_size=16)
    mixed = mixture_step(release.members, images, release.model.apply, tta, release.weights)
    np.testing.assert_allclose(frame["pred_age"], mixed["age"], rtol=1e-5)
    np.testing.assert_allclose(frame["age_std"], mixed["age_std"], rtol=1e-4)
    from research.inference import mixture_distribution_step

    probs = np.asarray(mixture_distribution_step(release.members, images, release.model.apply, tta,
                                                 release.weights)["age_probs"])
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(probs @ np.arange(117), frame["pred_age"], rtol=1e-4)
    for n in decision.DECISION_CHALLENGES:
        np.testing.assert_allclose(frame[f"p_under_{n}"], probs[:, :n].sum(1), atol=1e-6)
    # The committed path: each member predicted (predict_rows), written to 4 decimals, then mixed
    # by scripts/ensemble.py and written to 4 decimals again.
    tables = []
    for variables in release.members:
        out = predict_rows(variables, release.model.apply, images, np.arange(len(images)), release.config)
        member = labels.assign(pred_age=out["age"], age_std=out["age_std"],
                               pred_gender=out["p_gender"].argmax(1), p_female=out["p_gender"][:, 1],
                               pred_race=out["p_race"].argmax(1))
        member[[f"p_race{i}" for i in range(5)]] = out["p_race"]
        tables.append(member[PREDICTION_COLUMNS].round(4))
    committed = average_predictions(tables, list(release.weights)).round(4)
    check = decision.agreement(frame, committed)
    assert check["matched_files"] == len(files)
    assert check["max_abs_difference"] <= 1.01e-4  # rounding the members first moves the last decimal at most
