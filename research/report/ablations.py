"""The ablations sections, one per study (research/configs/ablations.py): what each arm changes,
how far it moves validation MAE from the reference arm, which differences exceed the seed-to-seed
spread, and how close the reference arm lands to the full run it stands in for."""

from __future__ import annotations

import pandas as pd
from IPython.display import Markdown

from research.configs.ablations import STUDIES
from research.report.results import Results, blocks, not_yet, num, paragraph, table
from research.report.wording import join_names, plural

REFERENCE_ARM = "full"  # the arm with every head and the default settings (research/configs/ablations.py)


def spread(mean: float, sd: float, scale: float = 1.0, digits: int = 2) -> str:
    """Mean ± sd over seeds; the mean alone for one seed; 'head off' where the arm has no such head."""
    if mean != mean:
        return "head off"
    return num(mean * scale, digits) + ("" if sd != sd else f" ± {num(sd * scale, digits)}")


def ablation_table(arms: pd.DataFrame, reference: str | None) -> pd.DataFrame:
    """The arms as shown: validation metrics (mean ± sd) and the change from the reference arm."""
    delta = arms["val_age_mae_mean"] - arms.loc[reference, "val_age_mae_mean"] if reference else None
    return pd.DataFrame(
        {
            "arm": arms.index,
            "what changes": arms["description"],
            "seeds": arms["n_seeds"],
            "val age MAE": [
                spread(a, b) for a, b in zip(arms["val_age_mae_mean"], arms["val_age_mae_std"], strict=True)
            ],
            f"vs {reference}": [
                "" if reference is None or arm == reference else f"{delta[arm]:+.2f}" for arm in arms.index
            ],
            "val gender %": [
                spread(a, b, 100, 1)
                for a, b in zip(
                    arms["val_gender_accuracy_mean"], arms["val_gender_accuracy_std"], strict=True
                )
            ],
            "val ethn. %": [
                spread(a, b, 100, 1)
                for a, b in zip(
                    arms["val_ethnicity_accuracy_mean"], arms["val_ethnicity_accuracy_std"], strict=True
                )
            ],
            "min/run": arms["train_minutes_mean"].map(lambda x: num(x, 1)),
        }
    )


def setup_sentence(arms: pd.DataFrame, summary: dict) -> str:
    """What the arms share, on which split they are scored, and how many runs have finished."""
    shared = summary["shared_overrides"]
    split = summary.get("split", "validation").replace("validation", "validation split", 1)
    seeds = sorted(arms["n_seeds"].unique())
    finished, declared = summary["runs_finished"], summary["runs_declared"]
    done = (
        f"All {num(declared)} declared runs had finished"
        if finished == declared
        else f"{num(finished)} of the {num(declared)} declared runs had finished"
    )
    start = summary.get("init_from", "")
    start = f", continued from the export `{start}`," if start else ""
    return (
        f"Each arm changes one setting of {summary.get('base_config', 'the CNN baseline')} "
        f"({summary.get('profile', '')} profile) trained{start} for only "
        f"{shared.get('optimizer.num_epochs', '?')} "
        f"epochs, the same short schedule for every arm, and is scored on the {split}: these are comparisons "
        f"between arms, not test results, and the test split is never read. {done} when the table was "
        f"written; the table shows the {plural(len(arms), 'arm')} with at least one finished run "
        f"({' or '.join(map(str, seeds))} seed{'s' if max(seeds) > 1 else ''} each"
        + (", mean ± standard deviation where two ran)." if max(seeds) > 1 else ").")
    )


