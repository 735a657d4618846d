"""Distillation targets: the teachers' predicted distributions for every training image.

A run with ``config.distill`` (teachers: committed single-run release folders, each applied at
its own input size to the same training rows; alpha: the weight of their targets) trains against
a mixture of its label targets and the teachers' mean predictions: age distribution, gender and
ethnicity probabilities (``research.training.losses.multitask_loss``). The teachers see each
training image once, unaugmented and without mirror averaging (offline distillation, Hinton et al.,
2015); the student sees its augmented views of the same image. The targets are computed once and
kept beside the decoded-image caches (``data/cache/distill/``, keyed by the teachers' weights, the
split file and the rows), so a resumed run reads them instead of running the teachers again.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from pathlib import Path

import jax
import ml_collections
import numpy as np
import pandas as pd
from tqdm import tqdm

from research.data import archive, nonfaces, protocol
from research.inference import distribution_step, each_eval_batch
from research.models.factory import create_model
from research.outputs import atomic_path
from research.training import distributed
from research.training.losses import teacher_weight
from research.training.state import read_single_release

KEYS = {"teacher_age": "age_probs", "teacher_gender": "p_gender", "teacher_race": "p_race"}


@dataclasses.dataclass(frozen=True)
class Teacher:
    """A loaded teacher: its folder, config (input size, model), variables and params checksum."""

    path: Path
    config: ml_collections.ConfigDict
    variables: dict
    params_sha256: str

    @property
    def image_size(self) -> int:
        return int(self.config.image_size)


def load_teacher(folder: str | Path) -> Teacher:
    """A single-run release folder (scripts/export_model.py) as a teacher; its checksum is checked."""
    where, folder = f"distill teacher {str(folder)!r}", Path(folder)
    stored, digest = read_single_release(folder, where, "name its members as teachers instead")
    try:
        config = ml_collections.ConfigDict(json.loads((folder / "config.json").read_text()))
    except FileNotFoundError as err:
        raise ValueError(f"{where}: {err.filename} is missing (a release folder comes from "
                         "scripts/export_model.py)") from err
    if config.model.get("age_head", "classification") != "classification":
        raise ValueError(f"{where} has a regression age head: a teacher must predict an age distribution")
    variables = {"params": stored["params"], "batch_stats": stored.get("batch_stats", {})}
    return Teacher(folder, config, variables, digest)


def check_teacher_data(teacher: Teacher, config: ml_collections.ConfigDict) -> None:
    """A teacher must come from the student's protocol (split): one trained on another split may have
    seen the student's validation or test images."""
    if teacher.config.get("protocol") != config.protocol:
        raise ValueError(f"distill teacher {str(teacher.path)!r} was trained on the "
                         f"{teacher.config.get('protocol')!r} protocol, the student on {config.protocol!r}: "
                         "its training split may hold the student's validation or test images")


def teachers_of(config: ml_collections.ConfigDict) -> tuple[str, ...]:
    """The configured teacher folders (none when the run is not distilled); alpha must lie in
    (0, 1] exactly when there are teachers, so that no setting silently does nothing."""
    distill = config.get("distill")
    if distill is None:
        return ()
    teachers, alpha = tuple(distill.get("teachers", ())), teacher_weight(config)
    if teachers and not 0.0 < alpha <= 1.0:
        raise ValueError(f"distill.alpha must be in (0, 1] (the teachers' share of each target), got {alpha}")
    if alpha and not teachers:
        raise ValueError(f"distill.alpha is {alpha} but distill.teachers is empty: name the teachers' "
                         "release folders, or remove config.distill")
    return teachers


def teacher_checksums(config: ml_collections.ConfigDict) -> list[str]:
    """sha256 of each teacher's params file (a checkpoint records them: a resumed run must not mix
    the targets of two sets of teachers)."""
    return [archive.sha256_file(Path(folder) / "params.msgpack") for folder in teachers_of(config)]


def _targets_key(metas: list[dict], split_sha256: str, files: pd.Series) -> str:
    """The targets file's name: what the targets depend on (teachers' weights and sizes, the split
    file, the training rows)."""
    files_digest = hashlib.sha256("\n".join(files).encode()).hexdigest()
    blob = json.dumps({"teachers": metas, "split_sha256": split_sha256, "files": files_digest},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def teacher_predictions(teacher: Teacher, config: ml_collections.ConfigDict, data: str | None, exclude: bool,
                        files: pd.Series) -> dict[str, np.ndarray]:
    """One teacher's age distribution, gender and ethnicity probabilities for the training rows
    whose files are ``files`` (in that order), from its own decoded-image cache."""
    teacher_config = ml_collections.ConfigDict(config.to_dict())
    teacher_config.image_size = teacher.image_size
    cached = distributed.primary_first(lambda: protocol.open_protocol(teacher_config, data),
                                       f"decoded-image cache {teacher.image_size} px (teacher)")
    rows, table = nonfaces.training_split(cached, "train", exclude)
    rows, table = rows[:len(files)], table.iloc[:len(files)]
    if not np.array_equal(table["file"].to_numpy(), files.to_numpy()):
        raise ValueError(f"teacher {teacher.path}: the training rows of its {teacher.image_size} px cache "
                         f"are not the student's (another split file?); delete {config.data.cache_root} and "
                         "rerun to rebuild the caches")
    model = create_model(teacher.config.model)
    step = jax.jit(functools.partial(distribution_step, apply_fn=model.apply, tta_flip=False, weights=(1.0,)))
    batch_size = int(config.eval.batch_size)
    bar = tqdm(total=len(rows), desc=f"teacher {teacher.path.name}", unit="img",
               disable=not distributed.is_primary())

    def predict(chunk: np.ndarray, start: int, real: int) -> dict[str, np.ndarray]:
        out = jax.device_get(step((teacher.variables,), chunk))
        bar.update(real)
        return out

    outputs = each_eval_batch(cached.images, rows, batch_size, predict)
    bar.close()
    return {key: np.concatenate([o[name] for o in outputs])[:len(rows)].astype(np.float32)
            for key, name in KEYS.items()}


def teacher_targets(config: ml_collections.ConfigDict, train_table: pd.DataFrame,
                    data: str | None = None) -> dict[str, np.ndarray]:
    """The teachers' mean predictions for every row of ``train_table`` (aligned with it):
    ``teacher_age`` (N x 117), ``teacher_gender`` (N x 2), ``teacher_race`` (N x 5); {} when the run is
    not distilled. Read from the targets cache when present, else computed and written there."""
    teachers = teachers_of(config)
    if not teachers:
        return {}
    loaded = [load_teacher(folder) for folder in teachers]
    for teacher in loaded:
        check_teacher_data(teacher, config)
    split_sha = archive.sha256_file(Path(config.data.split_dir) / f"{config.protocol}.csv")
    exclude = bool(config.data.get("exclude_nonfaces", False))
    metas = [{"params_sha256": t.params_sha256, "image_size": t.image_size} for t in loaded]
    files = train_table["file"].reset_index(drop=True)
    out = Path(config.data.cache_root) / "distill" / f"{_targets_key(metas, split_sha, files)}.npz"
    if out.is_file():
        with np.load(out) as saved:
            return {key: saved[key] for key in KEYS}
    per_teacher = [teacher_predictions(t, config, data, exclude, files) for t in loaded]
    targets = {key: np.mean([p[key] for p in per_teacher], axis=0).astype(np.float32) for key in KEYS}
    if distributed.is_primary():
        with atomic_path(out) as tmp:  # never a half-written targets file
            np.savez(tmp, **targets)
    distributed.barrier(f"{out} written")
    return targets
