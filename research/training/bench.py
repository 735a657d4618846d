"""Training-step throughput on synthetic batches (a benchmark, not a test)."""

from __future__ import annotations

import functools
import time

import jax
import ml_collections
import numpy as np
from flax import jax_utils

from research.configs.overrides import apply_overrides
from research.data.pipeline import shard
from research.models.factory import create_model
from research.training.state import create_train_state
from research.training.steps import AXIS, replicate, train_step


def synthetic_batch(batch: int, size: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {"image": rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8),
            "age": rng.integers(1, 90, batch).astype(np.int32),
            "gender": rng.integers(0, 2, batch).astype(np.int32),
            "race": rng.integers(0, 5, batch).astype(np.int32),
            "weight": np.ones(batch, np.float32)}


def measure(config: ml_collections.ConfigDict, steps: int, overrides: dict | None = None,
            warmup_steps: int = 3) -> dict:
    """Compile time and images/s of the pmap'd train step over every local device.

    ``warmup_steps`` after the compiling step are not timed: on the H100 the first few dozen
    steps ran an order of magnitude slower than later ones (run-time autotuning).
    """
    config = apply_overrides(config, overrides or {})
    devices = jax.local_devices()[: config.num_devices or None]
    model = create_model(config.model, axis_name=AXIS)
    state = create_train_state(model, config, jax.random.key(config.seed), steps_per_epoch=100)
    state = replicate(state, devices)
    keys = jax_utils.replicate(jax.random.key(1), devices=devices)
    p_train = jax.pmap(functools.partial(train_step, config=config, axis_name=AXIS), axis_name=AXIS,
                       devices=devices, donate_argnums=(0,))
    sharded = shard(synthetic_batch(config.batch_size, config.image_size, config.seed), len(devices))
    batch = next(jax_utils.prefetch_to_device(iter([sharded]), 1, devices=devices))
    tic = time.time()
    state, metrics = p_train(state, batch, keys)
    jax.block_until_ready(metrics)
    compile_s = time.time() - tic
    for _ in range(warmup_steps):
        state, metrics = p_train(state, batch, keys)
    jax.block_until_ready(metrics)
    tic = time.time()
    for _ in range(steps):
        state, metrics = p_train(state, batch, keys)
    jax.block_until_ready(metrics)
    seconds = time.time() - tic
    return {"images_per_s": steps * config.batch_size / seconds, "compile_s": compile_s,
            "devices": len(devices), "device_kind": devices[0].device_kind}


def measure_variant(name: str, impl: str, dtype: str, steps: int) -> dict:
    """One variant of the training-throughput table at the benchmark's shapes (64 px, batch 64, no
    augmentation): the 4-block CNN (one conv per stage) or ResNet-50, with ``impl`` convolutions."""
    from research.configs import load_config

    overrides = {"image_size": 64, "batch_size": 64, "model.conv_impl": impl, "model.dtype": dtype,
                 "augment.enabled": False}
    if name == "cnn_baseline":
        overrides.update({"model.widths": (32, 64, 128, 256), "model.convs_per_stage": 1})
    else:
        overrides.update({"model.small_input_stem": False})
    return measure(load_config(name, "cpu"), steps, overrides, warmup_steps=1)
