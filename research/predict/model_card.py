"""The release model's card, rendered from results files only (no number is typed by hand).

Inputs: the release metadata (test metrics with bootstrap intervals from metrics_test.json), the
release config, the run's predictions_test.csv, and its breakdowns folder (by_group.csv,
fairness_gaps.csv, challenge_by_group.csv).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from research.configs.predict import get_config
from research.predict.estimate import id_check

METRIC_LABELS = {
    "age_mae": ("Age MAE (years)", 1.0, 2),
    "age_rmse": ("Age RMSE (years)", 1.0, 2),
    "age_median_ae": ("Age median absolute error (years)", 1.0, 2),
    "age_mean_signed_error": ("Age mean signed error (years; + = too old)", 1.0, 2),
    "gender_accuracy": ("Gender accuracy (%)", 100.0, 1),
    "gender_auc": ("Gender ROC AUC", 1.0, 3),
    "ethnicity_accuracy": ("Ethnicity accuracy (%)", 100.0, 1),
    "challenge25_fpr_13_17": ("Challenge 25: 13-17 year-olds let through (%)", 100.0, 1),
    "challenge25_friction_18_24": ("Challenge 25: 18-24 year-olds asked for ID (%)", 100.0, 1),
    "challenge25_friction_25plus": ("Challenge 25: 25+ year-olds asked for ID (%)", 100.0, 1),
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


def challenge_table(challenge: pd.DataFrame, threshold: int = 25) -> str:
    part = challenge[challenge["threshold"] == threshold]
    rows = ["| group | minors (13-17) n | minors let through % [95%] | 18-24 asked % | 25+ asked % [95%] |",
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
    if "13-17" in ages:
        lines.append(f"Mean signed error by age group runs from {ages.max():+.2f} years ({ages.idxmax()}) to "
                     f"{ages.min():+.2f} years ({ages.idxmin()}); 13-17 year-olds are estimated "
                     f"{ages['13-17']:+.2f} years off on average, which is what lets minors through "
                     "an age check.")
    c25 = challenge[(challenge["threshold"] == 25) & (challenge["group_type"] != "overall")]
    worst = c25.iloc[c25["fpr_13_17"].argmax()]
    lines.append(f"At Challenge 25 the share of minors let through is highest for {worst.group} "
                 f"({100 * worst.fpr_13_17:.1f}% [{100 * worst.fpr_13_17_low:.1f}, "
                 f"{100 * worst.fpr_13_17_high:.1f}], only {worst.n_13_17} minors in the test split).")
    return lines


def command_rule_table(predictions: pd.DataFrame, default_z: float, challenge: float = 25,
                       zs: tuple[float, ...] = (0.0, 0.5, 1.0)) -> str:
    """Challenge-N rates on the test split under the prediction command's rule, for several
    interval widths z (the command's default marked)."""
    age, std, pred = predictions["age"], predictions["age_std"], predictions["pred_age"]
    lines = ["| interval z | rule | 13-17 let through % | 18-24 asked % | 25+ asked % |",
             "|---|---|---|---|---|"]
    for z in sorted({*zs, default_z}):
        ask = id_check(pred.to_numpy(float), std.to_numpy(float), z, challenge)
        shares = [100 * (~ask[band]).mean() if i == 0 else 100 * ask[band].mean()
                  for i, band in enumerate((age.between(13, 17).to_numpy(), age.between(18, 24).to_numpy(),
                                            (age >= 25).to_numpy()))]
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
            f"{100 * point['max_minor_pass_rate']:.0f}% of 13-17 year-olds through is {point['z']:g} "
            f"(validation: {100 * val['fpr_13_17']:.1f}% let through, {100 * val['friction_25plus']:.1f}% "
            f"of adults 25+ asked; test: {100 * test['fpr_13_17']:.1f}% and "
            f"{100 * test['friction_25plus']:.1f}%). The command's default (research/configs/predict.py) "
            f"is {get_config().interval_z:g}.")


def _per_member(metadata: dict) -> str:
    count = metadata.get("num_members", 1)
    return f" ({count} members of {metadata['num_parameters'] // count:,})" if count > 1 else ""


def source_lines(metadata: dict, config: dict) -> list[str]:
    """Where the weights come from: the run, or each member of an ensemble with its weight."""
    src = metadata["source_run"]
    members = src.get("members")
    if not members:
        return [f"- Trained from run `{src['path']}` (commit `{src['trained_at_commit']}`), "
                f"{src['epochs']} epochs on CPU, best epoch {src['best_epoch']} by validation age MAE."]
    how = ("with equal weights" if config["ensemble"]["weighting"] == "equal" else
           "with the weights below, chosen on the validation split by greedy selection (scripts/ensemble.py)")
    lines = [f"- An ensemble of {len(members)} networks of this architecture trained from different seeds "
             f"(ensemble run `{src['path']}`): their age distributions are mixed and their gender and "
             f"ethnicity probabilities averaged {how}. Members:"]
    lines += [f"  - `{m['name']}` weight {m['weight']:.2f}: trained at commit `{m['trained_at_commit']}`, "
              f"{m['epochs']} epochs on CPU, best epoch {m['best_epoch']} by validation age MAE"
              for m in members]
    return lines


