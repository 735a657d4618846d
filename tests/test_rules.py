"""The prediction command's Challenge-N rules (research.predict.rules) and how they are chosen on
validation (research.evaluation.rules): the probability rule's decision is the distribution's mass
below N, the interval rule uses the calibrated interval, defaults come from the release's
operating points, and the command's decisions on a table reproduce the rates rules.json states."""

import json

import numpy as np
import pandas as pd
import pytest
from _synthetic_release import synthetic_release_table

from research.evaluation import decision as curves
from research.evaluation import rules as evaluation_rules
from research.models.age_distribution import label_prior_correction, mass_below, moments
from research.models.age_interval import calibrated_interval
from research.models.heads import NUM_AGE_BINS
from research.predict.rules import Decision, RuleError, decision_for

CALIBRATION = {"method": "absolute", "edges": [20.0, 30.0],
               "quantiles": {"0.9": [2.0, 4.0, 6.0], "0.95": [3.0, 6.0, 9.0]}, "stated_level": 0.9}


def hand_distribution() -> np.ndarray:
    """Two faces: 0.3 on age 20 and 0.7 on age 30; 0.05 on 24 and 0.95 on 40."""
    probs = np.zeros((2, NUM_AGE_BINS))
    probs[0, [20, 30]] = [0.3, 0.7]
    probs[1, [24, 40]] = [0.05, 0.95]
    return probs


def test_the_probability_rule_asks_when_the_mass_below_n_exceeds_p():
    probs = hand_distribution()
    rule = Decision("probability", 25, 0.1, "test", interval=CALIBRATION, stated_level=0.9)
    out = rule.estimates(probs)
    np.testing.assert_allclose(out["p_under"], [0.3, 0.05])
    np.testing.assert_allclose(out["p_under"], mass_below(probs, 25))
    assert rule.asks(out["age"], out["age_std"], out["p_under"]).tolist() == [True, False]
    strict = Decision("probability", 25, 0.3, "test", interval=CALIBRATION, stated_level=0.9)
    assert strict.asks(out["age"], out["age_std"], out["p_under"]).tolist() == [False, False]  # > p, not >=
    assert "P(age < 25) = 0.300 is above 0.1" == rule.reason(27.0, 4.6, 0.3, True)


def test_the_interval_rule_and_the_stated_interval_are_the_calibrated_ones():
    probs = hand_distribution()
    rule = Decision("interval", 25, 0.95, "test", interval=CALIBRATION, stated_level=0.9)
    out = rule.estimates(probs)
    age = moments(probs)[0]  # 27.0 and 39.2
    low, high = calibrated_interval(age, out["age_std"], 0.9, CALIBRATION)
    np.testing.assert_allclose([out["age_low"], out["age_high"]], [low, high])
    np.testing.assert_allclose(out["age_low"], [27.0 - 4.0, age[1] - 6.0])
    # the rule reads its own level (0.95: 27 - 6 = 21 < 25 asks; 39.2 - 9 = 30.2 does not)
    assert rule.asks(out["age"], out["age_std"], out["p_under"]).tolist() == [True, False]
    narrow = Decision("interval", 25, 0.9, "test", interval={**CALIBRATION, "quantiles": {
        "0.9": [0.5, 1.0, 1.0], "0.95": [0.5, 1.0, 1.0]}}, stated_level=0.9)
    assert narrow.asks(out["age"], out["age_std"], out["p_under"]).tolist() == [False, False]
    assert Decision("threshold", 28, None, "t").asks(out["age"], out["age_std"], out["p_under"]).tolist() == [
        True, False]


def test_a_correction_the_release_carries_is_applied_before_the_rules():
    probs = hand_distribution()
    prior = np.ones(NUM_AGE_BINS)
    prior[30] = 10.0  # age 30 was common in training: dividing by it moves mass to age 20
    rule = Decision("probability", 25, 0.5, "test", interval=CALIBRATION, stated_level=0.9,
                    correction=label_prior_correction(prior, 1.0))
    out = rule.estimates(probs)
    assert out["p_under"][0] == pytest.approx(0.3 / (0.3 + 0.07))
    assert out["age"][0] == pytest.approx((20 * 0.3 + 30 * 0.07) / 0.37)
    assert rule.asks(out["age"], out["age_std"], out["p_under"])[0]


def rules_record() -> dict:
    point = {"parameter": 0.04, "target_reached_on_validation": True, "validation": {}, "test": {"x": 1}}
    by_rule = {"probability": point, "interval": {**point, "parameter": 0.95},
               "threshold": {**point, "parameter": None}}
    return {"interval": CALIBRATION, "age_correction": None,
            "challenges": {"25": {"default_rule": "probability", "rules": by_rule}}}


