"""Training-step throughput on synthetic batches (a benchmark, not a test), in one process or
several (``multihost_throughput``: the same global batch over 1 process x N devices and
N processes x 1 device)."""

from __future__ import annotations

import functools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import jax
import ml_collections
import numpy as np
from flax import jax_utils

from research.configs.overrides import apply_overrides
from research.data.pipeline import shard
from research.models.factory import create_model
from research.outputs import write_json
from research.training.distributed import check_global_batch, global_devices
from research.training.launch import launch_local
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
    """Compile time and images/s of the pmap'd train step over every local device (of every
    process, each feeding its share of the global batch).

    ``warmup_steps`` after the compiling step are not timed: on the H100 the first few dozen
    steps ran an order of magnitude slower than later ones (run-time autotuning).
    """
    config = apply_overrides(config, overrides or {})
    local = jax.local_devices()[: config.num_devices or None]
    check_global_batch(config.batch_size, len(local), jax.process_count())
    devices = global_devices(local)
    model = create_model(config.model, axis_name=AXIS)
    state = create_train_state(model, config, jax.random.key(config.seed), steps_per_epoch=100)
    state = replicate(state, devices)
    keys = jax_utils.replicate(jax.random.key(1), devices=local)
    p_train = jax.pmap(functools.partial(train_step, config=config, axis_name=AXIS), axis_name=AXIS,
                       devices=devices, donate_argnums=(0,))
    share = config.batch_size // jax.process_count()
    sharded = shard(synthetic_batch(share, config.image_size, config.seed + jax.process_index()), len(local))
    batch = next(jax_utils.prefetch_to_device(iter([sharded]), 1, devices=local))
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
            "devices": len(devices), "device_kind": devices[0].device_kind,
            "processes": jax.process_count(), "step_ms": 1000 * seconds / steps}


def measure_process(argv: list[str]) -> None:
    """One process of a multi-process measurement (``python -m research.training.bench CONFIG PROFILE
    STEPS WARMUP OUT``): joins the processes, measures, and process 0 writes the result to OUT."""
    from research.training import distributed

    distributed.initialize()
    from research.configs import load_config

    name, profile, steps, warmup, out = argv
    result = measure(load_config(name, profile), int(steps), warmup_steps=int(warmup))
    if distributed.is_primary():
        write_json(out, result)


def multihost_throughput(config_name: str, profile: str, steps: int, warmup_steps: int,
                         layouts: tuple[tuple[int, int], ...] = ((1, 2), (2, 1))) -> list[dict]:
    """Images/s of ``config_name``'s train step for each (processes, devices per process) layout,
    each in fresh processes on this machine (scripts/launch_local.py's launcher; forced CPU devices).

    The global batch is the config's in every layout, so the rows differ only in how its devices
    are spread over processes (the cross-process psum goes through gloo over 127.0.0.1).
    """
    rows = []
    for processes, devices in layouts:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "result.json"
            load_before = os.getloadavg()
            status = launch_local([sys.executable, "-m", "research.training.bench", config_name, profile,
                                   str(steps), str(warmup_steps), str(out)], processes, devices)
            if status:
                raise RuntimeError(f"the {processes} x {devices} measurement failed (exit status {status})")
            result = json.loads(out.read_text())
        rows.append({"config": config_name, "profile": profile, "processes": processes,
                     "devices_per_process": devices, "devices": result["devices"], "steps": steps,
                     "images_per_s": round(result["images_per_s"], 1), "step_ms": round(result["step_ms"], 1),
                     "compile_s": round(result["compile_s"], 1),
                     "loadavg_1min_before": round(load_before[0], 2),
                     "loadavg_1min_after": round(os.getloadavg()[0], 2)})
    return rows


def augment_throughput(config: ml_collections.ConfigDict, variants: dict[str, dict], steps: int,
                       repeats: int, warmup_steps: int = 3) -> list[dict]:
    """Train-step images/s of ``config`` under each variant's overrides (e.g. without and with the
    robust augmentations), measured ``repeats`` times in turn so that a change in the machine's load
    falls on every variant alike; one row per variant: the median, and its ratio to the first variant's."""
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, overrides in variants.items():
            runs[name].append(measure(config, steps, overrides, warmup_steps))
    rows = []
    for name, results in runs.items():
        rates = [r["images_per_s"] for r in results]
        rows.append({"config": config.name, "profile": config.profile, "variant": name,
                     "overrides": " ".join(f"{k}={v}" for k, v in variants[name].items()),
                     "image_size": config.image_size, "batch": config.batch_size,
                     "devices": results[0]["devices"], "steps": steps, "repeats": repeats,
                     "images_per_s": round(float(np.median(rates)), 1),
                     "images_per_s_min": round(min(rates), 1), "images_per_s_max": round(max(rates), 1),
                     "step_ms": round(float(np.median([r["step_ms"] for r in results])), 2),
                     "compile_s": round(float(np.median([r["compile_s"] for r in results])), 1)})
    for row in rows:
        row["relative_to_first"] = round(row["images_per_s"] / rows[0]["images_per_s"], 3)
    return rows


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


if __name__ == "__main__":
    measure_process(sys.argv[1:])
