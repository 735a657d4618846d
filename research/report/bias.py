"""The release's age bias per age group and its correction (results/bias/), and the rules the
prediction command ships with (results/rules/rules.json): numbers, tables and the figure."""

from __future__ import annotations

import pandas as pd
from IPython.display import Markdown

from research.report.results import Results, blocks, interval, not_yet, num, pct, table

SUMMARY, BANDS, RULES = "bias/summary.json", "bias/bands.csv", "rules/rules.json"
COMMANDS = {SUMMARY: "python scripts/release_probs.py --split val && python scripts/release_probs.py "
                     "--split test && python scripts/age_bias.py",
            RULES: "python scripts/release_rules.py"}
TEEN, CHALLENGE = "13-17", "25"
# The targets on test: 13-17 within +-1.5 years, every age group within +-3.
TEEN_TARGET, BAND_TARGET = 1.5, 3.0


def years(values: list) -> str:
    """'+1.23 [+0.50, +2.01]' from [value, low, high]."""
    return f"{values[0]:+.2f} [{values[1]:+.2f}, {values[2]:+.2f}]"


def share(values: list) -> str:
    if values[0] is None:
        return "n/a"
    return interval(values[0], values[1], values[2], 100, 1).replace(" [", "% [")


def bias_numbers(results: Results) -> dict[str, object]:
    """Formatted numbers of the correction chosen on validation and its effect on test ({} before)."""
    if not results.exists(SUMMARY):
        return {}
    s = results.json(SUMMARY)
    chosen = s["method_chosen_on_validation"]
    test, val = s["bands"]["test"], s["bands"]["val"]
    groups = [b for b in test["none"] if b != "all"]

    def worst(bands: dict) -> tuple[str, float]:
        group = max(groups, key=lambda g: abs(bands[g]["mean_signed_error"][0]))
        return group, bands[group]["mean_signed_error"][0]

    out = {"method": s["methods"][chosen], "chosen": chosen, "tau": f"{s['tau']:g}",
           "lambda": f"{s['lambda']:g}", "allowance": num(s["max_mae_increase"], 2)}
    for tag, bands in (("test", test), ("val", val)):
        for name, method in (("before", "none"), ("after", chosen), ("prior", "label_prior")):
            group, value = worst(bands[method])
            out[f"{tag}_{name}_teen"] = years(bands[method][TEEN]["mean_signed_error"])
            out[f"{tag}_{name}_worst"] = f"{value:+.2f} ({group})"
            out[f"{tag}_{name}_mae"] = num(bands[method]["all"]["mae"][0], 2)
    after = test[chosen]
    out["teen_met"] = abs(after[TEEN]["mean_signed_error"][0]) <= TEEN_TARGET
    out["bands_met"] = all(abs(after[g]["mean_signed_error"][0]) <= BAND_TARGET for g in groups)
    rates = s["challenge_rates"]["test"]
    out["fpr_before"], out["fpr_after"] = share(rates["none"]["fpr_13_17"]), share(rates[chosen]["fpr_13_17"])
    out["friction_before"] = share(rates["none"]["friction_25plus"])
    out["friction_after"] = share(rates[chosen]["friction_25plus"])
    return out


def bias_table(results: Results) -> Markdown:
    """Mean signed error and MAE per age group before and after the chosen correction, both splits."""
    if not results.exists(BANDS):
        return not_yet(COMMANDS[SUMMARY])
    s, bands = results.json(SUMMARY), results.csv(BANDS)
    chosen = s["method_chosen_on_validation"]
    rows = []
    for band in bands["band"].unique():
        row = {"age group": band}
        for split, name in (("val", "validation"), ("test", "test")):
            for method, when in (("none", "before"), (chosen, "after")):
                at = (bands["split"] == split) & (bands["method"] == method) & (bands["band"] == band)
                r = bands[at].iloc[0]
                if when == "before":
                    row[f"n ({name})"] = num(r["n"])
                row[f"{name} error {when}"] = years([r["mean_signed_error"], r["mean_signed_error_low"],
                                                     r["mean_signed_error_high"]])
                if split == "test":
                    row[f"{name} MAE {when}"] = num(r["mae"], 2)
        rows.append(row)
    caption = (f"Mean signed error (estimate − true age, years) per true age group, and MAE on test, "
               f"before and after the correction chosen on validation ({s['methods'][chosen]}; "
               "validation scored out of fold), "
               f"with {pct(s['bootstrap']['level'], 0)} percentile bootstrap intervals "
               f"({num(s['bootstrap']['resamples'])} resamples; results/{BANDS}).")
    return table(pd.DataFrame(rows), caption, "bias-bands")


def bias_figure(results: Results) -> Markdown:
    if not results.exists(SUMMARY):
        return not_yet(COMMANDS[SUMMARY])
    caption = ("Mean signed error per true age on validation (maps out of fold) and test for each "
               "correction, and the validation choice of tau and lambda.")
    return results.figure("bias/by_age.png", caption, "bias-by-age")


def rules_numbers(results: Results) -> dict[str, object]:
    """The command's default rule at Challenge 25 and its test rates, and the interval's coverage."""
    if not results.exists(RULES):
        return {}
    r = results.json(RULES)
    entry = r["challenges"][CHALLENGE]
    rule = entry["default_rule"]
    point = entry["rules"][rule]
    coverage = r["coverage"]
    parameter = "-" if point["parameter"] is None else f"{point['parameter']:g}"
    return {"rule": r["rules"][rule], "parameter": parameter,
            "reached": point["target_reached_on_validation"], "cap": pct(r["max_minor_pass_rate"], 0),
            "fpr": share(point["test"]["fpr_13_17"]), "friction": share(point["test"]["friction_25plus"]),
            "young": share(point["test"]["friction_18_24"]), "level": pct(coverage["level"], 0),
            "coverage": share(coverage["overall"]), "lowest_group": coverage["lowest_age_group"]["group"],
            "lowest": pct(coverage["lowest_age_group"]["coverage"])}


def bias_section(results: Results) -> Markdown:
    """The table and the figure (or what to run)."""
    return blocks(bias_table(results), bias_figure(results))
