"""The model card's section on what the prediction command decides: its rules' operating points,
the calibrated interval's coverage, the age correction and its effect per age group, all read from
the release's rules.json and results/bias/summary.json; for a release without rules.json, the
fallback rule's table from the run's test predictions."""

from __future__ import annotations

import pandas as pd

from research.configs.predict import get_config
from research.evaluation.metrics import FPR_MINORS, FRICTION_ADULTS
from research.predict.estimate import id_check
from research.vocabulary import (
    AGE_GROUPS,
    CHALLENGE_AGE,
    MINORS,
    YOUNG_ADULTS,
    band_label,
    describe_calibration,
    in_band,
)


def command_rule_table(predictions: pd.DataFrame, default_z: float, challenge: float = CHALLENGE_AGE,
                       zs: tuple[float, ...] = (0.0, 0.5, 1.0)) -> str:
    """Challenge-N rates on the test split under the prediction command's rule, for several
    interval widths z (the command's default marked)."""
    age, std, pred = predictions["age"], predictions["age_std"], predictions["pred_age"]
    lines = [f"| interval z | rule | {band_label(MINORS)} let through % | "
             f"{band_label(YOUNG_ADULTS)} asked % | {CHALLENGE_AGE}+ asked % |", "|---|---|---|---|---|"]
    bands = (in_band(age, MINORS).to_numpy(), in_band(age, YOUNG_ADULTS).to_numpy(),
             (age >= CHALLENGE_AGE).to_numpy())
    for z in sorted({*zs, default_z}):
        ask = id_check(pred.to_numpy(float), std.to_numpy(float), z, challenge)
        shares = [100 * (~ask[band]).mean() if i == 0 else 100 * ask[band].mean()
                  for i, band in enumerate(bands)]
        rule = "estimate below N" if z == 0 else f"estimate or estimate - {z:g} sd below N"
        mark = " (command default)" if z == default_z else ""
        lines.append(f"| {z:g}{mark} | {rule} | {shares[0]:.1f} | {shares[1]:.1f} | {shares[2]:.1f} |")
    return "\n".join(lines)


def interval_choice_line(point: dict | None) -> str:
    """Where the command's default z comes from (metrics_test.json's interval_operating_point)."""
    if not point:
        return ""
    val, test = point["validation"], point["test"]
    return (f"On the validation split the smallest z that lets at most "
            f"{100 * point['max_minor_pass_rate']:.0f}% of {band_label(MINORS)} year-olds through is "
            f"{point['z']:g} (validation: {100 * val[FPR_MINORS]:.1f}% let through, "
            f"{100 * val[FRICTION_ADULTS]:.1f}% of adults {CHALLENGE_AGE}+ asked; test: "
            f"{100 * test[FPR_MINORS]:.1f}% and {100 * test[FRICTION_ADULTS]:.1f}%). "
            "The command's default (research/configs/predict.py) "
            f"is {get_config().interval_z:g}.")


def _pct(values: list | None, digits: int = 1) -> str:
    """'12.3 [8.1, 17.0]' from [value, low, high] shares ('n/a' when absent)."""
    if not values or values[0] is None:
        return "n/a"
    value = f"{100 * values[0]:.{digits}f}"
    if len(values) < 3 or values[1] is None:
        return value
    return f"{value} [{100 * values[1]:.{digits}f}, {100 * values[2]:.{digits}f}]"


def _share(values: list | None) -> str:
    """'12.3% [8.1, 17.0]' for prose."""
    text = _pct(values)
    return text if text == "n/a" else text.replace(" [", "% [", 1) if "[" in text else f"{text}%"


def _parameter(rule: str, parameter: float | None) -> str:
    return {"threshold": "-", "interval": f"level {parameter}", "probability": f"p = {parameter}"}[rule]


def rules_table(rules: dict) -> str:
    """Each rule's operating point per N, chosen on validation, with its test rates."""
    rows = [f"| N | rule | parameter | {band_label(MINORS)} let through % [95%] | 13-16 let through % | "
            f"{band_label(YOUNG_ADULTS)} asked % | {CHALLENGE_AGE}+ asked % [95%] | "
            "cap reached on validation |", "|---|---|---|---|---|---|---|---|"]
    for n, entry in rules["challenges"].items():
        for rule, point in entry["rules"].items():
            t = point["test"]
            mark = " (default)" if rule == entry["default_rule"] else ""
            reached = "yes" if point["target_reached_on_validation"] else "no"
            rows.append(f"| {n} | {rules['rules'][rule]}{mark} | {_parameter(rule, point['parameter'])} | "
                        f"{_pct(t['fpr_13_17'])} | {_pct(t['fpr_13_16'][:1])} | "
                        f"{_pct(t['friction_18_24'][:1])} | {_pct(t['friction_25plus'])} | {reached} |")
    return "\n".join(rows)


