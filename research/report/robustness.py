"""The corruption benchmark (results/robustness/): numbers, the per-corruption table and the figure."""

from __future__ import annotations

import pandas as pd
from IPython.display import Markdown

from research.configs import experiments
from research.report.results import Results, blocks, not_yet, num, pct, table

SUMMARY, TABLE = "robustness/summary.json", "robustness/corruptions.csv"
AUGMENT = "bench/augment_throughput.csv"
COMMAND = f"python scripts/corruption_benchmark.py --release {experiments.RELEASE_DIR} --release-members"
GRAYSCALE = "grayscale_mae_within_10pct_of_clean"
MEAN = "mean_mae_at_severity2_within_15pct_of_clean"
SIGNED = "abs_mean_signed_error_at_severity2_at_most_1.5"


def release_name(summary: dict) -> str:
    """The benchmark's release (the model of kind 'release')."""
    return next(name for name, m in summary["models"].items() if m["kind"] == "release")


def member_names(summary: dict) -> list[str]:
    return [name for name, m in summary["models"].items() if m["kind"] == "release member"]


def robustness_numbers(results: Results) -> dict[str, object]:
    """Formatted numbers of the release's three corruption targets and its members' ({} before a run)."""
    if not results.exists(SUMMARY):
        return {}
    s = results.json(SUMMARY)
    release = release_name(s)
    checks = s["targets"][release]
    gray, mean, signed = checks[GRAYSCALE], checks[MEAN], checks[SIGNED]
    worst = max(signed["mean_signed_error"], key=lambda c: abs(signed["mean_signed_error"][c]))
    members = member_names(s)
    subset = s["subset"]
    out = {"release": release, "faces": num(subset["faces"]), "test_faces": num(subset["test_split_faces"]),
           "teens": num(subset["per_age_group"].get("13-17", 0)),
           "corruptions": num(len(s["corruptions"])), "clean_mae": num(gray["clean_mae"], 2),
           "gray_mae": num(gray["grayscale_mae"], 2), "gray_ratio": f"{gray['ratio']:.2f}",
           "gray_limit": f"{gray['limit_ratio']:g}", "gray_met": gray["pass"],
           "mean_mae": num(mean["mean_mae"], 2), "mean_ratio": f"{mean['ratio']:.2f}",
           "mean_limit": f"{mean['limit_ratio']:g}", "mean_met": mean["pass"],
           "signed_limit": f"{signed['limit_years']:g}", "failing": num(len(signed["failing"])),
           "worst": worst, "worst_error": f"{signed['mean_signed_error'][worst]:+.2f}",
           "signed_met": signed["pass"], "members": num(len(members))}
    if members:
        ratios = [s["targets"][m][MEAN]["ratio"] for m in members]
        out["member_ratio_low"], out["member_ratio_high"] = f"{min(ratios):.2f}", f"{max(ratios):.2f}"
    if results.exists(AUGMENT):
        bench = results.csv(AUGMENT).set_index("variant")
        out["augment_speed"] = pct(float(bench.loc["with", "relative_to_first"]), 0)
    return out


ROBUST_KEYS = ("grayscale", "colour_cast", "gamma", "low_resolution", "blur", "jpeg", "noise")


def earlier_names(summary: dict) -> list[str]:
    return [name for name, m in summary["models"].items() if m["kind"] == "earlier release"]


def trained_robust(results: Results, release: str) -> bool | None:
    """Whether the release's config turns any robust augmentation on (None without its config)."""
    rel = f"models/{release}/config.json"
    if not results.exists(rel):
        return None
    augment = results.json(rel).get("augment", {})
    return any(float(augment.get(k, 0) or 0) > 0 for k in ROBUST_KEYS)


