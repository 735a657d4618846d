"""The sentences that summarise the study: the introduction's headline and the conclusion."""

from __future__ import annotations

from research.configs import experiments
from research.report.results import metric, num
from research.report.runs import TestedModels, intervals_overlap, run_minutes
from research.report.wording import join_names

MAIN, BASE, ENSEMBLE = experiments.MAIN_RUN, experiments.BASELINE_RUN, experiments.HEADLINE_ENSEMBLE


def headline_numbers(models: TestedModels) -> dict[str, object]:
    """The main run's test metrics and training, the baseline's and the coral run's MAE."""
    m, s = models.metrics[MAIN], models.summaries[MAIN]
    return {
        "main_mae": metric(m, "age_mae"),
        "main_gender": metric(m, "gender_accuracy", 100, 1),
        "main_eth": metric(m, "ethnicity_accuracy", 100, 1),
        "main_px": s["image_size"],
        "main_epochs": s["epochs"],
        "main_device": s["device_kind"],
        "main_minutes": num(run_minutes(s), 1),
        "base_mae": metric(models.metrics[BASE], "age_mae"),
        "c25": metric(m, "challenge25_fpr_13_17", 100, 1),
        "coral_mae": metric(models.metrics[experiments.CORAL_MAIN_RUN], "age_mae"),
        "ensemble_sentence": ensemble_sentence(models),
    }


def ensemble_sentence(models: TestedModels, name: str = ENSEMBLE) -> str:
    """'A validation-weighted ensemble of a, b and c (...) reaches X, the lowest of all ...'; ''
    without the ensemble."""
    if name not in models.metrics:
        return ""
    s = models.summaries[name]
    best = models.best(models.on(models.protocol(name)))
    rank = (
        f"the lowest of all {models.protocol(name)}-protocol models"
        if best == name
        else f"behind {best} ({metric(models.metrics[best], 'age_mae')})"
    )
    kind = "A validation-weighted" if s.get("weighting") == "greedy" else "An equal-weight"
    return (
        f"{kind} ensemble of {join_names(s['members'])} (their predicted age distributions mixed) reaches "
        f"{metric(models.metrics[name], 'age_mae')}, {rank}."
    )


def conclusion_extra(models: TestedModels, peer: dict | None, release: dict, speed: dict) -> str:
    """The conclusion's sentences on the ensemble, the peer package and the release, where they exist."""
    text = []
    if ENSEMBLE in models.metrics:
        s = models.summaries[ENSEMBLE]
        best = models.best(models.on(models.protocol(ENSEMBLE))) == ENSEMBLE
        overlap = (
            ", its interval overlapping the ResNet-50's"
            if intervals_overlap(models.metrics[ENSEMBLE], models.metrics[MAIN])
            else ""
        )
        text.append(
            f"Mixing the predicted distributions of {join_names(s['members'])} gives the {ENSEMBLE} model, "
            + (f"our best {models.protocol(ENSEMBLE)}-protocol model by MAE " if best else "a further model ")
            + f"({metric(models.metrics[ENSEMBLE], 'age_mae')} years{overlap})."
        )
    if peer:
        text.append(
            f"The ready-made `{peer['name']}` package, trained on other data, has a higher MAE on the same "
            f"images ({peer['mae']})."
        )
    if release:
        at = f", in {speed['p50']} ms per photo at the median" if speed else ""
        text.append(
            f"The released {release['name']} ({release['mb']} MB) runs in a prediction command that finds, "
            f"aligns and estimates faces in new photos{at}."
        )
    return " ".join(text)
