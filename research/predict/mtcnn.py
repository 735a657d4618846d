"""MTCNN face detection (Zhang et al., 2016) in JAX, with the weights the ``mtcnn`` PyPI package ships.

The three cascaded networks: P-Net scans an image pyramid fully convolutionally for 12 px face
candidates, R-Net rescores and refines each candidate at 24 px, O-Net at 48 px (with five
landmarks). Being small convolutional networks over a pyramid that starts at 12 / ``min_face``
of the image, the cascade costs far less on a photo than dlib's HOG scan of a 2x upscaled copy,
and finds faces down to ``min_face`` px.

Weights: ``mtcnn/data/mtcnn_weights.npy`` in the ``mtcnn`` 0.1.1 wheel (MIT; the original
authors' Caffe models, trained on WIDER FACE and CelebA, as converted by davidsandberg/facenet,
MIT). The file is a pickled dict of numpy arrays; it is read with an unpickler that accepts numpy
arrays and nothing else, after its sha256 is checked. The package itself (which imports
Keras and OpenCV) is never imported. The networks were converted with image rows and
columns swapped, so every input is transposed before it enters them, as the package does.

Boxes follow the reference implementation (the package's, after the authors' MATLAB code): they
are 1-based through the cascade, so a box's crop starts at pixel (x1 - 1, y1 - 1), and ``detect``
returns them as the package does (its left and top as given, landmarks 0-based).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.metadata
import io
import math
import pickle
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from research.models.layers import im2col_conv, native_conv, resolve_impl

PACKAGE = "mtcnn"
PACKAGE_VERSION = "0.1.1"
WEIGHTS_FILE = "mtcnn/data/mtcnn_weights.npy"
WEIGHTS_SHA256 = "9e04e975abf93c7173e956df4b496d6da269e08b9e87f2daec963ee1176576b0"
LICENCE = "MIT (mtcnn 0.1.1 by Iván de Paz Centeno; weights via davidsandberg/facenet, MIT)"
TRAINED_ON = "WIDER FACE and CelebA (the MTCNN authors' models; no UTKFace)"

# The cascade's fixed geometry (the networks' input sizes and P-Net's output stride).
PNET_CELL, PNET_STRIDE, RNET_SIZE, ONET_SIZE = 12, 2, 24, 48
# P-Net's inputs (one per pyramid level) are padded to multiples of PAD_STEP px: a new photo size
# compiles its levels' shapes once (jax's persistent cache keeps them for later start-ups). Cutting
# the levels into fixed tiles instead, so that every size ran the same few shapes, gave identical
# detections at twice P-Net's time here (the tiles' overlap and padding), so it was not kept.
PAD_STEP = 32
# Batch sizes R-Net's and O-Net's crops are padded to (larger batches run in chunks of the
# largest), all compiled at start-up (``precompile``).
BUCKETS = {"rnet": (16, 32, 64, 128, 256), "onet": (4, 8, 16, 32, 64)}


def weights_path() -> Path:
    """The weights file inside the installed ``mtcnn`` distribution (located without importing it)."""
    install = f"pip install --no-deps {PACKAGE}=={PACKAGE_VERSION}"
    try:
        dist = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError as error:
        raise FileNotFoundError(f"MTCNN's weights come from the '{PACKAGE}' package, which is not "
                                f"installed: {install} (its Keras and OpenCV dependencies are not "
                                "needed)") from error
    path = Path(dist.locate_file(WEIGHTS_FILE))
    if not path.is_file():
        reinstall = install.replace("install", "install --force-reinstall", 1)
        raise FileNotFoundError(f"{WEIGHTS_FILE} is missing from the installed '{PACKAGE}' package; "
                                f"reinstall it ({reinstall})")
    return path


class _ArraysOnly(pickle.Unpickler):
    """Unpickles numpy arrays, lists and dicts; refuses any other class (no code runs). The file's
    protocol-2 pickle spells array bytes as ``_codecs.encode(text, "latin1")``."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{WEIGHTS_FILE} holds {module}.{name}, not only arrays: "
                                         "refusing it")
        if (module, name) == ("_codecs", "encode"):
            return _latin1_only
        module = "numpy._core.multiarray" if module == "numpy.core.multiarray" else module
        return getattr(importlib.import_module(module), name)


