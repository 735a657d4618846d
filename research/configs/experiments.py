"""The registry of experiments: every run, ensemble, the release, and the evaluation settings.

A run name appears here and nowhere else in the code. The Makefile reads this module through
``python -m research.configs.experiments make`` (written to build/experiments.mk); the scripts,
the README tables, the report and the tests look names and settings up here.

This module imports nothing outside the standard library, so that ``make`` can read it before the
virtual environment exists.
"""

from __future__ import annotations

import dataclasses
import os
import sys

from research.errors import ConfigError

# CPU runs spread pmap over this many XLA host devices (the machines here have 2 cores); a fixed
# count keeps CPU results independent of the core count. GPUs ignore it.
FORCED_HOST_DEVICES = 2


def force_host_devices(count: int = FORCED_HOST_DEVICES) -> None:
    """Ask XLA for ``count`` CPU devices (unless XLA_FLAGS is already set); call before jax starts."""
    os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count={count}")


@dataclasses.dataclass(frozen=True, repr=False)
class Run:
    """A training run: ``research/configs/<config>.py`` at ``profile`` with ``overrides``."""

    config: str
    profile: str
    overrides: tuple[tuple[str, object], ...] = ()
    protocol: str = "utkface"
    # Continued training: a single-run release folder whose params and BatchNorm statistics start
    # this run (``model.init_from``); its params file is an input of the training stage.
    init_from: str = ""
    # Distillation (research/training/distill.py): single-run release folders whose mean predictions
    # on the training images make distill_alpha of each target (``config.distill``); their params
    # files are inputs of the training stage.
    distill_from: tuple[str, ...] = ()
    distill_alpha: float = 0.0

    def __post_init__(self) -> None:
        if bool(self.distill_from) != (0.0 < self.distill_alpha <= 1.0):
            raise ValueError(f"a run distils with distill_from and 0 < distill_alpha <= 1 together (got "
                             f"{len(self.distill_from)} teachers, alpha {self.distill_alpha})")

    def __repr__(self) -> str:
        """The dataclass repr, the distillation fields left out when unused: a registry entry's hash
        (an input of its stages, research/stages.py) stays what it was before they existed."""
        shown = [f for f in dataclasses.fields(self)
                 if f.name not in ("distill_from", "distill_alpha") or self.distill_from]
        return f"Run({', '.join(f'{f.name}={getattr(self, f.name)!r}' for f in shown)})"


@dataclasses.dataclass(frozen=True)
class Ensemble:
    """A mixture of runs' predicted distributions (no training of its own).

    ``weighting`` "equal" mixes the members alike; "greedy" gives each member the share of
    ``steps`` greedy selection steps that picked it on validation (Caruana et al., 2004).
    ``candidates`` are further runs whose equal-weight subsets are scored on validation for the
    record (their predictions are read, so they are prerequisites too).
    """

    members: tuple[str, ...]
    weighting: str = "equal"
    steps: int = 20
    candidates: tuple[str, ...] = ()
    description: str = ""

    @property
    def inputs(self) -> tuple[str, ...]:
        return (*self.members, *self.candidates)


# The from-scratch controls of the pretrained runs: the same network, recipe and schedule from
# random weights, with one learning rate for all parameters (a reduced trunk rate only makes sense
# for pretrained weights). dlib's file holds folded affine layers, so its pretrained trunk keeps
# them ("frozen"); from scratch it needs real BatchNorm.
SCRATCH_CONTROL = (("model.init", "scratch"), ("optimizer.trunk_lr_scale", 1.0),
                   ("optimizer.trunk_freeze_epochs", 0.0))
SCRATCH_CONTROLS = {"mobilenet_v2_multitask": SCRATCH_CONTROL,
                    "dlib_resnet_multitask": (*SCRATCH_CONTROL, ("model.trunk_bn", "batch"))}


# The corruption benchmark's train-time counterparts (research/training/augment.py): the probability
# each is applied to a training image (about two images in three get at least one).
ROBUST_AUGMENT = (("augment.grayscale", 0.1), ("augment.colour_cast", 0.15), ("augment.gamma", 0.15),
                  ("augment.low_resolution", 0.15), ("augment.blur", 0.15), ("augment.jpeg", 0.15),
                  ("augment.noise", 0.15))


