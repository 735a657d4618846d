"""The evaluation section: headline and further test metrics, and the breakdowns by age group,
gender and ethnicity of the main run (results/runs/*/metrics_test.json, results/breakdowns/)."""

from __future__ import annotations

import pandas as pd
from IPython.display import Markdown

from research.configs import experiments
from research.report.results import Results, interval, intervals, metric, num, pct, table
from research.report.runs import TestedModels, intervals_overlap, setup_description
from research.report.wording import join_names, plural

MAIN = experiments.MAIN_RUN
# Each protocol's main model and the baseline it is compared with.
PAIRS = {
    "utkface": (experiments.MAIN_RUN, experiments.BASELINE_RUN),
    "coral": (experiments.CORAL_MAIN_RUN, experiments.CORAL_BASELINE_RUN),
}


def level(models: TestedModels) -> str:
    """The confidence level of the main run's bootstrap intervals: '95%'."""
    return pct(models.metrics[MAIN]["bootstrap"]["level"], 0)


def ensemble_caption(name: str, summary: dict, shown: list[str]) -> str:
    """'ensemble mixes 3 runs: a, b and c (c is not in this table).' from the ensemble's summary.json."""
    members = summary["members"]
    absent = [m for m in members if m not in shown]
    note = (
        f" ({join_names(absent)} {'is' if len(absent) == 1 else 'are'} not in this table)" if absent else ""
    )
    return f"{name} mixes {plural(len(members), 'run')}: {join_names(members)}{note}."


def headline_table(models: TestedModels) -> Markdown:
    """Test MAE and accuracies with intervals, one row per model in headline order."""
    rows = [
        {
            "run": n,
            "protocol": models.protocol(n),
            "training": setup_description(models.summaries[n]),
            "test n": num(mt["n"]),
            "age MAE": metric(mt, "age_mae"),
            "gender acc %": metric(mt, "gender_accuracy", 100, 1),
            "ethnicity acc %": metric(mt, "ethnicity_accuracy", 100, 1),
        }
        for n, mt in models.metrics.items()
    ]
    reduced = [n for n in models.names if models.summaries[n].get("reduced_run")]
    notes = (
        [f"{join_names(reduced)} {'is' if len(reduced) == 1 else 'are'} the reduced CPU profile."]
        if reduced
        else []
    )
    notes += [ensemble_caption(n, models.summaries[n], models.names) for n in models.ensembles()]
    return table(
        pd.DataFrame(rows),
        f"Headline test metrics with {level(models)} bootstrap intervals "
        f"(results/runs/*/metrics_test.json). {' '.join(notes)}",
        "headline",
    )


def secondary_table(models: TestedModels) -> Markdown:
    """Further test metrics of every model."""
    rows = [
        {
            "run": n,
            "age RMSE": metric(mt, "age_rmse"),
            "median": num(mt["age_median_ae"], 2),
            "signed": num(mt["age_mean_signed_error"], 2),
            "within 3 y %": num(100 * mt["age_cs3"], 1),
            "within 5 y %": num(100 * mt["age_cs5"], 1),
            "within 10 y %": num(100 * mt["age_cs10"], 1),
            "gender F1": num(mt["gender_f1"], 3),
            "gender AUC": num(mt["gender_auc"], 3),
            "ethn. macro-F1": num(mt["ethnicity_macro_f1"], 3),
        }
        for n, mt in models.metrics.items()
    ]
    return table(
        pd.DataFrame(rows),
        "Further test metrics: age RMSE (with interval), median absolute error, mean "
        "signed error (prediction minus label), share within 3, 5 and 10 years, gender F1 and AUC, "
        "ethnicity macro-F1.",
        "secondary",
    )


def single_model_sentence(models: TestedModels) -> str:
    """Which single model is best per protocol, and whether its interval overlaps the baseline's."""
    pairs = {p: pair for p, pair in PAIRS.items() if all(n in models.metrics for n in pair)}
    best = {p: models.best(models.on(p, single=True)) for p in pairs}
    if all(best[p] == main for p, (main, _) in pairs.items()):
        lead = (
            f"Of the single models, the ResNet-50 has the lowest age MAE on "
            f"{'both protocols' if len(pairs) == 2 else 'the ' + join_names(pairs) + ' protocol'}"
        )
    else:
        lead = "Of the single models, " + join_names(
            f"{best[p]} has the lowest age MAE on the {p} protocol" for p in pairs
        )
    overlap = {p: intervals_overlap(models.metrics[a], models.metrics[b]) for p, (a, b) in pairs.items()}
    if all(overlap.values()):
        tail = ", but the margin over the CNN baseline is modest: their intervals overlap on " + (
            "both splits" if len(pairs) == 2 else f"the {join_names(pairs)} split"
        )
    elif not any(overlap.values()):
        tail = ", and the intervals of the ResNet-50 and the CNN baseline do not overlap on either split"
    else:
        yes, no = ([p for p in pairs if overlap[p] == flag] for flag in (True, False))
        tail = (
            f"; its interval and the CNN baseline's overlap on the {join_names(yes)} split but not on the "
            f"{join_names(no)} split"
        )
    return lead + tail + " (a paired comparison on the same images would be sharper)."


def evaluation_numbers(models: TestedModels) -> dict[str, str]:
    """The main run's bootstrap settings and error profile, and how it compares with the baseline."""
    m = models.metrics[MAIN]
    boot, conf = m["bootstrap"], m["ethnicity_confusion"]
    return {
        "resamples": num(boot["resamples"]),
        "level": pct(boot["level"], 0),
        "cs5": num(100 * m["age_cs5"], 1),
        "median": num(m["age_median_ae"], 2),
        "rmse": num(m["age_rmse"], 2),
        "macro": num(m["ethnicity_macro_f1"], 3),
        "others_recall": pct(conf[4][4] / sum(conf[4])),
        "single_models": single_model_sentence(models),
    }


