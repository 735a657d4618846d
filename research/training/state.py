"""Train state (params, BatchNorm statistics, optimizer) and the optimizer from a config."""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import flax.serialization
import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax.training import train_state

from research.models.factory import BACKBONES
from research.models.pretrained.weights import DEFAULT_CACHE, pretrained_trunk

TRUNK = "trunk"  # the top-level parameter collection of a pretrained backbone
RELEASE_PARAMS = "params.msgpack"  # a release folder's params (research.predict.release writes the format)


class TrainState(train_state.TrainState):
    batch_stats: Any = flax.struct.field(default_factory=dict)


def learning_rate_schedule(opt: ml_collections.ConfigDict, steps_per_epoch: int) -> optax.Schedule:
    """Linear warm-up, then cosine decay to ``opt.final_lr_fraction`` of the peak."""
    total = max(opt.num_epochs * steps_per_epoch, 1)
    warmup = min(int(opt.warmup_epochs * steps_per_epoch), total - 1)
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=opt.learning_rate, warmup_steps=max(warmup, 1),
        decay_steps=total, end_value=opt.learning_rate * opt.final_lr_fraction)


def trunk_multiplier(opt: ml_collections.ConfigDict, steps_per_epoch: int) -> optax.Schedule:
    """The trunk's learning rate as a fraction of the heads': 0 while the trunk is frozen
    (``trunk_freeze_epochs``, so that fresh heads do not push large gradients into pretrained
    weights), then ``trunk_lr_scale``."""
    frozen_steps = int(opt.get("trunk_freeze_epochs", 0.0) * steps_per_epoch)
    scale = opt.get("trunk_lr_scale", 1.0)
    return lambda step: jnp.where(step < frozen_steps, 0.0, scale)


def _scales_trunk(opt: ml_collections.ConfigDict) -> bool:
    return opt.get("trunk_lr_scale", 1.0) != 1.0 or opt.get("trunk_freeze_epochs", 0.0) > 0


def _trunk_labels(params) -> dict:
    return {k: jax.tree_util.tree_map(lambda _, k=k: TRUNK if k == TRUNK else "other", v)
            for k, v in params.items()}


def make_optimizer(opt: ml_collections.ConfigDict, steps_per_epoch: int) -> optax.GradientTransformation:
    schedule = learning_rate_schedule(opt, steps_per_epoch)
    if opt.name == "adamw":
        core = optax.adamw(schedule, weight_decay=opt.weight_decay)
    elif opt.name == "sgd":
        core = optax.chain(optax.add_decayed_weights(opt.weight_decay),
                           optax.sgd(schedule, momentum=opt.momentum, nesterov=True))
    else:
        raise ValueError(f"optimizer.name must be 'adamw' or 'sgd', got {opt.name!r}")
    if _scales_trunk(opt):
        # Scaling the final updates scales the trunk's learning rate (weight decay included).
        core = optax.chain(core, optax.multi_transform(
            {TRUNK: optax.scale_by_schedule(trunk_multiplier(opt, steps_per_epoch)),
             "other": optax.identity()}, _trunk_labels))
    return optax.chain(optax.clip_by_global_norm(opt.clip_norm), core) if opt.clip_norm else core


def with_pretrained_trunk(variables: dict, model: ml_collections.ConfigDict, cache_dir) -> dict:
    """``variables`` with the trunk's params and statistics replaced by converted weights
    (``model.init`` other than 'scratch'); shapes must match exactly."""
    loaded = pretrained_trunk(model.name, model.init, cache_dir)
    out = dict(variables)
    for kind, tree in loaded.items():
        if not tree:
            continue
        fresh = variables[kind][TRUNK]
        if jax.tree_util.tree_structure(fresh) != jax.tree_util.tree_structure(tree) or any(
                np.shape(a) != np.shape(b) for a, b in zip(jax.tree_util.tree_leaves(fresh),
                                                           jax.tree_util.tree_leaves(tree), strict=True)):
            raise ValueError(f"the converted {model.init} weights do not fit the {model.name} trunk ({kind})")
        out[kind] = {**variables[kind], TRUNK: jax.tree_util.tree_map(jnp.asarray, tree)}
    return out


def read_single_release(release_dir: str | Path, where: str, purpose: str) -> tuple[dict, str]:
    """The stored variables of a single-run release folder (scripts/export_model.py) and its params
    sha256, checked against its metadata.json; ``where`` names the setting in errors, ``purpose``
    says why an ensemble folder is refused."""
    directory = Path(release_dir)
    try:
        blob = (directory / RELEASE_PARAMS).read_bytes()
        metadata = json.loads((directory / "metadata.json").read_text())
    except FileNotFoundError as err:
        raise ValueError(f"{where}: {err.filename} is missing (a release folder comes from "
                         "scripts/export_model.py)") from err
    digest = hashlib.sha256(blob).hexdigest()
    if digest != metadata.get("params_sha256"):
        raise ValueError(f"{where}: the sha256 of {RELEASE_PARAMS} does not match metadata.json (corrupt or "
                         "replaced)")
    stored = flax.serialization.msgpack_restore(blob)
    if "members" in stored:
        raise ValueError(f"{where} is an ensemble of {len(stored['members'])} runs; {purpose}")
    return stored, digest


def with_release_weights(variables: dict, release_dir: str | Path) -> dict:
    """``variables`` replaced, every tree of them, by a single-run release's params and BatchNorm
    statistics (``model.init_from``: continued training of an exported run). The release's
    checksum is checked on loading; its tree and shapes must match this model exactly."""
    where = f"model.init_from={str(release_dir)!r}"
    stored, _ = read_single_release(release_dir, where, "continued training starts from one run's release")
    out = dict(variables)
    for kind in ("params", "batch_stats"):
        fresh, loaded = variables.get(kind, {}), stored.get(kind, {})
        fresh_leaves = jax.tree_util.tree_leaves_with_path(fresh)
        loaded_leaves = jax.tree_util.tree_leaves_with_path(loaded)
        same_paths = [p for p, _ in fresh_leaves] == [p for p, _ in loaded_leaves]
        if not same_paths or any(np.shape(a) != np.shape(b)
                                 for (_, a), (_, b) in zip(fresh_leaves, loaded_leaves, strict=True)):
            raise ValueError(f"{where}: its {kind} do not fit this model (its architecture differs from "
                             "the release's config.json)")
        out[kind] = jax.tree_util.tree_map(lambda _, b: jnp.asarray(b), fresh, loaded)
    return out


def create_train_state(model, config: ml_collections.ConfigDict, rng: jax.Array,
                       steps_per_epoch: int) -> TrainState:
    """Initialise parameters on a dummy batch at the configured image size; a pretrained
    backbone's trunk then takes its converted weights."""
    dummy = jnp.zeros((1, config.image_size, config.image_size, 3), jnp.float32)
    init = functools.partial(model.init, train=False)
    if config.model.name in BACKBONES:
        # One compiled program: op-by-op initialisation of MobileNetV2 took 4x longer here.
        init = jax.jit(init)
    variables = init({"params": rng, "dropout": rng}, dummy)
    if config.model.get("init", "scratch") != "scratch":
        variables = with_pretrained_trunk(variables, config.model,
                                          config.data.get("pretrained_cache", str(DEFAULT_CACHE)))
    if config.model.get("init_from", ""):
        variables = with_release_weights(variables, config.model.init_from)
    return TrainState.create(apply_fn=model.apply, params=variables["params"],
                             batch_stats=variables.get("batch_stats", {}),
                             tx=make_optimizer(config.optimizer, steps_per_epoch))