def _seed_run(seed: int) -> Run:
    return Run("cnn_baseline", "cpu", (("seed", seed),))


def _continued(release: str, epochs: int, learning_rate: float, trunk_lr_scale: float,
               *extra: tuple[str, object]) -> Run:
    """The dlib network with the robust augmentations, continued from ``release``'s committed export:
    no frozen start (its heads are trained), a short warm-up, the confirmed non-faces left out;
    ``extra`` overrides on top."""
    return Run("dlib_resnet_multitask", "cpu",
               (*ROBUST_AUGMENT, ("optimizer.num_epochs", epochs), ("optimizer.learning_rate", learning_rate),
                ("optimizer.trunk_lr_scale", trunk_lr_scale), ("optimizer.trunk_freeze_epochs", 0.0),
                ("optimizer.warmup_epochs", 0.25), ("data.exclude_nonfaces", True), *extra),
               init_from=f"results/models/{release}")


# name -> run. The gpu-profile runs need a GPU (`make gpu`); their results are committed.
RUNS: dict[str, Run] = {
    "cnn_baseline": Run("cnn_baseline", "cpu"),
    "cnn_baseline_coral": Run("cnn_baseline_coral", "cpu", protocol="coral"),
    "resnet50_multitask": Run("resnet50_multitask", "gpu"),
    # The reduced CPU profile of ResNet-50 writes its own folder (its config renames the run).
    "resnet50_multitask_cpu": Run("resnet50_multitask", "cpu"),
    "resnet50_multitask_coral": Run("resnet50_multitask_coral", "gpu", protocol="coral"),
    # More seeds of the CNN baseline (same config; only the seed and the run name differ).
    **{f"cnn_baseline_s{seed}": _seed_run(seed) for seed in (1, 2, 3)},
    # The baseline with the robust augmentations (issue 15): scored on the corruption benchmark.
    "cnn_baseline_robust": Run("cnn_baseline", "cpu", ROBUST_AUGMENT),
    # Pretrained backbones (weights from registry packages) and their from-scratch controls, on
    # this CPU: dlib's face-recognition ResNet (face-pretrained) and ImageNet MobileNetV2.
    "dlib_resnet_multitask_cpu": Run("dlib_resnet_multitask", "cpu"),
    "dlib_resnet_scratch_cpu": Run("dlib_resnet_multitask", "cpu",
                                   SCRATCH_CONTROLS["dlib_resnet_multitask"]),
    "mobilenet_v2_multitask_cpu": Run("mobilenet_v2_multitask", "cpu"),
    "mobilenet_v2_scratch_cpu": Run("mobilenet_v2_multitask", "cpu",
                                    SCRATCH_CONTROLS["mobilenet_v2_multitask"]),
    # The release candidate of issues 14-16: the face-pretrained network with the robust
    # augmentations and a longer schedule (6 epochs, about 75 minutes here; its validation MAE
    # was still falling at the end of the 4-epoch run).
    "dlib_resnet_robust_cpu": Run("dlib_resnet_multitask", "cpu",
                                  (*ROBUST_AUGMENT, ("optimizer.num_epochs", 6))),
    # Its continuation: 4 more epochs from its exported weights (after 6 its training MAE, with
    # augmentation, was still above the validation MAE: under-trained), the trunk's peak rate 2.5x
    # its (5e-4 x 0.05 against 1e-3 x 0.01; its heads are trained, so no frozen start), the
    # confirmed non-faces left out of training.
    "dlib_resnet_continued_cpu": _continued("dlib_resnet_robust_cpu", 4, 5e-4, 0.05),
    # A second leg from the first's export (its training MAE was still falling fast, and level with
    # validation): 6 more epochs, the heads at a lower peak rate, the trunk's about the same (3e-5).
    "dlib_resnet_continued2_cpu": _continued("dlib_resnet_continued_cpu", 6, 3e-4, 0.1),
    # A third leg at the network's own input size (dlib trained it on 150 px chips; the legs before
    # ran at 112 px for speed): 4 epochs from the second leg's export at the same rates.
    "dlib_resnet_continued3_cpu": _continued("dlib_resnet_continued2_cpu", 4, 3e-4, 0.1,
                                             ("image_size", 150)),
    # A fourth leg at 150 px from the third's export (its validation MAE and gender accuracy were
    # still improving in its last epoch): 4 epochs, the heads' peak rate lower again.
    "dlib_resnet_continued4_cpu": _continued("dlib_resnet_continued3_cpu", 4, 2e-4, 0.1,
                                             ("image_size", 150)),
    # The third leg brought back to the release's input size (112 px: half the operations per face of
    # 150 px; the one-view release must keep the chip throughput of issue 16): 4 epochs from the third
    # leg's export at the fourth leg's rates.
    "dlib_resnet_continued3_at112_cpu": _continued("dlib_resnet_continued3_cpu", 4, 2e-4, 0.1),
    # A member for the pretrained ensemble (issue 14: its members agree too much, being one lineage):
    # the 112 px leg taken back to 150 px for 4 epochs at the fourth leg's rates with another seed, so
    # that it ends apart from the fourth leg (the ensemble's main member) while being about as accurate.
    "dlib_resnet_continued5_cpu": _continued("dlib_resnet_continued3_at112_cpu", 4, 2e-4, 0.1,
                                             ("image_size", 150), ("seed", 5)),
    # The fifth leg brought back to the release's 112 px as the third was (the release's recipe): a
    # release candidate: its validation MAE (4.57) came out level with the release's, so it was not released.
    "dlib_resnet_continued5_at112_cpu": _continued("dlib_resnet_continued5_cpu", 4, 2e-4, 0.1),
    # The fifth leg at UTKFace's full 200 px (issue 14: each step up in input size moved the test MAE
    # most, 112 -> 150 px by about 0.13 years; the ensemble needs a member that differs from the 150 px
    # lineage): 4 epochs from the fifth leg's export at its rates, another seed; 1.8x the operations
    # of 150 px per face. Its validation MAE came out 4.45 (the fifth leg's 4.36), its errors less
    # correlated with the fifth leg's than the fourth leg's are (0.955 against 0.988 on validation).
    "dlib_resnet_continued6_at200_cpu": _continued("dlib_resnet_continued5_cpu", 4, 2e-4, 0.1,
                                                   ("image_size", 200), ("seed", 6)),
    # A release candidate distilled from the two most accurate legs (issues 14-16: the one-view
    # release runs at 112 px, where the legs stopped improving at about 4.5 years while the 150 and
    # 200 px legs score better): the 112 px fifth leg's recipe exactly (its control: the same start,
    # rates, seed and schedule) with half of each target from the teachers' mean predictions on the
    # training images (research/training/distill.py; alpha 0.5 set, not tuned).
    "dlib_resnet_distilled_at112_cpu": dataclasses.replace(
        _continued("dlib_resnet_continued5_cpu", 4, 2e-4, 0.1),
        distill_from=("results/models/dlib_resnet_continued5_cpu",
                      "results/models/dlib_resnet_continued6_at200_cpu"),
        distill_alpha=0.5),
    # A 150 px student (issue 14: the ensemble at 4.27 and single models at 94.4% gender; a student
    # of several teachers usually ends better than each): the sixth (200 px) leg brought back to
    # 150 px for 4 epochs at the fifth leg's rates, another seed, half of each target from the
    # 112 px student's teachers, the fifth and sixth legs (the fourth leg, the ensemble's largest
    # weight, has no committed export; alpha 0.5 as for the 112 px student, set, not tuned). No
    # undistilled control of its own: the 112 px pair measures what distillation does.
    "dlib_resnet_distilled_cpu": dataclasses.replace(
        _continued("dlib_resnet_continued6_at200_cpu", 4, 2e-4, 0.1, ("image_size", 150), ("seed", 7)),
        distill_from=("results/models/dlib_resnet_continued5_cpu",
                      "results/models/dlib_resnet_continued6_at200_cpu"),
        distill_alpha=0.5),
    # A second 112 px release candidate (issue 16: the one-view release runs at 112 px): the 150 px
    # student brought back to 112 px with the first 112 px student's recipe (rates, schedule, alpha),
    # another seed, the 150 px student added to its teachers.
    "dlib_resnet_distilled2_at112_cpu": dataclasses.replace(
        _continued("dlib_resnet_distilled_cpu", 4, 2e-4, 0.1, ("seed", 8)),
        distill_from=("results/models/dlib_resnet_distilled_cpu",
                      "results/models/dlib_resnet_continued5_cpu",
                      "results/models/dlib_resnet_continued6_at200_cpu"),
        distill_alpha=0.5),
}
# Registered but not trained yet (no committed results): `make all` leaves them out until they
# are; `make results/runs/NAME/metrics_test.json` trains and scores one (30-45 minutes each here).
PENDING_RUNS = ("cnn_baseline_robust",)
# The pretrained runs and the controls they are measured against (the pretraining table).
PRETRAINED_RUNS = {"dlib_resnet_multitask_cpu": "dlib_resnet_scratch_cpu",
                   "mobilenet_v2_multitask_cpu": "mobilenet_v2_scratch_cpu"}
