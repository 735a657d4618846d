"""Ablation studies, each a list of arms declared as config overrides on one short profile.

Run:  python scripts/ablate.py [--study cnn|pretrained]   (every arm and seed; resumes, skips
      finished runs)
Every arm of a study shares its profile (``Study.profile``) and is scored on the validation split
at its last epoch, so no arm is picked by a checkpoint selection and the test split is never read.
Each run's minutes are in <study out>/runs.csv; what the arms measured is in <study out>/ablations.csv.

- ``cnn``: the CNN baseline from random weights, 4 epochs (results/ablations/).
- ``pretrained``: the release recipe of the face-pretrained dlib ResNet (issue 14), as 2-epoch
  continuations of the first continued leg's export (10 epochs in), so that
  the reference arm lands near the full run (16 epochs in all) for a fraction of its two hours;
  the arms change the trunk's learning rate, the robust augmentations and the input size
  (results/ablations_pretrained/). The pretraining source (face, ImageNet, none) is the
  pretraining table's comparison, at its own 4-epoch profile: a continuation cannot change it.
"""

from __future__ import annotations

import dataclasses

from research.configs.experiments import ROBUST_AUGMENT, RUNS

# The CNN study's arms run beside other work on a 2-core machine, where two forced host devices
# waiting on each other can stall; every arm uses the same setting.
_CNN_PROFILE = {"optimizer.num_epochs": 4, "optimizer.warmup_epochs": 0.5, "num_devices": 1}

_CNN_ARMS = {
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

# The second continued leg's recipe (its registry entry, so the two cannot drift apart) on a 2-epoch
# schedule, from the same starting point.
REFERENCE_RUN = "dlib_resnet_continued2_cpu"
_REFERENCE = RUNS[REFERENCE_RUN]
_PRETRAINED_PROFILE = {**dict(_REFERENCE.overrides), "optimizer.num_epochs": 2, "num_devices": 1}

_PRETRAINED_ARMS = {
    "full": ("the release recipe: trunk at 0.1 x the heads' rate, robust augmentations, 112 px", {}),
    "trunk_lr_low": ("trunk at 0.01 x the heads' rate (the first 4-epoch run's setting)",
                     {"optimizer.trunk_lr_scale": 0.01}),
    "no_robust_augment": ("no robust augmentations (flips, shifts, scaling and colour jitter only)",
                          {key: 0.0 for key, _ in ROBUST_AUGMENT}),
    "res150": ("150 px input (dlib's own chip size) instead of 112 px", {"image_size": 150}),
}


@dataclasses.dataclass(frozen=True)
class Study:
    """Arms of one base config on one short profile, written to ``out``."""

    title: str  # what is ablated, for figures and captions
    base_config: str
    base_profile: str
    profile: dict  # overrides every arm shares
    arms: dict  # arm -> (what it changes, overrides on top of the profile); "full" is the reference
    seeds: tuple[int, ...]
    out: str  # results folder
    run_prefix: str  # run names are <prefix>_<arm>_seed<k>
    # A full-length run the reference arm is measured against (its validation MAE), or "".
    reference_run: str = ""
    # A committed single-run release folder every arm starts from (``model.init_from``), or "".
    init_from: str = ""

    def arm_overrides(self, arm: str, seed: int) -> dict:
        """The complete override mapping of one arm and seed (profile, arm, seed, run name)."""
        if arm not in self.arms:
            raise ValueError(f"unknown ablation arm {arm!r}; arms: {', '.join(self.arms)}")
        name = f"{self.run_prefix}_{arm}_seed{seed}"
        return {**self.profile, **self.arms[arm][1], "seed": seed, "name": name}

    def disabled_heads(self, arm: str) -> set[str]:
        """Heads whose loss weight the arm sets to 0 (their accuracy is meaningless there)."""
        overrides = self.arms[arm][1]
        return {head for head in ("gender", "race") if overrides.get(f"loss.weights.{head}") == 0.0}

    def overrides_of(self, arm: str) -> dict:
        return self.arms[arm][1]


STUDIES = {
    "cnn": Study("CNN baseline", "cnn_baseline", "cpu", _CNN_PROFILE, _CNN_ARMS, (0, 1),
                 "results/ablations", "ablation"),
    "pretrained": Study("face-pretrained dlib ResNet (continued from 10 epochs)", "dlib_resnet_multitask",
                        "cpu", _PRETRAINED_PROFILE, _PRETRAINED_ARMS, (0,), "results/ablations_pretrained",
                        "ablation_pretrained", reference_run=REFERENCE_RUN, init_from=_REFERENCE.init_from),
}
