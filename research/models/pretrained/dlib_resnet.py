"""dlib's face-recognition ResNet (dlib_face_recognition_resnet_model_v1) in Flax, and a reader
for dlib's serialisation of it.

The network is dlib's ``anet_type`` (examples/dnn_face_recognition_ex.cpp): a 7x7/2 conv, a 3x3/2
max-pool, 14 residual blocks of two 3x3 convs (32, 64, 128, 256, 256 channels; the first block
of each later stage has a stride-2 first conv and an average-pooled shortcut), global average
pooling and a 128-D linear map (the descriptor), for 150x150 chips. dlib's conventions are kept:
a stride-2 conv or pool has no padding, a stride-1 3x3 conv pads 1, convs have biases,
normalisation is a per-channel affine map (BatchNorm folded at training's end), and a residual
sum of tensors of different sizes zero-fills the smaller one (bottom/right, extra channels).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from research.models.layers import Conv, max_pool

# (channels, blocks, first block downsamples), from the input.
STAGES = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))
NUM_CONVS = 1 + 2 * sum(n for _, n, _ in STAGES)  # 29
DESCRIPTOR_SIZE = 128
CHIP_SIZE = 150
CHIP_PADDING = 0.25  # dlib.get_face_chip's default, which the network was trained on
BN_EPSILON = 1e-5
# Unpadded stride-2 convs: below 103 px the last block's 3x3/2 conv has no input left.
MIN_INPUT_SIZE = 103


def residual_sum(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
    """dlib's add_prev: the sum over the larger of each dimension, the smaller tensor zero-filled."""
    shape = [max(p, q) for p, q in zip(a.shape, b.shape, strict=True)]

    def fill(t):
        return jnp.pad(t, [(0, s - d) for s, d in zip(shape, t.shape, strict=True)])
    return fill(a) + fill(b)


