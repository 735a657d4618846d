"""Ablations of the CNN baseline, declared as lists of config overrides.

Run:  python scripts/ablate.py            (every arm, seeds 0 and 1; resumes, skips finished runs)
Every arm shares one short profile (``PROFILE``: 4 epochs of the cpu profile; each run's minutes
on the 2-core CPU are in results/ablations/runs.csv) and is scored on the validation split at its
last epoch, so no arm is picked by a checkpoint selection and the test split is never read. What
they measured is in results/ablations/ablations.csv.
"""

BASE_CONFIG = "cnn_baseline"
BASE_PROFILE = "cpu"

# One device: the ablations run beside other work on a 2-core machine, where two forced host
# devices waiting on each other can stall; every arm uses the same setting.
PROFILE = {"optimizer.num_epochs": 4, "optimizer.warmup_epochs": 0.5, "num_devices": 1}

# arm -> (what it changes, overrides on top of PROFILE). "full" is the reference arm.
ARMS = {
    "full": ("age + gender + ethnicity, label-distribution age head, 64 px, augmentation", {}),
    "age_only": ("age head only (gender and ethnicity loss weights 0)",
                 {"loss.weights.gender": 0.0, "loss.weights.race": 0.0}),
    "age_gender": ("age + gender (ethnicity loss weight 0)", {"loss.weights.race": 0.0}),
    "age_regression": ("age as L1 regression of one number instead of classification over ages",
                       {"model.age_head": "regression", "loss.age_loss": "l1"}),
    "age_ce": ("age classification with one-hot cross-entropy instead of Gaussian label targets",
               {"loss.age_loss": "ce"}),
    "res48": ("48 px input instead of 64 px", {"image_size": 48}),
    "no_augment": ("no augmentation (no flips, shifts, scaling or colour jitter)",
                   {"augment.enabled": False}),
}

SEEDS = (0, 1)


def arm_overrides(arm: str, seed: int) -> dict:
    """The complete override mapping of one arm and seed (profile, arm, seed, run name)."""
    if arm not in ARMS:
        raise ValueError(f"unknown ablation arm {arm!r}; arms: {', '.join(ARMS)}")
    return {**PROFILE, **ARMS[arm][1], "seed": seed, "name": f"ablation_{arm}_seed{seed}"}


def disabled_heads(arm: str) -> set[str]:
    """Heads whose loss weight the arm sets to 0 (their accuracy is meaningless there)."""
    overrides = ARMS[arm][1]
    return {head for head in ("gender", "race") if overrides.get(f"loss.weights.{head}") == 0.0}
