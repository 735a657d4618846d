"""One module per experiment; each has ``get_config(profile) -> ml_collections.ConfigDict``.

``experiments.py`` is the registry of runs built from them (name -> config, profile, overrides).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # ml_collections is imported by the configs themselves; make reads experiments.py
    import ml_collections

PROFILES = ("smoke", "cpu", "gpu")


def load_config(name: str, profile: str = "cpu") -> ml_collections.ConfigDict:
    """Import ``research.configs.<name>`` and call its ``get_config(profile)``."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; profiles: {', '.join(PROFILES)}")
    try:
        module = importlib.import_module(f"research.configs.{name}")
    except ModuleNotFoundError as error:
        if error.name != f"research.configs.{name}":
            raise
        raise ValueError(f"no experiment config named {name!r} (research/configs/{name}.py)") from error
    return module.get_config(profile)


def load_run_config(name: str, profile: str | None = None) -> ml_collections.ConfigDict:
    """The config of registered run ``name`` (research/configs/experiments.py): its config module at
    its profile (or ``profile``, e.g. smoke), with its overrides and its name."""
    from research.configs.experiments import run
    from research.configs.overrides import apply_overrides

    entry = run(name)
    config = load_config(entry.config, profile or entry.profile)
    return apply_overrides(config, {**dict(entry.overrides), "name": name})
