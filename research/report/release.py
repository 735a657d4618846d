"""The release model, the prediction pipeline's consistency check and its speed
(results/models/<release>/metadata.json, results/predict/, results/bench/predict_latency.*)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from IPython.display import Markdown

from research.configs import experiments
from research.report.results import Results, blocks, interval, not_yet, num, paragraph, pct, table
from research.vocabulary import describe_calibration

METRIC_LABELS = {
    "age_mae": "age MAE (years)",
    "age_rmse": "age RMSE (years)",
    "gender_accuracy": "gender accuracy %",
    "ethnicity_accuracy": "ethnicity accuracy %",
    "challenge25_fpr_13_17": "Challenge 25: 13-17 let through %",
    "challenge25_friction_25plus": "Challenge 25: 25+ asked for ID %",
}
MEASURES = {
    "photo_640x480": "whole photo (640x480)",
    "detect_only": "detection + landmarks",
    "align_only": "alignment",
    "model_one_chip": "model, one chip",
    "chips_batch32": "model, 32 chips per batch",
}


def shipped_release(results: Results) -> str | None:
    """The release the prediction checks ran with, else the registry's; None if it is not exported."""
    if results.exists("predict/summary.json"):
        return Path(results.json("predict/summary.json")["release"]).name
    return experiments.RELEASE if results.exists(f"models/{experiments.RELEASE}/metadata.json") else None


def how_made(source: dict) -> str:
    """How the release was trained: one run, or a mixture of members with their weights."""
    members = source.get("members") or []
    if not members:
        return (
            f"trained for {source['epochs']} epochs on the {num(source['train_images'])} training images of "
            f"the "
            f"{source['protocol']} split (best epoch {source['best_epoch']}, commit "
            f"{source['trained_at_commit'][:10]})"
        )
    return (
        f"a mixture of {len(members)} networks of one architecture ("
        + ", ".join(f"{mb['name']} with weight {num(mb['weight'], 2)}" for mb in members)
        + f"), each trained for {source['epochs']} epochs on the {num(source['train_images'])} training "
          f"images of "
        f"the {source['protocol']} split from its own seed (best epochs "
        + ", ".join(str(mb["best_epoch"]) for mb in members)
        + "); their predicted age distributions are "
        "mixed exactly as in the ensembles above"
    )


def release_numbers(meta: dict) -> dict[str, str]:
    """Name, size and checksum of the release."""
    return {
        "name": meta["name"],
        "params": num(meta["num_parameters"]),
        "mb": num(meta["params_bytes"] / 1e6, 1),
        "sha": meta["params_sha256"],
        "file": meta["params_file"],
    }


def release_section(results: Results) -> tuple[Markdown, dict[str, str]]:
    """The release paragraph and its test metrics; its numbers ({} when not exported)."""
    name = shipped_release(results)
    if name is None:
        return not_yet("python scripts/export_model.py"), {}
    rel = f"models/{name}/metadata.json"
    meta = results.json(rel)
    rl, op, tm = release_numbers(meta), meta["operating_point"], meta["test_metrics"]
    text = (
        f"**Release model.** The released model is {rl['name']}: {rl['params']} parameters in `{rl['file']}` "
        f"({rl['mb']} MB), {how_made(meta['source_run'])}. The folder `results/models/{name}` holds its "
        f"weights, "
        f"config and a generated MODEL_CARD.md; the weights' SHA-256 is\n`{rl['sha']}`.\n\n"
        f"Its operating point for at most {pct(op['max_minor_pass_rate'], 0)} of minors let through, chosen "
        f"on "
        f"validation, is an estimate threshold of {num(op['threshold'], 0)}: on test it lets "
        f"{pct(op['test']['fpr_13_17'])} of minors through and asks {pct(op['test']['friction_25plus'])} of "
        f"adults "
        "aged 25+ for ID."
    )
    rows = [
        {
            "metric": label,
            "test value": interval(
                tm["metrics"][k]["value"],
                tm["metrics"][k]["low"],
                tm["metrics"][k]["high"],
                1 if k.startswith("age") else 100,
                2 if k.startswith("age") else 1,
            ),
        }
        for k, label in METRIC_LABELS.items()
        if k in tm["metrics"]
    ]
    metrics = table(
        pd.DataFrame(rows),
        f"Release model {rl['name']} on the {num(tm['n'])} test images, with "
        f"{pct(tm['level'], 0)} bootstrap intervals (results/{rel}).",
        "release",
    )
    return blocks(paragraph(text), metrics), rl


