"""Orbax checkpoints of a run: ``last`` (every epoch) and ``best`` (lowest validation age MAE).

Lives with the run folder, outside ``training``, so that evaluation and release can restore a
model without importing the training loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp


def _manager(directory: Path) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=1, create=True)
    return ocp.CheckpointManager(Path(directory).absolute(), options=options,
                                 item_names=("state", "meta"))


def save(directory: Path, step: int, state: Any, meta: dict) -> None:
    """Save a pytree and a JSON-able dict under ``directory/<step>`` (older steps removed)."""
    with _manager(directory) as manager:
        manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(jax.device_get(state)),
                                                   meta=ocp.args.JsonSave(meta)))
        manager.wait_until_finished()


def latest_step(directory: Path) -> int | None:
    if not Path(directory).is_dir():
        return None
    with _manager(directory) as manager:
        return manager.latest_step()


def restore(directory: Path, target: Any = None) -> tuple[Any, dict]:
    """Restore the newest checkpoint; returns (state, meta).

    With ``target`` the state comes back in its structure (a train state to resume); without, as
    the nested dictionaries of arrays it was saved as (enough to read params for inference).
    """
    step = latest_step(directory)
    if step is None:
        raise FileNotFoundError(f"no checkpoint under {directory}; train the run first (scripts/train.py)")
    state_args = (ocp.args.StandardRestore() if target is None else ocp.args.StandardRestore(
        jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, jax.device_get(target))))
    with _manager(directory) as manager:
        restored = manager.restore(step, args=ocp.args.Composite(state=state_args,
                                                                 meta=ocp.args.JsonRestore()))
    return restored["state"], dict(restored["meta"])