def _latin1_only(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` for the latin-1 text the file spells array bytes in; no other codec."""
    if encoding != "latin1":
        raise pickle.UnpicklingError(f"{WEIGHTS_FILE} asks for the {encoding!r} codec: refusing it")
    return text.encode("latin1")


def load_weights(path: Path | None = None,
                 sha256: str | None = WEIGHTS_SHA256) -> dict[str, list[np.ndarray]]:
    """{"pnet" | "rnet" | "onet": [arrays in layer order]} from the package's file, checksum checked."""
    path = Path(path) if path else weights_path()
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if sha256 and digest != sha256:
        raise ValueError(f"{path} has sha256 {digest}, expected {sha256}: not the file of "
                         f"{PACKAGE} {PACKAGE_VERSION}; reinstall that version")
    stream = io.BytesIO(data)
    major, _ = np.lib.format.read_magic(stream)
    header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
    _, _, dtype = header(stream)  # an object array of shape (): a pickled dict follows
    if dtype != np.dtype(object):
        raise ValueError(f"{path} holds a {dtype} array, not the pickled dict of {PACKAGE} "
                         f"{PACKAGE_VERSION}: reinstall it (pip install --no-deps --force-reinstall "
                         f"{PACKAGE}=={PACKAGE_VERSION})")
    loaded = _ArraysOnly(stream, encoding="latin1").load()
    item = loaded.item() if isinstance(loaded, np.ndarray) else loaded
    return {net: [np.asarray(a, np.float32) for a in item[net]] for net in ("pnet", "rnet", "onet")}


# ---- the networks (NHWC float32, jitted; inputs padded to a few shapes) -------------------------

def _conv(x, w, b):
    """A stride-1 'valid' convolution of R-Net and O-Net: im2col on CPU (faster there on their batches
    of crops), XLA's elsewhere."""
    conv = im2col_conv if resolve_impl("auto") == "im2col" else native_conv
    return conv(x, w, (1, 1), "VALID") + b


def _pnet_conv(x, w, b):
    """P-Net's convolutions: XLA's own everywhere. On one large image of 3 to 32 channels, im2col's
    patch matrices cost more than they save: measured here on the levels of a 640x480 photo, XLA's
    convolution took P-Net's first level from 6.3 to 3.8 ms (the pyramid from 14.4 to 10.9 ms)."""
    return native_conv(x, w, (1, 1), "VALID") + b


def _prelu(x, alpha):
    return jnp.where(x > 0, x, x * alpha.reshape(-1))


def _max_pool(x, size: int, stride: int, same: bool):
    """Max pooling, TensorFlow's 'same' (padded at the end first) or 'valid', as the networks were trained."""
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, size, size, 1), (1, stride, stride, 1),
                                 "SAME" if same else "VALID")


@jax.jit
def pnet(w: list, x, valid=None):
    """(face probability N x H' x W', box offsets N x H' x W' x 4) for transposed images. ``valid``:
    (rows, columns) of ``x`` that are image, not padding: the first pooling then pads past them
    with -inf, as TensorFlow's 'same' pooling did on the unpadded image."""
    x = _prelu(_pnet_conv(x, w[0], w[1]), w[2])
    if valid is not None:
        rows = jnp.arange(x.shape[1])[:, None] < valid[0] - 2  # a 3x3 'valid' convolution's outputs
        cols = jnp.arange(x.shape[2])[None, :] < valid[1] - 2
        x = jnp.where((rows & cols)[None, :, :, None], x, -jnp.inf)
    x = _max_pool(x, 2, 2, same=True)
    x = _prelu(_pnet_conv(x, w[3], w[4]), w[5])
    x = _prelu(_pnet_conv(x, w[6], w[7]), w[8])
    return jax.nn.softmax(_pnet_conv(x, w[9], w[10]))[..., 1], _pnet_conv(x, w[11], w[12])


@jax.jit
def rnet(w: list, x):
    """(face probability N, box offsets N x 4) for transposed 24 px crops."""
    x = _max_pool(_prelu(_conv(x, w[0], w[1]), w[2]), 3, 2, same=True)
    x = _max_pool(_prelu(_conv(x, w[3], w[4]), w[5]), 3, 2, same=False)
    x = _prelu(_conv(x, w[6], w[7]), w[8]).reshape(len(x), -1)
    x = _prelu(x @ w[9] + w[10], w[11])
    return jax.nn.softmax(x @ w[12] + w[13])[:, 1], x @ w[14] + w[15]


@jax.jit
def onet(w: list, x):
    """(face probability N, box offsets N x 4, landmarks N x 10: five x then five y) for 48 px crops."""
    x = _max_pool(_prelu(_conv(x, w[0], w[1]), w[2]), 3, 2, same=True)
    x = _max_pool(_prelu(_conv(x, w[3], w[4]), w[5]), 3, 2, same=False)
    x = _max_pool(_prelu(_conv(x, w[6], w[7]), w[8]), 2, 2, same=True)
    x = _prelu(_conv(x, w[9], w[10]), w[11]).reshape(len(x), -1)
    x = _prelu(x @ w[12] + w[13], w[14])
    return jax.nn.softmax(x @ w[15] + w[16])[:, 1], x @ w[17] + w[18], x @ w[19] + w[20]


def pnet_output_size(n: int) -> int:
    """P-Net's output cells along an input side of ``n`` px (3x3 conv, 2x2 pool 'same', two 3x3 convs)."""
    return math.ceil((n - 2) / 2) - 4


def _padded(n: int, step: int) -> int:
    return step * math.ceil(n / step)


def _batched(net, weights: list, inputs: np.ndarray, buckets: tuple[int, ...]) -> list[np.ndarray]:
    """``net`` over ``inputs`` in chunks of the largest bucket, each padded to the smallest bucket
    that holds it (few shapes, so few compiles); every chunk is dispatched before any is waited for."""
    pending = []
    for start in range(0, len(inputs), buckets[-1]):
        chunk = inputs[start:start + buckets[-1]]
        size = next(b for b in buckets if b >= len(chunk))
        padded = np.zeros((size, *chunk.shape[1:]), np.float32)
        padded[:len(chunk)] = chunk
        pending.append((net(weights, padded), len(chunk)))
    outs = [[np.asarray(o)[:rows] for o in outputs] for outputs, rows in pending]
    return [np.concatenate(parts) for parts in zip(*outs, strict=True)]


# ---- the cascade --------------------------------------------------------------------------------

def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, by_min: bool = False,
        max_matrix: int = 1500) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression (overlap over the union, or over the smaller box).

    Up to ``max_matrix`` boxes, every pair's overlap is computed at once and the greedy pass only reads
    it (the same overlaps, so the same boxes kept; about 3x faster on P-Net's candidates); beyond that,
    box by box, in memory linear in the count."""
    if len(boxes) > max_matrix:
        return _nms_loop(boxes, scores, threshold, by_min)
    order = np.argsort(scores)[::-1]
    x1, y1, x2, y2 = boxes[order].T
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    w = np.maximum(0.0, np.minimum(x2[:, None], x2[None]) - np.maximum(x1[:, None], x1[None]) + 1)
    h = np.maximum(0.0, np.minimum(y2[:, None], y2[None]) - np.maximum(y1[:, None], y1[None]) + 1)
    inter = w * h
    base = np.minimum(area[:, None], area[None]) if by_min else area[:, None] + area[None] - inter
    suppressed, keep = inter / base > threshold, []
    alive = np.ones(len(order), bool)
    for i in range(len(order)):
        if alive[i]:
            keep.append(i)
            alive &= ~suppressed[i]
    return order[np.asarray(keep, dtype=np.int64)]


def _nms_loop(boxes: np.ndarray, scores: np.ndarray, threshold: float, by_min: bool) -> np.ndarray:
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order, keep = np.argsort(scores)[::-1], []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        overlap = inter / (np.minimum(area[i], area[rest]) if by_min else area[i] + area[rest] - inter)
        order = rest[overlap <= threshold]
    return np.asarray(keep, dtype=np.int64)


def _square(boxes: np.ndarray) -> np.ndarray:
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    x1, y1 = boxes[:, 0] + (w - side) / 2, boxes[:, 1] + (h - side) / 2
    return np.stack([x1, y1, x1 + side, y1 + side], axis=1)


def _regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
    h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
    return boxes + offsets * np.concatenate([w, h, w, h], axis=1)


def _normalise(pixels: np.ndarray) -> np.ndarray:
    return (pixels.astype(np.float32) - 127.5) * 0.0078125


def _crops(image: np.ndarray | Image.Image, boxes: np.ndarray, size: int) -> np.ndarray:
    """Each 1-based integer box (x1, y1, x2, y2: pixels x1 - 1 to x2 - 1) cut from ``image`` (zeros
    outside it: PIL's crop fills there with black), resized to size x size, transposed."""
    source = image if isinstance(image, Image.Image) else Image.fromarray(image)
    out = np.zeros((len(boxes), size, size, 3), np.float32)
    for k, (x1, y1, x2, y2) in enumerate(boxes.astype(np.int64) - 1):
        w, h = x2 - x1 + 1, y2 - y1 + 1
        if w <= 0 or h <= 0:
            continue
        resample = Image.Resampling.BOX if min(w, h) >= size else Image.Resampling.BILINEAR
        patch = source.crop((int(x1), int(y1), int(x2) + 1, int(y2) + 1))
        out[k] = np.asarray(patch.resize((size, size), resample), np.float32)
    return _normalise(out).transpose(0, 2, 1, 3)


@dataclasses.dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]  # left, top, right, bottom (pixels of the image)
    score: float  # O-Net's face probability
    landmarks: tuple[tuple[float, float], ...]  # left eye, right eye, nose, mouth left, mouth right


class MTCNN:
    """The cascade with loaded weights: ``detect(rgb_uint8)`` -> [Detection], best first.

    ``min_face`` (px) sets the pyramid's first level (12 / min_face of the image); ``max_pixels``
    caps that level's size, so that a large photo is searched from a larger smallest face
    (``smallest_face``) instead of costing more than a 640x480 one at a small ``min_face``.
    """

    def precompile(self, photo_sizes: tuple[tuple[int, int], ...] = ()) -> None:
        """Compile R-Net and O-Net at every batch bucket now, and P-Net for the pyramid levels of
        each (width, height) in ``photo_sizes``, so that those photos pay no compile."""
        for net, fn, side in (("rnet", rnet, RNET_SIZE), ("onet", onet, ONET_SIZE)):
            for size in BUCKETS[net]:
                jax.block_until_ready(fn(self.weights[net], np.zeros((size, side, side, 3), np.float32)))
        for width, height in photo_sizes:
            for shape in self.level_shapes(height, width):
                jax.block_until_ready(pnet(self.weights["pnet"], np.zeros((1, *shape, 3), np.float32),
                                          np.asarray(shape, np.int32)))

    def compiled_shapes(self) -> int:
        """How many input shapes the three networks have compiled (jit's caches; a test checks start-up)."""
        return sum(fn._cache_size() for fn in (pnet, rnet, onet))

    def level_shapes(self, height: int, width: int) -> list[tuple[int, int]]:
        """P-Net's padded (transposed) input shapes for a ``width`` x ``height`` photo."""
        return [(_padded(math.ceil(width * s), PAD_STEP), _padded(math.ceil(height * s), PAD_STEP))
                for s in self.scales(height, width)]

    def __init__(self, min_face: float = 36, thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
                 factor: float = 0.709, max_pixels: int = 250_000, weights: dict | None = None):
        if min_face < PNET_CELL:
            raise ValueError(f"min_face must be at least P-Net's {PNET_CELL} px cell, got {min_face}")
        self.min_face, self.thresholds, self.factor = float(min_face), tuple(thresholds), factor
        self.max_pixels = int(max_pixels)
        weights = weights or load_weights()
        self.weights = {net: [jnp.asarray(a) for a in arrays] for net, arrays in weights.items()}

    def first_scale(self, height: int, width: int) -> float:
        return min(PNET_CELL / self.min_face, math.sqrt(self.max_pixels / max(1, height * width)))

    def smallest_face(self, height: int, width: int) -> float:
        """Smallest face width (px) the pyramid of a ``width`` x ``height`` image reaches."""
        return PNET_CELL / self.first_scale(height, width)

    def scales(self, height: int, width: int) -> list[float]:
        """P-Net's pyramid: ``first_scale``, then smaller by ``factor`` while the image spans a cell."""
        scale, out = self.first_scale(height, width), []
        while min(height, width) * scale >= PNET_CELL:
            out.append(scale)
            scale *= self.factor
        return out

    def _stage1(self, source: Image.Image) -> np.ndarray:
        width, height = source.size
        found, pending = [], []
        # Every level is resized from the photo itself, as the reference does. (Resizing the later
        # levels from the first was tried: 3.5 ms slower per 640x480 photo in all, its boxes moved by
        # 1-3 px, so it was not kept.)
        for scale, shape in zip(self.scales(height, width), self.level_shapes(height, width), strict=True):
            size = (math.ceil(width * scale), math.ceil(height * scale))
            scaled = _normalise(np.asarray(source.resize(size, Image.Resampling.BOX)))
            x = np.zeros((1, *shape, 3), np.float32)  # transposed, as trained; zero-padded (grey)
            x[0, :size[0], :size[1]] = scaled.transpose(1, 0, 2)
            valid = np.asarray(size, np.int32)  # transposed: (columns, rows) of the image
            pending.append((scale, size, pnet(self.weights["pnet"], x, valid)))  # all levels dispatched first
        for scale, size, (prob, offsets) in pending:
            cols, rows_ = pnet_output_size(size[0]), pnet_output_size(size[1])  # cells inside the image
            prob = np.asarray(prob)[0, :cols, :rows_].T  # back to rows x columns
            offsets = np.asarray(offsets)[0, :cols, :rows_].transpose(1, 0, 2)
            ys, xs = np.nonzero(prob >= self.thresholds[0])
            if not len(ys):
                continue
            cells = np.stack([xs, ys], axis=1).astype(np.float32)
            boxes = np.concatenate([np.fix((PNET_STRIDE * cells + 1) / scale),
                                    np.fix((PNET_STRIDE * cells + PNET_CELL) / scale)], axis=1)
            rows = np.concatenate([boxes, prob[ys, xs, None], offsets[ys, xs]], axis=1)
            found.append(rows[nms(rows[:, :4], rows[:, 4], 0.5)])
        if not found:
            return np.zeros((0, 5), np.float32)
        rows = np.concatenate(found)
        rows = rows[nms(rows[:, :4], rows[:, 4], 0.7)]
        w = (rows[:, 2] - rows[:, 0])[:, None]
        h = (rows[:, 3] - rows[:, 1])[:, None]
        boxes = rows[:, :4] + rows[:, 5:9] * np.concatenate([w, h, w, h], axis=1)
        return np.concatenate([np.fix(_square(boxes)), rows[:, 4:5]], axis=1)

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in an RGB uint8 array (H x W x 3), highest O-Net probability first."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"MTCNN needs an RGB uint8 array (H x W x 3), got {image.dtype} {image.shape}: "
                             "convert first, e.g. np.asarray(Image.open(path).convert('RGB'))")
        source = Image.fromarray(image)
        rows = self._stage1(source)
        if len(rows):
            prob, offsets = _batched(rnet, self.weights["rnet"], _crops(source, rows[:, :4], RNET_SIZE),
                                     BUCKETS["rnet"])
            keep = prob > self.thresholds[1]
            rows, offsets = np.concatenate([rows[keep, :4], prob[keep, None]], axis=1), offsets[keep]
            picked = nms(rows[:, :4], rows[:, 4], 0.7)
            rows, offsets = rows[picked], offsets[picked]
            rows = np.concatenate([np.fix(_square(_regress(rows[:, :4], offsets))), rows[:, 4:5]], axis=1)
        if not len(rows):
            return []
        prob, offsets, points = _batched(onet, self.weights["onet"], _crops(source, rows[:, :4], ONET_SIZE),
                                         BUCKETS["onet"])
        keep = prob > self.thresholds[2]
        boxes, prob, offsets, points = rows[keep, :4], prob[keep], offsets[keep], points[keep]
        w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        xs, ys = boxes[:, 0:1] + w * points[:, :5] - 1, boxes[:, 1:2] + h * points[:, 5:] - 1
        boxes = _regress(boxes, offsets)
        picked = nms(boxes, prob, 0.7, by_min=True)
        return [Detection(tuple(float(v) for v in boxes[i]), float(prob[i]),
                          tuple(zip(xs[i].tolist(), ys[i].tolist(), strict=True))) for i in picked]
