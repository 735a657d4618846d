"""Train state (params, BatchNorm statistics, optimizer) and the optimizer from a config."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax.training import train_state


class TrainState(train_state.TrainState):
    batch_stats: Any = flax.struct.field(default_factory=dict)


def learning_rate_schedule(opt: ml_collections.ConfigDict, steps_per_epoch: int) -> optax.Schedule:
    """Linear warm-up, then cosine decay to ``opt.final_lr_fraction`` of the peak."""
    total = max(opt.num_epochs * steps_per_epoch, 1)
    warmup = min(int(opt.warmup_epochs * steps_per_epoch), total - 1)
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=opt.learning_rate, warmup_steps=max(warmup, 1),
        decay_steps=total, end_value=opt.learning_rate * opt.final_lr_fraction)


def make_optimizer(opt: ml_collections.ConfigDict, steps_per_epoch: int) -> optax.GradientTransformation:
    schedule = learning_rate_schedule(opt, steps_per_epoch)
    if opt.name == "adamw":
        core = optax.adamw(schedule, weight_decay=opt.weight_decay)
    elif opt.name == "sgd":
        core = optax.chain(optax.add_decayed_weights(opt.weight_decay),
                           optax.sgd(schedule, momentum=opt.momentum, nesterov=True))
    else:
        raise ValueError(f"optimizer.name must be 'adamw' or 'sgd', got {opt.name!r}")
    return optax.chain(optax.clip_by_global_norm(opt.clip_norm), core) if opt.clip_norm else core


def create_train_state(model, config: ml_collections.ConfigDict, rng: jax.Array,
                       steps_per_epoch: int) -> TrainState:
    """Initialise parameters on a dummy batch at the configured image size."""
    dummy = jnp.zeros((1, config.image_size, config.image_size, 3), jnp.float32)
    variables = model.init({"params": rng, "dropout": rng}, dummy, train=False)
    return TrainState.create(apply_fn=model.apply, params=variables["params"],
                             batch_stats=variables.get("batch_stats", {}),
                             tx=make_optimizer(config.optimizer, steps_per_epoch))
