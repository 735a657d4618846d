"""A predicted age distribution over ages 0..116 (rows of probabilities, numpy): its estimate and
spread, its mass below a challenge age, and the label-prior correction the release may carry.

Shared by evaluation (which fits the correction on validation) and the prediction command (which
applies it); a model takes arrays, so nothing here reads files.

The correction is logit adjustment for label shift (Menon et al., 2021, "Long-tail learning via
logit adjustment"; Saerens et al., 2002): a classifier trained on ages distributed as p_train(a)
predicts p(a|x) proportional to p(x|a) p_train(a); dividing by p_train(a)^tau and renormalising
moves it towards the posterior under a flat age prior (tau = 1) or part way (0 < tau < 1). The rare
ages of the training split (teenagers, the old) are then no longer pulled to the common twenties.
"""

from __future__ import annotations

import numpy as np

from research.models.heads import AGES, NUM_AGE_BINS

LABEL_PRIOR = "label_prior"  # the kind of correction: p(a|x) / p_train(a)^tau, renormalised


def _rows(probs) -> np.ndarray:
    probs = np.asarray(probs, np.float64)
    if probs.ndim != 2 or probs.shape[1] != NUM_AGE_BINS:
        raise ValueError(f"age distributions must be (faces x {NUM_AGE_BINS}), got shape {probs.shape}")
    return probs


def moments(probs) -> tuple[np.ndarray, np.ndarray]:
    """Mean (the model's age estimate, as ``heads.expected_age`` computes it) and standard
    deviation of each row."""
    probs = _rows(probs)
    mean = probs @ AGES
    var = probs @ AGES.astype(np.float64) ** 2 - mean**2
    return mean, np.sqrt(np.maximum(var, 0.0))


def mass_below(probs, challenge: float) -> np.ndarray:
    """P(age < N) of each row: the mass on the ages 0 .. ceil(N) - 1."""
    return _rows(probs)[:, : int(np.ceil(challenge))].sum(axis=1)


def prior_adjusted(probs, prior, tau: float) -> np.ndarray:
    """Rows of p(a|x) / prior(a)^tau, renormalised (computed in logs). tau = 0, or a flat prior,
    returns the rows unchanged."""
    probs = _rows(probs)
    prior = np.asarray(prior, np.float64)
    if prior.shape != (NUM_AGE_BINS,) or not np.all(prior > 0):
        raise ValueError(f"the age prior must be {NUM_AGE_BINS} positive numbers")
    if tau == 0:
        return probs
    with np.errstate(divide="ignore"):
        logits = np.log(probs) - tau * np.log(prior / prior.sum())
    logits -= logits.max(axis=1, keepdims=True)
    adjusted = np.exp(logits)
    return adjusted / adjusted.sum(axis=1, keepdims=True)


def label_prior_correction(prior, tau: float, **about) -> dict:
    """The JSON-able correction a release carries: kind, tau, the prior (and any notes)."""
    prior = np.asarray(prior, np.float64)
    return {"kind": LABEL_PRIOR, "tau": float(tau), "prior": [float(p) for p in prior / prior.sum()], **about}


def apply_correction(probs, correction: dict | None) -> np.ndarray:
    """The rows corrected by a release's correction record (None: unchanged)."""
    if correction is None:
        return _rows(probs)
    if correction.get("kind") != LABEL_PRIOR:
        raise ValueError(f"unknown age correction {correction.get('kind')!r}; "
                         f"this code applies {LABEL_PRIOR!r}")
    return prior_adjusted(probs, correction["prior"], float(correction["tau"]))
