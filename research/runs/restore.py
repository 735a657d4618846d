"""A run's inference variables from its best checkpoint: params and BatchNorm statistics only.

No optimizer and no ``TrainState`` are rebuilt (so nothing here imports training): the checkpoint
is restored as the nested dictionaries it was saved as, and everything but the two collections
the model applies is dropped.
"""

from __future__ import annotations

from pathlib import Path

import ml_collections

from research.models.factory import create_model
from research.runs import checkpoints
from research.runs.folder import RunFolder


def inference_variables(state: dict) -> dict:
    """``{"params", "batch_stats"}`` of a restored train state (batch_stats {} for a model without)."""
    return {"params": state["params"], "batch_stats": state.get("batch_stats") or {}}


def load_run(workdir: Path,
             checkpoint_dir: Path | None = None) -> tuple[ml_collections.ConfigDict, dict, object]:
    """Config, best-checkpoint inference variables and the model of a run folder.

    ``checkpoint_dir`` defaults to ``workdir/checkpoints/best`` (checkpoints are git-ignored, so a
    clone may keep them elsewhere).
    """
    folder = RunFolder(workdir)
    config = ml_collections.ConfigDict(folder.config())
    state, _ = checkpoints.restore(checkpoint_dir or folder.best_checkpoint)
    return config, inference_variables(state), create_model(config.model)
