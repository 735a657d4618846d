"""Decision curves and calibrated age intervals (results/decision/, results/calibration/): the
operating points of each rule, the targets they are judged against, coverage tables and figures."""

from __future__ import annotations

import pandas as pd
from IPython.display import Markdown

from research.configs import experiments
from research.report.results import Results, blocks, interval, not_yet, num, pct, table
from research.vocabulary import CHALLENGE_AGE, describe_calibration

POINTS, CURVES = "decision/operating_points.json", "decision/curves.csv"
INTERVALS, COVERAGE = "calibration/intervals.json", "calibration/coverage.csv"
RELEASE = "release"  # the release's rows in results/decision (scripts/decision_curves.py)
FPR, FRICTION, FPR_YOUNG, FRICTION_YOUNG = "fpr_13_17", "friction_25plus", "fpr_13_16", "friction_18_24"
RULE_NAMES = {"threshold": "estimate < t", "interval": "estimate − z·sd < N", "probability": "P(age < N) > p"}
PARAMETER_NAMES = {"threshold": "t", "interval": "z", "probability": "p"}
# The targets: at most the cap of 13-17 let through while asking at most this share of 25+,
# and a stated 90% interval covering this range overall and at least this much in every age group.
MAX_FRICTION = 0.25
COVERAGE_RANGE = (0.88, 0.92)
MIN_GROUP_COVERAGE = 0.85
TARGET_LEVEL = 0.9
COMMANDS = {
    POINTS: "python scripts/release_distributions.py && python scripts/decision_curves.py",
    INTERVALS: "python scripts/calibrate_intervals.py",
}


def share(values: list) -> str:
    """'1.2% [0.4, 2.3]' from [value, low, high] fractions."""
    value, low, high = (float("nan") if v is None else v for v in values)
    return "n/a" if value != value else interval(value, low, high, 100, 1).replace(" [", "% [")


def meets(point: dict, cap: float, max_friction: float = MAX_FRICTION) -> bool:
    """Whether an operating point's test rates meet both targets (minors through, adults asked)."""
    return point["test"][FPR][0] <= cap and point["test"][FRICTION][0] <= max_friction


def best_point(points: dict, cap: float, run: str = RELEASE) -> tuple[str, str, dict]:
    """(rule, N, point) at the challenge age with the fewest adults 25+ asked on test among the
    interval and probability rules whose test share of minors let through is within the cap."""
    key = str(CHALLENGE_AGE)
    found = [
        (rule, key, points[run][rule][key])
        for rule in ("interval", "probability")
        if key in points[run].get(rule, {})
    ]
    within = [f for f in found if f[2]["test"][FPR][0] <= cap] or found
    return min(within, key=lambda f: f[2]["test"][FRICTION][0])


def decision_numbers(results: Results) -> dict[str, object]:
    """Formatted numbers of the release's operating points and the targets ({} before the stage)."""
    if not results.exists(POINTS):
        return {}
    record = results.json(POINTS)
    cap, points = record["max_minor_pass_rate"], record["runs"]
    out: dict[str, object] = {
        "cap": pct(cap, 0),
        "max_friction": pct(MAX_FRICTION, 0),
        "resamples": num(record["bootstrap"]["resamples"]),
        "level": pct(record["bootstrap"]["level"], 0),
    }
    for rule, by_n in points[RELEASE].items():
        for n, point in by_n.items():
            tag = f"{rule}_{n}"
            out[f"{tag}_param"] = f"{point['parameter']:g}"
            out[f"{tag}_fpr"], out[f"{tag}_friction"] = (
                share(point["test"][FPR]),
                share(point["test"][FRICTION]),
            )
            out[f"{tag}_young"] = share(point["test"][FRICTION_YOUNG])
            out[f"{tag}_met"] = meets(point, cap)
    rule, n, point = best_point(points, cap)
    out.update(
        best_rule=RULE_NAMES[rule],
        best_n=n,
        best_fpr=share(point["test"][FPR]),
        best_friction=share(point["test"][FRICTION]),
        best_met=meets(point, cap),
        any_met=any(
            meets(p, cap) for r in ("interval", "probability") for p in points[RELEASE].get(r, {}).values()
        ),
    )
    meta_file = f"models/{experiments.RELEASE}/metadata.json"
    old = results.json(meta_file).get("interval_operating_point") if results.exists(meta_file) else None
    if old:
        out.update(
            old_z=f"{old['z']:g}",
            old_cap=pct(old["max_minor_pass_rate"], 0),
            old_fpr=pct(old["test"][FPR]),
            old_friction=pct(old["test"][FRICTION]),
        )
    return out