def render(metadata: dict, config: dict, run: Path, breakdowns: Path) -> str:
    """The Markdown model card."""
    by_group = pd.read_csv(Path(breakdowns) / "by_group.csv")
    gaps = pd.read_csv(Path(breakdowns) / "fairness_gaps.csv")
    challenge = pd.read_csv(Path(breakdowns) / "challenge_by_group.csv")
    cfg, src, test = config, metadata["source_run"], metadata["test_metrics"]
    op = metadata.get("operating_point") or {}
    op_line = (f"The operating point chosen on validation for at most {100 * op['max_minor_pass_rate']:.0f}% "
               f"of minors let through is an estimate threshold of {op['threshold']:g}; on test it lets "
               f"{100 * op['test']['fpr_13_17']:.1f}% of minors through and asks "
               f"{100 * op['test']['friction_25plus']:.1f}% of adults 25+ for ID.") if op else ""
    width = ", ".join(str(w) for w in cfg["model"]["widths"])
    return "\n".join([
        f"# Model card: {metadata['name']}",
        "",
        "Generated by `scripts/export_model.py` from results files; do not edit by hand.",
        "",
        "## Model",
        f"- Architecture: CNN, stages of width {width}, {cfg['model']['convs_per_stage']} 3x3 convolutions "
        f"per stage (BatchNorm, ReLU, max-pool), global average pooling; heads for age (distribution "
        f"over 0-116 years), gender (2 classes) and ethnicity (5 classes).",
        f"- Input: a 200x200 face chip aligned on 5 landmarks (as UTKFace crops), resized to "
        f"{cfg['image_size']}x{cfg['image_size']}; predictions average the image and its mirror image.",
        f"- Parameters: {metadata['num_parameters']:,}{_per_member(metadata)}; "
        f"file `{metadata['params_file']}` "
        f"{metadata['params_bytes'] / 1e6:.1f} MB, sha256 `{metadata['params_sha256']}`.",
        *source_lines(metadata, config),
        "",
        "## Data and protocol",
        "- UTKFace \"Aligned & Cropped Faces\", after cleaning (corrupt files, malformed labels, duplicates "
        "and duplicates with conflicting labels removed; see results/cleaning/).",
        f"- Protocol `{src['protocol']}`: stratified 70/10/20 split "
        f"(split sha256 `{src['split_sha256'][:12]}…`), "
        f"{src['train_images']} training images, {test['n']} test images.",
        f"- Metrics on the test split with {100 * test['level']:.0f}% percentile bootstrap intervals "
        f"({test['resamples']} resamples).",
        "",
        "## Metrics (test split)",
        metrics_table(metadata),
        "",
        op_line,
        "",
        "## Challenge 25 by group (test split)",
        "An ID check is asked when the estimated age is below 25. Intervals here are from the "
        "breakdowns (rows resampled within each group), so the overall row differs slightly from above.",
        "",
        challenge_table(challenge),
        "",
        "## What the prediction command decides (test split)",
        "The tables above score the estimate alone. `scripts/predict.py` also asks for ID when the "
        "lower end of the age interval is below N, which lets fewer minors through and asks many more "
        "adults; `--interval-z` sets the width (0: the estimate alone). Rates at N = 25 on the test "
        "split, from the run's predictions_test.csv:",
        "",
        command_rule_table(pd.read_csv(Path(run) / "predictions_test.csv"), get_config().interval_z),
        "",
        interval_choice_line(metadata.get("interval_operating_point")),
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
        "- Decision support for staff doing ID checks at a till (Challenge 25): the model suggests "
        "asking for ID; a person decides. It is **not** an automated age gate and must not refuse or "
        "admit anyone on its own.",
        "- The age interval that `scripts/predict.py` reports is the spread of the model's own age "
        f"distribution (estimate ± z sd, z = {get_config().interval_z:g} by default), not a calibrated "
        "confidence interval.",
        "",
        "## Limits",
        "- UTKFace is scraped from the web; ages are partly estimated by annotators, ethnicity labels are "
        "five coarse classes, and children, the very old and the `Others` group are few. Errors differ "
        "by group as shown above.",
        "- Trained on 64 px chips of mostly frontal faces: profile views, occlusion, heavy make-up, poor "
        "light and faces smaller than about 80 px in the photo (missed by the HOG detector) are not covered.",
        "- Licence: UTKFace is for non-commercial research only, so this model is too.",
        "",
    ])
