"""Refuse a profile the machine cannot run: the gpu profile is hours of work on a CPU."""

from __future__ import annotations

import jax

from research.errors import UserError


def check_profile_device(profile: str) -> None:
    """Raise a UserError naming what to install when ``profile`` is gpu and JAX sees no GPU."""
    if profile == "gpu" and jax.default_backend() == "cpu":
        raise UserError(
            f"the gpu profile needs a GPU, but JAX {jax.__version__} sees only the CPU: on a machine with "
            "an NVIDIA GPU install JAX with CUDA (make venv GPU=1, from requirements-gpu.lock), or train "
            "the cpu profile (--profile cpu)")