def test_defaults_come_from_the_operating_point_chosen_on_validation():
    rules = rules_record()
    chosen = decision_for(rules, 25)
    assert (chosen.rule, chosen.parameter, chosen.stated_level) == ("probability", 0.04, 0.9)
    assert "validation" in chosen.source and chosen.test_rates == {"x": 1}
    assert decision_for(rules, 25, "interval").parameter == 0.95
    assert decision_for(rules, 25, "probability", 0.2).source == "given on the command line"
    other = decision_for(rules, 21)  # no operating point: the stated interval, said so
    assert (other.rule, other.parameter) == ("interval", 0.9) and "no operating point" in other.source
    with pytest.raises(RuleError, match="no operating point for Challenge 21"):
        decision_for(rules, 21, "probability")
    with pytest.raises(RuleError, match="calibrated at levels"):
        decision_for(rules, 25, "interval", 0.8)
    with pytest.raises(RuleError, match="one of"):
        decision_for(rules, 25, "coin")
    fallback = decision_for(None, 25, z=1.15)
    assert (fallback.rule, fallback.parameter, fallback.interval) == ("interval", 1.15, None)
    assert "no rules.json" in fallback.source
    with pytest.raises(RuleError, match="no rules.json"):
        decision_for(None, 25, "probability")


def test_rules_json_is_what_the_command_applies(tmp_path):
    val, test = synthetic_release_table(3000, 0), synthetic_release_table(3000, 1)
    source = tmp_path / "in.csv"
    source.write_text("x")
    record = evaluation_rules.write_rules(val, test, None, {"name": "x", "params_sha256": "abc"}, [source],
                                          tmp_path, 50, 0, 0.95)
    stored = json.loads((tmp_path / "rules.json").read_text())
    assert stored["release"]["params_sha256"] == "abc"
    assert stored["challenges"].keys() == {"21", "25", "30"} and (tmp_path / "coverage.csv").is_file()
    assert 0.85 <= stored["coverage"]["overall"][0] <= 0.95
    for n, entry in stored["challenges"].items():
        points = entry["rules"]
        reached = [r for r, p in points.items() if p["target_reached_on_validation"]]
        assert entry["default_rule"] in reached
        assert points[entry["default_rule"]]["validation"]["friction_25plus"][0] == min(
            points[r]["validation"]["friction_25plus"][0] for r in reached)
        for rule, point in points.items():
            if point["target_reached_on_validation"]:
                assert point["validation"]["fpr_13_17"][0] <= record["max_minor_pass_rate"]
            # the command's decision on the test table reproduces the test rates in rules.json
            decided = decision_for(stored, int(n), rule)
            asked = decided.asks(test["pred_age"], test["age_std"], test[curves.p_under_column(int(n))])
            minors = test["age"].between(13, 17).to_numpy()
            assert (~asked[minors]).mean() == pytest.approx(point["test"]["fpr_13_17"][0])
            adults = test["age"].to_numpy() >= 25
            assert asked[adults].mean() == pytest.approx(point["test"]["friction_25plus"][0])


def test_the_card_states_the_operating_point_its_cost_the_coverage_and_the_correction(tmp_path):
    from _synthetic_release import synthetic_rules

    from research.evaluation.age_bias import BANDS
    from research.models.age_distribution import estimate_map_correction
    from research.release.card_command import command_section

    correction = estimate_map_correction([0.0, 100.0], [0.0, 100.0], 0.5, chosen_on="validation: by hand")
    rules = json.loads(synthetic_rules(tmp_path, "abc", correction, n=1500).read_text())
    bands = {m: {b: {"n": 10, "mean_signed_error": [v, v - 1, v + 1], "mae": [5.0, 4.0, 6.0]}
                 for b in (*BANDS, "all")} for m, v in (("none", 4.0), ("deshrink", 1.0))}
    rates = {m: {"fpr_13_17": [0.2, 0.1, 0.3], "friction_25plus": [0.05, 0.04, 0.06]}
             for m in ("none", "deshrink")}
    bias = {"method_chosen_on_validation": "deshrink", "challenge": 25, "bands": {"test": bands},
            "challenge_rates": {"test": rates}}
    text = "\n".join(command_section(rules, bias, None, 1.15, None))
    entry = rules["challenges"]["25"]
    point = entry["rules"][entry["default_rule"]]
    assert f"its cost is asking {100 * point['test']['friction_25plus'][0]:.1f}% [" in text
    assert f"covered {100 * rules['coverage']['overall'][0]:.1f}% [" in text
    assert "moves the estimate 0.5 of the way" in text
    assert "| 13-17 | 10 | +4.00 [+3.00, +5.00] | +1.00 [+0.00, +2.00] | 5.00 | 5.00 |" in text
    assert "through: 20.0% [10.0, 30.0] before" in text
    for stale in ("not a calibrated", "not calibrated", "z = 1.15", "interval z"):
        assert stale not in text
    fallback = "\n".join(command_section(None, None, pd.DataFrame({"age": [15, 20, 30],
                                                                   "pred_age": [20.0, 22.0, 31.0],
                                                                   "age_std": [3.0, 3.0, 3.0]}), 1.15, None))
    assert "carries no rules.json" in fallback and "1.15 (command default)" in fallback
