"""The age-verification section: Challenge-N rates of the main run, the operating point chosen
on validation, the interval rule, and the rates per group (results/breakdowns/<main run>/)."""

from __future__ import annotations

import math
import statistics

import pandas as pd
from IPython.display import Markdown

from research.configs import experiments
from research.report.results import Results, blocks, intervals, metric, num, paragraph, pct, table
from research.report.runs import TestedModels
from research.report.wording import capitalised, share_of

MAIN = experiments.MAIN_RUN
SMALL_GROUP = 100  # fewer minors than this: a group's rate is called uncertain


def _challenge(results: Results) -> pd.DataFrame:
    return results.csv(f"breakdowns/{MAIN}/challenge_by_group.csv")


def challenge_numbers(results: Results, models: TestedModels) -> dict[object, object]:
    """Rates at each threshold (keys 18, 21, ...) and the numbers the text quotes."""
    m, op = models.metrics[MAIN], models.metrics[MAIN]["operating_point"]
    cb = _challenge(results)
    overall = cb[cb["group_type"] == "overall"].set_index("threshold")
    av: dict[object, object] = {
        t: {
            "fpr": pct(overall.loc[t, "fpr_13_17"]),
            "young": pct(overall.loc[t, "friction_18_24"]),
            "adult": pct(overall.loc[t, "friction_25plus"]),
        }
        for t in overall.index
    }
    av.update(
        {
            "thresholds": list(overall.index),
            "n_teens": num(overall.loc[25, "n_13_17"]),
            "n_adults": num(overall.loc[25, "n_25plus"]),
            "c25_fpr": metric(m, "challenge25_fpr_13_17", 100, 1),
            "c25_friction": metric(m, "challenge25_friction_25plus", 100, 1),
            "op_t": num(op["threshold"], 1),
            "op_target": pct(op["max_minor_pass_rate"], 0),
            "op_val": pct(op["validation"]["fpr_13_17"]),
            "op_test": pct(op["test"]["fpr_13_17"]),
            "op_adult": pct(op["test"]["friction_25plus"]),
            "op_young": pct(op["test"]["friction_18_24"]),
            "base_c25": metric(models.metrics[experiments.BASELINE_RUN], "challenge25_fpr_13_17", 100, 1),
        }
    )
    return av


def challenge_table(results: Results, av: dict) -> Markdown:
    """The main run's rates at each Challenge threshold."""
    rows = [
        {
            "N": t,
            "13-17 let through": av[t]["fpr"],
            "18-24 asked for ID": av[t]["young"],
            "25+ asked for ID": av[t]["adult"],
        }
        for t in av["thresholds"]
    ]
    return table(
        pd.DataFrame(rows),
        f"Challenge N with the full ResNet-50 ({MAIN}): ID is asked when the estimated "
        f"age is below N (test split; {av['n_teens']} faces aged 13-17, {av['n_adults']} aged 25 or over).",
        "challenge",
    )


def interval_rule(models: TestedModels, target: str) -> Markdown | None:
    """The threshold rule and the interval rule, both chosen on validation, per model; None if no
    model has both."""
    rows = []
    for name, mt in models.metrics.items():
        point, fixed = mt.get("interval_operating_point"), mt.get("operating_point")
        if point and fixed:
            rows.append(
                {
                    "model": name,
                    "threshold N": num(fixed["threshold"], 1),
                    "N: 13-17 let through": pct(fixed["test"]["fpr_13_17"]),
                    "N: 25+ asked": pct(fixed["test"]["friction_25plus"]),
                    "interval z": num(point["z"], 2),
                    "z: 13-17 let through": pct(point["test"]["fpr_13_17"]),
                    "z: 25+ asked": pct(point["test"]["friction_25plus"]),
                }
            )
    if not rows:
        return None
    text = paragraph(
        "A second way to be careful uses the spread of the predicted age distribution: ask for ID when the "
        "lower "
        "end of the interval (estimate - z sd) is below 25. This is the prediction command's rule. With z "
        "chosen "
        f"on validation for the same target ({target} of minors), the test rates of both ways compare as "
        f"follows "
        "(both chosen on validation, scored once on test):"
    )
    return blocks(
        text,
        table(
            pd.DataFrame(rows),
            "Two validation-chosen ways to reach the same minor pass-rate "
            "target on validation: a higher threshold N on the estimate, or Challenge 25 on the "
            "lower end of the age interval (metrics_test.json: operating_point, "
            "interval_operating_point; test split).",
            "interval-rule",
        ),
    )