def avg_pool_2x2(x: jnp.ndarray) -> jnp.ndarray:
    """2x2/2 average pooling without padding (an odd last row or column is dropped, as dlib does)."""
    n, h, w, c = x.shape
    x = x[:, : h // 2 * 2, : w // 2 * 2]
    return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


class ResidualBlock(nn.Module):
    features: int
    downsample: bool
    conv: partial
    norm: partial

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        same = [(1, 1), (1, 1)]
        if self.downsample:
            y = self.conv(self.features, (3, 3), (2, 2), "VALID", name="conv1")(x)
        else:
            y = self.conv(self.features, (3, 3), (1, 1), same, name="conv1")(x)
        y = nn.relu(self.norm(name="norm1")(y))
        y = self.norm(name="norm2")(self.conv(self.features, (3, 3), (1, 1), same, name="conv2")(y))
        return nn.relu(residual_sum(y, avg_pool_2x2(x) if self.downsample else x))


class DlibResNetTrunk(nn.Module):
    """Images normalised as dlib's input layer does -> the pooled 256-D features.

    The affine layers are BatchNorm layers whose converted statistics are mean 0, variance
    1 - epsilon (so that they compute dlib's affine map exactly); ``bn_mode='frozen'`` keeps
    them so, 'batch' (for training from scratch) normalises with batch statistics."""

    conv_impl: str = "auto"
    dtype: jnp.dtype = jnp.float32
    axis_name: str | None = None
    bn_mode: str = "frozen"
    bn_momentum: float = 0.9

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        if self.bn_mode not in ("batch", "frozen"):
            raise ValueError(f"bn_mode must be 'batch' or 'frozen', got {self.bn_mode!r}")
        if min(x.shape[1:3]) < MIN_INPUT_SIZE:
            raise ValueError(f"dlib's ResNet needs images of at least {MIN_INPUT_SIZE} px, "
                             f"got {x.shape[1:3]}")
        batch_stats = train and self.bn_mode == "batch"
        norm = partial(nn.BatchNorm, use_running_average=not batch_stats, momentum=self.bn_momentum,
                       epsilon=BN_EPSILON, dtype=self.dtype,
                       axis_name=self.axis_name if batch_stats else None)
        conv = partial(Conv, use_bias=True, impl=self.conv_impl, dtype=self.dtype)
        x = x.astype(self.dtype)
        x = nn.relu(norm(name="norm_init")(conv(32, (7, 7), (2, 2), "VALID", name="conv_init")(x)))
        x = max_pool(x, 3, 2)
        for i, (features, blocks, down) in enumerate(STAGES):
            for j in range(blocks):
                x = ResidualBlock(features, down and j == 0, conv, norm, name=f"stage{i}_block{j}")(x)
        return jnp.mean(x, axis=(1, 2))


class DlibFaceDescriptor(nn.Module):
    """The 128-D descriptor, to check the port against dlib.face_recognition_model_v1."""

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        features = DlibResNetTrunk(name="trunk")(x)
        return nn.Dense(DESCRIPTOR_SIZE, use_bias=False, name="fc")(features.astype(jnp.float32))


class _Reader:
    """dlib's serialisation: integers as a byte count (high bit: negative) then little-endian
    bytes; floats as (mantissa, exponent) integers; strings as a length then bytes; tensors as
    version, (n, k, nr, nc), then 4-byte little-endian floats."""

    def __init__(self, data: bytes, pos: int = 0):
        self.data, self.pos = data, pos

    def integer(self) -> int:
        head = self.data[self.pos]
        size, negative = head & 0x0F, bool(head & 0x80)
        value = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if negative else value

    def real(self) -> float:
        mantissa = self.integer()
        return float(mantissa) * 2.0 ** self.integer()

    def string(self) -> str:
        size = self.integer()
        self.pos += size
        return self.data[self.pos - size : self.pos].decode("ascii")

    def tensor(self) -> np.ndarray:
        if (version := self.integer()) != 2:
            raise ValueError(f"unsupported dlib tensor version {version} at byte {self.pos}")
        shape = tuple(self.integer() for _ in range(4))
        count = int(np.prod(shape))
        values = np.frombuffer(self.data, "<f4", count, self.pos).copy()
        self.pos += 4 * count
        return values.reshape(shape)


LAYER_NAMES = (b"input_rgb_image_sized", b"con_4", b"affine_", b"fc_2", b"relu_", b"max_pool_2",
               b"avg_pool_2", b"add_prev_")


def read_network(path: str | Path) -> list[dict]:
    """The layers of the file from the input on, each ``{'layer': name, ...}`` with its tensors
    (con: 'params' and its geometry; affine: 'params'; fc: 'params', 'outputs', 'inputs').

    add_layer writes its subnetwork before its own layer, so layers appear from the input on;
    each layer is found by its length-prefixed name and decoded where it starts."""
    data = Path(path).read_bytes()
    found = []
    for name in LAYER_NAMES:
        tag = bytes([1, len(name)]) + name
        start = data.find(tag)
        while start >= 0:
            found.append((start, name.decode()))
            start = data.find(tag, start + 1)
    layers = []
    for start, name in sorted(found):
        reader = _Reader(data, start + 2 + len(name))
        layer: dict = {"layer": name}
        if name == "input_rgb_image_sized":
            layer["mean_rgb"] = tuple(reader.real() for _ in range(3))
            layer["size"] = (reader.integer(), reader.integer())
        elif name == "con_4":
            layer["params"] = reader.tensor()
            layer["filters"], layer["nr"], layer["nc"] = (reader.integer() for _ in range(3))
            layer["stride"] = (reader.integer(), reader.integer())
            layer["padding"] = (reader.integer(), reader.integer())
        elif name == "affine_":
            layer["params"] = reader.tensor()
        elif name == "fc_2":
            layer["outputs"], layer["inputs"] = reader.integer(), reader.integer()
            layer["params"] = reader.tensor()
        layers.append(layer)
    return layers


def _expected_convs() -> list[tuple[int, int, tuple[int, int], tuple[int, int]]]:
    """(filters, kernel, stride, padding) of the 29 convolutions in file order."""
    out = [(32, 7, (2, 2), (0, 0))]
    for features, blocks, down in STAGES:
        for j in range(blocks):
            first = ((2, 2), (0, 0)) if down and j == 0 else ((1, 1), (1, 1))
            out += [(features, 3, *first), (features, 3, (1, 1), (1, 1))]
    return out


def _module_paths() -> list[tuple[str, str]]:
    """(conv module, norm module) of the trunk in the order of the file's conv/affine pairs."""
    out = [("conv_init", "norm_init")]
    for i, (_, blocks, _) in enumerate(STAGES):
        for j in range(blocks):
            out += [(f"stage{i}_block{j}/conv1", f"stage{i}_block{j}/norm1"),
                    (f"stage{i}_block{j}/conv2", f"stage{i}_block{j}/norm2")]
    return out


def _put(tree: dict, path: str, leaves: dict) -> None:
    for key in path.split("/"):
        tree = tree.setdefault(key, {})
    tree.update(leaves)


def convert(layers: list[dict]) -> dict[str, dict]:
    """dlib layers -> ``{'params': {'trunk', 'fc'}, 'batch_stats': {'trunk'}}``, checking that
    the file is the architecture this module builds."""
    convs = [x for x in layers if x["layer"] == "con_4"]
    affines = [x for x in layers if x["layer"] == "affine_"]
    fcs = [x for x in layers if x["layer"] == "fc_2"]
    if len(convs) != NUM_CONVS or len(affines) != NUM_CONVS or len(fcs) != 1:
        raise ValueError(f"expected {NUM_CONVS} con/affine layers and one fc, found {len(convs)}, "
                         f"{len(affines)}, {len(fcs)}: not dlib's face-recognition ResNet")
    params: dict = {}
    stats: dict = {}
    cin = 3
    for (filters, kernel, stride, padding), con, aff, (conv_path, norm_path) in zip(
            _expected_convs(), convs, affines, _module_paths(), strict=True):
        geometry = (con["filters"], con["nr"], con["stride"], con["padding"])
        if geometry != (filters, kernel, stride, padding):
            raise ValueError(f"{conv_path}: the file has (filters, size, stride, padding) {geometry}, "
                             f"the port expects {(filters, kernel, stride, padding)}")
        flat = con["params"].reshape(-1)
        weights = flat[: filters * cin * kernel * kernel].reshape(filters, cin, kernel, kernel)
        _put(params, f"trunk/{conv_path}", {"kernel": weights.transpose(2, 3, 1, 0),
                                             "bias": flat[filters * cin * kernel * kernel :]})
        gamma, beta = aff["params"].reshape(2, filters)
        _put(params, f"trunk/{norm_path}", {"scale": gamma, "bias": beta})
        # mean 0, var 1 - eps: BatchNorm in inference mode computes gamma * x + beta exactly.
        _put(stats, f"trunk/{norm_path}", {"mean": np.zeros(filters, np.float32),
                                            "var": np.full(filters, 1.0 - BN_EPSILON, np.float32)})
        cin = filters
    fc = fcs[0]
    params["fc"] = {"kernel": fc["params"].reshape(fc["inputs"], fc["outputs"])}
    return {"params": params, "batch_stats": stats}


