"""The age-bias corrections (research.models.age_distribution, research.evaluation.age_bias): the
label-prior correction is the identity at tau = 0 and with a flat prior, the estimate is the mean
the model computes, the estimate map translates the distribution to the mapped estimate, on
synthetic datasets biased towards the common training ages (or shrunk to the middle) the
correction chosen on validation shrinks the largest age-group bias, the monotone maps by hand,
and the stage's files."""

import json

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from research.configs.age_bias import get_config
from research.evaluation import age_bias
from research.models.age_distribution import (
    apply_correction,
    estimate_map_correction,
    label_prior_correction,
    mass_below,
    moments,
    prior_adjusted,
    shifted,
)
from research.models.heads import AGES, NUM_AGE_BINS, expected_age


def random_distributions(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.full(NUM_AGE_BINS, 0.3), n)


def test_the_correction_is_the_identity_at_tau_zero_and_with_a_flat_prior():
    probs = random_distributions(6, 0)
    prior = np.random.default_rng(1).uniform(0.1, 5.0, NUM_AGE_BINS)
    np.testing.assert_allclose(prior_adjusted(probs, prior, 0.0), probs)
    for tau in (0.5, 1.0, 1.7):
        np.testing.assert_allclose(prior_adjusted(probs, np.full(NUM_AGE_BINS, 3.0), tau), probs, atol=1e-12)
    # a prior that is not flat moves the distribution (the test above could fail)
    moved = prior_adjusted(probs, prior, 1.0)
    assert not np.allclose(moved, probs) and np.allclose(moved.sum(axis=1), 1)
    expected = probs / prior
    np.testing.assert_allclose(moved, expected / expected.sum(axis=1, keepdims=True))
    assert np.array_equal(apply_correction(probs, None), probs)
    np.testing.assert_allclose(apply_correction(probs, label_prior_correction(prior, 1.0)), moved)
    with pytest.raises(ValueError, match="unknown age correction"):
        apply_correction(probs, {"kind": "isotonic"})
    with pytest.raises(ValueError, match="positive"):
        prior_adjusted(probs, np.zeros(NUM_AGE_BINS), 1.0)


def test_the_estimate_is_the_mean_the_model_computes_and_p_under_is_the_mass_below():
    probs = random_distributions(5, 2)
    mean, std = moments(probs)
    model_mean, model_std = expected_age(jnp.log(jnp.asarray(probs, jnp.float32)))
    np.testing.assert_allclose(mean, model_mean, rtol=1e-5)
    np.testing.assert_allclose(std, model_std, rtol=1e-4)
    hand = np.zeros((1, NUM_AGE_BINS))
    hand[0, [10, 24, 25, 40]] = [0.1, 0.2, 0.3, 0.4]
    assert mass_below(hand, 25)[0] == pytest.approx(0.3)  # ages 10 and 24; 25 is not below 25
    assert mass_below(hand, 24.5)[0] == pytest.approx(0.3)
    assert moments(hand)[0][0] == pytest.approx(10 * 0.1 + 24 * 0.2 + 25 * 0.3 + 40 * 0.4)


def test_training_prior_is_smoothed_positive_and_sums_to_one():
    ages = np.array([1] * 10 + [26] * 100 + [60] * 5)
    prior = age_bias.training_prior(ages, 2.0, 1.0)
    assert prior.shape == (NUM_AGE_BINS,) and (prior > 0).all() and prior.sum() == pytest.approx(1)
    assert prior.argmax() == 26 and prior[27] > prior[40]  # smoothed around the mode
    raw = age_bias.training_prior(ages, 0.0, 0.0)
    assert raw[26] == pytest.approx(100 / 115) and raw[27] == 0


