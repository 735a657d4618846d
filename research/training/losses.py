"""Per-head losses and the age read-out shared by training and evaluation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from research.models.heads import AGES, NUM_AGE_BINS, expected_age, predicted_age  # noqa: F401 (re-exported)


def age_targets(age: jnp.ndarray, loss: str, sigma: float) -> jnp.ndarray:
    """Target distribution over ages: one-hot ('ce') or a discretised Gaussian ('ldl')."""
    if loss == "ce":
        return jax.nn.one_hot(age, NUM_AGE_BINS)
    if loss == "ldl":
        weights = jnp.exp(-0.5 * ((AGES[None, :] - age[:, None].astype(jnp.float32)) / sigma) ** 2)
        return weights / weights.sum(axis=-1, keepdims=True)
    raise ValueError(f"age loss {loss!r} needs a classification head ('ce' or 'ldl')")


def age_loss(age_output: jnp.ndarray, age: jnp.ndarray, loss: str, sigma: float) -> jnp.ndarray:
    """Per-example age loss. Regression: 'l1' (in years) or 'l2' (in decades^2).
    Classification: cross-entropy to one-hot or Gaussian targets."""
    if age_output.ndim == 1:
        error = age_output - age.astype(jnp.float32)
        if loss == "l1":
            return jnp.abs(error)
        if loss == "l2":
            return (error / 10.0) ** 2
        raise ValueError(f"age loss {loss!r} needs a regression head ('l1' or 'l2')")
    targets = age_targets(age, loss, sigma)
    return optax.softmax_cross_entropy(age_output.astype(jnp.float32), targets)


def classification_loss(logits: jnp.ndarray, labels: jnp.ndarray, smoothing: float) -> tuple:
    """Per-example smoothed cross-entropy and a validity mask (label -1 = missing, masked out)."""
    valid = labels >= 0
    onehot = jax.nn.one_hot(jnp.where(valid, labels, 0), logits.shape[-1])
    targets = optax.smooth_labels(onehot, smoothing) if smoothing else onehot
    return optax.softmax_cross_entropy(logits.astype(jnp.float32), targets), valid.astype(jnp.float32)


def teacher_weight(config) -> float:
    """The weight of the teachers' targets in a run's loss (``config.distill.alpha``; 0 when the run is
    not distilled: research/training/distill.py)."""
    distill = config.get("distill")
    return float(distill.get("alpha", 0.0)) if distill is not None else 0.0


def distilled(terms: jnp.ndarray, logits: jnp.ndarray, teacher: jnp.ndarray, alpha: float) -> jnp.ndarray:
    """Per-example loss against the mixture (1 - alpha) x label target + alpha x teacher's
    probabilities: cross-entropy is linear in its target, so the mixture of the two terms."""
    return (1.0 - alpha) * terms + alpha * optax.softmax_cross_entropy(logits.astype(jnp.float32), teacher)


def multitask_loss(outputs: dict, batch: dict, cfg, axis_name: str | None = None,
                   distill_alpha: float = 0.0) -> tuple[jnp.ndarray, dict]:
    """Weighted sum of the three heads' means over real (non-padding) examples.

    ``batch['weight']`` is 1 for real examples and 0 for padding; a missing ethnicity label
    removes the example from the ethnicity term only. Under ``pmap`` (``axis_name`` given) each
    device divides its sum by the count over *all* devices, so summing the devices' gradients
    gives exactly the gradient of the global mean, whatever the per-device masks.

    With ``distill_alpha`` > 0 and the teachers' targets in the batch (``teacher_age``,
    ``teacher_gender``, ``teacher_race``: research/training/distill.py) each head's target is
    (1 - alpha) x its label target + alpha x the teachers' probabilities.
    """
    weight = batch["weight"]
    age_terms = age_loss(outputs["age"], batch["age"], cfg.age_loss, cfg.ldl_sigma)
    gender_terms, gender_ok = classification_loss(outputs["gender"], batch["gender"], cfg.label_smoothing)
    race_terms, race_ok = classification_loss(outputs["race"], batch["race"], cfg.label_smoothing)
    if distill_alpha and "teacher_age" in batch:
        if outputs["age"].ndim != 2:
            raise ValueError("distillation needs a classification age head (an age distribution)")
        age_terms = distilled(age_terms, outputs["age"], batch["teacher_age"], distill_alpha)
        gender_terms = distilled(gender_terms, outputs["gender"], batch["teacher_gender"], distill_alpha)
        race_terms = distilled(race_terms, outputs["race"], batch["teacher_race"], distill_alpha)

    def masked_mean(terms, mask):
        count = jax.lax.psum(mask.sum(), axis_name) if axis_name else mask.sum()
        return (terms * mask).sum() / jnp.maximum(count, 1.0)

    losses = {"age": masked_mean(age_terms, weight),
              "gender": masked_mean(gender_terms, weight * gender_ok),
              "race": masked_mean(race_terms, weight * race_ok)}
    total = (cfg.weights.age * losses["age"] + cfg.weights.gender * losses["gender"]
             + cfg.weights.race * losses["race"])
    return total, losses