# Further recipes of a pretrained network (rows of the pretraining table after the pairs, each with
# what differs from the pretrained run of the same config; no control of their own).
PRETRAINED_RECIPES = {"dlib_resnet_robust_cpu": "robust augmentations, 6 epochs",
                      "dlib_resnet_continued_cpu": "robust augmentations, 6 + 4 epochs (continued)",
                      "dlib_resnet_continued2_cpu": "robust augmentations, 6 + 4 + 6 epochs (continued)",
                      "dlib_resnet_continued3_cpu": "robust augmentations, 6 + 4 + 6 + 4 epochs "
                                                    "(continued, last 4 at 150 px)",
                      "dlib_resnet_continued4_cpu": "robust augmentations, 6 + 4 + 6 + 4 + 4 epochs "
                                                    "(continued, last 8 at 150 px)",
                      "dlib_resnet_continued3_at112_cpu": "robust augmentations, 6 + 4 + 6 + 4 + 4 epochs "
                                                          "(continued, 4 at 150 px, the last 4 back at "
                                                          "112 px)",
                      "dlib_resnet_continued5_cpu": "robust augmentations, 6 + 4 + 6 + 4 + 4 + 4 epochs "
                                                    "(continued, 4 at 150 px, 4 at 112 px, the last 4 at "
                                                    "150 px, another seed)",
                      "dlib_resnet_continued5_at112_cpu": "robust augmentations, 6 + 4 + 6 + 4 + 4 + 4 + 4 "
                                                          "epochs (continued, the fifth leg's last 4 at "
                                                          "150 px, then 4 back at 112 px)",
                      "dlib_resnet_continued6_at200_cpu": "robust augmentations, 6 + 4 + 6 + 4 + 4 + 4 + 4 "
                                                          "epochs (continued, the fifth leg's last 4 at "
                                                          "150 px, then 4 at 200 px, another seed)",
                      "dlib_resnet_distilled_at112_cpu": "robust augmentations, 6 + 4 + 6 + 4 + 4 + 4 + 4 "
                                                         "epochs (continued, the fifth leg's last 4 at 150 "
                                                         "px, then 4 at 112 px distilled from the fifth and "
                                                         "sixth legs)",
                      "dlib_resnet_distilled_cpu": "robust augmentations, 6 + 4 + 6 + 4 + 4 + 4 + 4 + 4 "
                                                   "epochs (continued, the sixth leg's last 4 at 200 px, "
                                                   "then 4 at 150 px distilled from the fifth and "
                                                   "sixth legs, another seed)",
                      "dlib_resnet_distilled2_at112_cpu": "robust augmentations, 6 + 4 + 6 + 4 + 4 + 4 + 4 "
                                                          "+ 4 + 4 epochs (continued, the 150 px student's "
                                                          "last 4, then 4 at 112 px distilled from it and "
                                                          "the fifth and sixth legs, another seed)"}