def robustness_paragraph(results: Results) -> Markdown:
    """What the benchmark measured for the release, its members and any earlier release, in words."""
    rb = robustness_numbers(results)
    if not rb:
        return not_yet(COMMAND)
    s = results.json(SUMMARY)
    verdict = {True: "is met", False: "is not met"}
    text = (f"Photos at a till differ from UTKFace's web crops: they may be grey, blurred, compressed, "
            f"small or off-colour. The corruption benchmark scores the release ({rb['release']}) on "
            f"{rb['faces']} of the {rb['test_faces']} test faces, drawn by age group, each decoded from the "
            f"archive and corrupted on the fly ({rb['corruptions']} corruptions at three severities, seeded "
            f"per image). Clean, its MAE on these faces is {rb['clean_mae']} years. Fully grey, it is "
            f"{rb['gray_mae']} ({rb['gray_ratio']} times clean; the target of at most {rb['gray_limit']} "
            f"{verdict[rb['gray_met']]}). At the middle severity the mean MAE over the corruptions is "
            f"{rb['mean_mae']} ({rb['mean_ratio']} times clean; the target of at most {rb['mean_limit']} "
            f"{verdict[rb['mean_met']]}), and {rb['failing']} corruptions move the mean signed error beyond "
            f"±{rb['signed_limit']} years, most of all {rb['worst']} ({rb['worst_error']}; the target "
            f"{verdict[rb['signed_met']]}).")
    if rb["members"] != "0":
        text += (f" Each of the release's {rb['members']} members alone reaches {rb['member_ratio_low']} to "
                 f"{rb['member_ratio_high']} times its own clean MAE at the middle severity, against "
                 f"{rb['mean_ratio']} for their mixture.")
    for name in earlier_names(s):
        gray, mean = s["targets"][name][GRAYSCALE], s["targets"][name][MEAN]
        text += (f" The release it replaced, {name}, scored on the same faces: clean MAE "
                 f"{num(gray['clean_mae'], 2)}, grey {gray['ratio']:.2f} times clean, the middle severity "
                 f"{mean['ratio']:.2f} times clean.")
    robust = trained_robust(results, rb["release"])
    if robust:
        text += (" The release was trained with the corruptions' train-time counterparts "
                 "(research/training/augment.py, probabilities in the registry's ROBUST_AUGMENT)")
    elif robust is False:
        text += (" The release was trained with flips, shifts and brightness and contrast jitter only; the "
                 "corruptions' train-time counterparts exist as configurable augmentations "
                 "(research/training/augment.py)")
    if robust is not None:
        speed = rb.get("augment_speed")
        text += (f"; with them a training step runs at {speed} of its images/s without them "
                 "(results/bench/augment_throughput.csv)." if speed else ".")
    return Markdown(text + "\n")


def robustness_table(results: Results) -> Markdown:
    """Per corruption at the middle severity: the release's MAE (ratio to clean), mean signed error and
    Challenge-25 rates, and its members' MAE alone."""
    if not results.exists(TABLE):
        return not_yet(COMMAND)
    s, frame = results.json(SUMMARY), results.csv(TABLE)
    release, members, earlier = release_name(s), member_names(s), earlier_names(s)
    middle = frame[(frame["severity"] == 2) | (frame["corruption"] == "clean")]
    rows = []
    for corruption in dict.fromkeys(middle["corruption"]):
        at = middle[middle["corruption"] == corruption].set_index("model")
        r = at.loc[release]
        parameter = "-" if pd.isna(r["parameter"]) else f"{r['parameter']:g}"
        row = {"corruption": corruption, "parameter": parameter,
               "MAE": num(r["age_mae"], 2), "x clean": f"{r['age_mae_ratio']:.2f}",
               "mean signed error": f"{r['age_mean_signed_error']:+.2f}",
               "C25 13-17 through": pct(r["challenge25_fpr_13_17"]),
               "C25 adults 25+ asked": pct(r["challenge25_friction_25plus"])}
        if members:
            row["members alone: MAE"] = " / ".join(num(at.loc[m, "age_mae"], 2) for m in members)
        for name in earlier:
            row[f"{name}: MAE"] = num(at.loc[name, "age_mae"], 2)
        rows.append(row)
    caption = (f"The release ({release}) on {num(s['subset']['faces'])} test faces drawn by age group "
               f"(seed {s['subset']['seed']}; {num(s['subset']['per_age_group'].get('13-17', 0))} of them "
               "13-17, so the Challenge-25 shares are coarse), clean and under each corruption at the middle "
               "severity (its parameter in results/robustness/summary.json)"
               + (f"; each member of the release alone ({', '.join(m.split('.', 1)[-1] for m in members)})"
                  if members else "")
               + (f"; the release it replaced ({', '.join(earlier)})" if earlier else "") + ".")
    return table(pd.DataFrame(rows), caption, "robustness-corruptions")


def robustness_section(results: Results) -> Markdown:
    """The table and the figure (or what to run)."""
    if not results.exists(SUMMARY):
        return not_yet(COMMAND)
    caption = ("Age MAE and mean signed error under each corruption at severities 1-3, per model, with "
               "the clean value (dashed) and the limits of the targets.")
    return blocks(robustness_table(results), results.figure("robustness/corruptions.png", caption,
                                                            "robustness-figure"))
