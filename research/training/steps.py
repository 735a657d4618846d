"""Pure step functions: the pmap'd train step and the jitted inference step."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from research.models.preprocessing import normalize
from research.training.augment import augment
from research.training.losses import multitask_loss, predicted_age, teacher_weight

AXIS = "batch"


def replicate(tree, devices: list):
    """One copy of ``tree`` per device, placed by a pmap with the train step's axis name.

    ``flax.jax_utils.replicate`` places arrays with a different sharding from the one the
    pmap'd step returns, which makes the second step compile again (measured here: 4 s for the
    smoke CNN, about 40 s for ResNet-50 on the H100).

    With several processes ``devices`` lists those of all processes and each process supplies
    the copies for its own."""
    local = [d for d in devices if d.process_index == jax.process_index()]
    stacked = jax.tree_util.tree_map(
        lambda x: np.broadcast_to(np.asarray(x), (len(local), *np.shape(x))), tree)
    return jax.pmap(lambda x: x, axis_name=AXIS, devices=devices)(stacked)


def train_step(state, batch: dict, key: jax.Array, config: ml_collections.ConfigDict,
               axis_name: str | None = AXIS):
    """One optimizer step on this device's shard; gradients summed over ``axis_name``.

    Each device's loss is its share of the global mean (see ``multitask_loss``), so the psum of
    gradients is the gradient of the global-batch loss; BatchNorm statistics are synchronised by
    the model's ``axis_name`` (a pmean inside BatchNorm).
    """
    key = jax.random.fold_in(key, state.step)
    if axis_name:
        key = jax.random.fold_in(key, jax.lax.axis_index(axis_name))
    aug_key, dropout_key = jax.random.split(key)
    images = augment(aug_key, normalize(batch["image"]), config.augment)

    def loss_fn(params):
        outputs, updates = state.apply_fn({"params": params, "batch_stats": state.batch_stats}, images,
                                          train=True, mutable=["batch_stats"], rngs={"dropout": dropout_key})
        total, losses = multitask_loss(outputs, batch, config.loss, axis_name, teacher_weight(config))
        return total, (losses, updates["batch_stats"], outputs)

    (total, (losses, batch_stats, outputs)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    if axis_name:
        grads = jax.lax.psum(grads, axis_name)
    new_state = state.apply_gradients(grads=grads, batch_stats=batch_stats)
    metrics = {"loss": total, **{f"loss_{k}": v for k, v in losses.items()},
               **_batch_counts(outputs, batch)}
    if axis_name:
        metrics = jax.lax.psum(metrics, axis_name)
    return new_state, metrics


def _batch_counts(outputs: dict, batch: dict) -> dict:
    """Sums (not means) so that they can be added across devices and steps."""
    weight = batch["weight"]
    race_ok = weight * (batch["race"] >= 0)
    return {"n": weight.sum(),
            "age_abs_error": (jnp.abs(predicted_age(outputs["age"]) - batch["age"]) * weight).sum(),
            "gender_correct": ((outputs["gender"].argmax(-1) == batch["gender"]) * weight).sum(),
            "race_correct": ((outputs["race"].argmax(-1) == batch["race"]) * race_ok).sum(),
            "race_n": race_ok.sum()}


def loss_sums_step(variables: dict, batch: dict, apply_fn, config: ml_collections.ConfigDict) -> dict:
    """Validation losses per head (no augmentation, no flip averaging) as sums with counts,
    so that batches of different real sizes combine into exact means."""
    outputs = apply_fn(variables, normalize(batch["image"]), train=False)
    _, losses = multitask_loss(outputs, batch, config.loss)
    n = batch["weight"].sum()
    n_race = (batch["weight"] * (batch["race"] >= 0)).sum()
    return {"age": losses["age"] * n, "gender": losses["gender"] * n, "race": losses["race"] * n_race,
            "n": n, "n_race": n_race}