# Distilled runs and the undistilled run of the same start, rates, seed and schedule (the report
# sets them side by side; a distilled run without one is described but not compared).
DISTILLATION_CONTROLS = {"dlib_resnet_distilled_at112_cpu": "dlib_resnet_continued5_at112_cpu"}
SEED_BASE = "cnn_baseline"  # the run whose further seeds make the seed table
SEED_RUNS = tuple(name for name in RUNS if name.startswith(f"{SEED_BASE}_s"))

ENSEMBLES: dict[str, Ensemble] = {
    "ensemble": Ensemble(("resnet50_multitask", "cnn_baseline", *SEED_RUNS), "greedy", 20,
                         candidates=("resnet50_multitask_cpu",),
                         description="greedy weights over the GPU ResNet-50 and the CNN seeds"),
    # The release: three CNN seeds mixed with equal weights (three fit the 50 ms per photo budget).
    "cnn_ensemble": Ensemble(("cnn_baseline", *SEED_RUNS[:2]), "equal",
                             description="three CNN seeds, equal weights"),
    # Every utkface model, the pretrained backbones included (reported apart from the from-scratch
    # results, beside the pretraining table).
    "ensemble_pretrained": Ensemble(("resnet50_multitask", "dlib_resnet_multitask_cpu",
                                     "dlib_resnet_robust_cpu", "dlib_resnet_continued_cpu",
                                     "dlib_resnet_continued2_cpu", "dlib_resnet_continued3_cpu",
                                     "dlib_resnet_continued4_cpu", "dlib_resnet_continued3_at112_cpu",
                                     "dlib_resnet_continued5_cpu", "dlib_resnet_continued6_at200_cpu",
                                     "dlib_resnet_distilled_at112_cpu", "dlib_resnet_distilled_cpu",
                                     "dlib_resnet_distilled2_at112_cpu", "cnn_baseline", *SEED_RUNS,
                                     "mobilenet_v2_multitask_cpu"), "greedy", 20,
                                    description="greedy weights over every utkface model, pretrained "
                                                "backbones included"),
}
PRETRAINED_ENSEMBLES = ("ensemble_pretrained",)  # shown with the pretraining table, not the headline

