"""The prediction command's work: expand paths, read each photo, find, align and estimate faces.

Every input file gets one record (JSON-able):

  path, status (ok | no_face | not_found | empty_file | not_an_image | truncated | too_large | error),
  message, width, height (upright image, full resolution), scale (pixels of the array searched per
  original pixel; < 1 for downscaled images), notes (conversions applied),
  min_face_width (smallest face width, original pixels, the detector could find in this photo),
  faces: [{box [left, top, right, bottom] in original pixels, detection_score, detector (hog | cnn),
           landmarks, age, age_interval [low, high], age_interval_level, age_std, gender,
           gender_probability, challenge {threshold, rule, parameter, p_under (P(age < N)),
           decision ("ID check" | "no ID check"), reason}}]

Records are produced one at a time (``iter_records``): a folder of any size runs in constant
memory as long as the caller does not keep them (``Tally`` counts what the summary needs).
"""

from __future__ import annotations

import dataclasses
import time
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
        estimator, aligner = AgeEstimator(release, config), FaceAligner(config)
        if config.get("precompile", False):
            estimator.precompile()
            aligner.precompile()
        return cls(aligner, estimator, config)

    def predict_array(self, image: np.ndarray, challenge: float, scale: float = 1.0) -> tuple[list[dict],
                                                                                              np.ndarray]:
        """Faces of an RGB uint8 array (boxes divided by ``scale``) and their aligned chips."""
        detected = self.aligner.detect(image)
        chips = self.aligner.chips(image, [shape for _, shape in detected])
        results = self.estimator.faces(chips, challenge)
        faces = []
        for (face, _), result in zip(detected, results, strict=True):
            faces.append({"box": [round(v / scale) for v in face.box],
                          "detection_score": round(face.score, 3), "detector": face.detector,
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
    record["min_face_width"] = round(predictor.aligner.min_face_width(loaded.array) / loaded.scale)
    try:
        record["faces"], _ = predictor.predict_array(loaded.array, challenge, loaded.scale)
    except Exception as error:  # one bad photo must not stop a folder: report it and go on
        record.update(status="error", message=f"prediction failed: {type(error).__name__}: {error}")
        return record, loaded.array
    count = len(record["faces"])
    record["status"], record["message"] = ("ok", f"{count} face{'s' * (count != 1)}") if count else \
        ("no_face", f"no face found (the detector finds frontal faces of about {record['min_face_width']} px "
                    "or wider in this photo)")
    return record, loaded.array


def expand_paths(paths: list[Path]) -> Iterator[Path]:
    """Files named directly, then every file under each folder (sorted, hidden files skipped)."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file()
                              and not any(part.startswith(".") for part in p.relative_to(path).parts))
        else:
            yield path


def iter_records(predictor: Predictor, paths: list[Path], challenge: float,
                 progress: bool | None = None) -> Iterator[tuple[dict, np.ndarray | None]]:
    """(record, searched array) for every file under ``paths``, one at a time; a progress bar when
    a folder is given. Only the list of file paths is held, never the records or the images."""
    files = list(expand_paths([Path(p) for p in paths]))
    show = any(Path(p).is_dir() for p in paths) if progress is None else progress
    for path in tqdm(files, desc="predict", unit="photo", disable=not show, dynamic_ncols=True):
        yield predict_file(predictor, path, challenge)


def predict_paths(predictor: Predictor, paths: list[Path], challenge: float,
                  on_record: Callable[[dict, np.ndarray | None], None] | None = None,
                  progress: bool | None = None) -> list[dict]:
    """Records for every file under ``paths`` as a list (small inputs; see ``iter_records``)."""
    records = []
    for record, array in iter_records(predictor, paths, challenge, progress):
        records.append(record)
        if on_record:
            on_record(record, array)
    return records


@dataclasses.dataclass
class Tally:
    """The running summary of a stream of records (constant memory)."""

    files: int = 0
    read: int = 0
    faces: int = 0
    id_checks: int = 0
    statuses: dict[str, int] = dataclasses.field(default_factory=dict)
    started: float = dataclasses.field(default_factory=time.perf_counter)

    def add(self, record: dict) -> None:
        self.files += 1
        self.read += record["status"] in READ_STATUSES
        self.statuses[record["status"]] = self.statuses.get(record["status"], 0) + 1
        self.faces += len(record["faces"])
        self.id_checks += sum(f["challenge"]["decision"] == "ID check" for f in record["faces"])

    def summary(self) -> dict:
        seconds = time.perf_counter() - self.started
        return {"files": self.files, "read": self.read, "statuses": dict(self.statuses), "faces": self.faces,
                "id_checks": self.id_checks, "seconds": round(seconds, 2),
                "faces_per_s": round(self.faces / seconds, 2) if seconds > 0 else None}


def summarize(records: list[dict]) -> dict:
    """Counts per status, faces found and how many asked for an ID check."""
    tally = Tally()
    for r in records:
        tally.add(r)
    return {k: v for k, v in tally.summary().items() if k not in ("seconds", "faces_per_s")}
