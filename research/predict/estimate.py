"""Age, gender and Challenge-N decision for aligned face chips, with the release model.

The chips are brought to the model's input exactly as training saw UTKFace crops
(``chips_to_inputs``), then go through ``research.inference.mixture_step`` (each member's
``predict_step`` with flip TTA, mixed when the release is an ensemble), jitted once per batch
size; faces are padded to a few fixed batch sizes so that few shapes compile, and ``precompile``
compiles them all at start-up so that no photo pays a compile.
"""

from __future__ import annotations

import functools

import jax
import ml_collections
import numpy as np
from PIL import Image

from research.inference import mixture_step
from research.models.age_interval import interval_lower_end
from research.models.heads import NUM_AGE_BINS
from research.predict.release import Release
from research.vocabulary import GENDERS

GENDER_NAMES = tuple(GENDERS[k] for k in sorted(GENDERS))  # UTKFace's label order
MAX_AGE = NUM_AGE_BINS - 1
ID_CHECK, NO_CHECK = "ID check", "no ID check"


def chip_to_input(chip: np.ndarray, size: int) -> np.ndarray:
    """One aligned chip at the model's input size, resized as the training cache resized crops.

    The cache decodes each 200 px JPEG with ``Image.draft`` (libjpeg's DCT downscale by the
    largest power of two that stays at or above ``size``) and then resizes bilinearly; on an
    array the DCT downscale is matched by a box reduction by the same factor.
    """
    image = Image.fromarray(chip)
    factor = 1
    while factor < 8 and min(image.size) // (factor * 2) >= size:
        factor *= 2
    if factor > 1:
        image = image.reduce(factor)
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
    return np.asarray(image, np.uint8)


def chips_to_inputs(chips: np.ndarray, size: int) -> np.ndarray:
    return np.stack([chip_to_input(c, size) for c in chips]) if len(chips) else np.zeros((0, size, size, 3),
                                                                                         np.uint8)


def bucket_size(count: int, buckets: tuple[int, ...]) -> int:
    """The smallest bucket that holds ``count`` faces (the largest one when none does)."""
    return next((b for b in buckets if b >= count), buckets[-1])


class AgeEstimator:
    """The release model, jitted once, applied to batches of aligned chips."""

    def __init__(self, release: Release, config: ml_collections.ConfigDict):
        self.release = release
        self.config = config
        self.image_size = int(release.config.image_size)
        self._step = jax.jit(functools.partial(mixture_step, apply_fn=release.model.apply,
                                               tta_flip=bool(release.config.eval.tta_flip),
                                               weights=release.weights))

    def precompile(self) -> None:
        """Compile the step for every batch bucket now (start-up) instead of on first use."""
        shape = (self.image_size, self.image_size, 3)
        for bucket in self.config.batch_buckets:
            jax.block_until_ready(self._step(self.release.members, np.zeros((bucket, *shape), np.uint8)))

    def compiled_sizes(self) -> int:
        """How many input shapes the step has compiled (jit's cache; a test checks start-up)."""
        return self._step._cache_size()

    def raw(self, inputs: np.ndarray) -> dict[str, np.ndarray]:
        """Model outputs for uint8 inputs already at the model's size, batch padded to a bucket."""
        buckets = tuple(self.config.batch_buckets)
        parts = []
        for start in range(0, len(inputs), buckets[-1]):
            chunk = inputs[start:start + buckets[-1]]
            padded = np.zeros((bucket_size(len(chunk), buckets), *chunk.shape[1:]), np.uint8)
            padded[:len(chunk)] = chunk
            out = jax.device_get(self._step(self.release.members, padded))
            parts.append({k: np.asarray(v[:len(chunk)]) for k, v in out.items()})
        if not parts:
            return {}
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def faces(self, chips: np.ndarray, challenge: float) -> list[dict]:
        """One result per chip: age with its interval, gender with a probability, the decision."""
        out = self.raw(chips_to_inputs(chips, self.image_size))
        return [face_result(out, i, self.config.interval_z, challenge) for i in range(len(chips))]


def id_check(age, std, z: float, challenge: float):
    """The command's Challenge-N rule (scalars or arrays): ask for ID when the estimate, or the
    lower end of its interval (estimate - z sd, at least 0), is below N. z = 0: the estimate alone."""
    return (np.asarray(age) < challenge) | (interval_lower_end(age, std, z) < challenge)


def face_result(out: dict[str, np.ndarray], i: int, z: float, challenge: float) -> dict:
    """The JSON-able result of face ``i`` of a model output."""
    age, std = float(out["age"][i]), float(out["age_std"][i])
    low, high = float(interval_lower_end(age, std, z)), min(float(MAX_AGE), age + z * std)
    gender = int(np.argmax(out["p_gender"][i]))
    check = bool(id_check(age, std, z, challenge))
    return {
        "age": round(age, 1),
        "age_interval": [round(low, 1), round(high, 1)],
        "age_std": round(std, 2),
        "gender": GENDER_NAMES[gender],
        "gender_probability": round(float(out["p_gender"][i][gender]), 3),
        "challenge": {"threshold": challenge, "decision": ID_CHECK if check else NO_CHECK,
                      "reason": (f"estimate {age:.1f} is below {challenge:g}" if age < challenge else
                                 f"interval starts at {low:.1f}, below {challenge:g}" if check else
                                 f"estimate and interval are at or above {challenge:g}")},
    }
