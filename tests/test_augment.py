"""On-device augmentation (research.training.augment): the robust augmentations at probability 0
leave training exactly as it was; at probability 1 each keeps shapes, is deterministic per key and
does what its name says; and the train step runs with them on."""

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pandas as pd
import pytest

from research.configs import load_config
from research.configs.overrides import apply_overrides
from research.models.factory import create_model
from research.models.preprocessing import MEAN, STD, normalize
from research.training import augment as aug_module
from research.training.augment import ROBUST, augment
from research.training.bench import synthetic_batch
from research.training.loop import check_resumable, training_config
from research.training.state import create_train_state
from research.training.steps import train_step

OFF = {"augment.flip": False, "augment.max_scale_delta": 0.0, "augment.max_shift": 0.0,
       "augment.brightness": 0.0, "augment.contrast": 0.0}


def previous_augment(key, images, aug):
    """research.training.augment.augment as it was before the robust augmentations (frozen copy)."""

    def one(key, image):
        k_flip, k_scale, k_shift, k_bright, k_contrast = jax.random.split(key, 5)
        size = image.shape[0]
        if aug.flip:
            image = jnp.where(jax.random.bernoulli(k_flip), image[:, ::-1], image)
        if aug.max_scale_delta or aug.max_shift:
            delta = aug.max_scale_delta
            scale = 1.0 + jax.random.uniform(k_scale, (), minval=-delta, maxval=delta)
            shift = jax.random.uniform(k_shift, (2,), minval=-aug.max_shift, maxval=aug.max_shift) * size
            translation = (1.0 - scale) * size / 2.0 + shift
            image = jax.image.scale_and_translate(image, image.shape, (0, 1), jnp.array([scale, scale]),
                                                  translation, method="linear")
        if aug.brightness:
            image = image + jax.random.uniform(k_bright, (), minval=-aug.brightness, maxval=aug.brightness)
        if aug.contrast:
            factor = 1.0 + jax.random.uniform(k_contrast, (), minval=-aug.contrast, maxval=aug.contrast)
            image = (image - image.mean()) * factor + image.mean()
        return image

    if not aug.enabled:
        return images
    return jax.vmap(one)(jax.random.split(key, images.shape[0]), images)


def images(batch: int = 8, size: int = 24, seed: int = 0) -> jnp.ndarray:
    """Normalised images with structure (a smooth field plus a gradient), as the step sees them."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (batch, 4, 4, 3))
    smooth = jax.image.resize(jnp.asarray(coarse), (batch, size, size, 3), "cubic")
    ramp = jnp.linspace(-40, 40, size)[None, None, :, None]
    return normalize(jnp.clip(smooth + ramp, 0, 255).astype(jnp.uint8))


def config(**robust) -> ml_collections.ConfigDict:
    """The baseline's augmentation with the geometric and photometric jitter off and ``robust`` on."""
    c = apply_overrides(load_config("cnn_baseline", "cpu"), OFF)
    return apply_overrides(c, {f"augment.{k}": v for k, v in robust.items()}).augment


def pixels(x: jnp.ndarray) -> np.ndarray:
    return np.asarray(x) * STD + MEAN


def test_every_robust_augmentation_is_off_by_default():
    for name in ("cnn_baseline", "resnet50_multitask", "mobilenet_v2_multitask", "dlib_resnet_multitask"):
        for profile in ("smoke", "cpu", "gpu"):
            aug = load_config(name, profile).augment
            assert all(aug[key] == 0.0 for key in ROBUST) and not aug_module.robust_enabled(aug)


def test_at_probability_zero_augment_is_the_previous_function():
    aug = load_config("cnn_baseline", "cpu").augment  # flips, zoom, shifts, jitter: all on
    x, key = images(16), jax.random.key(7)
    expected = np.asarray(jax.jit(functools.partial(previous_augment, aug=aug))(key, x))
    np.testing.assert_array_equal(np.asarray(jax.jit(functools.partial(augment, aug=aug))(key, x)), expected)
    # A config written before the keys existed (an old config.json) augments the same way too.
    old = ml_collections.ConfigDict({k: v for k, v in aug.to_dict().items() if k not in ROBUST})
    np.testing.assert_array_equal(np.asarray(augment(key, x, old)), np.asarray(previous_augment(key, x, old)))
    assert not np.array_equal(expected, np.asarray(x))  # the comparison is not of two identities


def test_everything_off_is_the_identity_and_one_on_is_not():
    x, key = images(), jax.random.key(0)
    np.testing.assert_array_equal(np.asarray(augment(key, x, config())), np.asarray(x))
    assert not np.allclose(np.asarray(augment(key, x, config(noise=1.0))), np.asarray(x))


@pytest.mark.parametrize("name", list(ROBUST))
def test_each_keeps_shapes_and_is_deterministic_per_key(name):
    x = images(size=20)  # not a multiple of 8: the JPEG blocks are padded
    aug = config(**{name: 1.0})
    out = augment(jax.random.key(3), x, aug)
    assert out.shape == x.shape and out.dtype == x.dtype and np.isfinite(np.asarray(out)).all()
    np.testing.assert_array_equal(np.asarray(out), np.asarray(augment(jax.random.key(3), x, aug)))
    assert np.abs(np.asarray(out) - np.asarray(x)).mean() > 1e-3
    if name != "grayscale":  # the only one without a random strength
        assert not np.array_equal(np.asarray(out), np.asarray(augment(jax.random.key(4), x, aug)))