def operating_table(results: Results) -> Markdown:
    """The release's operating point of every rule and challenge age: chosen on validation, on test."""
    if not results.exists(POINTS):
        return not_yet(COMMANDS[POINTS])
    record = results.json(POINTS)
    cap = record["max_minor_pass_rate"]
    rows = []
    for rule, by_n in record["runs"][RELEASE].items():
        for n, point in by_n.items():
            test = point["test"]
            rows.append(
                {
                    "rule": RULE_NAMES[rule],
                    "N": "any" if n == "any" else n,
                    "chosen on validation": f"{PARAMETER_NAMES[rule]} = {point['parameter']:g}"
                    + ("" if point["target_reached_on_validation"] else " (cap missed)"),
                    "13-17 through": share(test[FPR]),
                    "13-16 through": share(test[FPR_YOUNG]),
                    "25+ asked": share(test[FRICTION]),
                    "18-24 asked": share(test[FRICTION_YOUNG]),
                    "targets met": "yes" if meets(point, cap) else "no",
                }
            )
    first = next(iter(record["runs"][RELEASE]["threshold"].values()))["test"]
    caption = (
        f"Operating points of the release ({experiments.RELEASE}) for each rule, chosen on validation as "
        f"the fewest adults 25+ asked with at most {pct(cap, 0)} of 13-17 year-olds let through, then "
        f"scored once on the test split ({num(first['n_13_17'])} faces aged 13-17, "
        f"{num(first['n_25plus'])} aged 25+; {pct(record['bootstrap']['level'], 0)} percentile bootstrap "
        f"intervals, {num(record['bootstrap']['resamples'])} resamples). Targets: at most {pct(cap, 0)} "
        f"through and at most {pct(MAX_FRICTION, 0)} of 25+ asked (results/{POINTS})."
    )
    return table(pd.DataFrame(rows), caption, "decision-points")


def runs_table(results: Results, n: int = CHALLENGE_AGE) -> Markdown:
    """Every run's interval-rule operating point at Challenge ``n`` on test (and its threshold rule)."""
    if not results.exists(POINTS):
        return not_yet(COMMANDS[POINTS])
    record = results.json(POINTS)
    rows = []
    for run, rules in record["runs"].items():
        if run == RELEASE:
            continue
        point, thr = rules.get("interval", {}).get(str(n)), rules["threshold"]["any"]
        rows.append(
            {
                "run": run,
                "threshold t": f"{thr['parameter']:g}",
                "13-17 through (t)": share(thr["test"][FPR]),
                "25+ asked (t)": share(thr["test"][FRICTION]),
                "z": "n/a" if point is None else f"{point['parameter']:g}",
                "13-17 through (z)": "n/a" if point is None else share(point["test"][FPR]),
                "25+ asked (z)": "n/a" if point is None else share(point["test"][FRICTION]),
            }
        )
    caption = (
        f"Every run with predictions: the threshold rule and the interval rule at N = {n}, each chosen on "
        f"validation under the same cap ({pct(record['max_minor_pass_rate'], 0)} of 13-17 let through), "
        f"on test (results/{POINTS})."
    )
    return table(pd.DataFrame(rows), caption, "decision-runs")


def decision_figures(results: Results) -> Markdown:
    if not results.exists(POINTS):
        return not_yet(COMMANDS[POINTS])
    record = results.json(POINTS)
    cap, level = pct(record["max_minor_pass_rate"], 0), pct(record["bootstrap"]["level"], 0)
    return blocks(
        results.figure(
            "decision/curves.png",
            f"Decision curves of the release on test for Challenge 21, 25 and 30: 13-17 year-olds let "
            f"through against adults 25+ asked (top), 13-16 against 18-24 (bottom), for the threshold, "
            f"interval and probability rules, with {level} bootstrap bands; dots: the operating points "
            f"chosen on validation (at most {cap} of 13-17 through).",
            "decision-curves",
        ),
        results.figure(
            "decision/groups.png",
            f"Challenge 25 decision curves of the release per gender and per ethnicity on test "
            f"({level} bootstrap bands; n = faces aged 13-17 / 25+ in the group).",
            "decision-groups",
        ),
        results.figure(
            "decision/runs.png", "Challenge 25, interval rule: every run's test curve.", "decision-runs"
        ),
    )


