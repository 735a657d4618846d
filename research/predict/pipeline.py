"""The prediction command's work: expand paths, read each photo, find, align and estimate faces.

Every input file gets one record (JSON-able):

  path, status (ok | no_face | not_found | empty_file | not_an_image | truncated | too_large | error),
  message, width, height (upright image, full resolution), scale (pixels of the array searched per
  original pixel; < 1 for downscaled images), notes (conversions applied),
  faces: [{box [left, top, right, bottom] in original pixels, detection_score, landmarks,
           age, age_interval [low, high], age_std, gender, gender_probability,
           challenge {threshold, decision ("ID check" | "no ID check"), reason}}]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import ml_collections
import numpy as np
from tqdm import tqdm

from research.predict.estimate import AgeEstimator
from research.predict.faces import FaceAligner
from research.predict.images import LoadedImage, load_image
from research.predict.release import Release, load_release

READ_STATUSES = ("ok", "no_face")  # the file was read as an image


@dataclasses.dataclass
class Predictor:
    """Detector, aligner and release model, loaded once for many photos."""

    aligner: FaceAligner
    estimator: AgeEstimator
    config: ml_collections.ConfigDict

    @classmethod
    def from_release(cls, release: Release | str | Path, config: ml_collections.ConfigDict) -> Predictor:
        release = release if isinstance(release, Release) else load_release(release)
        return cls(FaceAligner(config), AgeEstimator(release, config), config)

    def predict_array(self, image: np.ndarray, challenge: float, scale: float = 1.0) -> tuple[list[dict],
                                                                                              np.ndarray]:
        """Faces of an RGB uint8 array (boxes divided by ``scale``) and their aligned chips."""
        detected = self.aligner.detect(image)
        chips = self.aligner.chips(image, [shape for _, shape in detected])
        results = self.estimator.faces(chips, challenge)
        faces = []
        for (face, _), result in zip(detected, results, strict=True):
            faces.append({"box": [round(v / scale) for v in face.box],
                          "detection_score": round(face.score, 3),
                          "landmarks": [[round(x / scale), round(y / scale)] for x, y in face.landmarks],
                          **result})
        return faces, chips


def predict_file(predictor: Predictor, path: Path, challenge: float) -> tuple[dict, np.ndarray | None]:
    """The record of one file, and the array the faces were found in (None when it was not read)."""
    c = predictor.config
    try:
        loaded = load_image(path, c.max_decode_pixels, c.max_side)
    except Exception as error:  # a failure no status foresaw still must not stop the other files
        loaded = LoadedImage(status="error", message=f"could not read: {type(error).__name__}: {error}")
    record = {"path": str(path), "status": loaded.status, "message": loaded.message,
              "width": loaded.size[0] if loaded.size else None,
              "height": loaded.size[1] if loaded.size else None, "scale": loaded.scale, "notes": loaded.notes,
              "faces": []}
    if loaded.status != "ok":
        return record, None
    try:
        record["faces"], _ = predictor.predict_array(loaded.array, challenge, loaded.scale)
    except Exception as error:  # one bad photo must not stop a folder: report it and go on
        record.update(status="error", message=f"prediction failed: {type(error).__name__}: {error}")
        return record, loaded.array
    count = len(record["faces"])
    record["status"], record["message"] = ("ok", f"{count} face{'s' * (count != 1)}") if count else \
        ("no_face", "no face found (the detector finds frontal faces of about 80 px or more)")
    return record, loaded.array


def expand_paths(paths: list[Path]) -> Iterator[Path]:
    """Files named directly, then every file under each folder (sorted, hidden files skipped)."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file()
                              and not any(part.startswith(".") for part in p.relative_to(path).parts))
        else:
            yield path


def predict_paths(predictor: Predictor, paths: list[Path], challenge: float,
                  on_record: Callable[[dict, np.ndarray | None], None] | None = None,
                  progress: bool | None = None) -> list[dict]:
    """Records for every file under ``paths``; a progress bar when a folder is given."""
    files = list(expand_paths([Path(p) for p in paths]))
    show = any(Path(p).is_dir() for p in paths) if progress is None else progress
    records = []
    bar = tqdm(files, desc="predict", unit="file", disable=not show)
    for path in bar:
        record, array = predict_file(predictor, path, challenge)
        records.append(record)
        if on_record:
            on_record(record, array)
    return records


def summarize(records: list[dict]) -> dict:
    """Counts per status, faces found and how many asked for an ID check."""
    statuses: dict[str, int] = {}
    for r in records:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    faces = [f for r in records for f in r["faces"]]
    return {"files": len(records), "read": sum(r["status"] in READ_STATUSES for r in records),
            "statuses": statuses, "faces": len(faces),
            "id_checks": sum(f["challenge"]["decision"] == "ID check" for f in faces)}
