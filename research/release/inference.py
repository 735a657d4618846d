"""How the release runs at prediction time: mirror averaging (flip TTA) or one view, chosen on validation.

Mirror averaging doubles the operations per face. The issue that made the release one network asks
for it "only if it pays for itself in accuracy"; the accuracy the release must keep is that of the
release it replaced (``ACCURACY_BAR_RELEASE`` in the registry, scored on the same validation faces).
So the release is measured on the validation split with and without the mirror, and the mirror
stays on only when without it the release falls short of that bar (validation age MAE above the
bar's, or gender accuracy below it): otherwise the one-view release is the faster of two that both
keep the accuracy. Optional further releases are measured the same way beside it (e.g. a larger
input at about the cost of the mirrored release), as evidence for the choice, not part of it.

The choice is written into the release folder as inference.json (made for the release's params, as
rules.json is), which ``research.predict.release.load_release`` applies to the config it returns:
the command, the decision curves, the corruption benchmark and the bias stages all read the release
through it, so they all run it the same way. Needs no checkpoint.
"""

from __future__ import annotations

import functools
import time

import jax
import numpy as np
import pandas as pd

from research.data import pipeline
from research.inference import distribution_step

AGES = np.arange(117)


def view_metrics(release, images: np.ndarray, table: pd.DataFrame, tta_flip: bool, batch_size: int) -> dict:
    """Age MAE, gender and ethnicity accuracy of ``release`` on decoded ``images`` (rows of ``table``:
    age, gender, race) with or without the mirror, and the seconds the forward passes took."""
    step = jax.jit(functools.partial(distribution_step, apply_fn=release.model.apply, tta_flip=tta_flip,
                                     weights=release.weights))
    parts, seconds = [], 0.0
    for chunk, real in pipeline.eval_batches(images, np.arange(len(images)), batch_size):
        start = time.perf_counter()
        out = jax.device_get(step(release.members, chunk))
        seconds += time.perf_counter() - start
        parts.append({k: np.asarray(out[k][:real]) for k in ("age_probs", "p_gender", "p_race")})
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    age = out["age_probs"] @ AGES
    return {"age_mae": float(np.abs(age - table["age"].to_numpy(float)).mean()),
            "gender_acc": float((out["p_gender"].argmax(1) == table["gender"].to_numpy()).mean()),
            "race_acc": float((out["p_race"].argmax(1) == table["race"].to_numpy()).mean()),
            "images": len(table), "forward_seconds": round(seconds, 2)}


def bar_metrics(predictions: pd.DataFrame) -> dict:
    """Validation age MAE and gender accuracy of the bar release (its committed predictions)."""
    return {"age_mae": float((predictions["pred_age"] - predictions["age"]).abs().mean()),
            "gender_acc": float((predictions["pred_gender"] == predictions["gender"]).mean()),
            "images": len(predictions)}


def meets(measured: dict, bar: dict) -> bool:
    return measured["age_mae"] <= bar["age_mae"] and measured["gender_acc"] >= bar["gender_acc"]


def choose_flip(with_flip: dict, without_flip: dict, bar: dict) -> tuple[bool, str]:
    """Mirror averaging on only when the one-view release misses the bar; the reason in words."""
    if meets(without_flip, bar):
        return False, ("without the mirror the release keeps the bar's validation accuracy (age MAE "
                       f"{without_flip['age_mae']:.3f} <= {bar['age_mae']:.3f}, gender "
                       f"{100 * without_flip['gender_acc']:.1f}% >= {100 * bar['gender_acc']:.1f}%) at half "
                       f"the operations per face; the mirror would buy "
                       f"{without_flip['age_mae'] - with_flip['age_mae']:+.3f} years of validation MAE")
    return True, ("without the mirror the release misses the bar's validation accuracy (age MAE "
                  f"{without_flip['age_mae']:.3f} against {bar['age_mae']:.3f}, gender "
                  f"{100 * without_flip['gender_acc']:.1f}% against {100 * bar['gender_acc']:.1f}%)")
