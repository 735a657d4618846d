"""Jitted inference on uint8 face crops: used by training (validation), evaluation and prediction.

Lives outside ``training`` so that evaluation and the prediction command never import the
training loop.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from research.data import pipeline
from research.models.heads import expected_age
from research.models.preprocessing import normalize


def predict_step(variables: dict, images: jnp.ndarray, apply_fn, tta_flip: bool) -> dict:
    """Inference on uint8 images: age mean/std, gender and ethnicity probabilities.

    With ``tta_flip`` the probabilities (or regressed ages) of the image and its mirror image
    are averaged.
    """
    x = normalize(images)
    views = [x, x[:, :, ::-1]] if tta_flip else [x]
    outs = [apply_fn(variables, v, train=False) for v in views]
    if outs[0]["age"].ndim == 2:
        probs = jnp.mean(jnp.stack([jax.nn.softmax(o["age"].astype(jnp.float32)) for o in outs]), 0)
        age, age_std = expected_age(jnp.log(jnp.maximum(probs, 1e-12)))
    else:
        age = jnp.mean(jnp.stack([o["age"].astype(jnp.float32) for o in outs]), 0)
        age_std = jnp.full_like(age, jnp.nan)
    mean_probs = {k: jnp.mean(jnp.stack([jax.nn.softmax(o[k].astype(jnp.float32)) for o in outs]), 0)
                  for k in ("gender", "race")}
    return {"age": age, "age_std": age_std, "p_gender": mean_probs["gender"], "p_race": mean_probs["race"]}


def mixture_step(members: tuple[dict, ...], images: jnp.ndarray, apply_fn, tta_flip: bool,
                 weights: tuple[float, ...]) -> dict:
    """``predict_step`` of each member (same architecture), mixed as scripts/ensemble.py mixes the
    members' prediction files: the age distribution is the weighted mixture (its mean and sd), the
    gender and ethnicity probabilities the weighted average. One member: its own outputs."""
    outs = [predict_step(v, images, apply_fn, tta_flip) for v in members]
    if len(outs) == 1:
        return outs[0]
    w = jnp.asarray(weights, jnp.float32) / sum(weights)

    def mix(values: list[jnp.ndarray]) -> jnp.ndarray:
        return jnp.tensordot(w, jnp.stack(values), axes=1)

    age = mix([o["age"] for o in outs])
    second_moment = mix([o["age_std"] ** 2 + o["age"] ** 2 for o in outs])
    return {"age": age, "age_std": jnp.sqrt(jnp.maximum(second_moment - age**2, 0.0)),
            "p_gender": mix([o["p_gender"] for o in outs]), "p_race": mix([o["p_race"] for o in outs])}


def age_distribution(variables: dict, images: jnp.ndarray, apply_fn, tta_flip: bool) -> jnp.ndarray:
    """The predicted distribution over ages 0..116 (batch x 117) whose mean and sd ``predict_step``
    reports: the softmax of the age logits, averaged over the image and its mirror with ``tta_flip``.
    Classification age heads only (a regression head has no distribution)."""
    x = normalize(images)
    views = [x, x[:, :, ::-1]] if tta_flip else [x]
    logits = [apply_fn(variables, v, train=False)["age"] for v in views]
    if logits[0].ndim != 2:
        raise ValueError("a regression age head predicts no age distribution")
    return jnp.mean(jnp.stack([jax.nn.softmax(o.astype(jnp.float32)) for o in logits]), 0)


def mixture_distribution_step(members: tuple[dict, ...], images: jnp.ndarray, apply_fn, tta_flip: bool,
                              weights: tuple[float, ...]) -> dict:
    """``mixture_step``'s outputs (unchanged) plus ``age_probs``: the weighted mixture of the
    members' age distributions (batch x 117), whose mean is the mixture's ``age``."""
    out = dict(mixture_step(members, images, apply_fn, tta_flip, weights))
    w = jnp.asarray(weights, jnp.float32) / sum(weights)
    probs = jnp.stack([age_distribution(v, images, apply_fn, tta_flip) for v in members])
    out["age_probs"] = jnp.tensordot(w, probs, axes=1)
    return out


def predict_rows(variables: dict, apply_fn, images: np.ndarray, rows: np.ndarray,
                 config: ml_collections.ConfigDict) -> dict[str, np.ndarray]:
    """Jitted inference over ``rows`` of the cache; returns numpy arrays aligned with rows."""
    step = jax.jit(functools.partial(predict_step, apply_fn=apply_fn, tta_flip=config.eval.tta_flip))
    parts = []
    for chunk, real in pipeline.eval_batches(images, rows, config.eval.batch_size):
        out = jax.device_get(step(variables, chunk))
        parts.append({k: v[:real] for k, v in out.items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}