def default_rule_line(rules: dict, n: int = CHALLENGE_AGE) -> str:
    """The command's default at Challenge n and its cost on test."""
    entry = rules["challenges"].get(str(n))
    if entry is None:
        return ""
    rule = entry["default_rule"]
    point = entry["rules"][rule]
    t = point["test"]
    reached = ("it reached that cap on validation" if point["target_reached_on_validation"] else
               "no rule reached that cap on validation")
    return (f"At Challenge {n} the command's default is the rule `{rules['rules'][rule]}` "
            f"({_parameter(rule, point['parameter'])}), chosen on validation as the rule that asks the "
            f"fewest adults {CHALLENGE_AGE}+ while letting at most "
            f"{100 * rules['max_minor_pass_rate']:g}% of {band_label(MINORS)} year-olds through ({reached}). "
            f"On the test split it lets {_share(t['fpr_13_17'])} of {band_label(MINORS)} year-olds through; "
            f"its cost is asking {_share(t['friction_25plus'])} of adults {CHALLENGE_AGE}+ and "
            f"{_share(t['friction_18_24'])} of {band_label(YOUNG_ADULTS)} year-olds for ID.")


def interval_line(rules: dict | None, z: float) -> str:
    """What the command's age interval is, and its coverage on test."""
    if rules is None:
        return ("This release carries no rules.json: the age interval the command reports is the spread of "
                f"the model's own distribution (estimate ± z sd, z = {z:g}), not a calibrated interval.")
    c, interval = rules["coverage"], rules["interval"]
    worst = c["lowest_age_group"]
    return (f"The age interval the command reports is the {100 * c['level']:g}% interval, "
            f"{describe_calibration(interval)}: on the test split it covered "
            f"{_share(c['overall'])} of faces, and {100 * worst['coverage']:.1f}% in its lowest age group "
            f"({worst['group']}).")


def correction_words(correction: dict) -> str:
    """What the release's age correction does, in a sentence's words."""
    if correction["kind"] == "label_prior":
        return (f"divides the release's age distribution by the training split's age prior to the power "
                f"tau = {correction['tau']:g} and renormalises (logit adjustment)")
    return (f"moves the estimate {correction['lambda']:g} of the way to the inverse of the monotone "
            "E[estimate | true age] fitted on the validation split, translating the age distribution with it "
            "(so that P(age < N) moves too)")


def correction_section(rules: dict | None, bias: dict | None) -> list[str]:
    """The age correction the command applies, and the mean signed error per age group before and
    after it on test (results/bias/summary.json)."""
    correction = (rules or {}).get("age_correction")
    if correction is None or bias is None:
        return ["The command applies no age correction."] if rules is not None else []
    method, test = bias["method_chosen_on_validation"], bias["bands"]["test"]
    rows = ["| age group | n | mean signed error before [95%] | after [95%] | MAE before | MAE after |",
            "|---|---|---|---|---|---|"]
    for band in (*[g for g, _, _ in AGE_GROUPS], "all"):
        before, after = test["none"][band], test[method][band]
        rows.append(f"| {band} | {before['n']} | {_years(before['mean_signed_error'])} | "
                    f"{_years(after['mean_signed_error'])} | {before['mae'][0]:.2f} | "
                    f"{after['mae'][0]:.2f} |")
    rates = bias["challenge_rates"]["test"]
    before, after = rates["none"], rates[method]
    return [f"The command {correction_words(correction)}; the estimate is the corrected distribution's "
            f"mean. Chosen on {correction['chosen_on']}. On the test split (the metrics above are the "
            "uncorrected network's):", "", "\n".join(rows), "",
            f"With the estimate alone at Challenge {bias['challenge']}, {band_label(MINORS)} year-olds let "
            f"through: {_share(before['fpr_13_17'])} before, {_share(after['fpr_13_17'])} after; adults "
            f"{CHALLENGE_AGE}+ asked: {_share(before['friction_25plus'])} before, "
            f"{_share(after['friction_25plus'])} after."]


def _years(values: list) -> str:
    return f"{values[0]:+.2f} [{values[1]:+.2f}, {values[2]:+.2f}]"


def command_section(rules: dict | None, bias: dict | None, predictions: pd.DataFrame, z: float,
                    interval_point: dict | None) -> list[str]:
    """What the prediction command decides: its rules' operating points (or the fallback's table)."""
    if rules is None:
        return ["This release carries no rules.json, so `scripts/predict.py` falls back to asking for ID "
                "when the estimate, or estimate - z sd, is below N (`--interval-z`). Rates at N = "
                f"{CHALLENGE_AGE} on the test split, from the run's predictions_test.csv:", "",
                command_rule_table(predictions, z), "", interval_choice_line(interval_point)]
    return ["For each face `scripts/predict.py` takes the release's age distribution, applies the age "
            "correction below (if any), and reports the estimate (the distribution's mean), the calibrated "
            "age interval and P(age < N), the distribution's mass below N. It asks for ID under one rule "
            "(`--rule`, `--parameter`); by default the one chosen on validation for N. Operating points "
            "chosen on the validation split, rates on the test split (95% bootstrap intervals):", "",
            rules_table(rules), "", default_rule_line(rules), "", interval_line(rules, z), "",
            "### Age correction", *correction_section(rules, bias)]