def biased_dataset(n: int, seed: int, prior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True ages spread over 1-80 and a "model" that is the Bayes posterior under the training prior:
    p(a|x) proportional to N(x; a, 5) p_train(a), with x a noisy reading of the true age. Its mean is
    pulled towards the common ages of the prior, as a network trained on them is."""
    rng = np.random.default_rng(seed)
    age = rng.integers(1, 81, n)
    x = age + rng.normal(0, 5, n)
    log_post = -0.5 * ((x[:, None] - AGES[None, :]) / 5) ** 2 + np.log(prior)[None, :]
    post = np.exp(log_post - log_post.max(axis=1, keepdims=True))
    return age, post / post.sum(axis=1, keepdims=True)


def peaked_prior() -> np.ndarray:
    """A training prior like UTKFace's: a peak in the twenties, few teenagers and old people."""
    prior = 0.2 + 10 * np.exp(-0.5 * ((AGES - 27) / 6) ** 2) + 3 * np.exp(-0.5 * ((AGES - 2) / 2) ** 2)
    return prior / prior.sum()


def test_on_a_biased_dataset_the_tau_chosen_on_validation_shrinks_the_largest_band_bias():
    prior = peaked_prior()
    val_age, val_probs = biased_dataset(3000, 0, prior)
    test_age, test_probs = biased_dataset(3000, 1, prior)
    curve = pd.DataFrame([age_bias.curve_row(val_age, moments(prior_adjusted(val_probs, prior, tau))[0],
                                             "label_prior", tau) for tau in get_config().taus])
    tau = age_bias.choose_parameter(curve, max_mae_increase=0.25)
    assert tau > 0
    before = age_bias.band_errors(test_age, moments(test_probs)[0])
    after = age_bias.band_errors(test_age, moments(prior_adjusted(test_probs, prior, tau))[0])
    worst = {k: max(abs(e[b]) for b in age_bias.BANDS) for k, e in (("before", before), ("after", after))}
    assert before["13-17"] > 1.0  # teenagers estimated too old by the prior's pull ...
    assert worst["after"] < 0.5 * worst["before"]  # ... and the correction removes most of it
    assert after["age_mae"] <= before["age_mae"] + 0.25 + 0.1  # within the allowed MAE (test noise)


def test_the_parameter_chosen_keeps_the_mae_within_the_allowance():
    curve = pd.DataFrame({"parameter": [0.0, 0.5, 1.0, 1.5], "age_mae": [5.0, 5.1, 5.3, 6.0],
                          "max_abs_band_error": [4.0, 2.0, 1.0, 0.2]})
    assert age_bias.choose_parameter(curve, 0.25) == 0.5  # 1.0 costs 0.3 years of MAE
    assert age_bias.choose_parameter(curve, 0.3) == 1.0
    assert age_bias.choose_parameter(curve, 0.0) == 0.0


def test_the_estimate_map_translates_the_distribution_to_the_mapped_estimate():
    probs = np.zeros((2, NUM_AGE_BINS))
    probs[0, [10, 12]] = [0.5, 0.5]  # mean 11
    probs[1, [40, 50]] = [0.25, 0.75]  # mean 47.5
    np.testing.assert_allclose(shifted(probs, 0.0), probs)
    moved = shifted(probs, [1.5, -2.0])
    np.testing.assert_allclose(moments(moved)[0], [12.5, 45.5])
    assert moved[0, 11] == pytest.approx(0.25) and moved[0, 12] == pytest.approx(0.25)
    assert moved[1, 38] == pytest.approx(0.25) and moved[1, 48] == pytest.approx(0.75)
    edge = shifted(probs, [-20.0, 0.0])  # mass pushed below age 0 stays at 0
    assert edge[0, 0] == pytest.approx(1.0)
    knots = estimate_map_correction([0.0, 20.0, 100.0], [0.0, 10.0, 100.0], 1.0)  # 11 -> 5.5
    assert moments(apply_correction(probs, knots))[0][0] == pytest.approx(5.5)
    assert moments(apply_correction(probs, knots))[0][1] == pytest.approx(10 + (47.5 - 20) * 90 / 80)
    half = {**knots, "lambda": 0.5}
    assert moments(apply_correction(probs, half))[0][0] == pytest.approx(11 + 0.5 * (5.5 - 11))
    np.testing.assert_allclose(apply_correction(probs, {**knots, "lambda": 0.0}), probs)
    p_under = mass_below(apply_correction(probs, knots), 6)[0]
    assert p_under == pytest.approx(0.5)  # the halves at 4.5 and 6.5 split over 4, 5 and 6, 7
    with pytest.raises(ValueError, match="increasing"):
        estimate_map_correction([0.0, 0.0], [1.0, 2.0], 1.0)


def test_the_monotone_maps_by_hand():
    age = np.arange(1.0, 61.0)
    estimate = 0.5 * age + 15  # compressed towards the middle
    inverse = age_bias.fit_inverse_isotonic(estimate, age)
    np.testing.assert_allclose(age_bias.apply_map(inverse, estimate), age)
    forward = age_bias.fit_isotonic(estimate, age)
    np.testing.assert_allclose(age_bias.apply_map(forward, estimate), age)
    noisy = estimate + np.random.default_rng(0).normal(0, 3, len(age))
    mapped = age_bias.apply_map(age_bias.fit_isotonic(noisy, age), np.sort(noisy))
    assert np.all(np.diff(mapped) >= 0)  # monotone
    probs = np.zeros((len(age), NUM_AGE_BINS))
    probs[np.arange(len(age)), np.clip(np.round(noisy), 0, 116).astype(int)] = 1.0
    oof = age_bias.out_of_fold("inverse_isotonic", probs, age, 1.0, folds=5, seed=0)
    assert oof.shape == probs.shape and np.allclose(oof.sum(axis=1), 1)
    # out of fold, the de-shrinking map still removes most of the compression towards the middle
    before = np.abs(moments(probs)[0] - age).mean()
    assert np.abs(moments(oof)[0] - age).mean() < 0.75 * before


def test_band_table_intervals_cover_the_point_and_changes_are_paired():
    rng = np.random.default_rng(0)
    age = rng.integers(1, 80, 600).astype(float)
    estimates = {"none": age + 2.0 + rng.normal(0, 1, 600), "label_prior": age + rng.normal(0, 1, 600)}
    table = age_bias.band_table(age, estimates, "val", 200, 0, 0.95)
    assert set(table["band"]) == {*age_bias.BANDS, "all"}
    ok = table["mean_signed_error_low"] <= table["mean_signed_error"]
    assert (ok & (table["mean_signed_error"] <= table["mean_signed_error_high"])).all()
    change = table[(table["method"] == "label_prior") & (table["band"] == "all")].iloc[0]
    assert change["bias_change"] == pytest.approx(-2.0, abs=0.15) and change["bias_change_high"] < -1.5
    rates = age_bias.challenge_table(age, estimates, "val", 25, 200, 0, 0.95)
    hand = ((estimates["none"] >= 25) & (age >= 13) & (age <= 17)).sum() / ((age >= 13) & (age <= 17)).sum()
    assert rates.set_index("method").loc["none", "fpr_13_17"] == pytest.approx(hand)


def test_write_bias_writes_the_tables_and_a_correction_the_command_applies(tmp_path):
    prior = peaked_prior()
    tables, probs = {}, {}
    for seed, split in enumerate(("val", "test")):
        age, probs[split] = biased_dataset(800, seed, prior)
        tables[split] = pd.DataFrame({"file": [f"{split}{i}.jpg" for i in range(len(age))], "age": age,
                                      "gender": 0, "race": 0})
    train_ages = np.random.default_rng(5).choice(np.arange(NUM_AGE_BINS), 5000, p=prior)
    inputs = [tmp_path / "input.txt"]
    inputs[0].write_text("x")
    summary = age_bias.write_bias(tables, probs, train_ages, get_config("smoke"), inputs, tmp_path, (21, 25))
    for name in ("bands.csv", "challenge.csv", "by_age.csv", "choice.csv", "release_corrected_val.csv",
                 "release_corrected_test.csv", "correction.json", "summary.json", "by_age.png"):
        assert (tmp_path / name).is_file(), name
    correction = json.loads((tmp_path / "correction.json").read_text())
    chosen = summary["method_chosen_on_validation"]
    assert chosen != "none" and correction["method"] == chosen and "provenance" in correction
    assert correction["provenance"] == summary["provenance"]
    frame = pd.read_csv(tmp_path / "release_corrected_test.csv")
    corrected = apply_correction(probs["test"], correction)
    np.testing.assert_allclose(frame["pred_age"], moments(corrected)[0], atol=1e-4)
    np.testing.assert_allclose(frame["p_under_25"], mass_below(corrected, 25), atol=1e-4)
    bands = summary["bands"]["test"]
    teen = {m: abs(bands[m]["13-17"]["mean_signed_error"][0]) for m in age_bias.METHODS}
    assert teen["label_prior"] < teen["none"] and teen[chosen] < teen["none"]
    worst = {m: max(abs(bands[m][b]["mean_signed_error"][0]) for b in age_bias.BANDS)
             for m in ("none", chosen)}
    assert worst[chosen] < worst["none"]
