"""The release model's card, rendered from results files only (no number is typed by hand).

Inputs: the release metadata (test metrics with bootstrap intervals from metrics_test.json), the
release config (architecture, initialisation, input size), the release's rules.json (the command's
age correction, calibrated interval and operating points, from results/rules/), the age-bias
summary (results/bias/summary.json), the run folders (predictions_test.csv, each member's
device), the breakdowns folder (by_group.csv, fairness_gaps.csv, challenge_by_group.csv) and the
split summary (protocol shares). It can be re-rendered from a release folder without its
checkpoints: ``write_card``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from research.configs.predict import get_config
from research.evaluation.breakdowns import INTERVAL_METHODS
from research.evaluation.metrics import FPR_MINORS, FRICTION_ADULTS, FRICTION_YOUNG
from research.models.factory import describe_architecture, describe_initialisation
from research.release.card_command import command_section, interval_line
from research.runs.folder import RunFolder, lineage
from research.vocabulary import CHALLENGE_AGE, MINORS, PROTOCOLS, YOUNG_ADULTS, band_label

METRIC_LABELS = {
    "age_mae": ("Age MAE (years)", 1.0, 2),
    "age_rmse": ("Age RMSE (years)", 1.0, 2),
    "age_median_ae": ("Age median absolute error (years)", 1.0, 2),
    "age_mean_signed_error": ("Age mean signed error (years; + = too old)", 1.0, 2),
    "gender_accuracy": ("Gender accuracy (%)", 100.0, 1),
    "gender_auc": ("Gender ROC AUC", 1.0, 3),
    "ethnicity_accuracy": ("Ethnicity accuracy (%)", 100.0, 1),
    f"challenge{CHALLENGE_AGE}_{FPR_MINORS}": (
        f"Challenge {CHALLENGE_AGE}: {band_label(MINORS)} year-olds let through (%)", 100.0, 1),
    f"challenge{CHALLENGE_AGE}_{FRICTION_YOUNG}": (
        f"Challenge {CHALLENGE_AGE}: {band_label(YOUNG_ADULTS)} year-olds asked for ID (%)", 100.0, 1),
    f"challenge{CHALLENGE_AGE}_{FRICTION_ADULTS}": (
        f"Challenge {CHALLENGE_AGE}: {CHALLENGE_AGE}+ year-olds asked for ID (%)", 100.0, 1),
}


def _value(value: float | None, scale: float, digits: int) -> str:
    return "n/a" if value is None else f"{value * scale:.{digits}f}"


def metrics_table(metadata: dict) -> str:
    test = metadata["test_metrics"]
    rows = ["| metric | value | 95% interval |", "|---|---|---|"]
    for name, m in test["metrics"].items():
        label, scale, digits = METRIC_LABELS.get(name, (name, 1.0, 3))
        interval = ("-" if m["low"] is None else
                    f"[{_value(m['low'], scale, digits)}, {_value(m['high'], scale, digits)}]")
        rows.append(f"| {label} | {_value(m['value'], scale, digits)} | {interval} |")
    return "\n".join(rows)


def group_table(by_group: pd.DataFrame, group_type: str) -> str:
    part = by_group[by_group["group_type"] == group_type]
    rows = ["| group | n | age MAE [95% interval] | mean signed error | gender accuracy % |",
            "|---|---|---|---|---|"]
    for r in part.itertuples():
        rows.append(f"| {r.group} | {r.n} | {r.age_mae:.2f} [{r.age_mae_low:.2f}, {r.age_mae_high:.2f}] | "
                    f"{r.mean_signed_error:+.2f} | {100 * r.gender_accuracy:.1f} |")
    return "\n".join(rows)


def challenge_table(challenge: pd.DataFrame, threshold: int = CHALLENGE_AGE) -> str:
    part = challenge[challenge["threshold"] == threshold]
    minors, young = band_label(MINORS), band_label(YOUNG_ADULTS)
    rows = [f"| group | minors ({minors}) n | minors let through % [95%] | {young} asked % | "
            f"{CHALLENGE_AGE}+ asked % [95%] |",
            "|---|---|---|---|---|"]
    for r in part.itertuples():
        rows.append(f"| {r.group} | {r.n_13_17} | {100 * r.fpr_13_17:.1f} [{100 * r.fpr_13_17_low:.1f}, "
                    f"{100 * r.fpr_13_17_high:.1f}] | {100 * r.friction_18_24:.1f} | "
                    f"{100 * r.friction_25plus:.1f} [{100 * r.friction_25plus_low:.1f}, "
                    f"{100 * r.friction_25plus_high:.1f}] |")
    return "\n".join(rows)


def bias_findings(by_group: pd.DataFrame, gaps: pd.DataFrame, challenge: pd.DataFrame) -> list[str]:
    """One sentence per finding, every number read from the breakdown tables."""
    lines = []
    for r in gaps.itertuples():
        separate = "intervals do not overlap" if r.intervals_separate else "intervals overlap"
        lines.append(f"By {r.group_type.replace('_', ' ')}: MAE is highest for {r.worst_group} "
                     f"({r.worst_mae:.2f}, n={r.worst_n}) and lowest for {r.best_group} ({r.best_mae:.2f}, "
                     f"n={r.best_n}); gap {r.mae_gap:.2f} [{r.mae_gap_low:.2f}, {r.mae_gap_high:.2f}], "
                     f"{separate}.")
    ages = by_group[by_group["group_type"] == "age_group"].set_index("group")["mean_signed_error"]
    minors = band_label(MINORS)
    if minors in ages:
        lines.append(f"Mean signed error by age group runs from {ages.max():+.2f} years ({ages.idxmax()}) to "
                     f"{ages.min():+.2f} years ({ages.idxmin()}); {minors} year-olds are estimated "
                     f"{ages[minors]:+.2f} years off on average, which is what lets minors through "
                     "an age check.")
    c25 = challenge[(challenge["threshold"] == CHALLENGE_AGE) & (challenge["group_type"] != "overall")]
    worst = c25.iloc[c25[FPR_MINORS].argmax()]
    lines.append(f"At Challenge {CHALLENGE_AGE} the share of minors let through is highest for {worst.group} "
                 f"({100 * worst.fpr_13_17:.1f}% [{100 * worst.fpr_13_17_low:.1f}, "
                 f"{100 * worst.fpr_13_17_high:.1f}], only {worst.n_13_17} minors in the test split).")
    return lines


def _per_member(metadata: dict) -> str:
    count = metadata.get("num_members", 1)
    return f" ({count} members of {metadata['num_parameters'] // count:,})" if count > 1 else ""


def _device(run: Path) -> str:
    summary = RunFolder(run).summary()
    if summary["device_kind"] == "cpu":
        return f"the CPU ({summary['num_devices']} XLA host devices)"
    return f"{summary['num_devices']} x {summary['device_kind']}"


def source_lines(metadata: dict, config: dict, run: Path) -> list[str]:
    """Where the weights come from: the run, or each member of an ensemble with its weight; the
    device each was trained on is read from its run folder's summary.json."""
    src = metadata["source_run"]
    members = src.get("members")
    if not members:
        init_from = config["model"].get("init_from", "")
        seconds, epochs = lineage(Path(run).parent, RunFolder(run).summary())
        continued = (f", continuing the release `{init_from}` ({epochs} epochs and {seconds / 60:.0f} "
                     "training minutes in all, counting the runs it continued)" if init_from else "")
        return [f"- Trained from run `{src['path']}` (commit `{src['trained_at_commit']}`), "
                f"{src['epochs']} epochs on {_device(run)}{continued}, best epoch {src['best_epoch']} by "
                "validation age MAE."]
    how = ("with equal weights" if config["ensemble"]["weighting"] == "equal" else
           "with the weights below, chosen on the validation split by greedy selection (scripts/ensemble.py)")
    lines = [f"- An ensemble of {len(members)} networks of this architecture trained from different seeds "
             f"(ensemble run `{src['path']}`): their age distributions are mixed and their gender and "
             f"ethnicity probabilities averaged {how}. Members:"]
    lines += [f"  - `{m['name']}` weight {m['weight']:.2f}: trained at commit `{m['trained_at_commit']}`, "
              f"{m['epochs']} epochs on {_device(Path(run).parent / m['name'])}, "
              f"best epoch {m['best_epoch']} by validation age MAE" for m in members]
    return lines


