"""One module per experiment; each has ``get_config(profile) -> ml_collections.ConfigDict``.

``experiments.py`` is the registry of runs built from them (name -> config, profile, overrides).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from research.errors import ConfigError

if TYPE_CHECKING:  # ml_collections is imported by the configs themselves; make reads experiments.py
    import ml_collections

PROFILES = ("smoke", "cpu", "gpu")


def load_config(name: str, profile: str = "cpu") -> ml_collections.ConfigDict:
    """Import ``research.configs.<name>`` and call its ``get_config(profile)``."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; profiles: {', '.join(PROFILES)}")
    try:
        module = importlib.import_module(f"research.configs.{name}")
    except ModuleNotFoundError as error:
        if error.name != f"research.configs.{name}":
            raise
        raise ConfigError(f"no experiment config named {name!r} (research/configs/{name}.py); configs: "
                          f"{', '.join(experiment_configs())}") from error
    return module.get_config(profile)


def experiment_configs() -> list[str]:
    """Names of the config modules that define ``get_config``."""
    folder = Path(__file__).parent
    return sorted(p.stem for p in folder.glob("[!_]*.py") if "def get_config(profile" in p.read_text())


def load_run_config(name: str, profile: str | None = None) -> ml_collections.ConfigDict:
    """The config of registered run ``name`` (research/configs/experiments.py): its config module at
    its profile (or ``profile``, e.g. smoke), with its overrides and its name."""
    from research.configs.experiments import run
    from research.configs.overrides import apply_overrides

    entry = run(name)
    config = load_config(entry.config, profile or entry.profile)
    config = apply_overrides(config, {**dict(entry.overrides), "name": name})
    if entry.init_from:
        config.model.init_from = entry.init_from
    if entry.distill_from:
        import ml_collections

        config.distill = ml_collections.ConfigDict({"teachers": list(entry.distill_from),
                                                    "alpha": float(entry.distill_alpha)})
    return config
