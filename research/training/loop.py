"""The training loop: epochs of pmap'd steps, validation, checkpoints, logs and resumption.

With several processes (research/training/distributed.py) every process runs this same loop on
its share of each global batch; the step's psum spans all their devices, validation is sharded
over processes and gathered, checkpoints are written collectively by Orbax, and only process 0
writes the run's results files and prints.
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pandas as pd
from flax import jax_utils
from tqdm import tqdm

from research.data import nonfaces, pipeline, protocol
from research.inference import each_eval_batch, predict_rows
from research.models.factory import create_model
from research.outputs import append_jsonl, write_csv, write_json
from research.provenance import git_commit
from research.runs import checkpoints
from research.runs.folder import RunFolder
from research.training import distill, distributed
from research.training import history as run_history
from research.training.augment import as_before_robust
from research.training.state import create_train_state, learning_rate_schedule
from research.training.steps import AXIS, loss_sums_step, replicate, train_step


class NonFiniteLossError(FloatingPointError):
    """Raised when a training loss becomes NaN or infinite."""


def local_devices(config: ml_collections.ConfigDict) -> list:
    """This process's first ``config.num_devices`` devices (0: all); the global batch must divide
    over that many devices in each process."""
    devices = jax.local_devices()
    wanted = config.num_devices or len(devices)
    if wanted > len(devices):
        raise ValueError(f"config.num_devices={wanted} but only {len(devices)} local devices; on CPU set "
                         f"XLA_FLAGS=--xla_force_host_platform_device_count={wanted}")
    distributed.check_global_batch(config.batch_size, wanted, jax.process_count())
    return devices[:wanted]


def validation_losses(variables, apply_fn, images, rows, table, config) -> dict[str, float]:
    """Mean loss per head over ``rows`` (padding rows carry weight 0)."""
    step = jax.jit(functools.partial(loss_sums_step, apply_fn=apply_fn, config=config))
    labels = pipeline.labels_of(table)

    def loss_sums(chunk: np.ndarray, start: int, real: int) -> dict[str, np.ndarray]:
        pad = len(chunk) - real
        batch = {k: np.concatenate([v[start:start + real], np.full(pad, 0 if k != "race" else -1, v.dtype)])
                 for k, v in labels.items()}
        batch["image"] = chunk
        batch["weight"] = np.concatenate([np.ones(real, np.float32), np.zeros(pad, np.float32)])
        return jax.device_get(step(variables, batch))

    totals: dict[str, float] = {}
    # Batch by batch in file order, as with one process: the same sums to the last bit.
    for sums in each_eval_batch(images, rows, config.eval.batch_size, loss_sums):
        for key, value in sums.items():
            totals[key] = totals.get(key, 0.0) + float(value)
    return {f"loss_{head}": totals[head] / max(totals["n_race" if head == "race" else "n"], 1.0)
            for head in ("age", "gender", "race")}


def evaluate_split(variables, apply_fn, images, rows, table, config) -> dict[str, float]:
    """Validation metrics: loss per head, age MAE, gender and ethnicity accuracy."""
    pred = predict_rows(variables, apply_fn, images, rows, config)
    race = table["race"].to_numpy()
    return {**validation_losses(variables, apply_fn, images, rows, table, config),
            "age_mae": float(np.mean(np.abs(pred["age"] - table["age"].to_numpy()))),
            "gender_accuracy": float(np.mean(pred["p_gender"].argmax(-1) == table["gender"].to_numpy())),
            "ethnicity_accuracy": float(np.mean(pred["p_race"].argmax(-1)[race >= 0] == race[race >= 0]))}


def training_config(config: ml_collections.ConfigDict) -> dict:
    """The config fields that shape training (where the data lives does not; which crops it
    leaves out does, recorded only when on so that earlier checkpoints still resume)."""
    shaping = {k: v for k, v in config.to_dict().items() if k != "data"}
    if config.data.get("exclude_nonfaces", False):
        shaping["exclude_nonfaces"] = True
    if distill.teachers_of(config):  # the teachers' weights, not only their folders
        shaping["distill_params_sha256"] = distill.teacher_checksums(config)
    return shaping


def check_resumable(meta: dict, config: ml_collections.ConfigDict, where: Path) -> None:
    """Refuse to resume a checkpoint made under another config (schedule, model, seed...)."""
    saved = meta.get("config")
    if saved is not None:  # a checkpoint from before the robust augmentations: they were off
        saved = as_before_robust(saved, json.loads(json.dumps(training_config(config))))
    if saved is not None and saved != json.loads(json.dumps(training_config(config))):
        changed = sorted(k for k in set(saved) | set(training_config(config))
                         if json.dumps(saved.get(k), sort_keys=True)
                         != json.dumps(training_config(config).get(k), sort_keys=True))
        raise ValueError(f"{where} was made with a different config (changed: {changed}); delete the run's "
                         "checkpoints to start afresh, or use another --workdir")


def run_epoch(p_train, replicated, step_keys, batches, devices: list, steps: int,
              config: ml_collections.ConfigDict, epoch: int):
    """One epoch of pmap'd steps with a progress bar; returns (replicated state, metric sums).

    Metric sums stay on the device and are fetched every ``log_every_steps`` steps (a step
    count, not a time interval), which is also when a non-finite loss stops the run.
    """
    sums = None
    bar = tqdm(jax_utils.prefetch_to_device(batches, 2, devices=devices), total=steps,
               desc=f"{config.name} epoch {epoch + 1}/{config.optimizer.num_epochs}", unit="step",
               disable=not distributed.is_primary())
    for i, batch in enumerate(bar):
        replicated, metrics = p_train(replicated, batch, step_keys)
        metrics = jax.tree_util.tree_map(lambda x: x[0], metrics)
        sums = metrics if sums is None else jax.tree_util.tree_map(jnp.add, sums, metrics)
        if (i + 1) % config.log_every_steps == 0 or i + 1 == steps:
            host = jax.device_get(sums)
            if not np.isfinite(host["loss"]):
                raise NonFiniteLossError(
                    f"{config.name}: the training loss became {host['loss']} in epoch {epoch + 1} "
                    f"(step {i + 1}); lower optimizer.learning_rate or set optimizer.clip_norm")
            bar.set_postfix(loss=f"{host['loss'] / (i + 1):.3f}",
                            mae=f"{host['age_abs_error'] / host['n']:.2f}")
    return replicated, sums


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: Path, data: str | None = None) -> dict:
    """Train ``config`` into ``workdir`` (resuming from its last checkpoint) and return the summary.

    With several processes, every process calls this with the same config and workdir (a
    filesystem all of them see, for the checkpoints).
    """
    folder = RunFolder(workdir)
    folder.path.mkdir(parents=True, exist_ok=True)
    primary = distributed.is_primary()
    commit = git_commit()  # the code that runs is the code at start, whatever happens meanwhile
    if primary:
        write_json(folder.config_file, config.to_dict())
    devices = local_devices(config)
    all_devices = distributed.global_devices(devices)  # == devices with one process
    # Process 0 builds a missing cache; the others then open it instead of decoding it too.
    cached = distributed.primary_first(lambda: protocol.open_protocol(config, data), "decoded-image cache")
    exclude = config.data.get("exclude_nonfaces", False)
    train_rows, train_table = nonfaces.training_split(cached, "train", exclude)
    val_rows, val_table = nonfaces.training_split(cached, "val", exclude)
    train_rows = protocol.subset(train_rows, config.data.max_train_images)
    train_table = train_table.iloc[: len(train_rows)]
    val_rows = protocol.subset(val_rows, config.data.max_eval_images)
    val_table = val_table.iloc[: len(val_rows)]
    steps_per_epoch = len(train_rows) // config.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"{len(train_rows)} training images is fewer than one batch of {config.batch_size}")

    model = create_model(config.model, axis_name=AXIS)
    rng = jax.random.key(config.seed)
    init_rng, step_rng = jax.random.split(rng)
    state = create_train_state(model, config, init_rng, steps_per_epoch)
    start_epoch, history = 0, []
    if checkpoints.latest_step(folder.last_checkpoint) is not None:
        state, meta = checkpoints.restore(folder.last_checkpoint, state)
        check_resumable(meta, config, folder.last_checkpoint)
        start_epoch, history = meta["epoch"] + 1, meta["history"]
        if primary:
            print(f"resuming {config.name} after epoch {meta['epoch'] + 1} from {folder.last_checkpoint}")
    if primary:
        run_history.rewrite_metrics(folder.metrics_log, history)

    p_train = jax.pmap(functools.partial(train_step, config=config, axis_name=AXIS), axis_name=AXIS,
                       devices=all_devices, donate_argnums=(0,))
    schedule = learning_rate_schedule(config.optimizer, steps_per_epoch)
    # A distilled run also carries the teachers' predictions for each training row (computed once).
    labels = {**pipeline.labels_of(train_table), **distill.teacher_targets(config, train_table, data)}
    replicated = replicate(state, all_devices)
    step_keys = jax_utils.replicate(step_rng, devices=devices)
    best = min((h["val/age_mae"] for h in history), default=float("inf"))
    start_time = time.time()
    for epoch in range(start_epoch, config.optimizer.num_epochs):
        batches = pipeline.train_batches(cached.images, train_rows, labels, config.batch_size,
                                         config.seed, epoch, len(devices), jax.process_index(),
                                         jax.process_count())
        tic = time.time()
        replicated, sums = run_epoch(p_train, replicated, step_keys, batches, devices, steps_per_epoch,
                                     config, epoch)
        seconds = time.time() - tic
        # Not jax_utils.unreplicate: with 1 of several local devices it returns the (1, ...) arrays.
        # (pmap's outputs hold this process's devices only, so [0] is its first local replica.)
        state = jax.tree_util.tree_map(lambda x: x[0], replicated)
        variables = {"params": state.params, "batch_stats": state.batch_stats}
        val = evaluate_split(variables, state.apply_fn, cached.images, val_rows, val_table, config)
        record = run_history.epoch_record(epoch, jax.device_get(sums), steps_per_epoch, val,
                                          float(schedule(int(state.step))), seconds, config.batch_size)
        history.append(record)
        if primary:
            append_jsonl(folder.metrics_log, record)
            print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()}))
        # Every process holds the same val (gathered) and history, so all take part in each save.
        if val["age_mae"] < best:
            best = val["age_mae"]
            checkpoints.save(folder.best_checkpoint, epoch, state, {"epoch": epoch, "val": val})
        checkpoints.save(folder.last_checkpoint, epoch, state, {"epoch": epoch, "history": history,
                                                            "config": training_config(config)})
    history_frame = pd.DataFrame(history)
    if primary:
        write_csv(folder.history_file, history_frame)
        run_history.plot_loss_curves(history_frame, folder.loss_curves, config.name)
    summary = run_history.write_summary(workdir, config, history, all_devices, time.time() - start_time,
                                        len(train_rows), len(val_rows), cached.source_sha256, commit,
                                        write=primary)
    distributed.barrier(f"{workdir} written")  # every process returns once the run's files exist
    return summary
