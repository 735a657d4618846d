"""The prediction command's face detectors over every cleaned crop: which crops hold no face.

A cascade per crop (research/configs/face_scan.py): each HOG setting in turn, then dlib's CNN
detector, stopping at the first pass that finds a face (score >= ``min_score``). The crops no pass
finds a face in are the non-face candidates a person reviews (research/configs/nonfaces.py).

face_scan.csv columns: file, split, age, gender, race; per pass ``<pass>_faces`` (detections at
``min_score`` or above) and ``<pass>_score`` (best score down to ``score_floor``; empty when the
pass found nothing that high or did not run); then ``found_by`` (the first pass that found a
face, or "none"), ``faces`` and ``score`` of that pass, and its best box (box_left, box_top,
box_right, box_bottom, in crop pixels, inclusive as dlib's; empty when no face was found).
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable
from pathlib import Path

import ml_collections
import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from research.configs.predict import detector_config
from research.data import archive
from research.outputs import write_csv, write_json
from research.provenance import provenance

NONE = "none"
CNN = "cnn"
BOX = ("box_left", "box_top", "box_right", "box_bottom")
LABELS = ("file", "split", "age", "gender", "race")

# A pass: RGB uint8 crop -> [(box, score), ...] of every detection down to the score floor.
Detect = Callable[[np.ndarray], list[tuple[tuple[int, int, int, int], float]]]


def pass_names(config: ml_collections.ConfigDict) -> list[str]:
    return [*config.hog_settings, *([CNN] if config.cnn_pass else [])]


def scan_columns(config: ml_collections.ConfigDict) -> list[str]:
    per_pass = [f"{p}_{k}" for p in pass_names(config) for k in ("faces", "score")]
    return [*LABELS, *per_pass, "found_by", "faces", "score", *BOX]


def dlib_passes(config: ml_collections.ConfigDict) -> dict[str, Detect]:
    """The real detectors, loaded once, one callable per pass."""
    from research.predict.faces import FaceAligner

    def hog(setting: str) -> Detect:
        aligner = FaceAligner(detector_config(setting))
        return lambda image: [(box, score) for box, score, _ in aligner.hog_boxes(image, config.score_floor)]

    passes = {name: hog(name) for name in config.hog_settings}
    if config.cnn_pass:
        cnn_config = detector_config("default_cnn")
        cnn_config.cnn_min_confidence = config.cnn_min_confidence
        aligner = FaceAligner(cnn_config)
        passes[CNN] = lambda image: [(box, score) for box, score, _ in aligner.cnn_boxes(image)]
    return passes


def scan_crop(image: np.ndarray, passes: dict[str, Detect], min_score: float,
              seconds: dict[str, list[float]]) -> dict:
    """One crop through the cascade: the per-pass columns and the finding pass's best box.
    ``seconds`` gathers [crops, CPU seconds, wall seconds] per pass."""
    row: dict = {"found_by": NONE, "faces": 0, "score": np.nan, **dict.fromkeys(BOX, np.nan)}
    for name, detect in passes.items():
        start, wall = time.process_time(), time.perf_counter()
        found = sorted(detect(image), key=lambda d: -d[1])
        spent = seconds.setdefault(name, [0, 0.0, 0.0])
        spent[0] += 1
        spent[1] += time.process_time() - start
        spent[2] += time.perf_counter() - wall
        faces = [d for d in found if d[1] >= min_score]
        row[f"{name}_faces"] = len(faces)
        row[f"{name}_score"] = found[0][1] if found else np.nan
        if faces:
            row.update(found_by=name, faces=len(faces), score=faces[0][1],
                       **dict(zip(BOX, faces[0][0], strict=True)))
            break
    return row


def fingerprint(config: ml_collections.ConfigDict, split_sha256: str, data_sha256: str) -> str:
    """What the parts depend on: the detector settings, the split file and the data."""
    settings = {k: config[k] for k in ("hog_settings", "min_score", "score_floor", "cnn_pass",
                                       "cnn_min_confidence", "chunk", "max_crops")}
    settings["detectors"] = {name: detector_config(name).to_dict() for name in config.hog_settings}
    text = json.dumps([settings, split_sha256, data_sha256], sort_keys=True, default=list)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _write_part(folder: Path, index: int, rows: list[dict], seconds: dict, wall: float,
                columns: list[str]) -> None:
    write_csv(folder / f"part_{index:05d}.csv", pd.DataFrame(rows).reindex(columns=columns))
    write_json(folder / f"part_{index:05d}.json", {"seconds": seconds, "wall_s": wall})


def scan_crops(source: Path, crops: pd.DataFrame, config: ml_collections.ConfigDict, parts: Path,
               passes: dict[str, Detect]) -> tuple[pd.DataFrame, dict]:
    """Every crop of ``crops`` (file, split, age, gender, race) through the cascade, ``chunk`` crops
    per part under ``parts`` (a part already there is reused: an interrupted scan resumes).
    Returns (the scan sorted by file, {"seconds": per pass [crops, CPU s, wall s], "wall_s"}) over
    every part."""
    columns = scan_columns(config)
    labels = crops.set_index("file")
    parts.mkdir(parents=True, exist_ok=True)
    done = {int(p.stem.split("_")[1]) for p in parts.glob("part_*.csv") if p.with_suffix(".json").is_file()}
    rows, seconds, started, index = [], {}, time.time(), 0
    with tqdm(total=len(crops), desc="face scan", unit="crop") as bar:
        bar.update(min(len(done) * config.chunk, len(crops)))
        for position, (name, blob) in enumerate(_crops_in_order(source, set(crops["file"]))):
            index = position // config.chunk
            if index in done:
                continue
            image = np.asarray(Image.open(io.BytesIO(blob)).convert("RGB"))
            rows.append({"file": name, **labels.loc[name, list(LABELS[1:])].to_dict(),
                         **scan_crop(image, passes, config.min_score, seconds)})
            bar.update(1)
            if len(rows) == config.chunk:
                _write_part(parts, index, rows, seconds, time.time() - started, columns)
                rows, seconds, started = [], {}, time.time()
        if rows:
            _write_part(parts, index, rows, seconds, time.time() - started, columns)
    return _gather(parts, columns)


def _crops_in_order(source: Path, wanted: set[str]):
    """(name, bytes) of the wanted files in archive order, each once."""
    seen = set()
    for name, blob in archive.iter_files(source, only=wanted):
        if name not in seen:
            seen.add(name)
            yield name, blob


def _gather(parts: Path, columns: list[str]) -> tuple[pd.DataFrame, dict]:
    frames, seconds, wall = [], {}, 0.0
    for csv in sorted(parts.glob("part_*.csv")):
        frames.append(pd.read_csv(csv, keep_default_na=False, na_values=[""]))
        meta = json.loads(csv.with_suffix(".json").read_text())
        wall += meta["wall_s"]
        for name, spent in meta["seconds"].items():
            total = seconds.setdefault(name, [0, 0.0, 0.0])
            seconds[name] = [a + b for a, b in zip(total, spent, strict=True)]
    scan = pd.concat(frames).reindex(columns=columns).sort_values("file", kind="stable")
    return scan.reset_index(drop=True), {"seconds": seconds, "wall_s": wall}


def summarize_scan(scan: pd.DataFrame, config: ml_collections.ConfigDict, timing: dict) -> dict:
    """Counts per split (crops, found by each pass, no face) and the detectors' speed."""
    per_split = {}
    for split, part in [("all", scan), *scan.groupby("split", sort=True)]:
        per_split[split] = {"crops": int(len(part)),
                            **{f"found_by_{p}": int((part["found_by"] == p).sum())
                               for p in pass_names(config)},
                            "no_face": int((part["found_by"] == NONE).sum())}
    # Wall time counts the other jobs sharing the CPU; CPU time is what the detector itself costs.
    speed = {name: {"crops": n, "cpu_ms_per_crop": round(1000 * cpu / max(n, 1), 2),
                    "wall_ms_per_crop": round(1000 * wall / max(n, 1), 2)}
             for name, (n, cpu, wall) in timing["seconds"].items()}
    return {"crops": int(len(scan)), "no_face": per_split["all"]["no_face"], "per_split": per_split,
            "speed": speed, "scan_wall_s": round(timing["wall_s"], 1), "config": config.to_dict()}