def split_line(protocol: str, split_summary: dict, source: dict, n_test: int) -> str:
    """The protocol, its split shares and sizes (read from results/splits/summary.json)."""
    sizes = split_summary[protocol]["sizes"]
    total = sum(sizes.values())
    shares = "/".join(f"{100 * sizes[k] / total:.0f}" for k in ("train", "val", "test"))
    return (f"- Protocol `{protocol}`: {PROTOCOLS[protocol]}; train/validation/test {shares} "
            f"(split sha256 `{source['split_sha256'][:12]}…`), {source['train_images']} training images, "
            f"{n_test} test images.")


def inference_line(inference: dict | None, trained_flip: bool) -> list[str]:
    """How the command runs the network when the release carries inference.json (the choice on
    validation, research.release.inference), and which of the card's numbers ran otherwise."""
    if inference is None:
        return []
    views = inference["measured"]
    one, two, bar = views["without_flip"], views["with_flip"], inference["bar"]
    how = ("averages each face with its mirror image" if inference["tta_flip"] else
           "runs one view (no mirror averaging)")
    line = (f"- At prediction time the command {how}, chosen on validation (inference.json): validation age "
            f"MAE {one['age_mae']:.2f} one view, {two['age_mae']:.2f} mirrored (gender "
            f"{100 * one['gender_acc']:.1f}% / {100 * two['gender_acc']:.1f}%); the bar, {bar['release']}: "
            f"{bar['age_mae']:.2f} and {100 * bar['gender_acc']:.1f}%.")
    if inference["tta_flip"] != trained_flip:
        line += (" The metric tables below are the source run's, scored "
                 f"{'with' if trained_flip else 'without'} mirror averaging; the command's own estimates "
                 "are scored under \"What the prediction command decides\".")
    return [line]