def interval_note(results: Results, pred: dict) -> str:
    """What interval the command states: the calibrated one its release carries (results/rules/), else
    the uncalibrated spread of the model's distribution that the consistency check ran with."""
    if results.exists("rules/rules.json"):
        rules = results.json("rules/rules.json")
        return (f"(The age interval the command reports is the {pct(rules['coverage']['level'], 0)} interval "
                f"the release carries, {describe_calibration(rules['interval'])}; see the decision section.)")
    return (f"(The age interval the command reports is the estimate ± {pred['predict_config']['interval_z']} "
            "standard deviations of the model's own age distribution, not a calibrated interval.)")


def consistency_section(results: Results) -> Markdown:
    """Full path (detect, align, predict) against direct prediction on the dataset's crops."""
    if not results.exists("predict/summary.json"):
        return not_yet("python scripts/predict_consistency.py")
    pred = results.json("predict/summary.json")
    t = pred["test"]
    lo, hi = t["mae_difference_interval"]
    young = min(pred["test_detection_by_age_group"], key=lambda g: g["detection_rate"])
    text = (
        f"**Consistency check.** Does detection and alignment lose accuracy against the dataset's own crops? "
        f"{num(t['images'])} test crops were pasted at scales "
        f"{'-'.join(map(str, pred['chip_scale_range']))} into "
        f"{'x'.join(map(str, pred['canvas']))} canvases and run through the full path "
        f"({pred.get('detector_used', 'hog')} score at least "
        f"{pred['min_detection_score_used']}, chip padding {pred['padding_used']}; validation, over "
        f"{num(len(pred['val']))} values, chose {pred['padding_chosen_on_val']}). The detector found "
        f"{num(t['detected'])} faces ({pct(t['detection_rate'])}); it misses most often in the "
        f"{young['age_group']} "
        f"group ({pct(young['detection_rate'])} of {num(young['images'])}). On the faces found, the full "
        f"path's "
        f"MAE is {num(t['mae_full_path'], 2)} years against {num(t['mae_direct'], 2)} when the model reads "
        f"the same "
        f"crops directly: a difference of {interval(t['mae_difference'], lo, hi)} years (paired bootstrap "
        "interval), "
        + (
            "which includes zero: no measurable loss from detection and alignment. "
            if lo <= 0 <= hi
            else "which excludes zero. "
        )
        + f"Single estimates move by {num(t['mean_abs_estimate_difference'], 2)} years on average between "
          f"the two "
        f"paths, and the gender prediction agrees on {pct(t['gender_agreement'])} of faces. "
        + interval_note(results, pred)
    )
    sweep = results.csv("predict/padding_sweep.csv")
    shown = pd.DataFrame(
        {
            "padding": sweep["padding"].map(lambda x: num(x, 2)),
            "detected": sweep["detection_rate"].map(pct),
            "MAE full path": sweep["mae_full_path"].map(lambda x: num(x, 2)),
            "MAE direct": sweep["mae_direct"].map(lambda x: num(x, 2)),
            "difference": sweep["mae_difference"].map(lambda x: f"{x:+.2f}"),
            "mean abs. change": sweep["mean_abs_estimate_difference"].map(lambda x: num(x, 2)),
            "gender agrees": sweep["gender_agreement"].map(pct),
        }
    )
    caption = (
        f"Chip padding chosen on validation ({num(pred['val'][0]['images'])} images per value; "
        "results/predict/padding_sweep.csv): the padding whose full-path estimates moved least from direct "
        "prediction (smallest mean absolute change of the estimates) is chosen."
    )
    return blocks(paragraph(text), table(shown, caption, "padding"))


