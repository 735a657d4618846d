"""The cleaning section's crops that are not faces: the face scan, the reviewed list and the test
metrics with and without them (results/cleaning/face_scan.json, nonfaces_test_metrics.*)."""

from __future__ import annotations

import pandas as pd
from IPython.display import Markdown

from research.configs.experiments import RELEASE
from research.report.results import Results, not_yet, num, pct, table

SCAN, METRICS = "cleaning/face_scan.json", "cleaning/nonfaces_test_metrics.json"
GRID = "cleaning/no_face_grid.png"
SPLITS = ("train", "val", "test")


def nonface_numbers(results: Results) -> dict[str, str]:
    """What the scan found per split, how fast, and how many crops the review confirmed."""
    if not (results.exists(SCAN) and results.exists(METRICS)):
        return {}
    scan, counts = results.json(SCAN), results.json(METRICS)
    per_split, speed = scan["per_split"], scan["speed"]
    first, second = scan["config"]["hog_settings"]
    out = {
        "crops": num(scan["crops"]),
        "no_face": num(scan["no_face"]),
        "no_face_pct": pct(scan["no_face"] / scan["crops"], 2),
        "found_first": num(per_split["all"][f"found_by_{first}"]),
        "found_second": num(per_split["all"][f"found_by_{second}"]),
        "found_cnn": num(per_split["all"].get("found_by_cnn", 0)),
        "min_score": num(scan["config"]["min_score"], 1),
        "ms_first": num(speed[first]["cpu_ms_per_crop"], 0),
        "ms_second": num(speed[second]["cpu_ms_per_crop"], 0),
        "ms_cnn": num(speed["cnn"]["cpu_ms_per_crop"], 0) if "cnn" in speed else "n/a",
        "scan_minutes": num(scan["scan_wall_s"] / 60, 0),
        "confirmed": num(counts["confirmed_nonfaces"]),
        "reasons": "; ".join(f"{reason} ({n})" for reason, n in counts["reasons"].items()),
        "missed": num(scan["no_face"] - sum(v["confirmed_nonfaces"] - v["confirmed_but_face_found"]
                                            for v in counts["per_split"].values())),
    }
    release = results.csv("cleaning/nonfaces_test_metrics.csv").query("run == @RELEASE").set_index("test_set")
    if not len(release):
        raise ValueError(f"results/cleaning/nonfaces_test_metrics.csv has no rows for the release {RELEASE}: "
                         "rerun `make results/cleaning/nonfaces_test_metrics.csv`")
    full, without = release.loc["full"], release.loc["without_nonfaces"]
    out.update(release=RELEASE, release_dropped=num(without["nonfaces_dropped"]),
               release_mae=num(full["age_mae"], 3), release_mae_without=num(without["age_mae"], 3),
               release_c25=_c25_change(pct(full["challenge25_fpr_13_17"]),
                                       pct(without["challenge25_fpr_13_17"])))
    for split in SPLITS:
        out[f"no_face_{split}"] = num(per_split[split]["no_face"])
        out[f"confirmed_{split}"] = num(counts["per_split"][split]["confirmed_nonfaces"])
    return out


def _c25_change(full: str, without: str) -> str:
    """How the share of 13-17 year-olds let through at 25 moves without the non-faces."""
    if full == without:
        return f"lets the same {full} of 13-17 year-olds through at 25"
    return f"lets {without} of 13-17 year-olds through at 25 instead of {full}"


def nonface_metrics_table(results: Results) -> Markdown:
    """Per headline run and the release: test metrics on the full split and without the confirmed
    non-faces."""
    if not results.exists("cleaning/nonfaces_test_metrics.csv"):
        return not_yet("make results/cleaning/nonfaces_test_metrics.csv")
    frame = results.csv("cleaning/nonfaces_test_metrics.csv")
    wide = frame.pivot(index="run", columns="test_set")
    runs = list(dict.fromkeys(frame["run"]))
    shown = pd.DataFrame({
        "run": runs,
        "dropped (n)": [int(wide.loc[r, ("nonfaces_dropped", "without_nonfaces")]) for r in runs],
        "age MAE, all": [num(wide.loc[r, ("age_mae", "full")], 3) for r in runs],
        "age MAE, without": [num(wide.loc[r, ("age_mae", "without_nonfaces")], 3) for r in runs],
        "gender acc., all / without": [f"{pct(wide.loc[r, ('gender_accuracy', 'full')], 2)} / "
                                       f"{pct(wide.loc[r, ('gender_accuracy', 'without_nonfaces')], 2)}"
                                       for r in runs],
        "ethnicity acc., all / without": [f"{pct(wide.loc[r, ('ethnicity_accuracy', 'full')], 2)} / "
                                          f"{pct(wide.loc[r, ('ethnicity_accuracy', 'without_nonfaces')], 2)}"
                                          for r in runs],
        "13-17 at 25+, all / without": [f"{pct(wide.loc[r, ('challenge25_fpr_13_17', 'full')])} / "
                                        f"{pct(wide.loc[r, ('challenge25_fpr_13_17', 'without_nonfaces')])}"
                                        for r in runs],
    })
    return table(shown, "Test metrics of the headline runs and the release on the whole test split and "
                 "without the "
                 "confirmed non-face crops, from their committed predictions "
                 "(results/cleaning/nonfaces_test_metrics.csv; 13-17 at 25+: share of 13-17 year-olds "
                 "estimated 25 or older; n/a: no minors in the CORAL test split).", "nonfaces")


def no_face_grid(results: Results) -> Markdown:
    return results.figure(GRID, "Crops of the cleaned data in which no detector found a face, by age label "
                          "(cell: age label, split, best HOG score); a red frame marks a crop the review "
                          "confirmed is not a face, the others are faces the detector missed.",
                          "no-face-grid", command="make results/cleaning/no_face_grid.png")