def write_face_scan(config: ml_collections.ConfigDict, source: Path, out: Path,
                    passes: dict[str, Detect] | None = None) -> dict:
    """face_scan.csv and face_scan.json (summary, provenance, timing) under ``out``."""
    started = time.time()
    split_file = Path(config.split_file)
    crops = pd.read_csv(split_file, keep_default_na=False)[list(LABELS)]
    if config.max_crops:
        crops = crops.sort_values("file").head(config.max_crops)
    data_sha256 = archive.data_checksum(source)
    key = fingerprint(config, archive.sha256_file(split_file), data_sha256)
    passes = dlib_passes(config) if passes is None else passes
    scan, timing = scan_crops(source, crops, config, Path(config.parts_dir) / key, passes)
    if missing := set(crops["file"]) - set(scan["file"]):
        raise FileNotFoundError(f"{len(missing)} crops of {split_file} are not in {source}: "
                                f"{sorted(missing)[:3]}")
    summary = summarize_scan(scan, config, timing)
    summary.update(wall_time_s=round(time.time() - started, 1), parts=str(Path(config.parts_dir) / key),
                   provenance=provenance(data_sha256=data_sha256))
    write_csv(out / "face_scan.csv", scan, float_format="%.5g")  # scores to 5 digits, boxes whole
    write_json(out / "face_scan.json", summary)
    return summary
