"""Detection benchmark: how small a face each detector setting still finds, and how often it fires
on something that is not a face.

Test-split crops (200x200, aligned as UTKFace made them) are pasted with a soft edge into
photo-sized canvases (a blurred colour field with patches of skimage's packaged non-face photos
as clutter, the astronaut's clothing below her chin among them), several per canvas, at face
widths from 24 to 300 px, deterministically for a seed.
A crop's face width is the width dlib's HOG box would have on it: the crop side times the median
box/crop ratio measured on ``calibration_chips`` crops shown alone at 200 px. A detection finds a
face when its box overlaps the expected box by ``match_iou``; every other detection is false.
MTCNN's boxes are mapped to HOG's framing (research/predict/faces.py ``hog_frame``) with the median
mapping measured on the choice split's calibration crops, on both splits' canvases.

Each detector's threshold is swept from one pass per canvas: each swept setting detects at the
lowest threshold of its grid (HOG's SVM margin from ``sweep_floor``; MTCNN's O-Net probability over
``mtcnn_sweep``) and keeps every detection's score, and the detections at a threshold t are those
scoring t or more. That equals running the detector at t, because both suppress overlapping
boxes greedily in order of score (a kept box only ever suppresses lower-scoring ones). The
threshold is chosen on canvases of ``choice_split`` crops (validation), per setting: the highest
recall whose false detections per canvas stay within the target (of thresholds with that recall,
the highest). Of ``choice_settings`` (listed cheapest first) the first whose recall at its threshold is
within ``choice_margin`` of the best is chosen; the test canvases report the choice.

Outputs (results/detection/, aggregates only): recall_by_width.csv (setting, canvas, width bin,
faces, found, recall), canvases.csv (setting, canvas size, canvases, false detections per canvas,
detection time p50/p95), threshold_sweep.csv (split, setting, threshold, recall from
``recall_from_width`` px, false detections per canvas), summary.json with provenance and the
chosen threshold, recall_by_width.png, threshold_sweep.png.
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import ml_collections
import numpy as np
import pandas as pd
from PIL import Image, ImageFilter
from tqdm import tqdm

from research.configs.predict import DETECTOR_SETTINGS, detector_config
from research.data import archive
from research.data.locate import locate_dataset
from research.outputs import save_figure, write_csv, write_json
from research.predict.faces import FaceAligner, box_iou, configured_threshold
from research.predict.mtcnn import MTCNN
from research.provenance import provenance
from research.release.consistency import read_blobs, sample_split

# skimage's packaged photos with no face in them ("camera", the cameraman, has one: MTCNN finds his
# turned face, which would count as false here).
CLUTTER = ("brick", "grass", "gravel", "coffee", "rocket", "text", "coins", "moon", "hubble_deep_field")


# Rows of skimage's astronaut below her chin (her face box ends at row 170): clothing, a flag and
# a helmet, on which the HOG detector fires at low thresholds as it does in photos of people.
ASTRONAUT_BODY_FROM_ROW = 220


def clutter_images() -> list[Image.Image]:
    from skimage import data

    body = Image.fromarray(data.astronaut()[ASTRONAUT_BODY_FROM_ROW:]).convert("RGB")
    return [*(Image.fromarray(getattr(data, name)()).convert("RGB") for name in CLUTTER), body]


def calibrate_box(aligner: FaceAligner, chips: list[Image.Image]) -> dict:
    """Median HOG box of a crop shown alone at 200 px, as fractions of the side (left, top, right, bottom)."""
    boxes = []
    for chip in chips:
        canvas = Image.new("RGB", (400, 400), (128, 128, 128))
        canvas.paste(chip.resize((200, 200)), (100, 100))
        found = aligner.detect(np.asarray(canvas))
        if found:
            box = found[0][0].box
            boxes.append([(v - 100) / 200 for v in box])
    fractions = np.median(np.asarray(boxes), axis=0)
    return {"box_fractions": [round(float(v), 4) for v in fractions], "chips_detected": len(boxes),
            "chips": len(chips), "width_fraction": round(float(fractions[2] - fractions[0]), 4)}


def measure_box_map(hog: FaceAligner, mtcnn: MTCNN, chips: list[Image.Image]) -> dict:
    """How the HOG box of a crop shown alone at 200 px sits in its MTCNN box: the median over crops
    both detectors found of (centre dx, dy as fractions of the MTCNN box's width and height; HOG's
    width and height over MTCNN's), the ``mtcnn_box_map`` of research/configs/predict.py."""
    rows = []
    for chip in chips:
        canvas = Image.new("RGB", (400, 400), (128, 128, 128))
        canvas.paste(chip.resize((200, 200)), (100, 100))
        array = np.asarray(canvas)
        hog_found = hog.hog_boxes(array, hog.config.min_detection_score)
        mtcnn_found = mtcnn.detect(array)
        if hog_found and mtcnn_found:
            (left, top, right, bottom) = max(hog_found, key=lambda e: e[1])[0]
            m_left, m_top, m_right, m_bottom = mtcnn_found[0].box
            if box_iou((left, top, right, bottom), tuple(round(v) for v in mtcnn_found[0].box)) < 0.3:
                continue  # not the same face
            width, height = m_right - m_left, m_bottom - m_top
            rows.append([((left + right) - (m_left + m_right)) / 2 / width,
                         ((top + bottom) - (m_top + m_bottom)) / 2 / height,
                         (right - left) / width, (bottom - top) / height])
    if not rows:
        raise ValueError(f"no calibration crop was found by both HOG and MTCNN ({len(chips)} tried): "
                         "raise calibration_chips (research/configs/predict.py get_detection_bench_config)")
    box_map = np.median(np.asarray(rows), axis=0)
    return {"mtcnn_box_map": [round(float(v), 4) for v in box_map], "chips_both_found": len(rows),
            "chips": len(chips)}


def feathered(chip: Image.Image, side: int, feather: float) -> tuple[Image.Image, Image.Image]:
    chip = chip.resize((side, side), Image.Resampling.BILINEAR)
    edge = max(1, round(side * feather))
    mask = Image.new("L", (side, side), 0)
    mask.paste(255, (edge, edge, side - edge, side - edge))
    return chip, mask.filter(ImageFilter.GaussianBlur(edge / 2))


def make_canvas(size: tuple[int, int], chips: list[Image.Image], clutter: list[Image.Image],
                rng: np.random.Generator, c: ml_collections.ConfigDict, fractions: list[float]) -> tuple:
    """(canvas array, [(expected box, face width)]) with faces that do not overlap each other."""
    coarse = Image.fromarray(rng.integers(40, 216, (6, 8, 3), dtype=np.uint8))
    canvas = coarse.resize(size, Image.Resampling.BICUBIC).filter(ImageFilter.GaussianBlur(8))
    for _ in range(int(rng.integers(c.clutter_per_canvas[0], c.clutter_per_canvas[1] + 1))):
        source = clutter[int(rng.integers(len(clutter)))]
        w, h = (int(rng.integers(size[0] // 10, size[0] // 3)) for _ in range(2))
        grow = max(1.0, (w + 1) / source.width, (h + 1) / source.height)  # small textures are enlarged
        source = source.resize((round(source.width * grow) + 1, round(source.height * grow) + 1))
        x0, y0 = int(rng.integers(0, source.width - w)), int(rng.integers(0, source.height - h))
        canvas.paste(source.crop((x0, y0, x0 + w, y0 + h)),
                     (int(rng.integers(0, size[0] - w)), int(rng.integers(0, size[1] - h))))
    width_fraction = fractions[2] - fractions[0]
    faces, taken = [], []
    for chip in chips:
        for _ in range(50):  # a few tries for a free place
            width = float(np.exp(rng.uniform(*np.log(c.face_width_range))))
            side = round(width / width_fraction)
            if side >= min(size):
                continue
            x, y = int(rng.integers(0, size[0] - side)), int(rng.integers(0, size[1] - side))
            rect = (x, y, x + side, y + side)
            if all(rect[2] <= t[0] or t[2] <= rect[0] or rect[3] <= t[1] or t[3] <= rect[1] for t in taken):
                break
        else:
            continue
        taken.append(rect)
        image, mask = feathered(chip, side, c.feather)
        canvas.paste(image, (x, y), mask)
        box = tuple(round(v) for v in (x + fractions[0] * side, y + fractions[1] * side,
                                       x + fractions[2] * side, y + fractions[3] * side))
        faces.append((box, (box[2] - box[0]) or width))
    return np.asarray(canvas), faces


def match(found: list[tuple], faces: list[tuple], iou: float) -> tuple[list[bool], int]:
    """Which faces a detection found (greedy on IoU) and how many detections found none."""
    hit, used = [False] * len(faces), set()
    pairs = sorted(((box_iou(d, f[0]), i, j) for i, f in enumerate(faces) for j, d in enumerate(found)),
                   reverse=True)
    for score, i, j in pairs:
        if score >= iou and not hit[i] and j not in used:
            hit[i] = True
            used.add(j)
    return hit, len(found) - len(used)


def run_detection_bench(c: ml_collections.ConfigDict, split_csv: Path, data: str | None,
                        box_map: list[float] | None = None) -> dict:
    """Face rows and canvas rows for every setting, and the calibration.

    MTCNN settings frame their boxes with ``box_map`` (the choice split's measurement, so that the
    test canvases are scored with what validation chose), or when None with the one measured here.
    """
    source = locate_dataset(data)
    rng = np.random.default_rng(c.seed)
    n_faces = len(c.canvases) * c.canvases_per_size * c.faces_per_canvas[1] + c.calibration_chips
    sample = sample_split(split_csv, c.split, n_faces, c.seed)
    blobs = read_blobs(source, sample["file"])
    chips = [Image.open(io.BytesIO(blobs[f])).convert("RGB") for f in sample["file"]]
    aligners = {name: FaceAligner(detector_config(name)) for name in DETECTOR_SETTINGS
                if name not in c.skip_settings}
    hog = detector_config("default")
    hog.detector = "hog"  # expected boxes are HOG's, whichever detector the command uses
    hog_aligner = FaceAligner(hog)
    calibration = calibrate_box(hog_aligner, chips[:c.calibration_chips])
    mtcnn = next((a._mtcnn for a in aligners.values() if a._mtcnn is not None), None)
    if mtcnn is not None:
        calibration.update(measure_box_map(hog_aligner, mtcnn, chips[:c.calibration_chips]))
        calibration["mtcnn_box_map_used"] = list(box_map or calibration["mtcnn_box_map"])
        for aligner in aligners.values():
            aligner.config.mtcnn_box_map = tuple(calibration["mtcnn_box_map_used"])
    for aligner in aligners.values():  # compiled before anything is timed
        aligner.config.mtcnn_precompile_sizes = tuple(tuple(size) for size in c.canvases)
        aligner.precompile()
    clutter, pool = clutter_images(), iter(chips[c.calibration_chips:])
    face_rows, canvas_rows, records = [], [], []
    for size_index, size in enumerate(c.canvases):
        for k in tqdm(range(c.canvases_per_size), desc=f"detection {c.split} {size[0]}x{size[1]}",
                      unit="canvas"):
            count = int(rng.integers(c.faces_per_canvas[0], c.faces_per_canvas[1] + 1))
            canvas, faces = make_canvas(tuple(size), [next(pool) for _ in range(count)], clutter, rng, c,
                                        calibration["box_fractions"])
            for name, aligner in aligners.items():
                if aligner.config.cnn_detector and k >= c.cnn_canvases_per_size[size_index]:
                    continue
                sweep = name in c.sweep_settings
                tic = time.perf_counter()
                floor = float(sweep_thresholds(c, name)[0]) if sweep else None
                found = [(face.box, face.score) for face, _ in aligner.detect(canvas, min_score=floor)]
                seconds = time.perf_counter() - tic
                if sweep:
                    records.append({"setting": name, "faces": faces, "found": found})
                    found = at_threshold(found, aligner.threshold)
                hit, false = match([box for box, _ in found], faces, c.match_iou)
                canvas_rows.append({"setting": name, "canvas": f"{size[0]}x{size[1]}", "index": k,
                                    "faces": len(faces), "false": false, "seconds": seconds})
                face_rows += [{"setting": name, "canvas": f"{size[0]}x{size[1]}", "width": w, "found": h}
                              for (_, w), h in zip(faces, hit, strict=True)]
    return {"faces": pd.DataFrame(face_rows), "canvases": pd.DataFrame(canvas_rows),
            "calibration": calibration, "records": records}


def at_threshold(found: list[tuple], threshold: float) -> list[tuple]:
    """The (box, score) detections a run at ``threshold`` returns, from a run at a lower one."""
    return [(box, score) for box, score in found if score >= threshold]


def sweep_thresholds(c: ml_collections.ConfigDict, setting: str) -> np.ndarray:
    """The thresholds swept for ``setting``, on its detector's own score (lowest first)."""
    config = detector_config(setting)
    if config.detector == "mtcnn":
        if min(c.mtcnn_sweep) < config.mtcnn_thresholds[2]:
            raise ValueError(f"mtcnn_sweep starts at {min(c.mtcnn_sweep)}, below the cascade's O-Net "
                             f"floor {config.mtcnn_thresholds[2]}: those thresholds cannot be measured "
                             "from one pass (lower mtcnn_thresholds[2])")
        return np.sort(np.asarray(c.mtcnn_sweep, dtype=float))
    return np.round(np.arange(c.sweep_floor, c.sweep_ceiling + 1e-9, c.sweep_step), 4) + 0.0  # no -0.0


def sweep_table(records: list[dict], thresholds: dict[str, np.ndarray], iou: float,
                from_width: int) -> pd.DataFrame:
    """Per setting and each of its ``thresholds``: recall of faces ``from_width`` px and wider, false
    detections per canvas, from the records of ``run_detection_bench`` (each canvas's faces and
    scored detections)."""
    rows = []
    for setting in dict.fromkeys(r["setting"] for r in records):
        part = [r for r in records if r["setting"] == setting]
        for t in thresholds[setting]:
            found = wide = false = 0
            for record in part:
                hit, extra = match([box for box, _ in at_threshold(record["found"], t)], record["faces"], iou)
                wide_hits = [h for (_, w), h in zip(record["faces"], hit, strict=True) if w >= from_width]
                found, wide, false = found + sum(wide_hits), wide + len(wide_hits), false + extra
            rows.append({"setting": setting, "threshold": round(float(t), 4), "canvases": len(part),
                         "faces": wide, "found": found, "recall": found / wide if wide else float("nan"),
                         "false_per_canvas": false / len(part)})
    return pd.DataFrame(rows)


def choose_threshold(sweep: pd.DataFrame, setting: str, max_false: float) -> dict:
    """The threshold of ``setting`` that finds the most faces with at most ``max_false`` false
    detections per canvas, and of those that find as many the highest (recall only falls as the
    threshold rises, so it is the lowest within the target unless a higher one finds as many with
    fewer false detections); the highest swept one if none is within the target."""
    part = sweep[sweep["setting"] == setting].sort_values("threshold")
    ok = part[part["false_per_canvas"] <= max_false]
    row = ok[ok["recall"] >= ok["recall"].max()].iloc[-1] if len(ok) else part.iloc[-1]
    return {"setting": setting, "threshold": float(row["threshold"]), "recall": float(row["recall"]),
            "false_per_canvas": float(row["false_per_canvas"]), "within_target": bool(len(ok)),
            # the lowest threshold swept: a lower one might have found more within the target
            "at_sweep_floor": bool(row["threshold"] == part["threshold"].iloc[0])}


def recall_table(faces: pd.DataFrame, bins: tuple[int, ...]) -> pd.DataFrame:
    labels = [f"{lo}-{hi - 1}" for lo, hi in zip(bins[:-1], bins[1:], strict=True)]
    faces = faces.assign(width_bin=pd.cut(faces["width"], list(bins), right=False, labels=labels))
    rows = []
    for canvas in [*sorted(faces["canvas"].unique()), "all"]:
        part = faces if canvas == "all" else faces[faces["canvas"] == canvas]
        table = part.groupby(["setting", "width_bin"], observed=False)["found"].agg(["size", "sum"])
        for (setting, width_bin), (n, found) in table.iterrows():
            rows.append({"setting": setting, "canvas": canvas, "width_bin": width_bin, "faces": int(n),
                         "found": int(found), "recall": found / n if n else float("nan")})
    return pd.DataFrame(rows)


def canvas_table(canvases: pd.DataFrame) -> pd.DataFrame:
    grouped = canvases.groupby(["setting", "canvas"])
    return pd.DataFrame({
        "canvases": grouped.size(), "faces": grouped["faces"].sum(),
        "false_per_canvas": grouped["false"].mean(),
        "detect_p50_ms": grouped["seconds"].median() * 1e3,
        "detect_p95_ms": grouped["seconds"].quantile(0.95) * 1e3}).reset_index()


def recall_figure(table: pd.DataFrame):
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    part = table[table["canvas"] == "all"]
    for setting in sorted(set(part["setting"]), key=list(DETECTOR_SETTINGS).index):
        rows = part[part["setting"] == setting]
        axis.plot(rows["width_bin"].astype(str), rows["recall"], marker="o", label=setting)
    axis.axhline(0.95, color="grey", linestyle=":", label="target 95% (40 px and wider)")
    axis.set(xlabel="face width (px, HOG box)", ylabel="recall", ylim=(0, 1.02),
             title="Faces found by face width (test crops in photo-sized canvases)")
    axis.legend(loc="lower right")
    return figure


def choose_setting(sweep: pd.DataFrame, settings: tuple[str, ...], max_false: float,
                   margin: float = 0.0) -> dict:
    """Each setting's ``choose_threshold``, then the first listed (the cheapest) whose recall within
    the target is at most ``margin`` below the best one's; the others' choices under "alternatives"."""
    choices = [choose_threshold(sweep, name, max_false) for name in settings]
    eligible = [ch for ch in choices if ch["within_target"]] or choices
    best = max(ch["recall"] for ch in eligible)
    chosen = next(ch for ch in eligible if ch["recall"] >= best - margin - 1e-12)
    return {**chosen, "margin": margin, "alternatives": [ch for ch in choices if ch is not chosen]}


def sweep_figure(sweep: pd.DataFrame, chosen: dict, target: float):
    import matplotlib.pyplot as plt

    # One row per detector (their scores are on different scales), each setting's choice marked.
    detectors = {s: detector_config(s).detector for s in dict.fromkeys(sweep["setting"])}
    kinds = list(dict.fromkeys(detectors.values()))
    xlabels = {"hog": "HOG threshold (dlib's SVM margin)",
               "mtcnn": "MTCNN threshold (O-Net face probability)"}
    figure, axes = plt.subplots(len(kinds), 2, figsize=(10, 3.8 * len(kinds)), squeeze=False)
    colours = {setting: f"C{i}" for i, setting in enumerate(detectors)}
    choices = {ch["setting"]: ch for ch in [chosen, *chosen.get("alternatives", [])]}
    for (split, setting), rows in sweep.groupby(["split", "setting"], sort=False):
        left, right = axes[kinds.index(detectors[setting])]
        style = {"linestyle": "-" if split == "test" else "--", "marker": ".", "color": colours[setting]}
        left.plot(rows["threshold"], rows["recall"], label=f"{setting} ({split})", **style)
        right.plot(rows["threshold"], rows["false_per_canvas"], label=f"{setting} ({split})", **style)
    for setting, choice in choices.items():
        for axis in axes[kinds.index(detectors[setting])]:
            axis.axvline(choice["threshold"], color=colours[setting], linestyle=":", linewidth=0.8,
                         label=f"{setting}'s on {chosen['split']}: {choice['threshold']:g}")
    for (left, right), kind in zip(axes, kinds, strict=True):
        for axis in (left, right):
            axis.set_xlabel(xlabels[kind])
        left.axhline(0.95, color="black", linewidth=0.6)
        right.axhline(target, color="black", linewidth=0.6)
        left.set(ylabel="recall, faces 40 px and wider", title=f"Faces found ({kind})")
        right.set(ylabel="false detections per canvas", title=f"Detections on no face ({kind})")
        left.legend(fontsize=7, loc="lower left")
    figure.tight_layout()
    return figure


def write_detection_bench(c: ml_collections.ConfigDict, split_csv: Path, data: str | None, out: Path) -> dict:
    """results/detection/: recall_by_width.csv, canvases.csv, threshold_sweep.csv, summary.json and
    the figures. The threshold sweep runs on ``choice_split`` canvases too (swept and choice settings)."""
    start, load_before = time.perf_counter(), os.getloadavg()
    choice = ml_collections.ConfigDict(c.to_dict())
    choice.split = c.choice_split
    compared = (*c.sweep_settings, *c.choice_settings)
    choice.skip_settings = tuple(name for name in DETECTOR_SETTINGS if name not in compared)
    thresholds = {name: sweep_thresholds(c, name) for name in c.sweep_settings}
    sweeps, results = {}, {}
    box_map = None  # measured on the choice split, then used on the test split
    for split_config in (choice, c):
        result = run_detection_bench(split_config, split_csv, data, box_map)
        box_map, records = result["calibration"].get("mtcnn_box_map_used"), result["records"]
        sweeps[split_config.split] = sweep_table(records, thresholds, c.match_iou, c.recall_from_width)
        results[split_config.split] = result
    sweep = pd.concat([t.assign(split=split) for split, t in sweeps.items()], ignore_index=True)
    chosen = {**choose_setting(sweeps[c.choice_split], tuple(c.choice_settings),
                               c.targets["false_per_canvas_at_most"], c.choice_margin),
              "split": c.choice_split}
    by_point = sweeps[c.split].set_index(["setting", "threshold"])
    at_test = by_point.loc[(chosen["setting"], chosen["threshold"])]
    chosen[c.split] = {"recall": round(float(at_test["recall"]), 4),
                       "false_per_canvas": round(float(at_test["false_per_canvas"]), 4)}
    faces = result["faces"]
    recall = recall_table(faces, tuple(c.width_bins))
    canvases = canvas_table(result["canvases"])
    wide = faces[faces["width"] >= c.recall_from_width]
    per_setting = {}
    for name in sorted(set(result["canvases"]["setting"]), key=list(DETECTOR_SETTINGS).index):
        rows = result["canvases"][result["canvases"]["setting"] == name]
        recall_wide = float(wide[wide["setting"] == name]["found"].mean())
        false = float(rows["false"].mean())
        per_setting[name] = {
            "config_overrides": DETECTOR_SETTINGS[name], "canvases": len(rows),
            f"recall_width_{c.recall_from_width}_up": round(recall_wide, 4),
            "false_per_canvas": round(false, 4),
            "targets_met": bool(recall_wide >= c.targets["recall_at_least"]
                                and false <= c.targets["false_per_canvas_at_most"])}
    default, setting = detector_config("default"), detector_config(chosen["setting"])
    default_threshold = configured_threshold(default)
    chosen["command_default"] = {"detector": default.detector, "threshold": default_threshold}
    same_detector = all(default[k] == setting[k] for k in DETECTOR_SETTINGS[chosen["setting"]])
    same_threshold = abs(default_threshold - chosen["threshold"]) < 1e-9
    chosen["command_default_is_chosen"] = bool(same_detector and same_threshold)
    summary = {"config": c.to_dict(), "split_file": str(split_csv), "calibration": result["calibration"],
               "calibration_choice": results[c.choice_split]["calibration"],
               "settings": per_setting, "threshold": chosen,
               "predict_config": detector_config("default").to_dict(),
               "load_average_1_5_15_min": {"before": load_before, "after": os.getloadavg()},
               "cpu_count": os.cpu_count(), "wall_time_s": round(time.perf_counter() - start, 1),
               "provenance": provenance(data_sha256=archive.data_checksum(locate_dataset(data)),
                                        with_device=True)}
    write_csv(out / "recall_by_width.csv", recall, float_format="%.4f")
    write_csv(out / "canvases.csv", canvases, float_format="%.4f")
    write_csv(out / "threshold_sweep.csv", sweep[["split", *sweep.columns[:-1]]], float_format="%.4f")
    save_figure(out / "threshold_sweep.png",
                sweep_figure(sweep, chosen, c.targets["false_per_canvas_at_most"]))
    write_json(out / "summary.json", summary)
    save_figure(out / "recall_by_width.png", recall_figure(recall))
    return summary