def differences_sentences(arms: pd.DataFrame, reference: str | None, epochs: object) -> list[str]:
    """The best arm, each arm's change from the reference, and which changes are conclusive."""
    if len(arms) < 2:
        return []
    best = arms["val_age_mae_mean"].idxmin()
    text = [f"The best arm on validation MAE is {best} ({num(arms.loc[best, 'val_age_mae_mean'], 2)} years)."]
    if reference is None:
        return text
    delta = arms["val_age_mae_mean"] - arms.loc[reference, "val_age_mae_mean"]
    others = [arm for arm in arms.index if arm != reference]
    text.append(
        f"Relative to {reference} ({num(arms.loc[reference, 'val_age_mae_mean'], 2)} years), validation MAE "
        f"changes with {', '.join(f'{arm} by {delta[arm]:+.2f}' for arm in others)} years."
    )
    seed_sd = arms.loc[arms["n_seeds"] >= 2, "val_age_mae_std"].max()  # the largest seed spread of any arm
    if seed_sd == seed_sd:
        clear = [arm for arm in others if abs(delta[arm]) > 2 * seed_sd]
        verdict = (
            f"only {join_names(clear)} differ{'s' if len(clear) == 1 else ''} from {reference} by more."
            if clear
            else f"no arm differs from {reference} by more."
        )
        text.append(
            f"The seed-to-seed standard deviation reaches {num(seed_sd, 2)} years, so a difference smaller "
            f"than about twice that is not conclusive; {verdict}"
        )
    else:
        text.append(
            "No arm has a second seed yet, so the seed-to-seed spread is unknown and none of these "
            "differences can be called conclusive."
        )
    if "no_augment" in arms.index:
        d = delta["no_augment"]
        text.append(
            f"Removing augmentation changes validation MAE by {d:+.2f} years"
            + (
                f"; augmentation usually pays off over long training, so a lower MAE without it after "
                f"{epochs} "
                "epochs does not show it is useless in the full runs."
                if d < 0
                else f": the sign suggests augmentation helps even in {epochs} epochs."
            )
        )
    return text


# How close (validation MAE, years) a study's reference arm must land to the full run it stands in
# for, so that its arms' differences say something about the full recipe (issue 14).
REFERENCE_GAP = 0.3


def reference_sentence(arms: pd.DataFrame, summary: dict, reference: str | None) -> str:
    """How far the reference arm lands from the full-length run it stands in for."""
    if reference is None or "reference_run" not in summary:
        return ""
    full = summary["reference_val"]["age_mae"]
    gap = arms.loc[reference, "val_age_mae_mean"] - full
    verdict = (f"within the {num(REFERENCE_GAP, 1)} years that make the short profile a stand-in for it"
               if abs(gap) <= REFERENCE_GAP else
               f"more than the {num(REFERENCE_GAP, 1)} years that would make the short profile a stand-in "
               "for it, so the arms' differences may not carry over")
    return (f"The {reference} arm's validation MAE ({num(arms.loc[reference, 'val_age_mae_mean'], 2)}) is "
            f"{gap:+.2f} years from the full run {summary['reference_run']} ({num(full, 2)} after "
            f"{summary['reference_epochs']} epochs in all), {verdict}.")


def ablation_section(results: Results, study: str = "cnn") -> Markdown:
    """One study's ablations paragraph, table and figure, or how to make them."""
    folder = STUDIES[study].out.removeprefix("results/")
    if not results.exists(f"{folder}/ablations.csv"):
        return not_yet(f"python scripts/ablate.py --study {study}")
    arms = results.csv(f"{folder}/ablations.csv").set_index("arm")
    summary = results.json(f"{folder}/summary.json")
    reference = REFERENCE_ARM if REFERENCE_ARM in arms.index else None
    epochs = summary["shared_overrides"].get("optimizer.num_epochs", "?")
    text = " ".join(filter(None, [setup_sentence(arms, summary), reference_sentence(arms, summary, reference),
                                  *differences_sentences(arms, reference, epochs)]))
    base = summary.get("title", summary.get("base_config", "the CNN baseline"))
    versus = f" 'vs {reference}': change in validation MAE from the {reference} arm." if reference else ""
    return blocks(
        paragraph(text),
        table(
            ablation_table(arms, reference),
            f"Ablations of {base}: validation metrics after {epochs} "
            f"epochs (results/{folder}/ablations.csv).{versus}",
            folder,
        ),
        results.figure(
            f"{folder}/ablations.png",
            f"Validation age MAE, gender and ethnicity accuracy "
            f"per ablation arm of {base} (bars: mean over seeds; dots: single seeds).",
            folder,
        ),
    )