def speed_numbers(lat: pd.DataFrame, record: dict) -> dict[str, object]:
    """Latency and throughput of our pipeline and the peer's (results/bench/predict_latency.*); rows
    of other detector settings (column ``setting``) are left out: the command's default is reported."""
    if "setting" in lat:
        lat = lat[lat["setting"].isna() | (lat["setting"] == "default")]
    at = lat.set_index(["model", "measure"])
    peer = next(x for x in lat["model"].unique() if x != "ours")
    target = record["targets"]["photo_p50_ms_at_most"]
    p50, chip_ours, chip_peer = (
        at.loc[("ours", "photo_640x480"), "p50_ms"],
        at.loc[("ours", "chips_batch32"), "faces_per_s"],
        at.loc[(peer, "chips_batch32"), "faces_per_s"],
    )
    return {
        "p50": num(p50, 1),
        "p95": num(at.loc[("ours", "photo_640x480"), "p95_ms"], 1),
        "peer_p50": num(at.loc[(peer, "photo_640x480"), "p50_ms"], 1),
        "target": num(target, 0),
        "met_photo": p50 <= target,
        "chip_ours": num(chip_ours, 0),
        "chip_peer": num(chip_peer, 0),
        "met_chip": chip_ours >= chip_peer,
        "ratio": num(chip_peer / chip_ours, 1),
        "peer": peer,
        "cpus": record.get("cpu_count", "?"),
        "load": record.get("load_average_1_5_15_min", {}).get("before", [float("nan")])[0],
        "detect": num(at.loc[("ours", "detect_only"), "p50_ms"], 1),
        "model1": num(at.loc[("ours", "model_one_chip"), "p50_ms"], 1),
        "startup": {row["case"]: row for row in record.get("startup", [])},
        "buckets": record.get("batch_buckets"),
        "by_pass": record.get("faces_per_s_by_pass_size", {}),
        "by_impl": record.get("faces_per_s_by_conv_impl", {}),
        "impl_used": record.get("conv_impl_used"),
        "tta_flip": record.get("tta_flip", True),
        "peer_setting": {name: num(record["targets"]["photo_p50_ms_by_setting"][name], 1)
                         for name in record["targets"].get("photo_p50_at_peer_setting_met", {})},
        "peer_setting_met": record["targets"].get("photo_p50_at_peer_setting_met", {}),
    }


def setting_label(setting: object) -> str:
    """A latency row's setting as the table shows it: passes_of_4_faces -> "passes of 4 faces",
    conv_native -> "native convolutions", a detector setting as named, none -> ""."""
    if not isinstance(setting, str) or not setting:
        return ""
    if setting.startswith("conv_"):
        return f"{setting.removeprefix('conv_')} convolutions"
    return setting.replace("_", " ") if setting.startswith("passes_of_") else setting


def startup_sentence(lt: dict[str, object]) -> str:
    """Start-up with the buckets compiled at once (cold and warm compilation cache) against compiling
    on first use, and the faces/s per forward-pass size; "" when the benchmark did not measure them."""
    startup, by_pass = lt.get("startup") or {}, lt.get("by_pass") or {}
    parts = []
    if {"precompile_cold_cache", "precompile_warm_cache", "compile_on_first_use"} <= set(startup):
        cold, warm, lazy = (startup[k] for k in ("precompile_cold_cache", "precompile_warm_cache",
                                                 "compile_on_first_use"))
        buckets = lt.get("buckets") or []
        other = ("" if "photo_800x600_s" not in cold else
                 f" ({num(cold['photo_800x600_s'], 2)} s for an 800x600 photo, a size whose detector "
                 f"pyramid was not compiled at start-up, and {num(warm['photo_800x600_s'], 2)} s once the "
                 "cache holds it)")
        parts.append(
            "Start-up, which loads the release and the detector and compiles the model for its "
            f"{len(buckets)} batch sizes ({', '.join(map(str, buckets))} "
            f"faces) and the detector for its own, takes {num(cold['startup_s'], 1)} s with an empty "
            f"compilation cache and {num(warm['startup_s'], 1)} s with a filled one; the first photo then "
            f"takes {num(cold['first_photo_s'], 2)} s{other}. Compiled on first use instead, the first "
            f"photo would take {num(lazy['first_photo_s'], 1)} s.")
    if by_pass:
        sizes = {int(k.split("_")[2]): v for k, v in by_pass.items()}
        largest = max(lt.get("buckets") or [0])
        parts.append(
            "Cut into forward passes of " + ", ".join(f"{n}" for n in sorted(sizes)) + " faces"
            + (" (twice as many images with the mirrors)" if lt.get("tta_flip", True) else "")
            + ", the batch of 32 chips runs at "
            + ", ".join(num(sizes[n], 0) for n in sorted(sizes)) + " faces/s"
            + (f" (the command's passes hold at most {largest})" if largest else "") + ".")
    by_impl = lt.get("by_impl") or {}
    if by_impl:
        rates = {k.removeprefix("conv_"): v for k, v in by_impl.items()}
        parts.append(
            "With " + " and ".join(f"{impl} convolutions {num(v, 0)}" for impl, v in rates.items())
            + " faces/s" + (f"; the release runs {lt['impl_used']}." if lt.get("impl_used") else "."))
    return " ".join(parts)