def test_a_probability_applies_to_about_that_share_of_images():
    x = images(batch=200, size=16)
    out = augment(jax.random.key(1), x, config(grayscale=0.3))
    changed = np.abs(np.asarray(out) - np.asarray(x)).reshape(200, -1).max(axis=1) > 1e-6
    assert 0.2 < changed.mean() < 0.4


def test_grayscale_sets_every_channel_to_the_luma():
    x = images()
    out = pixels(augment(jax.random.key(0), x, config(grayscale=1.0)))
    np.testing.assert_allclose(out[..., 0], out[..., 2], atol=1e-5)
    np.testing.assert_allclose(out[..., 1], pixels(x) @ aug_module.LUMA, atol=1e-5)


def high_frequency_energy(x: np.ndarray) -> float:
    """Energy of horizontal and vertical differences between neighbouring pixels."""
    return float((np.diff(x, axis=1) ** 2).sum() + (np.diff(x, axis=2) ** 2).sum())


def test_low_resolution_and_blur_remove_high_frequencies_and_keep_flat_images():
    x = images(size=32) + 0.2 * jax.random.normal(jax.random.key(9), (8, 32, 32, 3))
    for name in ("low_resolution", "blur"):
        out = np.asarray(augment(jax.random.key(2), x, config(**{name: 1.0})))
        assert high_frequency_energy(out) < 0.5 * high_frequency_energy(np.asarray(x)), name
        flat = jnp.full((2, 32, 32, 3), 0.3)
        np.testing.assert_allclose(np.asarray(augment(jax.random.key(2), flat, config(**{name: 1.0}))), 0.3,
                                   atol=1e-5)


def test_the_low_resolution_matrix_keeps_a_full_size_image_and_caps_the_detail():
    full = np.asarray(aug_module._resample_matrix(16, jnp.float32(16)))
    np.testing.assert_allclose(full, np.eye(16), atol=1e-6)
    matrix = np.asarray(aug_module._resample_matrix(32, jnp.float32(10)))
    assert np.linalg.matrix_rank(matrix, tol=1e-4) == 10  # at most 10 px of detail survive
    np.testing.assert_allclose(matrix.sum(axis=1), 1, atol=1e-5)  # a flat image stays flat


def test_jpeg_quantises_block_dct_coefficients():
    d = aug_module._dct_matrix()
    np.testing.assert_allclose(d @ d.T, np.eye(8), atol=1e-6)
    p = pixels(images(size=24))[0]
    aug = config(jpeg=1.0, jpeg_quality=(20, 20))
    once = np.asarray(aug_module.jpeg(jax.random.key(0), jnp.asarray(p), aug))
    twice = np.asarray(aug_module.jpeg(jax.random.key(0), jnp.asarray(once), aug))
    assert np.abs(once - p).mean() > 1e-3
    np.testing.assert_allclose(twice, once, atol=2e-3)  # quantised coefficients stay where they are
    steps = np.asarray(aug_module.jpeg_quantisation_tables(jnp.float32(50)))
    np.testing.assert_array_equal(steps[0], aug_module.JPEG_LUMA)  # quality 50: the standard's table
    assert (np.asarray(aug_module.jpeg_quantisation_tables(jnp.float32(10))) >= steps).all()


def test_the_train_step_runs_with_every_robust_augmentation_on():
    c = load_config("cnn_baseline", "smoke")
    c = apply_overrides(c, {"image_size": 16, **{f"augment.{name}": 0.5 for name in ROBUST}})
    state = create_train_state(create_model(c.model), c, jax.random.key(0), steps_per_epoch=10)
    step = jax.jit(functools.partial(train_step, config=c, axis_name=None))
    _, metrics = step(state, synthetic_batch(8, 16, seed=0), jax.random.key(1))
    assert np.isfinite(float(metrics["loss"]))


def test_a_checkpoint_from_before_the_robust_keys_resumes_only_with_them_off(tmp_path):
    config = load_config("cnn_baseline", "smoke")
    saved = json.loads(json.dumps(training_config(config)))
    saved["augment"] = {k: v for k, v in saved["augment"].items() if not aug_module.robust_key(k)}
    assert set(saved["augment"]) == {"enabled", "flip", "max_scale_delta", "max_shift", "brightness",
                                     "contrast"}
    check_resumable({"config": saved}, config, tmp_path)  # off: it trains as the checkpoint's run did
    with pytest.raises(ValueError, match="augment"):
        check_resumable({"config": saved}, apply_overrides(config, {"augment.blur": 0.2}), tmp_path)
    with pytest.raises(ValueError, match="augment"):  # a strength changed on a checkpoint that has the keys
        made = json.loads(json.dumps(training_config(apply_overrides(config, {"augment.blur": 0.2}))))
        check_resumable({"config": made}, apply_overrides(config, {"augment.blur": 0.3}), tmp_path)


def test_the_throughput_script_writes_both_variants(tmp_path):
    out = tmp_path / "augment_throughput.csv"
    command = [sys.executable, "scripts/bench_augment.py", "--profile", "smoke", "--steps", "1",
               "--warmup-steps", "0", "--repeats", "1", "--out", str(out)]
    done = subprocess.run(command, cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True,
                          timeout=1200, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert done.returncode == 0, done.stderr[-2000:]
    table = pd.read_csv(out)
    assert list(table["variant"]) == ["without", "with"] and table["relative_to_first"].iloc[0] == 1
    assert (table["images_per_s"] > 0).all() and "augment.jpeg=0.15" in table["overrides"].iloc[1]
    assert out.with_suffix(".json").is_file()
