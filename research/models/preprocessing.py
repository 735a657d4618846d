"""Input normalisation shared by training, evaluation and prediction.

Every model takes images normalised by ``normalize`` (the house statistics below), which is
also the space the augmentation's brightness and contrast work in. A pretrained backbone
expects its own statistics: its model maps the house-normalised input to them with
``renormalize`` (an affine map that XLA folds into the first convolution), so the training
steps and inference stay the same for every model.
"""

import jax.numpy as jnp
import numpy as np

# Fixed statistics that map uint8 pixels to roughly zero mean and unit variance (numpy: no JAX
# array is made at import, so a multi-process run can initialise jax.distributed first).
MEAN = np.array([0.5, 0.5, 0.5], np.float32)
STD = np.array([0.25, 0.25, 0.25], np.float32)

# (mean, std) of pixels in [0, 1] that each network was trained with.
NORMALIZATIONS = {
    "house": ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)),
    # torchvision's ImageNet preprocessing
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    # dlib's input_rgb_image: (pixel - mean RGB) / 256 on 0..255 pixels
    "dlib": ((122.782 / 255, 117.001 / 255, 104.298 / 255), (256 / 255,) * 3),
}


def normalize(images: jnp.ndarray) -> jnp.ndarray:
    """uint8 NHWC -> float32, roughly zero mean and unit variance."""
    return (images.astype(jnp.float32) / 255.0 - MEAN) / STD


def renormalize(x: jnp.ndarray, to: str) -> jnp.ndarray:
    """House-normalised images -> the statistics ``to`` (a key of NORMALIZATIONS)."""
    if to not in NORMALIZATIONS:
        raise ValueError(f"input normalisation must be one of {sorted(NORMALIZATIONS)}, got {to!r}")
    if to == "house":
        return x
    mean, std = (jnp.asarray(v, jnp.float32) for v in NORMALIZATIONS[to])
    return ((x * STD + MEAN) - mean) / std