# The run exported as the prediction command's model: one network (issue 16), the face-pretrained
# dlib ResNet trained with the robust augmentations, continued and distilled (the 112 px leg of
# lowest validation MAE: 4.52 against 4.55 for the first 112 px student and 4.57 for the release it
# replaced; the 150 px legs score better on validation at 1.8x the operations per face, which a
# one-view release cannot spend and keep the peer's chip throughput), chosen over the three-CNN
# mixture four releases back for its validation MAE at about half the operations per face.
RELEASE = "dlib_resnet_distilled2_at112_cpu"
RELEASE_DIR = f"results/models/{RELEASE}"
# Earlier releases kept committed (results/models/NAME, no longer rebuilt) and scored beside the
# release on the corruption benchmark.
EARLIER_RELEASES = ("cnn_ensemble", "dlib_resnet_robust_cpu", "dlib_resnet_continued2_cpu",
                    "dlib_resnet_continued3_at112_cpu")
# The release whose accuracy the shipped one must keep (issue 16: the three-CNN mixture, test MAE
# 5.09, gender 93.0%): on validation it is the bar of the mirror-averaging choice
# (research.release.inference, scripts/release_inference.py). Further releases measured beside the
# shipped one there, as evidence (the 150 px leg: about the operations of the mirrored release).
ACCURACY_BAR_RELEASE = "cnn_ensemble"
INFERENCE_COMPARED = ("dlib_resnet_continued3_cpu",)

# The order of the headline table (README, report): the utkface models, then the CORAL ones.
HEADLINE = ("cnn_baseline", "cnn_ensemble", "resnet50_multitask_cpu", "resnet50_multitask", "ensemble",
            "cnn_baseline_coral", "resnet50_multitask_coral")
