"""Batches of cached uint8 images and labels: shuffled per epoch for training, padded for eval."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd


def labels_of(table: pd.DataFrame) -> dict[str, np.ndarray]:
    return {"age": table["age"].to_numpy(np.int32), "gender": table["gender"].to_numpy(np.int32),
            "race": table["race"].to_numpy(np.int32)}


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The training order of one epoch: a function of (seed, epoch) only, so a resumed run
    sees the same batches as an uninterrupted one."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def train_batches(images: np.ndarray, rows: np.ndarray, labels: dict, batch_size: int, seed: int,
                  epoch: int, num_devices: int) -> Iterator[dict]:
    """Full batches (the remainder is dropped), each shaped (devices, per_device, ...)."""
    order = epoch_order(len(rows), seed, epoch)
    for start in range(0, len(order) - batch_size + 1, batch_size):
        pick = order[start:start + batch_size]
        batch = {"image": images[rows[pick]], **{k: v[pick] for k, v in labels.items()},
                 "weight": np.ones(batch_size, np.float32)}
        yield shard(batch, num_devices)


def eval_batches(images: np.ndarray, rows: np.ndarray, batch_size: int) -> Iterator[tuple[np.ndarray, int]]:
    """(images padded to ``batch_size``, number of real rows) in order, covering every row."""
    for start in range(0, len(rows), batch_size):
        chunk = images[rows[start:start + batch_size]]
        real = len(chunk)
        if real < batch_size:
            chunk = np.concatenate([chunk, np.zeros((batch_size - real, *chunk.shape[1:]), chunk.dtype)])
        yield chunk, real


def shard(batch: dict, num_devices: int) -> dict:
    """Reshape every array's leading axis to (num_devices, batch/num_devices)."""
    size = len(batch["weight"])
    if size % num_devices:
        raise ValueError(f"batch size {size} does not divide evenly over {num_devices} devices; "
                         f"set config.batch_size to a multiple of {num_devices}")
    return {k: v.reshape(num_devices, size // num_devices, *v.shape[1:]) for k, v in batch.items()}
