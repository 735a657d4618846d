"""One module per experiment; each has ``get_config(profile) -> ml_collections.ConfigDict``."""

import importlib

import ml_collections

PROFILES = ("smoke", "cpu", "gpu")


def load_config(name: str, profile: str = "cpu") -> ml_collections.ConfigDict:
    """Import ``research.configs.<name>`` and call its ``get_config(profile)``."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    try:
        module = importlib.import_module(f"research.configs.{name}")
    except ModuleNotFoundError as error:
        raise ValueError(f"no experiment config named {name!r} (research/configs/{name}.py)") from error
    return module.get_config(profile)