def speed_paragraph(lt: dict[str, object]) -> str:
    """Whether the latency and throughput targets were met, and how busy the machine was."""
    chips = (
        "so that target is met too"
        if lt["met_chip"]
        else f"a factor of {lt['ratio']} short, so that target is missed"
    )
    load = (
        f"The machine was busy (1-minute load average {num(lt['load'], 1)} before the measurement), so "
        f"absolute "
        "times are pessimistic"
        if lt["load"] >= 1.0
        else f"Nothing else ran on the machine (1-minute load average {num(lt['load'], 1)} before the "
             f"measurement, the "
        "tail of earlier work)"
    )
    return (
        f"**Speed.** On this project's {lt['cpus']}-core CPU, one 640x480 photo with one face takes "
        f"{lt['p50']} ms "
        f"at the median and {lt['p95']} ms at the 95th percentile from decoded pixels to decision "
        f"({lt['peer']}: "
        f"{lt['peer_p50']} ms; the two, and ours at the peer's detector setting, timed call by call in "
        f"turn); "
        f"timed on their own, detection with landmarks takes {lt['detect']} ms and the model on one chip "
        f"{lt['model1']} ms. The latency target (median at most {lt['target']} ms) "
        f"{'is met' if lt['met_photo'] else 'is not met'}. On batches of chips our model manages "
        f"{lt['chip_ours']} "
        f"faces/s against {lt['chip_peer']} for the peer's networks, {chips}"
        + ("" if lt.get("tta_flip", True) else
           " (the network sees each face once: mirror averaging, which doubles the operations per face, "
           "was left off on validation, as the release's inference.json records)")
        + f". {load}; both models were "
        f"measured "
        "in the same run." + (f" {startup_sentence(lt)}" if startup_sentence(lt) else "")
    )


def speed_section(results: Results) -> tuple[Markdown, dict[str, object]]:
    """The speed paragraph, the targets and the latency table; the numbers ({} when not measured)."""
    if not results.exists("bench/predict_latency.csv"):
        return not_yet("python scripts/bench_predict.py"), {}
    lat = results.csv("bench/predict_latency.csv")
    lt = speed_numbers(lat, results.json("bench/predict_latency.json"))
    targets = pd.DataFrame(
        [
            {
                "target": f"whole photo p50 at most {lt['target']} ms",
                "measured": f"{lt['p50']} ms",
                "met": "yes" if lt["met_photo"] else "no",
            },
            {
                "target": f"chip throughput at least {lt['peer']}'s ({lt['chip_peer']} faces/s)",
                "measured": f"{lt['chip_ours']} faces/s",
                "met": "yes" if lt["met_chip"] else "no",
            },
            *({"target": f"photo p50 at the peer's detector setting ({setting_label(name)}) at most "
                         f"{lt['peer']}'s ({lt['peer_p50']} ms)",
               "measured": f"{lt['peer_setting'][name]} ms",
               "met": "yes" if met else "no"} for name, met in lt["peer_setting_met"].items()),
        ]
    )
    shown = pd.DataFrame(
        {
            "model": lat["model"],
            "measure": lat["measure"].map(lambda x: MEASURES.get(x, x)),
            "setting": (lat["setting"] if "setting" in lat else pd.Series("", index=lat.index)).map(
                setting_label),
            "runs": lat["runs"].map(num),
            "faces per run": lat["faces"].map(num),
            "p50 ms": lat["p50_ms"].map(lambda x: num(x, 1)),
            "p95 ms": lat["p95_ms"].map(lambda x: num(x, 1)),
            "faces/s": lat["faces_per_s"].map(lambda x: num(x, 1)),
        }
    )
    return blocks(
        paragraph(speed_paragraph(lt)),
        table(
            targets,
            "Speed targets and whether they were met (computed from results/bench/predict_latency.csv).",
            "latency-targets",
        ),
        table(
            shown,
            f"Prediction latency per run and throughput on the {lt['cpus']}-core CPU "
            "(results/bench/predict_latency.csv; latency from decoded pixels, no file reading). Setting: "
            "a detector setting (research/configs/predict.py DETECTOR_SETTINGS; default is the command's), "
            "the faces per forward pass, or the convolutions; blank: the command as shipped (ours) or the "
            "peer's own settings.",
            "latency",
        ),
    ), lt