def wilson(successes: int, n: int, level: float) -> tuple[float, float]:
    """Wilson score interval of a proportion, clipped to [0, 1]."""
    z = statistics.NormalDist().inv_cdf(0.5 + level / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def is_wilson(frame: pd.DataFrame, rate: str, count: str, level: float, tolerance: float = 1e-4) -> bool:
    """Whether every row's ``rate`` interval is the Wilson interval of its count at ``level``: the
    file does not record its method, so it is recognised from the numbers."""
    rows = frame[frame[count] > 0]
    if rows.empty:
        return False
    for value, n, low, high in zip(
        rows[rate], rows[count], rows[f"{rate}_low"], rows[f"{rate}_high"], strict=True
    ):
        expected = wilson(round(value * n), int(n), level)
        if abs(expected[0] - low) > tolerance or abs(expected[1] - high) > tolerance:
            return False
    return True


def interval_name(frame: pd.DataFrame, level: float) -> str:
    """'95% Wilson score intervals' when the file's intervals are Wilson's, else '95% intervals'."""
    wilson_rates = all(
        is_wilson(frame, rate, count, level)
        for rate, count in (("fpr_13_17", "n_13_17"), ("friction_25plus", "n_25plus"))
    )
    return f"{pct(level, 0)} {'Wilson score ' if wilson_rates else ''}intervals"


def group_rates(results: Results) -> tuple[Markdown, dict[str, str]]:
    """Challenge 25 per gender and ethnicity with the intervals the file holds, and the numbers the
    text quotes."""
    cb = _challenge(results)
    c25 = cb[(cb["threshold"] == 25) & (cb["group_type"] != "overall")]
    level = results.json(f"breakdowns/{MAIN}/summary.json")["bootstrap"]["level"]
    shown = pd.DataFrame(
        {
            "group": c25["group"],
            "13-17 n": c25["n_13_17"].map(num),
            "13-17 let through %": intervals(c25, "fpr_13_17", 100, 1),
            "25+ n": c25["n_25plus"].map(num),
            "25+ asked %": intervals(c25, "friction_25plus", 100, 1),
        }
    )
    caption = (
        f"Challenge 25 by gender and ethnicity ({MAIN}, test split, {interval_name(c25, level)}; "
        f"results/breakdowns/{MAIN}/challenge_by_group.csv)."
    )
    by = c25.set_index("group")
    worst = by["fpr_13_17"].idxmax()
    numbers = {
        "worst": worst,
        "worst_fpr": pct(by["fpr_13_17"].max()),
        "worst_n": num(by.loc[worst, "n_13_17"]),
        "male": pct(by.loc["male", "fpr_13_17"]),
        "female": pct(by.loc["female", "fpr_13_17"]),
        "female_f": pct(by.loc["female", "friction_25plus"]),
        "male_f": pct(by.loc["male", "friction_25plus"]),
        "small": small_groups_sentence(by["n_13_17"]),
    }
    return table(shown, caption, "challenge-groups"), numbers


def small_groups_sentence(minors: pd.Series, small: int = SMALL_GROUP) -> str:
    """'All 7 groups have fewer than a hundred minors in the test split (the largest has 97), so ...'."""
    few = int((minors < small).sum())
    if few == 0:
        return f"Every group has at least {small} minors in the test split."
    verb = "has" if few == 1 else "have"
    return (
        f"{capitalised(share_of(few, len(minors), 'groups'))} {verb} fewer than {small} minors in the test "
        f"split (the largest has {num(minors.max())}), so their rates are uncertain."
    )


def group_figure(results: Results) -> Markdown:
    summary = results.json(f"breakdowns/{MAIN}/summary.json")
    name = interval_name(
        _challenge(results).query("threshold == 25 and group_type != 'overall'"),
        summary["bootstrap"]["level"],
    )
    return results.figure(
        f"breakdowns/{MAIN}/challenge_by_group.png",
        "Challenge 25 by group: share of 13-17 "
        f"year-olds let through and of adults 25+ asked for ID, with {name} ({MAIN}, test split).",
        "challenge-groups",
        "85%",
    )
