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
                  epoch: int, num_devices: int, process_index: int = 0,
                  num_processes: int = 1) -> Iterator[dict]:
    """Full batches (the remainder is dropped), each shaped (devices, per_device, ...).

    ``batch_size`` is global: with several processes each reads only its contiguous slice of
    every global batch (process ``p`` of ``P`` the ``p``-th of ``P`` equal parts), so global
    device ``g`` sees the same rows whatever the number of processes.
    """
    if batch_size % num_processes:
        raise ValueError(f"batch size {batch_size} does not divide evenly over {num_processes} processes")
    order = epoch_order(len(rows), seed, epoch)
    share = batch_size // num_processes
    for start in range(0, len(order) - batch_size + 1, batch_size):
        pick = order[start + process_index * share:start + (process_index + 1) * share]
        batch = {"image": images[rows[pick]], **{k: v[pick] for k, v in labels.items()},
                 "weight": np.ones(share, np.float32)}
        yield shard(batch, num_devices)


def eval_batches(images: np.ndarray, rows: np.ndarray, batch_size: int) -> Iterator[tuple[np.ndarray, int]]:
    """(images padded to ``batch_size``, number of real rows) in order, covering every row."""
    for start in range(0, len(rows), batch_size):
        yield eval_batch(images, rows[start:start + batch_size], batch_size)


def eval_batch(images: np.ndarray, rows: np.ndarray, batch_size: int) -> tuple[np.ndarray, int]:
    """The images of ``rows`` (at most ``batch_size``) padded with zeros to ``batch_size``."""
    chunk = images[rows]
    real = len(chunk)
    if real < batch_size:
        chunk = np.concatenate([chunk, np.zeros((batch_size - real, *chunk.shape[1:]), chunk.dtype)])
    return chunk, real


def shard(batch: dict, num_devices: int) -> dict:
    """Reshape every array's leading axis to (num_devices, batch/num_devices)."""
    size = len(batch["weight"])
    if size % num_devices:
        raise ValueError(f"batch size {size} does not divide evenly over {num_devices} devices; "
                         f"set config.batch_size to a multiple of {num_devices}")
    return {k: v.reshape(num_devices, size // num_devices, *v.shape[1:]) for k, v in batch.items()}
