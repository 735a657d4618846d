"""Consistency of the prediction command with evaluation on the UTKFace crops.

Each sampled crop (200x200, already aligned) is pasted at a random position and scale into a
larger canvas; the full path (detect, landmarks, align, predict) runs on the canvas and its age
estimate is compared with direct prediction on the crop as the training cache reads it
(``research.data.cache.decode_resize``). Run on the validation split it also compares chip
paddings, so the padding is chosen without looking at test.

consistency.csv rows: file, age, gender, x, y, side, detected, detection_score, best_other_score,
pred_age_direct, pred_gender_direct, then pred_age_full / pred_gender_full per padding.
size_bins.csv: the test crops again at small sides (SMALL_SCALE_RANGE) and the standard run,
per crop-side bin: images, detected, detection_rate, mae_full_path, mae_direct, mae_difference
(on the detected crops) and mean_abs_estimate_difference. A face's HOG box is about 0.86 of
the crop side (results/detection/summary.json, calibration).
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import ml_collections
import numpy as np
import pandas as pd
from PIL import Image, ImageFilter
from tqdm import tqdm

from research.data import archive
from research.data.cache import decode_resize
from research.data.locate import locate_dataset
from research.evaluation.bootstrap import bootstrap_means, percentile_interval
from research.outputs import write_csv, write_json
from research.predict.estimate import chips_to_inputs
from research.predict.pipeline import Predictor
from research.provenance import provenance
from research.vocabulary import AGE_GROUPS, age_group

CANVAS = (640, 480)
SCALE_RANGE = (0.8, 2.0)  # pasted crop side / 200 px
SMALL_SCALE_RANGE = (0.15, 0.8)  # sides 30-160 px: faces the upscaled detector reaches
SIDE_BINS = (30, 48, 64, 96, 128, 160, 240, 401)
# Detections are kept down to a floor to tabulate detection rates at other thresholds, on the first
# detector's own score: HOG's SVM margin, MTCNN's O-Net probability (from its cascade's own floor).
SCORE_FLOOR = {"hog": -0.5, "mtcnn": None}
MIN_SCORES = {"hog": (0.0, 0.1, 0.2, 0.3, 0.4, 0.5), "mtcnn": (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)}


def sample_split(split_csv: Path, split: str, n: int, seed: int) -> pd.DataFrame:
    table = pd.read_csv(split_csv, keep_default_na=False)
    part = table[table["split"] == split]
    return part.sample(min(n, len(part)), random_state=seed).reset_index(drop=True)


def read_blobs(source: Path, files: pd.Series) -> dict[str, bytes]:
    blobs = dict(archive.iter_files(Path(source), only=set(files)))
    missing = sorted(set(files) - set(blobs))
    if missing:
        raise FileNotFoundError(f"{len(missing)} sampled files are not in {source}, e.g. {missing[:3]}")
    return blobs


def background(rng: np.random.Generator) -> Image.Image:
    """A blurred random colour field: a plain but not uniform backdrop."""
    coarse = Image.fromarray(rng.integers(40, 216, (6, 8, 3), dtype=np.uint8))
    return coarse.resize(CANVAS, Image.Resampling.BICUBIC).filter(ImageFilter.GaussianBlur(8))


def place(chip: Image.Image, rng: np.random.Generator, scale_range: tuple[float, float]) -> tuple:
    """The chip resized by a random scale, pasted at a random position; returns (canvas, x, y, side)."""
    side = int(round(chip.size[0] * rng.uniform(*scale_range)))
    x = int(rng.integers(0, CANVAS[0] - side + 1))
    y = int(rng.integers(0, CANVAS[1] - side + 1))
    canvas = background(rng)
    canvas.paste(chip.resize((side, side), Image.Resampling.BILINEAR), (x, y))
    return np.asarray(canvas), x, y, side


def run_consistency(predictor: Predictor, sample: pd.DataFrame, blobs: dict[str, bytes],
                    paddings: list[float], seed: int,
                    scale_range: tuple[float, float] = SCALE_RANGE) -> pd.DataFrame:
    """One row per sampled crop: direct and full-path predictions (full path per padding).

    Detection runs with threshold ``SCORE_FLOOR`` (MTCNN: its cascade's floor) so that rates at
    other thresholds can be tabulated; a face counts as detected at the detector's configured threshold.
    """
    rng = np.random.default_rng(seed)
    estimator, aligner = predictor.estimator, predictor.aligner
    size = estimator.image_size
    direct = estimator.raw(np.stack([decode_resize(blobs[f], size) for f in sample["file"]]))
    rows, chips = [], {p: [] for p in paddings}
    for file in tqdm(sample["file"], desc="consistency", unit="img"):
        canvas, x, y, side = place(Image.open(io.BytesIO(blobs[file])).convert("RGB"), rng, scale_range)
        floor = SCORE_FLOOR[aligner.detector]
        found = aligner.detect(canvas, min_score=aligner.score_floor if floor is None else floor)
        # The face that was pasted: the best-scoring detection whose centre lies inside the crop.
        inside = [(face, shape) for face, shape in found
                  if x <= (face.box[0] + face.box[2]) / 2 <= x + side
                  and y <= (face.box[1] + face.box[3]) / 2 <= y + side]
        score = inside[0][0].score if inside else np.nan
        detected = bool(inside) and score >= aligner.threshold
        others = [face.score for face, _ in found if not inside or face is not inside[0][0]]
        rows.append({"file": file, "x": x, "y": y, "side": side, "detected": detected,
                     "detection_score": score, "best_other_score": max(others, default=np.nan)})
        for p in paddings:
            if detected:
                chips[p].append(aligner.chips(canvas, [inside[0][1]], padding=p)[0])
    frame = pd.concat([sample[["file", "age", "gender"]], pd.DataFrame(rows).drop(columns="file")], axis=1)
    frame["pred_age_direct"] = direct["age"]
    frame["pred_gender_direct"] = direct["p_gender"].argmax(-1)
    found = frame["detected"].to_numpy()
    for p in paddings:
        full = estimator.raw(chips_to_inputs(np.stack(chips[p]), size)) if chips[p] else None
        for key, values in (("pred_age_full", "age"), ("pred_gender_full", "p_gender")):
            column = np.full(len(frame), np.nan)
            if full is not None:
                column[found] = full[values] if values == "age" else full[values].argmax(-1)
            frame[f"{key}_p{p:g}"] = column
    return frame


def paired_mae_difference(true: np.ndarray, full: np.ndarray, direct: np.ndarray, resamples: int,
                          seed: int) -> list[float]:
    """95% percentile bootstrap interval of MAE(full) - MAE(direct), images resampled in pairs."""
    diff = np.abs(full - true) - np.abs(direct - true)
    return percentile_interval(bootstrap_means(diff, resamples, np.random.default_rng(seed)), 0.95)


def padding_summary(frame: pd.DataFrame, padding: float, resamples: int = 1000, seed: int = 0) -> dict:
    """Detection rate, MAE of the full path and of direct prediction on the same detected crops."""
    found = frame[frame["detected"].astype(bool)]
    true = found["age"].to_numpy(float)
    full = found[f"pred_age_full_p{padding:g}"].to_numpy(float)
    direct = found["pred_age_direct"].to_numpy(float)
    mae_full, mae_direct = float(np.abs(full - true).mean()), float(np.abs(direct - true).mean())
    return {
        "padding": padding, "images": len(frame), "detected": len(found),
        "detection_rate": len(found) / len(frame) if len(frame) else float("nan"),
        "mae_full_path": mae_full, "mae_direct": mae_direct, "mae_difference": mae_full - mae_direct,
        "mae_difference_interval": paired_mae_difference(true, full, direct, resamples, seed),
        "mean_abs_estimate_difference": float(np.abs(full - direct).mean()),
        "gender_agreement": float((found[f"pred_gender_full_p{padding:g}"]
                                   == found["pred_gender_direct"]).mean()),
        "mae_direct_all_sampled": float(np.abs(frame["pred_age_direct"] - frame["age"]).mean()),
    }


def _mean_abs(values: np.ndarray) -> float:
    return float(np.abs(values).mean()) if len(values) else float("nan")


def size_bin_table(frames: dict[str, pd.DataFrame], padding: float) -> pd.DataFrame:
    """Detection rate and full-path vs direct MAE per crop-side bin, for each run in ``frames``."""
    rows = []
    for run, frame in frames.items():
        sides = pd.cut(frame["side"], list(SIDE_BINS), right=False)
        for interval, part in frame.groupby(sides, observed=True):
            found = part[part["detected"].astype(bool)]
            true, direct = found["age"].to_numpy(float), found["pred_age_direct"].to_numpy(float)
            full = found[f"pred_age_full_p{padding:g}"].to_numpy(float)
            rows.append({"run": run, "side_bin": f"{interval.left}-{interval.right - 1}",
                         "images": len(part), "detected": len(found),
                         "detection_rate": len(found) / len(part),
                         "mae_full_path": _mean_abs(full - true), "mae_direct": _mean_abs(direct - true),
                         "mae_difference": _mean_abs(full - true) - _mean_abs(direct - true),
                         "mean_abs_estimate_difference": _mean_abs(full - direct)})
    return pd.DataFrame(rows)


def detection_by_age_group(frame: pd.DataFrame) -> list[dict]:
    """Detection rate per AGE_GROUPS bucket (the detector may miss some groups more than others)."""
    groups = frame["age"].map(age_group)
    return [{"age_group": label, "images": int((groups == label).sum()),
             "detection_rate": float(frame["detected"][groups == label].mean()) if (groups == label).any()
             else float("nan")} for label, _, _ in AGE_GROUPS]


def write_consistency(release_dir: Path, config: ml_collections.ConfigDict, split_csv: Path, data: str | None,
                      n_test: int, n_val: int, paddings: list[float], seed: int, out: Path) -> dict:
    """padding_sweep.csv (validation), consistency.csv (test, configured padding), summary.json."""
    start = time.perf_counter()
    source = locate_dataset(data)
    predictor = Predictor.from_release(release_dir, config)
    samples = {"val": sample_split(split_csv, "val", n_val, seed),
               "test": sample_split(split_csv, "test", n_test, seed)}
    blobs = read_blobs(source, pd.concat([s["file"] for s in samples.values()]))
    val = run_consistency(predictor, samples["val"], blobs, paddings, seed)
    sweep = pd.DataFrame([padding_summary(val, p, seed=seed) for p in paddings])
    # The padding whose full-path estimates come closest to direct prediction on the crops.
    best = float(sweep.loc[sweep["mean_abs_estimate_difference"].idxmin(), "padding"])
    test = run_consistency(predictor, samples["test"], blobs, [config.chip_padding], seed + 1)
    small = run_consistency(predictor, samples["test"], blobs, [config.chip_padding], seed + 2,
                            scale_range=SMALL_SCALE_RANGE)
    by_size = size_bin_table({"standard": test, "small": small}, config.chip_padding)
    by_score = [{"min_score": t, "detection_rate": float((val["detection_score"] >= t).mean()),
                 "images_with_another_detection": int((val["best_other_score"] >= t).sum())}
                for t in MIN_SCORES[predictor.aligner.detector]]
    summary = {
        "release": str(release_dir), "params_sha256": predictor.estimator.release.metadata["params_sha256"],
        "split_file": str(split_csv), "seed": seed, "canvas": list(CANVAS),
        "chip_scale_range": list(SCALE_RANGE), "small_chip_scale_range": list(SMALL_SCALE_RANGE),
        "predict_config": config.to_dict(),
        "padding_chosen_on_val": best, "padding_used": config.chip_padding,
        "val_detection_by_min_score": by_score, "min_detection_score_used": predictor.aligner.threshold,
        "detector_used": predictor.aligner.detector,
        "val": sweep.to_dict(orient="records"),
        "test": padding_summary(test, config.chip_padding, seed=seed),
        "test_detection_by_age_group": detection_by_age_group(test),
        "test_small": padding_summary(small, config.chip_padding, seed=seed),
        "test_by_side": by_size.to_dict(orient="records"),
        "wall_time_s": round(time.perf_counter() - start, 1),
        "provenance": provenance(data_sha256=archive.data_checksum(source), with_device=True),
    }
    write_csv(out / "padding_sweep.csv", sweep.drop(columns="mae_difference_interval"), float_format="%.4f")
    write_csv(out / "consistency.csv", test, float_format="%.3f")
    write_csv(out / "size_bins.csv", by_size, float_format="%.4f")
    write_json(out / "summary.json", summary)
    return summary
