"""Provenance recorded with every result: commit, data checksum, package versions, device."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

CODE_PATHS = ("research", "scripts", "Makefile", "pyproject.toml", "requirements.lock")
PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "pandas", "pillow",
            "imagehash", "ml-collections", "tensorflow-datasets")


def git_commit(cwd: Path | None = None) -> str:
    """Current commit hash, with '-dirty' when tracked files differ from it; 'unknown' outside git."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, check=True).stdout.strip()
        # Dirty means the code differs from the commit: changed or new files among what runs
        # (results and the README, which runs rewrite, do not count).
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *CODE_PATHS], cwd=cwd,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        # A copy of the tree without .git (e.g. on a remote accelerator) is told its commit.
        return os.environ.get("RESEARCH_GIT_COMMIT", "unknown")
    return sha + ("-dirty" if dirty else "")


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def device_info() -> dict[str, object]:
    """JAX backend, device kind and count (imports jax lazily: data stages need no jax)."""
    import jax

    devices = jax.local_devices()
    info = {"backend": jax.default_backend(), "device_kind": devices[0].device_kind,
            "num_devices": len(devices), "host": platform.node(), "cpu": platform.processor()}
    if jax.process_count() > 1:  # num_devices stays this process's count
        info.update(num_processes=jax.process_count(), global_num_devices=jax.device_count())
    return info


def provenance(data_sha256: str | None = None, with_device: bool = False) -> dict[str, object]:
    record: dict[str, object] = {
        "git_commit": git_commit(),
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "data_sha256": data_sha256,
        "packages": package_versions(),
    }
    if with_device:
        record["device"] = device_info()
    return record