def model_lines(metadata: dict, config: dict, chip_size: int, inference: dict | None = None) -> list[str]:
    """Architecture, initialisation, input and size of the released network, from its config (and
    how the command runs it, from inference.json)."""
    size = config["image_size"]
    flip = inference["tta_flip"] if inference is not None else config["eval"]["tta_flip"]
    tta = "; predictions average the image and its mirror image" if flip else ""
    return [f"- Architecture: {describe_architecture(config['model'])}.",
            f"- Initialisation: {describe_initialisation(config['model'])}.",
            f"- Input: a {chip_size}x{chip_size} face chip aligned on 5 landmarks (as UTKFace crops), "
            f"resized to {size}x{size}{tta}.",
            f"- Parameters: {metadata['num_parameters']:,}{_per_member(metadata)}; "
            f"file `{metadata['params_file']}` "
            f"{metadata['params_bytes'] / 1e6:.1f} MB, sha256 `{metadata['params_sha256']}`.",
            *inference_line(inference, bool(config["eval"]["tta_flip"]))]


def robustness_lines(robustness: dict | None, release: str) -> list[str]:
    """The corruption benchmark's results for this release (results/robustness/summary.json)."""
    if robustness is None or release not in robustness.get("targets", {}):
        return ["The corruption benchmark has not been run on this release "
                "(`scripts/corruption_benchmark.py`)."]
    checks, subset = robustness["targets"][release], robustness["subset"]
    gray = checks["grayscale_mae_within_10pct_of_clean"]
    mean = checks["mean_mae_at_severity2_within_15pct_of_clean"]
    signed = checks["abs_mean_signed_error_at_severity2_at_most_1.5"]
    errors = signed["mean_signed_error"]
    failing = sorted(signed["failing"], key=lambda c: -abs(errors[c]))
    shifted = ", ".join(f"{c} {errors[c]:+.1f}" for c in failing)
    return [f"On {subset['faces']} test faces (drawn by age group, seed {subset['seed']}), each corrupted on "
            f"the fly at three severities (results/robustness/): clean MAE {gray['clean_mae']:.2f} years.",
            f"- Black and white: MAE {gray['grayscale_mae']:.2f} ({gray['ratio']:.2f} x clean; target "
            f"at most {gray['limit_ratio']:g} x: {'met' if gray['pass'] else 'not met'}).",
            f"- Mean over the {len(mean['corruptions'])} corruptions at the middle severity: MAE "
            f"{mean['mean_mae']:.2f} ({mean['ratio']:.2f} x clean; target at most {mean['limit_ratio']:g} x: "
            f"{'met' if mean['pass'] else 'not met'}).",
            f"- Mean signed error beyond +-{signed['limit_years']:g} years at the middle severity: "
            f"{shifted or 'none'}."]


