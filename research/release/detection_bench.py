"""Detection benchmark: how small a face each detector setting still finds, and how often it fires
on something that is not a face.

Test-split crops (200x200, aligned as UTKFace made them) are pasted with a soft edge into
photo-sized canvases (a blurred colour field with patches of skimage's packaged non-face photos
as clutter), several per canvas, at face widths from 24 to 300 px, deterministically for a seed.
A crop's face width is the width dlib's HOG box would have on it: the crop side times the median
box/crop ratio measured on ``calibration_chips`` crops shown alone at 200 px. A detection finds a
face when its box overlaps the expected box by ``match_iou``; every other detection is false.

Outputs (results/detection/, aggregates only): recall_by_width.csv (setting, canvas, width bin,
faces, found, recall), canvases.csv (setting, canvas size, canvases, false detections per canvas,
detection time p50/p95), summary.json with provenance, recall_by_width.png.
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
from research.predict.faces import FaceAligner, box_iou
from research.provenance import provenance
from research.release.consistency import read_blobs, sample_split

CLUTTER = ("brick", "grass", "gravel", "coffee", "rocket", "text", "camera", "moon", "hubble_deep_field")


def clutter_images() -> list[Image.Image]:
    from skimage import data

    return [Image.fromarray(getattr(data, name)()).convert("RGB") for name in CLUTTER]


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


def run_detection_bench(c: ml_collections.ConfigDict, split_csv: Path, data: str | None) -> dict:
    """Face rows and canvas rows for every setting, and the calibration."""
    source = locate_dataset(data)
    rng = np.random.default_rng(c.seed)
    n_faces = len(c.canvases) * c.canvases_per_size * c.faces_per_canvas[1] + c.calibration_chips
    sample = sample_split(split_csv, c.split, n_faces, c.seed)
    blobs = read_blobs(source, sample["file"])
    chips = [Image.open(io.BytesIO(blobs[f])).convert("RGB") for f in sample["file"]]
    aligners = {name: FaceAligner(detector_config(name)) for name in DETECTOR_SETTINGS
                if name not in c.skip_settings}
    calibration = calibrate_box(FaceAligner(detector_config("default")), chips[:c.calibration_chips])
    clutter, pool = clutter_images(), iter(chips[c.calibration_chips:])
    face_rows, canvas_rows = [], []
    for size_index, size in enumerate(c.canvases):
        for k in tqdm(range(c.canvases_per_size), desc=f"detection {size[0]}x{size[1]}", unit="canvas"):
            count = int(rng.integers(c.faces_per_canvas[0], c.faces_per_canvas[1] + 1))
            canvas, faces = make_canvas(tuple(size), [next(pool) for _ in range(count)], clutter, rng, c,
                                        calibration["box_fractions"])
            for name, aligner in aligners.items():
                if aligner.config.cnn_detector and k >= c.cnn_canvases_per_size[size_index]:
                    continue
                tic = time.perf_counter()
                found = [face.box for face, _ in aligner.detect(canvas)]
                seconds = time.perf_counter() - tic
                hit, false = match(found, faces, c.match_iou)
                canvas_rows.append({"setting": name, "canvas": f"{size[0]}x{size[1]}", "index": k,
                                    "faces": len(faces), "false": false, "seconds": seconds})
                face_rows += [{"setting": name, "canvas": f"{size[0]}x{size[1]}", "width": w, "found": h}
                              for (_, w), h in zip(faces, hit, strict=True)]
    return {"faces": pd.DataFrame(face_rows), "canvases": pd.DataFrame(canvas_rows),
            "calibration": calibration}


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


def write_detection_bench(c: ml_collections.ConfigDict, split_csv: Path, data: str | None, out: Path) -> dict:
    """results/detection/: recall_by_width.csv, canvases.csv, summary.json, recall_by_width.png."""
    start, load_before = time.perf_counter(), os.getloadavg()
    result = run_detection_bench(c, split_csv, data)
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
    summary = {"config": c.to_dict(), "split_file": str(split_csv), "calibration": result["calibration"],
               "settings": per_setting, "predict_config": detector_config("default").to_dict(),
               "load_average_1_5_15_min": {"before": load_before, "after": os.getloadavg()},
               "cpu_count": os.cpu_count(), "wall_time_s": round(time.perf_counter() - start, 1),
               "provenance": provenance(data_sha256=archive.data_checksum(locate_dataset(data)),
                                        with_device=True)}
    write_csv(out / "recall_by_width.csv", recall, float_format="%.4f")
    write_csv(out / "canvases.csv", canvases, float_format="%.4f")
    write_json(out / "summary.json", summary)
    save_figure(out / "recall_by_width.png", recall_figure(recall))
    return summary
