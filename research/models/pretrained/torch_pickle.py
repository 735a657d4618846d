"""Read a legacy (pre-zip) ``torch.save`` file of float/long tensors with numpy alone.

The legacy format is four pickles (magic number, protocol version, system info, the object
with storages as persistent ids), the list of storage keys, then each storage's raw bytes
preceded by an int64 element count. Only the classes a state dict needs are unpickled.
"""

from __future__ import annotations

import io
import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np

MAGIC = 0x1950A86A20F9469CFC6C
STORAGE_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
                  "LongStorage": np.int64, "IntStorage": np.int32, "ByteStorage": np.uint8}


class _StorageType:
    def __init__(self, name: str):
        if name not in STORAGE_DTYPES:
            raise pickle.UnpicklingError(f"unsupported torch storage type {name}")
        self.dtype = np.dtype(STORAGE_DTYPES[name])


class _Tensor:
    """A view (offset, shape, strides in elements) on a storage, resolved once storages are read."""

    def __init__(self, storage_key: str, offset: int, shape: tuple, stride: tuple):
        self.storage_key, self.offset, self.shape, self.stride = storage_key, offset, shape, stride


def _rebuild_tensor_v2(storage, offset, shape, stride, *_ignored):
    return _Tensor(storage, offset, tuple(shape), tuple(stride))


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, storages: dict):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str):
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch" and name.endswith("Storage"):
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")

    def persistent_load(self, pid):
        kind, storage_type, key, _location, size = pid[:5]
        if kind != "storage":
            raise pickle.UnpicklingError(f"unexpected persistent id {kind!r}")
        self.storages.setdefault(key, (storage_type.dtype, size))
        return key


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """``{name: array}`` from a legacy torch state-dict file (torch is not needed)."""
    with open(path, "rb") as f:
        data = f.read()
    stream = io.BytesIO(data)
    if data[:2] == b"PK":
        raise ValueError(f"{path} is a zip-format torch file; this reader handles the legacy format only")
    storages: dict = {}
    if _Unpickler(stream, storages).load() != MAGIC:
        raise ValueError(f"{path} is not a legacy torch file (bad magic number)")
    _Unpickler(stream, storages).load()  # protocol version
    _Unpickler(stream, storages).load()  # system info (byte order, sizes)
    state = _Unpickler(stream, storages).load()
    keys = _Unpickler(stream, storages).load()
    buffers = {}
    for key in keys:
        dtype, size = storages[key]
        count = int(np.frombuffer(stream.read(8), "<i8")[0])
        if count != size:
            raise ValueError(f"storage {key}: {count} elements on disk, {size} in the pickle")
        buffers[key] = np.frombuffer(stream.read(count * dtype.itemsize), dtype.newbyteorder("<"))
    return {name: _materialise(t, buffers) for name, t in state.items()}


def _materialise(t: _Tensor, buffers: dict) -> np.ndarray:
    buf = buffers[t.storage_key]
    strides = tuple(s * buf.itemsize for s in t.stride)
    view = np.lib.stride_tricks.as_strided(buf[t.offset:], shape=t.shape, strides=strides)
    return np.array(view)
