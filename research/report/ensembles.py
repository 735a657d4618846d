"""The ensemble paragraph and tables: how the headline ensemble mixes its members, the subsets
scored on validation, and the baseline trained from several seeds."""

from __future__ import annotations

import ast

import pandas as pd
from IPython.display import Markdown

from research.configs import experiments
from research.report.results import Results, blocks, metric, not_yet, num, paragraph, table
from research.report.runs import TestedModels, ensemble_members, intervals_overlap
from research.report.wording import join_names, plural

SUBSETS_SHOWN = 8


def subset_maes(summary: dict) -> pd.Series:
    """Validation age MAE per equal-weight subset ('a + b' -> MAE), lowest first. Older summaries
    store the mapping as its repr."""
    subsets = summary.get("val_age_mae_of_subsets") or {}
    if isinstance(subsets, str):
        subsets = ast.literal_eval(subsets)
    return pd.Series(subsets, dtype=float).sort_values()


def weighting_phrase(summary: dict) -> str:
    """How the members' weights were set, as a phrase for 'of <members> ...'."""
    if summary.get("weighting") != "greedy":
        return "with equal weights"
    return (
        f"with weights chosen on the validation split by greedy ensemble selection with replacement "
        f"(Caruana et al., 2004: {summary['greedy_steps']} steps, each adding the run that most lowers the "
        "mixture's validation MAE; a weight is the share of steps that picked the run)"
    )


def ensemble_paragraph(models: TestedModels, name: str = experiments.HEADLINE_ENSEMBLE) -> str:
    """What the ensemble mixes and how, its validation and test MAE against the main run's."""
    s, em, m = models.summaries[name], models.metrics[name], models.metrics[experiments.MAIN_RUN]
    subsets = subset_maes(s)
    best = models.best(models.on(models.protocol(name)))
    rank = (
        f"the lowest test MAE of all {models.protocol(name)}-protocol models"
        if best == name
        else f"a test MAE behind {best}'s"
    )
    record = (
        (
            f"; for the record, the best equal-weight subset of the "
            f"{num(s.get('subsets_scored', len(subsets)))} tried is "
            f"{subsets.index[0]} ({num(subsets.iloc[0], 2)} years)"
        )
        if len(subsets)
        else ""
    )
    overlap = "overlap" if intervals_overlap(em, m) else "do not overlap"
    better = em["challenge25_fpr_13_17"] < m["challenge25_fpr_13_17"]
    return (
        f"**Ensemble.** The {name} model averages the predicted age distributions (and class probabilities) "
        f"of {ensemble_members(s)} {weighting_phrase(s)}, and takes the expected age of the mixture. Its "
        f"validation MAE is {num(s['val_age_mae'], 2)} years{record}. The test split was scored once, "
        f"afterwards. It reaches {rank}, {metric(em, 'age_mae')} years against {metric(m, 'age_mae')} for "
        f"the ResNet-50 alone (intervals {overlap}); gender accuracy is "
        f"{metric(em, 'gender_accuracy', 100, 1)} % "
        f"and ethnicity accuracy {metric(em, 'ethnicity_accuracy', 100, 1)} %. For age verification it is "
        f"{'slightly better' if better else 'no better'}: at Challenge 25 it lets "
        f"{metric(em, 'challenge25_fpr_13_17', 100, 1)} % of 13-17 year-olds through, against "
        f"{metric(m, 'challenge25_fpr_13_17', 100, 1)} % for the ResNet-50."
    )


def subsets_table(
    models: TestedModels, name: str = experiments.HEADLINE_ENSEMBLE, shown: int = SUBSETS_SHOWN
) -> Markdown:
    """The best equal-weight subsets of the ensemble's candidate runs on validation."""
    subsets = subset_maes(models.summaries[name])
    candidates = [s for s in subsets.index if " + " not in s]
    frame = pd.DataFrame(
        {
            "members": subsets.index[:shown],
            "val age MAE": subsets.iloc[:shown].map(lambda x: num(x, 3)).to_numpy(),
        }
    )
    return table(
        frame,
        f"Validation age MAE of the {min(shown, len(subsets))} best equal-weight mixtures among the "
        f"{num(len(subsets))} subsets of {plural(len(candidates), 'candidate run')} "
        f"({join_names(sorted(candidates))}; results/runs/{name}/summary.json).",
        "ensemble-subsets",
    )


SEED_COLUMNS = {
    "val_age_MAE": "val age MAE",
    "test_age_MAE": "test age MAE",
    "test_gender_acc_%": "test gender %",
    "test_ethnicity_acc_%": "test ethnicity %",
    "train_minutes": "train min",
}


def seeds_table(results: Results) -> Markdown | None:
    """The baseline config trained from several seeds (results/summary/seeds.csv), or None."""
    if not results.exists("summary/seeds.csv"):
        return None
    seeds = results.csv("summary/seeds.csv")
    if "seed" not in seeds:
        return None
    runs = seeds[seeds["seed"].astype(str) != "-"]
    return table(
        seeds.rename(columns=SEED_COLUMNS),
        f"The {experiments.SEED_BASE} config trained from {plural(len(runs), 'seed')} "
        f"({join_names(runs['seed'].astype(str))}), nothing else changed: validation MAE of the tested "
        "(best-epoch) checkpoint and test metrics, then mean ± sd over the seeds "
        "(results/summary/seeds.csv).",
        "seeds",
    )


def ensemble_section(
    results: Results, models: TestedModels, name: str = experiments.HEADLINE_ENSEMBLE
) -> Markdown:
    """The paragraph and the two tables, or how to make the ensemble."""
    if name not in models.metrics:
        return not_yet("python scripts/ensemble.py")
    return blocks(
        paragraph(ensemble_paragraph(models, name)), subsets_table(models, name), seeds_table(results)
    )
