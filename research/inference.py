"""Jitted inference on uint8 face crops: used by training (validation), evaluation and prediction.

Lives outside ``training`` so that evaluation and the prediction command never import the
training loop.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.experimental import multihost_utils

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


def _padded(images: np.ndarray, rows: np.ndarray, start: int, batch_size: int) -> tuple[np.ndarray, int, int]:
    chunk, real = pipeline.eval_batch(images, rows[start:start + batch_size], batch_size)
    return chunk, start, real


def each_eval_batch(images: np.ndarray, rows: np.ndarray, batch_size: int,
                    batch_fn: Callable[[np.ndarray, int, int], dict[str, np.ndarray]],
                    across_processes: bool = True) -> list[dict[str, np.ndarray]]:
    """``batch_fn(images, start, real)`` on every padded batch of ``rows``, in file order.

    With several processes (and ``across_processes``) the batches are dealt round-robin, so each
    process reads and runs only its share, and the outputs are gathered: every process returns
    every batch's outputs in file order. A batch holds the same rows whatever the process count,
    so the results are those of one process. Every process must call this (a collective).
    """
    starts = range(0, len(rows), batch_size)
    count, index = (jax.process_count(), jax.process_index()) if across_processes else (1, 0)
    mine = [batch_fn(*_padded(images, rows, start, batch_size)) for start in starts[index::count]]
    if count == 1 or not len(starts):  # one process, or no rows at all
        return mine
    per_process = -(-len(starts) // count)
    if len(mine) < per_process:  # the last round does not reach this process: any batch's shapes do
        filler = batch_fn(*_padded(images, rows, 0, batch_size))
        mine += [filler] * (per_process - len(mine))
    stacked = {key: np.stack([np.asarray(out[key]) for out in mine]) for key in mine[0]}
    gathered = multihost_utils.process_allgather(stacked)  # (process, round, ...)
    # Batch b ran on process b % count in round b // count.
    return [{key: value[b % count, b // count] for key, value in gathered.items()}
            for b in range(len(starts))]


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


def distribution_step(members: tuple[dict, ...], images: jnp.ndarray, apply_fn, tta_flip: bool,
                      weights: tuple[float, ...]) -> dict:
    """The weighted mixture of the members' age distributions (``age_probs``, batch x 117) and of
    their gender and ethnicity probabilities, each member applied once per view (half the passes of
    ``mixture_distribution_step``). The mean of ``age_probs`` is ``mixture_step``'s ``age`` and its
    spread ``age_std`` (up to float rounding). Classification age heads only."""
    x = normalize(images)
    views = [x, x[:, :, ::-1]] if tta_flip else [x]
    w = jnp.asarray(weights, jnp.float32) / sum(weights)
    per_member = []
    for variables in members:
        outs = [apply_fn(variables, v, train=False) for v in views]
        if outs[0]["age"].ndim != 2:
            raise ValueError("a regression age head predicts no age distribution")
        per_member.append({k: jnp.mean(jnp.stack([jax.nn.softmax(o[k].astype(jnp.float32)) for o in outs]), 0)
                           for k in ("age", "gender", "race")})

    def mix(key: str) -> jnp.ndarray:
        return jnp.tensordot(w, jnp.stack([m[key] for m in per_member]), axes=1)

    return {"age_probs": mix("age"), "p_gender": mix("gender"), "p_race": mix("race")}


def predict_rows(variables: dict, apply_fn, images: np.ndarray, rows: np.ndarray,
                 config: ml_collections.ConfigDict, across_processes: bool = True) -> dict[str, np.ndarray]:
    """Jitted inference over ``rows`` of the cache; returns numpy arrays aligned with rows.

    With several processes each predicts its share of the batches and every process gets all
    the predictions in file order (``each_eval_batch``); ``across_processes=False`` predicts
    every row here.
    """
    step = jax.jit(functools.partial(predict_step, apply_fn=apply_fn, tta_flip=config.eval.tta_flip))

    def predict(chunk: np.ndarray, start: int, real: int) -> dict[str, np.ndarray]:
        return jax.device_get(step(variables, chunk))

    outputs = each_eval_batch(images, rows, config.eval.batch_size, predict, across_processes)
    if not outputs:
        return {}
    return {k: np.concatenate([out[k] for out in outputs])[: len(rows)] for k in outputs[0]}
