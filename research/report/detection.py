"""The detection benchmark (results/detection/): recall per face width and detector setting, and the
setting and threshold chosen on validation canvases."""

from __future__ import annotations

import pandas as pd
from IPython.display import Markdown

from research.report.results import Results, blocks, not_yet, num, paragraph, pct, table

SUMMARY, SWEEP = "detection/summary.json", "detection/threshold_sweep.csv"
COMMAND = "python scripts/bench_detection.py --seed 0"


def detection_numbers(results: Results) -> dict[str, object]:
    """Formatted numbers of the benchmark ({} before a run)."""
    if not results.exists(SUMMARY):
        return {}
    s = results.json(SUMMARY)
    c, chosen, settings = s["config"], s["threshold"], s["settings"]
    key = f"recall_width_{c['recall_from_width']}_up"
    low, high = c["faces_per_canvas"]
    out = {"canvases": " and ".join(f"{w}x{h}" for w, h in c["canvases"]),
           "per_size": num(c["canvases_per_size"]), "faces": f"{low}-{high}",
           "widths": f"{c['face_width_range'][0]}-{c['face_width_range'][1]}",
           "from": num(c["recall_from_width"]),
           "target_recall": pct(c["targets"]["recall_at_least"]),
           "target_false": f"{c['targets']['false_per_canvas_at_most']:g}",
           "threshold": f"{chosen['threshold']:g}", "choice_split": chosen["split"],
           "setting": chosen["setting"],
           "floor_note": (" (the lowest threshold swept: a lower one might find more within the target)"
                          if chosen.get("at_sweep_floor") else ""),
           "val_recall": pct(chosen["recall"]), "val_false": f"{chosen['false_per_canvas']:.3f}",
           "test_recall": pct(chosen["test"]["recall"]),
           "test_false": f"{chosen['test']['false_per_canvas']:.3f}",
           "default_is_chosen": chosen.get("command_default_is_chosen", False),
           "command_default": command_default(chosen.get("command_default")),
           "met": [name for name, f in settings.items() if f["targets_met"]]}
    for name, facts in settings.items():
        out[f"{name}_recall"], out[f"{name}_false"] = pct(facts[key]), f"{facts['false_per_canvas']:.3f}"
    out["settings"] = settings
    return out


def command_default(default: object) -> str:
    """The command's detector and threshold as the summary records them ("hog at 0.1"); a bare
    number is a HOG threshold (summaries written before MTCNN was a setting)."""
    if isinstance(default, dict):
        return f"{default['detector']} at {default['threshold']:g}"
    return f"hog at {default:g}" if isinstance(default, int | float) else "n/a"


def detection_table(results: Results) -> Markdown:
    """Per detector setting on the test canvases: recall from 40 px, false detections per canvas."""
    d = detection_numbers(results)
    if not d:
        return not_yet(COMMAND)
    rows = [{"setting": name,
             "overrides of the command's config": ", ".join(
                 f"{k} = {v}" for k, v in facts["config_overrides"].items()),
             "canvases": num(facts["canvases"]),
             f"recall, faces {d['from']} px and wider": d[f"{name}_recall"],
             "false detections per canvas": d[f"{name}_false"],
             "targets met": "yes" if facts["targets_met"] else "no"} for name, facts in d["settings"].items()]
    caption = (f"Detector settings on the test canvases, each at the command's threshold for its detector "
               f"(the command: {d['command_default']}); "
               "the CNN setting runs on fewer canvases (seconds each on this CPU). "
               f"Targets: recall at least {d['target_recall']}, at most {d['target_false']} false detections "
               "per canvas.")
    return table(pd.DataFrame(rows), caption, "detection-settings")


def detection_section(results: Results) -> Markdown:
    """The paragraph, the table and both figures (or what to run)."""
    d = detection_numbers(results)
    if not d:
        return not_yet(COMMAND)
    default_note = ("which is the command's default" if d["default_is_chosen"] else
                    f"while the command still runs {d['command_default']}: set its detector and threshold "
                    "(research/configs/predict.py) and rerun the benchmark")
    text = paragraph(
        f"**Finding faces.** Test crops are pasted into {d['canvases']} canvases ({d['per_size']} of each, "
        f"{d['faces']} faces per canvas, face widths {d['widths']} px drawn log-uniformly, with patches of "
        "non-face photos, clothing among them, as clutter). Each detector's threshold (HOG's SVM margin, "
        "MTCNN's face probability) was swept from one pass and chosen on canvases of "
        f"{d['choice_split']} crops as the one that finds the most faces while its false "
        f"detections stay within {d['target_false']} per canvas (the highest of equals), for each "
        "candidate setting, and the "
        f"setting that finds most faces there taken: {d['setting']} at {d['threshold']}{d['floor_note']}, "
        f"{default_note}. "
        f"There it finds {d['val_recall']} of faces {d['from']} px and wider with {d['val_false']} false "
        f"detections per canvas; on the test canvases {d['test_recall']} with {d['test_false']}. The "
        f"target of {d['target_recall']} with at most {d['target_false']} is met by "
        + (", ".join(d["met"]) if d["met"] else "no setting") + ".")
    return blocks(text, detection_table(results),
                  results.figure("detection/recall_by_width.png",
                                 "Recall per face width on the test canvases, per detector setting.",
                                 "detection-recall"),
                  results.figure("detection/threshold_sweep.png",
                                 "Recall from 40 px and false detections per canvas over each "
                                 "detector's threshold, on validation (dashed) and test canvases; "
                                 "dotted: each setting's threshold chosen on validation.",
                                 "detection-sweep"))
