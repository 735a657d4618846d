"""The release model's full age distribution (117 probabilities per face) on a split's crops.

results/decision/release_<split>.csv keeps only each distribution's mean, sd and mass below the
challenge ages; a correction of the distribution (research.evaluation.age_bias) needs all of it.
release_probs_<split>.npz holds ``files`` (names, split-file order) and ``age_probs`` (float32,
faces x 117), computed with ``research.inference.distribution_step`` on the crops decoded as
evaluation decodes them; release_probs_<split>.json its provenance and how its mean and sd agree
with release_<split>.csv.
"""

from __future__ import annotations

import functools
from pathlib import Path

import jax
import numpy as np
import pandas as pd
from tqdm import tqdm

from research.data import pipeline
from research.inference import distribution_step
from research.models.age_distribution import moments
from research.outputs import atomic_path

PROBS_COLUMNS = ("files", "age_probs")


def probs_path(folder: Path, split: str) -> Path:
    return Path(folder) / f"release_probs_{split}.npz"


def release_probabilities(members: tuple[dict, ...], weights: tuple[float, ...], apply_fn, tta_flip: bool,
                          images: np.ndarray, batch_size: int) -> np.ndarray:
    """(faces x 117) mixture age distributions of ``images`` (uint8 at the model's size), in order."""
    step = jax.jit(functools.partial(distribution_step, apply_fn=apply_fn, tta_flip=tta_flip,
                                     weights=weights))
    parts = []
    batches = pipeline.eval_batches(images, np.arange(len(images)), batch_size)
    for chunk, real in tqdm(batches, total=-(-len(images) // batch_size), desc="release", unit="batch"):
        parts.append(np.asarray(jax.device_get(step(members, chunk))["age_probs"][:real], np.float32))
    return np.concatenate(parts) if parts else np.zeros((0, 117), np.float32)


def write_probs(path: Path, files: pd.Series, age_probs: np.ndarray) -> None:
    """The npz (compressed; no pickles), written atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, files=np.asarray(files, dtype=str),
                            age_probs=np.asarray(age_probs, np.float32))


def read_probs(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(file names, age_probs) of a release_probs_<split>.npz, with a clear error if it is not one."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path} is missing: run scripts/release_probs.py first")
    with np.load(path, allow_pickle=False) as stored:
        missing = set(PROBS_COLUMNS) - set(stored.files)
        if missing:
            raise ValueError(f"{path} is not a release distributions file: {sorted(missing)} missing")
        return stored["files"], stored["age_probs"].astype(np.float64)


def agreement_with(files: np.ndarray, age_probs: np.ndarray, committed: pd.DataFrame) -> dict:
    """How the distributions' mean and sd match release_<split>.csv's pred_age and age_std."""
    mean, std = moments(age_probs)
    joined = pd.DataFrame({"file": files, "mean": mean, "std": std}).merge(committed, on="file")
    return {"rows": len(files), "matched_files": len(joined),
            "max_abs_difference_pred_age": float(np.abs(joined["mean"] - joined["pred_age"]).max()),
            "max_abs_difference_age_std": float(np.abs(joined["std"] - joined["age_std"]).max())}


def parse_part(text: str) -> tuple[int, int]:
    """(K, M) of "K/M", 0 <= K < M."""
    try:
        part, parts = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--part must be K/M (e.g. 0/2), not {text!r}") from None
    if not 0 <= part < parts:
        raise ValueError(f"--part {text}: K must be in 0..M-1")
    return part, parts


def part_rows(n: int, part: int, parts: int) -> slice:
    """The K-th of M equal slices of n rows."""
    return slice(n * part // parts, n * (part + 1) // parts)


def part_path(target: Path, part: int, parts: int) -> Path:
    """Where part K of M is kept until every part is there (the whole file when M = 1)."""
    return target if parts == 1 else target.with_name(f"{target.stem}.part{part}of{parts}.npz")


def merge_parts(target: Path, parts: int) -> bool:
    """Once all M parts are written, join them in order into ``target`` and remove them; True when
    ``target`` is complete."""
    if parts == 1:
        return True
    pieces = [part_path(target, k, parts) for k in range(parts)]
    if not all(p.is_file() for p in pieces):
        return False
    loaded = [read_probs(p) for p in pieces]
    write_probs(target, pd.Series(np.concatenate([f for f, _ in loaded])),
                np.concatenate([a for _, a in loaded]).astype(np.float32))
    for p in pieces:
        p.unlink()
    return True
