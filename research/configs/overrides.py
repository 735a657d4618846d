"""Dotted-key overrides (``optimizer.num_epochs=3``) for command lines and ablation lists."""

from __future__ import annotations

import ast

import ml_collections

from research.errors import ConfigError


def parse_value(text: str):
    """A Python literal when it parses as one (numbers, tuples, booleans), else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def apply_overrides(config: ml_collections.ConfigDict, overrides) -> ml_collections.ConfigDict:
    """Apply ``KEY=VALUE`` strings or a ``{key: value}`` mapping; unknown keys are an error."""
    config = ml_collections.ConfigDict(config.to_dict())
    items = overrides.items() if isinstance(overrides, dict) else (
        tuple(item.split("=", 1)) if "=" in item else (item, None) for item in overrides)
    for key, value in items:
        if value is None:
            raise ConfigError(f"override {key!r} must look like KEY=VALUE (e.g. optimizer.num_epochs=3)")
        node, *path = key.split(".")[::-1]
        target = config
        for part in [*reversed(path), node]:
            if not isinstance(target, ml_collections.ConfigDict) or part not in target:
                known = ", ".join(sorted(target)) if isinstance(target, ml_collections.ConfigDict) else "none"
                raise ConfigError(f"unknown config key {key!r}: {part!r} is not one of {known}")
            if part != node:
                target = target[part]
        try:
            target[node] = parse_value(value) if isinstance(value, str) else value
        except TypeError as error:
            raise ConfigError(f"override {key}={value!r}: {error}") from error
    return config