def smallest_face(predict) -> str:
    """The smallest face the command's detector looks for, in words."""
    if predict.detector == "mtcnn":
        return (f"{predict.mtcnn_min_face:g} px in the photo (where MTCNN's pyramid starts; larger photos "
                "start higher, as each record's min_face_width says)")
    return (f"about {60 / predict.detector_upscale:.0f} px in the photo (the HOG detector's smallest at "
            f"its {predict.detector_upscale:g}x upscale)")


def render(metadata: dict, config: dict, run: Path, breakdowns: Path, split_summary: dict,
           rules: dict | None = None, bias: dict | None = None, robustness: dict | None = None,
           inference: dict | None = None) -> str:
    """The Markdown model card; every fact from the release's config, metadata and rules, the
    age-bias summary, the corruption benchmark, the run folders, the breakdowns and the split summary."""
    by_group = pd.read_csv(Path(breakdowns) / "by_group.csv")
    gaps = pd.read_csv(Path(breakdowns) / "fairness_gaps.csv")
    challenge = pd.read_csv(Path(breakdowns) / "challenge_by_group.csv")
    predict = get_config()
    src, test = metadata["source_run"], metadata["test_metrics"]
    op = metadata.get("operating_point") or {}
    op_line = (f"The operating point chosen on validation for at most {100 * op['max_minor_pass_rate']:.0f}% "
               f"of minors let through is an estimate threshold of {op['threshold']:g}; on test it lets "
               f"{100 * op['test'][FPR_MINORS]:.1f}% of minors through and asks "
               f"{100 * op['test'][FRICTION_ADULTS]:.1f}% of adults {CHALLENGE_AGE}+ for ID.") if op else ""
    size = config["image_size"]
    return "\n".join([
        f"# Model card: {metadata['name']}",
        "",
        "Generated by `scripts/export_model.py` from results files; do not edit by hand.",
        "",
        "## Model",
        *model_lines(metadata, config, predict.chip_size, inference),
        *source_lines(metadata, config, run),
        "",
        "## Data and protocol",
        "- UTKFace \"Aligned & Cropped Faces\", after cleaning (corrupt files, malformed labels, duplicates "
        "and duplicates with conflicting labels removed; see results/cleaning/).",
        split_line(src["protocol"], split_summary, src, test["n"]),
        f"- Metrics on the test split with {100 * test['level']:.0f}% percentile bootstrap intervals "
        f"({test['resamples']} resamples).",
        "",
        "## Metrics (test split)",
        metrics_table(metadata),
        "",
        op_line,
        "",
        f"## Challenge {CHALLENGE_AGE} by group (test split)",
        f"An ID check is asked when the estimated age is below {CHALLENGE_AGE}. Intervals here are "
        f"{INTERVAL_METHODS['challenge_by_group']} (from the breakdowns), so the overall row differs "
        "slightly from the bootstrap interval above.",
        "",
        challenge_table(challenge),
        "",
        "## What the prediction command decides (test split)",
        "The tables above score the network's estimate alone.",
        "",
        *command_section(rules, bias, RunFolder(run).predictions("test"), predict.interval_z,
                         metadata.get("interval_operating_point")),
        "",
        "## Photos unlike UTKFace's (corruption benchmark)",
        *robustness_lines(robustness, metadata["name"]),
        "",
        "## Known biases (from results/breakdowns/)",
        *[f"- {line}" for line in bias_findings(by_group, gaps, challenge)],
        "",
        "Age MAE by ethnicity:",
        "",
        group_table(by_group, "ethnicity"),
        "",
        "Age MAE by age group:",
        "",
        group_table(by_group, "age_group"),
        "",
        "## Intended use",
        f"- Decision support for staff doing ID checks at a till (Challenge {CHALLENGE_AGE}): the model "
        "suggests asking for ID; a person decides. It is **not** an automated age gate and must not refuse "
        "or admit anyone on its own.",
        f"- {interval_line(rules, predict.interval_z)}",
        "",
        "## Limits",
        "- UTKFace is scraped from the web; ages are partly estimated by annotators, ethnicity labels are "
        "five coarse classes, and children, the very old and the `Others` group are few. Errors differ "
        "by group as shown above.",
        f"- Trained on {size} px chips of mostly frontal faces: profile views, occlusion, heavy make-up, "
        f"poor light and faces smaller than {smallest_face(predict)} are not covered.",
        "- Licence: UTKFace is for non-commercial research only, so this model is too.",
        "",
    ])
