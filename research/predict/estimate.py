"""Age, gender and Challenge-N decision for aligned face chips, with the release model.

The chips are brought to the model's input exactly as training saw UTKFace crops
(``chips_to_inputs``), then go through ``views_step`` (``research.inference.distribution_step``'s
outputs with the image and its mirror in one forward pass: half the program to compile; a
regression head goes through ``mixture_step``), jitted once per batch size; faces are padded to a
few fixed batch sizes so that few shapes compile, and ``precompile`` compiles them all at start-up
so that no photo pays a compile. The decision follows ``research.predict.rules``: the release's age
correction, its calibrated interval and the rule chosen on validation.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image

from research.inference import mixture_step
from research.models.age_distribution import moments
from research.models.age_interval import interval_lower_end
from research.models.preprocessing import normalize
from research.predict.release import Release
from research.predict.rules import ID_CHECK, NO_CHECK, Decision, RuleError, decision_for
from research.vocabulary import GENDERS

GENDER_NAMES = tuple(GENDERS[k] for k in sorted(GENDERS))  # UTKFace's label order
__all__ = ["ID_CHECK", "NO_CHECK", "AgeEstimator", "chip_to_input", "face_result", "id_check"]


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


def views_step(members: tuple[dict, ...], images: jnp.ndarray, apply_fn, tta_flip: bool,
                weights: tuple[float, ...]) -> dict:
    """``research.inference.distribution_step``'s outputs (``age_probs``, ``p_gender``, ``p_race``)
    with the image and its mirror stacked into one batch: one forward pass per member instead of
    one per view, so the program XLA compiles for each batch size is half as large (the frozen
    batch norm of inference makes the two the same up to float rounding; a test checks this).
    Classification age heads only."""
    x = normalize(images)
    count = x.shape[0]
    batch = jnp.concatenate([x, x[:, :, ::-1]]) if tta_flip else x
    w = jnp.asarray(weights, jnp.float32) / sum(weights)
    per_member = []
    for variables in members:
        out = apply_fn(variables, batch, train=False)
        if out["age"].ndim != 2:
            raise ValueError("a regression age head predicts no age distribution")
        probs = {k: jax.nn.softmax(out[k].astype(jnp.float32)) for k in ("age", "gender", "race")}
        if tta_flip:
            probs = {k: (v[:count] + v[count:]) / 2 for k, v in probs.items()}
        per_member.append(probs)

    def mix(key: str) -> jnp.ndarray:
        return jnp.tensordot(w, jnp.stack([m[key] for m in per_member]), axes=1)

    return {"age_probs": mix("age"), "p_gender": mix("gender"), "p_race": mix("race")}


def bucket_size(count: int, buckets: tuple[int, ...]) -> int:
    """The smallest bucket that holds ``count`` faces (the largest one when none does)."""
    return next((b for b in buckets if b >= count), buckets[-1])


class AgeEstimator:
    """The release model, jitted once, applied to batches of aligned chips."""

    def __init__(self, release: Release, config: ml_collections.ConfigDict):
        self.release = release
        self.config = config
        self.image_size = int(release.config.image_size)
        self.has_distribution = release.config.model.get("age_head", "classification") == "classification"
        step = views_step if self.has_distribution else mixture_step
        self._step = jax.jit(functools.partial(step, apply_fn=release.model.apply,
                                               tta_flip=bool(release.config.eval.tta_flip),
                                               weights=release.weights))
        self._decisions: dict[float, Decision] = {}

    def decision(self, challenge: float) -> Decision:
        """The Challenge-N rule for ``challenge`` (the config's rule, else the release's operating
        point); RuleError when the release cannot apply it."""
        if challenge not in self._decisions:
            c = self.config
            decision = decision_for(self.release.rules, challenge, c.get("rule", ""), c.get("rule_parameter"),
                                    c.interval_z, c.get("interval_level"))
            if not self.has_distribution and (decision.rule != "threshold" or decision.correction):
                raise RuleError("a regression age head has no age distribution: only the threshold rule "
                                "applies")
            self._decisions[challenge] = decision
        return self._decisions[challenge]

    def precompile(self) -> None:
        """Compile the step for every batch bucket now (start-up) instead of on first use."""
        shape = (self.image_size, self.image_size, 3)
        for bucket in self.config.batch_buckets:
            jax.block_until_ready(self._step(self.release.members, np.zeros((bucket, *shape), np.uint8)))

    def compiled_sizes(self) -> int:
        """How many input shapes the step has compiled (jit's cache; a test checks start-up)."""
        return self._step._cache_size()

    def raw(self, inputs: np.ndarray) -> dict[str, np.ndarray]:
        """Model outputs for uint8 inputs already at the model's size, batch padded to a bucket:
        age and age_std (the uncorrected distribution's mean and sd), p_gender, p_race, and
        age_probs (the distribution) for a classification head."""
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
        out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        if "age_probs" in out:
            out["age"], out["age_std"] = moments(out["age_probs"])
        return out

    def faces(self, chips: np.ndarray, challenge: float) -> list[dict]:
        """One result per chip: age with its interval, gender with a probability, P(age < N), the decision."""
        decision = self.decision(challenge)
        out = self.raw(chips_to_inputs(chips, self.image_size))
        if not len(chips):
            return []
        if "age_probs" in out:
            out.update(decision.estimates(out["age_probs"]))
        else:  # a regression head: the estimate alone
            out["age_low"], out["age_high"] = out["age"], out["age"]
            out["p_under"] = np.full(len(chips), np.nan)
        return [face_result(out, i, decision) for i in range(len(chips))]


def id_check(age, std, z: float, challenge: float):
    """The uncalibrated interval rule (scalars or arrays): ask for ID when the estimate, or
    estimate - z sd (at least 0), is below N; z = 0: the estimate alone. The command's fallback for
    a release without rules.json."""
    return (np.asarray(age) < challenge) | (interval_lower_end(age, std, z) < challenge)


def face_result(out: dict[str, np.ndarray], i: int, decision: Decision) -> dict:
    """The JSON-able result of face ``i`` of the estimates ``out`` (Decision.estimates' keys and
    p_gender) under ``decision``."""
    age, std, p_under = float(out["age"][i]), float(out["age_std"][i]), float(out["p_under"][i])
    gender = int(np.argmax(out["p_gender"][i]))
    check = bool(decision.asks(np.array([age]), np.array([std]), np.array([p_under]))[0])
    return {
        "age": round(age, 1),
        "age_interval": [round(float(out["age_low"][i]), 1), round(float(out["age_high"][i]), 1)],
        "age_interval_level": decision.stated_level if decision.interval is not None else None,
        "age_std": round(std, 2),
        "gender": GENDER_NAMES[gender],
        "gender_probability": round(float(out["p_gender"][i][gender]), 3),
        "challenge": {"threshold": decision.challenge, "rule": decision.rule, "parameter": decision.parameter,
                      "p_under": None if np.isnan(p_under) else round(p_under, 4),
                      "decision": ID_CHECK if check else NO_CHECK,
                      "reason": decision.reason(age, std, p_under, check)},
    }
