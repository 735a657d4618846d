"""A predicted age distribution over ages 0..116 (rows of probabilities, numpy): its estimate and
spread, its mass below a challenge age, and the age corrections a release may carry.

Shared by evaluation (which fits a correction on validation) and the prediction command (which
applies it); a model takes arrays, so nothing here reads files. Two kinds of correction:

  label_prior    logit adjustment for label shift (Menon et al., 2021, "Long-tail learning via
                 logit adjustment"; Saerens et al., 2002): a classifier trained on ages distributed
                 as p_train(a) predicts p(a|x) proportional to p(x|a) p_train(a); dividing by
                 p_train(a)^tau and renormalising moves it towards the posterior under a flat age
                 prior (tau = 1) or part way (0 < tau < 1).
  estimate_map   a monotone map m of the estimate, fitted on validation (knots x -> y, linear
                 between them): the estimate e moves to e + lambda (m(e) - e) and the distribution
                 is translated with it, so that its mean is the new estimate and P(age < N) moves
                 with it (its spread is kept).
"""

from __future__ import annotations

import numpy as np

from research.models.heads import AGES, NUM_AGE_BINS

LABEL_PRIOR = "label_prior"  # p(a|x) / p_train(a)^tau, renormalised
ESTIMATE_MAP = "estimate_map"  # the distribution translated to the mapped estimate


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


def shifted(probs, delta) -> np.ndarray:
    """Each row translated by ``delta`` years (one per row): the mass at age a moves to a + delta,
    split between the two whole ages around it so that the mean moves by exactly delta; mass pushed
    past 0 or 116 stays in the end bin."""
    probs = _rows(probs)
    delta = np.broadcast_to(np.asarray(delta, np.float64), (len(probs),))
    whole = np.floor(delta)
    frac = (delta - whole)[:, None]
    ages = np.arange(NUM_AGE_BINS)[None, :]
    rows = np.repeat(np.arange(len(probs))[:, None], NUM_AGE_BINS, axis=1)
    out = np.zeros_like(probs)
    for step, weight in ((0, 1 - frac), (1, frac)):
        target = np.clip(ages + whole[:, None].astype(int) + step, 0, NUM_AGE_BINS - 1)
        np.add.at(out, (rows, target), probs * weight)
    return out


def mapped_estimate(estimate, correction: dict) -> np.ndarray:
    """e + lambda (m(e) - e) for an estimate_map correction (m linear between its knots x -> y)."""
    estimate = np.asarray(estimate, np.float64)
    target = np.interp(estimate, correction["x"], correction["y"])
    return estimate + float(correction["lambda"]) * (target - estimate)


def estimate_map_correction(x, y, lam: float, **about) -> dict:
    """The JSON-able estimate_map correction: its knots (increasing x), lambda (and any notes)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.shape != y.shape or x.ndim != 1 or np.any(np.diff(x) <= 0):
        raise ValueError("an estimate map needs knots x (increasing) and y of one length")
    return {"kind": ESTIMATE_MAP, "lambda": float(lam), "x": [float(v) for v in x],
            "y": [float(v) for v in y], **about}


def apply_correction(probs, correction: dict | None) -> np.ndarray:
    """The rows corrected by a release's correction record (None: unchanged)."""
    if correction is None:
        return _rows(probs)
    kind = correction.get("kind")
    if kind == LABEL_PRIOR:
        return prior_adjusted(probs, correction["prior"], float(correction["tau"]))
    if kind == ESTIMATE_MAP:
        estimate = moments(probs)[0]
        return shifted(probs, mapped_estimate(estimate, correction) - estimate)
    raise ValueError(f"unknown age correction {kind!r}; this code applies {LABEL_PRIOR!r} and "
                     f"{ESTIMATE_MAP!r}")