def calibration_numbers(results: Results) -> dict[str, object]:
    """Coverage of the calibrated TARGET_LEVEL interval on test: overall, worst age group, targets."""
    if not results.exists(COVERAGE):
        return {}
    record, cov = results.json(INTERVALS), results.csv(COVERAGE)
    method = record["method"]
    at = cov[(cov["method"] == method) & (cov["level"] == TARGET_LEVEL)]
    overall = at[at["group_type"] == "overall"].iloc[0]
    ages = at[at["group_type"] == "age_group"]
    worst = ages.loc[ages["coverage"].idxmin()]
    raw = cov[
        (cov["method"] == "uncalibrated") & (cov["level"] == TARGET_LEVEL) & (cov["group_type"] == "overall")
    ]
    low, high = COVERAGE_RANGE
    return {
        "method": method,
        "how": describe_calibration(record),
        "level": pct(TARGET_LEVEL, 0),
        "overall": pct(overall["coverage"]),
        "overall_ci": f"{pct(overall['coverage_low'])} to {pct(overall['coverage_high'])}",
        "width": num(overall["mean_width"], 1),
        "worst_group": worst["group"],
        "worst": pct(worst["coverage"]),
        "worst_n": num(worst["n"]),
        "raw": pct(raw["coverage"].iloc[0]),
        "raw_width": num(raw["mean_width"].iloc[0], 1),
        "range": f"{pct(low, 0)}-{pct(high, 0)}",
        "min_group": pct(MIN_GROUP_COVERAGE, 0),
        "overall_met": low <= overall["coverage"] <= high,
        "groups_met": bool((ages["coverage"] >= MIN_GROUP_COVERAGE).all()),
        "short": ", ".join(
            f"{g} ({pct(c)})"
            for g, c in zip(ages["group"], ages["coverage"], strict=True)
            if c < MIN_GROUP_COVERAGE
        )
        or "none",
    }


def coverage_section(results: Results) -> Markdown:
    """Coverage and width per group of the calibrated and uncalibrated intervals, and the figure."""
    if not results.exists(COVERAGE):
        return not_yet(COMMANDS[INTERVALS])
    record, cov = results.json(INTERVALS), results.csv(COVERAGE)
    method = record["method"]
    rows = []
    for (group_type, group), part in cov[cov["method"].isin([method, "uncalibrated"])].groupby(
        ["group_type", "group"], sort=False
    ):
        row = {"group": "all" if group_type == "overall" else group, "n": num(part["n"].iloc[0])}
        for level in sorted(part["level"].unique()):
            mine = part[(part["method"] == method) & (part["level"] == level)].iloc[0]
            row[f"{pct(level, 0)} covered"] = share(
                [mine["coverage"], mine["coverage_low"], mine["coverage_high"]]
            )
            row[f"{pct(level, 0)} width"] = num(mine["mean_width"], 1)
        raw = part[(part["method"] == "uncalibrated") & (part["level"] == TARGET_LEVEL)].iloc[0]
        row[f"uncalibrated {pct(TARGET_LEVEL, 0)}"] = pct(raw["coverage"])
        rows.append(row)
    caption = (
        f"Coverage of the calibrated age intervals on the test split ({describe_calibration(record)}), "
        f"with 95% percentile bootstrap intervals and mean widths "
        f"(years); last column: estimate ± the normal quantile × sd, uncalibrated (results/{COVERAGE})."
    )
    figure = results.figure(
        "calibration/coverage.png",
        f"Coverage per true age group on test of the {method} calibrated intervals at each "
        "level and of the uncalibrated 90% interval (dotted: the stated level), and their "
        "mean widths.",
        "coverage",
    )
    return blocks(table(pd.DataFrame(rows), caption, "coverage"), figure)


def verdict(met: bool) -> str:
    """'is met' / 'is not met': the prose's judgement of a target from a results file."""
    return "is met" if met else "is not met"