def _age_groups(results: Results, run: str) -> pd.DataFrame:
    groups = results.csv(f"breakdowns/{run}/by_group.csv")
    return groups[groups["group_type"] == "age_group"].set_index("group")


def mae_by_age_table(results: Results, models: TestedModels) -> Markdown:
    """Age MAE with intervals per true age group, one column per utkface-protocol model."""
    utk = [n for n in models.on("utkface") if results.exists(f"breakdowns/{n}/by_group.csv")]
    columns = {n: intervals(_age_groups(results, n), "age_mae") for n in utk}
    groups = _age_groups(results, MAIN)
    frame = pd.DataFrame({"age group": groups.index, "test n": groups["n"].map(num).to_numpy(), **columns})
    return table(
        frame,
        f"Age MAE by true age group on the utkface test split, per model, with {level(models)} "
        "bootstrap intervals (results/breakdowns/*/by_group.csv).",
        "mae-by-age",
    )


def main_by_age(results: Results) -> tuple[Markdown, dict[str, str]]:
    """The main run per age group (signed error, accuracies) and the numbers the text quotes."""
    ag = _age_groups(results, MAIN)
    shown = pd.DataFrame(
        {
            "group": ag.index,
            "n": ag["n"].map(num),
            "signed error (y)": ag["mean_signed_error"].map(lambda x: num(x, 2)),
            "gender acc": ag["gender_accuracy"].map(pct),
            "ethnicity acc": ag["ethnicity_accuracy"].map(pct),
        }
    )
    numbers = {
        "best": ag["age_mae"].idxmin(),
        "best_mae": num(ag["age_mae"].min(), 2),
        "worst": ag["age_mae"].idxmax(),
        "worst_mae": num(ag["age_mae"].max(), 2),
        "teen_bias": signed_years(ag.loc["13-17", "mean_signed_error"]),
        "old_bias": signed_years(ag.loc["60+", "mean_signed_error"]),
        "child_gender": pct(ag.loc["0-12", "gender_accuracy"]),
    }
    caption = (
        f"{MAIN} by age group: mean signed error (prediction minus label) and the other heads' accuracy "
        f"(results/breakdowns/{MAIN}/by_group.csv)."
    )
    return table(shown, caption, "by-age-main"), numbers


def signed_years(error: float) -> str:
    """A mean signed error as words: '3.22 years too old', '4.02 years too young'."""
    return f"{num(abs(error), 2)} years too {'old' if error > 0 else 'young'}"


def group_table(results: Results, models: TestedModels) -> Markdown:
    """The main run by gender, ethnicity and their combination."""
    g = results.csv(f"breakdowns/{MAIN}/by_group.csv")
    grp = g[g["group_type"].isin(["gender", "ethnicity", "ethnicity_x_gender"])]
    shown = pd.DataFrame(
        {
            "grouping": grp["group_type"].str.replace("_x_", " x "),
            "group": grp["group"],
            "n": grp["n"].map(num),
            "age MAE": intervals(grp, "age_mae"),
            "signed error": grp["mean_signed_error"].map(lambda x: num(x, 2)),
            "gender acc": grp["gender_accuracy"].map(pct),
            "ethnicity acc": grp["ethnicity_accuracy"].map(pct),
        }
    )
    return table(
        shown,
        f"{MAIN}: test metrics by gender, ethnicity and their combination, with {level(models)} "
        "bootstrap intervals for MAE.",
        "by-group-main",
    )


def gaps_table(results: Results) -> tuple[Markdown, dict[str, str]]:
    """Worst against best group per grouping (the fairness gaps), and the numbers the text quotes."""
    gaps = results.csv(f"breakdowns/{MAIN}/fairness_gaps.csv")
    shown = pd.DataFrame(
        {
            "grouping": gaps["group_type"].str.replace("_", " "),
            "worst (MAE)": gaps["worst_group"] + " (" + gaps["worst_mae"].map(lambda x: num(x, 2)) + ")",
            "best (MAE)": gaps["best_group"] + " (" + gaps["best_mae"].map(lambda x: num(x, 2)) + ")",
            "gap": intervals(gaps, "mae_gap"),
            "ratio": gaps["mae_ratio"].map(lambda x: num(x, 2)),
            "intervals separate": gaps["intervals_separate"].map({True: "yes", False: "no"}),
        }
    )
    fg = gaps.set_index("group_type")
    numbers = {
        "eth_worst": fg.loc["ethnicity", "worst_group"],
        "eth_best": fg.loc["ethnicity", "best_group"],
        "eth_gap": _gap(fg, "ethnicity"),
        "gen_gap": _gap(fg, "gender"),
    }
    summary = results.json(f"breakdowns/{MAIN}/summary.json")
    caption = (
        f"{MAIN}: worst against best group (groups of at least {summary['min_group_n_for_gaps']} test "
        f"images), "
        f"the MAE gap with its {pct(summary['bootstrap']['level'], 0)} bootstrap interval and the MAE ratio "
        f"(results/breakdowns/{MAIN}/fairness_gaps.csv)."
    )
    return table(shown, caption, "gaps"), numbers


def _gap(gaps: pd.DataFrame, group_type: str) -> str:
    row = gaps.loc[group_type]
    return interval(row["mae_gap"], row["mae_gap_low"], row["mae_gap_high"])


def breakdown_figure(
    results: Results, models: TestedModels, file: str, caption: str, label: str, width: str = "100%"
) -> Markdown:
    """A figure of the main run's breakdowns; the caption names the run."""
    return results.figure(f"breakdowns/{MAIN}/{file}", f"{caption} ({MAIN}).", label, width)