# Our runs set beside the peer package on the same test split.
PEER_COMPARED = ("cnn_baseline", "cnn_ensemble", "resnet50_multitask", "resnet50_multitask_cpu", "ensemble")
# The report's main model (the design's ResNet-50), its baseline and the reduced CPU run.
MAIN_RUN, BASELINE_RUN, REDUCED_RUN = "resnet50_multitask", "cnn_baseline", "resnet50_multitask_cpu"
# The main run and the baseline on the coral split.
CORAL_MAIN_RUN, CORAL_BASELINE_RUN = "resnet50_multitask_coral", "cnn_baseline_coral"
HEADLINE_ENSEMBLE = "ensemble"


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """How every model is scored (scripts/evaluate.py, breakdowns, the peer comparison)."""

    resamples: int = 2000  # bootstrap resamples of the test split
    level: float = 0.95  # confidence level of every interval
    seed: int = 0  # bootstrap seed
    max_minor_pass_rate: float = 0.05  # operating points: minors let through, chosen on validation
    smoke_resamples: int = 200


EVALUATION = Evaluation()


@dataclasses.dataclass(frozen=True)
class Robustness:
    """The corruption benchmark (scripts/corruption_benchmark.py): how many test faces, drawn how."""

    subset: int = 200  # test faces, stratified by age group; the same faces under every corruption
    seed: int = 0  # draws the subset and seeds each image's corruption


ROBUSTNESS = Robustness()


def run(name: str) -> Run:
    """The registered run ``name``; a clear error listing the known runs otherwise."""
    if name not in RUNS:
        raise ConfigError(f"no run named {name!r} in research/configs/experiments.py; "
                          f"runs: {', '.join(RUNS)}")
    return RUNS[name]


def ensemble(name: str) -> Ensemble:
    if name not in ENSEMBLES:
        raise ConfigError(f"no ensemble named {name!r} in research/configs/experiments.py; "
                       f"ensembles: {', '.join(ENSEMBLES)}")
    return ENSEMBLES[name]


def architecture_runs() -> tuple[str, ...]:
    """One utkface run per (config, profile): the architectures behind the committed runs."""
    first: dict[tuple[str, str], str] = {}
    for name, r in RUNS.items():
        if r.protocol == "utkface":
            first.setdefault((r.config, r.profile), name)
    return tuple(first.values())


def runs_on(profile: str) -> tuple[str, ...]:
    """The runs of ``profile`` that `make all` builds (pending runs left out)."""
    return tuple(name for name, r in RUNS.items() if r.profile == profile and name not in PENDING_RUNS)


def make_variables() -> str:
    """The registry as Makefile variables (``include``d by the Makefile)."""
    lines = [f"CPU_RUNS := {' '.join(runs_on('cpu'))}", f"GPU_RUNS := {' '.join(runs_on('gpu'))}",
             f"SEED_RUNS := {' '.join(SEED_RUNS)}", f"ENSEMBLES := {' '.join(ENSEMBLES)}",
             f"RELEASE_RUN := {RELEASE}", f"RELEASE := {RELEASE_DIR}",
             f"EARLIER_RELEASES := {' '.join(EARLIER_RELEASES)}",
             f"ACCURACY_BAR_RELEASE := {ACCURACY_BAR_RELEASE}",
             f"INFERENCE_COMPARED := {' '.join(INFERENCE_COMPARED)}",
             f"PEER_COMPARED := {' '.join(PEER_COMPARED)}", f"HEADLINE_RUNS := {' '.join(HEADLINE)}",
             f"FORCED_HOST_DEVICES := {FORCED_HOST_DEVICES}"]
    for name, r in RUNS.items():
        lines.append(f"CONFIG_{name} := {r.config}")
        if r.init_from:
            lines.append(f"INIT_FROM_{name} := {r.init_from}/params.msgpack")
        if r.distill_from:
            lines.append(f"DISTILL_FROM_{name} := {' '.join(f'{t}/params.msgpack' for t in r.distill_from)}")
    for name, e in ENSEMBLES.items():
        lines.append(f"INPUTS_{name} := {' '.join(e.inputs)}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] != ["make"]:
        raise SystemExit("usage: python -m research.configs.experiments make")
    sys.stdout.write(make_variables())
