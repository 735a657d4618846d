"""Models: the shapes of every head, the bf16 option, the factory, and the im2col convolution
against XLA's own (outputs and gradients)."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.configs import load_config
from research.configs.overrides import apply_overrides
from research.models.cnn import CNN
from research.models.factory import create_model
from research.models.heads import NUM_AGE_BINS
from research.models.layers import (
    Conv,
    DepthwiseConv,
    im2col_conv,
    max_pool,
    native_conv,
    native_depthwise_conv,
    resolve_depthwise_impl,
    resolve_impl,
    shifted_depthwise_conv,
)
from research.models.pretrained.dlib_resnet import DlibResNetTrunk
from research.models.pretrained.mobilenet_v2 import MobileNetV2Trunk
from research.models.pretrained.multitask import BackboneMultiTask
from research.models.resnet import ResNet
from research.vocabulary import NUM_ETHNICITIES, NUM_GENDERS

BATCH, SIZE = 3, 32


def tiny_model(arch: str, age_head: str = "classification", dtype=jnp.float32, impl: str = "auto"):
    if arch == "cnn":
        return CNN(widths=(4, 8), age_head=age_head, dtype=dtype, conv_impl=impl)
    return ResNet(stage_sizes=(1, 1, 1, 1), num_filters=8, age_head=age_head, dtype=dtype,
                  conv_impl=impl, small_input_stem=arch == "resnet_small_stem")


def images(seed: int = 0, shape=(BATCH, SIZE, SIZE, 3)) -> jnp.ndarray:
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


@pytest.mark.parametrize("arch", ["cnn", "resnet", "resnet_small_stem"])
@pytest.mark.parametrize("age_head, age_shape", [("classification", (BATCH, NUM_AGE_BINS)),
                                                 ("regression", (BATCH,))])
def test_head_shapes(arch, age_head, age_shape):
    model = tiny_model(arch, age_head)
    x = images()
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))
    for train in (False, True):
        out = jax.eval_shape(lambda v, t=train: model.apply(v, x, train=t, mutable=["batch_stats"],
                                                            rngs={"dropout": jax.random.key(1)})[0],
                             variables)
        assert set(out) == {"age", "gender", "race"}
        assert out["age"].shape == age_shape
        assert out["gender"].shape == (BATCH, NUM_GENDERS)
        assert out["race"].shape == (BATCH, NUM_ETHNICITIES)
        assert all(o.dtype == jnp.float32 for o in out.values())


def test_unknown_age_head_is_an_error():
    with pytest.raises(ValueError, match="age_head"):
        jax.eval_shape(lambda: tiny_model("cnn", "ordinal").init(jax.random.key(0), images(), train=False))


@pytest.mark.parametrize("arch", ["cnn", "resnet"])
def test_bfloat16_model_runs_with_float32_params_and_close_outputs(arch):
    x = images(1, (2, 16, 16, 3))
    f32 = tiny_model(arch, impl="native")
    bf16 = tiny_model(arch, dtype=jnp.bfloat16, impl="native")
    # (an 'rbg' key: XLA compiles the threefry initialisers of a ResNet slowly on CPU)
    variables = jax.jit(lambda: f32.init(jax.random.key(0, impl="rbg"), x, train=False))()
    bf16_variables = jax.eval_shape(lambda: bf16.init(jax.random.key(0), x, train=False))
    # Same parameter tree, kept in float32 (only the computation runs in bfloat16).
    assert jax.tree_util.tree_structure(bf16_variables) == jax.tree_util.tree_structure(variables)
    assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(bf16_variables)} == {jnp.dtype(jnp.float32)}
    ref = jax.jit(lambda v: f32.apply(v, x, train=False))(variables)
    out = jax.jit(lambda v: bf16.apply(v, x, train=False))(variables)
    for name in ("age", "gender", "race"):
        assert out[name].dtype == jnp.float32
        assert np.isfinite(out[name]).all()
        scale = float(np.abs(ref[name]).max())
        np.testing.assert_allclose(out[name], ref[name], atol=0.05 * scale + 1e-3)
    assert any(not np.array_equal(out[k], ref[k]) for k in out), "bfloat16 model computed in float32"


@pytest.mark.parametrize("config_name, cls", [("cnn_baseline", CNN), ("resnet50_multitask", ResNet)])
def test_factory_builds_configured_model(config_name, cls):
    config = load_config(config_name, "smoke")
    model = create_model(config.model, axis_name="batch")
    assert isinstance(model, cls)
    assert model.axis_name == "batch" and model.dtype == jnp.float32
    assert model.age_head == config.model.age_head and model.dropout == config.model.dropout
    assert create_model(apply_overrides(config, {"model.dtype": "bfloat16"}).model).dtype == jnp.bfloat16


@pytest.mark.parametrize("key, value, message", [("model.dtype", "float16", "model.dtype"),
                                                 ("model.name", "vit", "model.name")])
def test_factory_rejects_unknown_names(key, value, message):
    config = apply_overrides(load_config("cnn_baseline", "smoke"), {key: value})
    with pytest.raises(ValueError, match=message):
        create_model(config.model)


# --- im2col convolution ------------------------------------------------------------------------

def explicit_pads(k: int) -> list[tuple[int, int]]:
    """Asymmetric explicit padding (and the ResNet stem's symmetric (3, 3) for 7x7)."""
    return [(3, 3), (3, 3)] if k == 7 else [(k // 2, k - 1 - k // 2 + 1), (1, 0)]


CONV_CASES = [(k, s, p) for k in (1, 3, 7) for s in (1, 2) for p in ("SAME", "explicit", "VALID")]


def conv_with_grads(conv, x, kernel, cotangent, strides, padding):
    y, vjp = jax.vjp(lambda a, b: conv(a, b, strides, padding), x, kernel)
    return (y, *vjp(cotangent))


@pytest.mark.parametrize("k, stride, padding", CONV_CASES)
def test_im2col_conv_matches_native_outputs_and_gradients(k, stride, padding):
    rng = np.random.default_rng(k * 10 + stride)
    x = jnp.asarray(rng.normal(size=(2, 11, 10, 3)), jnp.float32)  # odd height: SAME pads unevenly
    kernel = jnp.asarray(rng.normal(size=(k, k, 3, 4)), jnp.float32)
    pads = explicit_pads(k) if padding == "explicit" else padding
    strides = (stride, stride)
    out_shape = jax.eval_shape(lambda a, b: native_conv(a, b, strides, pads), x, kernel).shape
    cotangent = jnp.asarray(rng.normal(size=out_shape), jnp.float32)
    results = {}
    for name, conv in (("native", native_conv), ("im2col", im2col_conv)):
        fn = jax.jit(lambda a, b, c, conv=conv: conv_with_grads(conv, a, b, c, strides, pads))
        results[name] = fn(x, kernel, cotangent)
    for label, native, im2col in zip(("output", "d/dinput", "d/dkernel"), results["native"],
                                     results["im2col"], strict=True):
        assert native.shape == im2col.shape, label
        np.testing.assert_allclose(im2col, native, rtol=1e-4, atol=1e-4, err_msg=label)
    assert float(jnp.abs(results["native"][2]).max()) > 0.1  # gradients are not trivially zero


@pytest.mark.parametrize("padding", ["SAME", ((1, 2), (0, 1))])
@pytest.mark.parametrize("strides", [(1, 1), (2, 2)])
def test_conv_module_impls_share_params_and_outputs(padding, strides):
    x = images(2, (2, 9, 8, 3))
    outs, params = {}, {}
    for impl in ("native", "im2col"):
        conv = Conv(features=5, kernel_size=(3, 3), strides=strides, padding=padding, impl=impl)
        params[impl] = conv.init(jax.random.key(4), x)
        outs[impl] = jax.jit(conv.apply)(params[impl], x)
    jax.tree_util.tree_map(np.testing.assert_array_equal, params["native"], params["im2col"])
    np.testing.assert_allclose(outs["im2col"], outs["native"], rtol=1e-5, atol=1e-5)
    # A drop-in for flax.linen.Conv: same parameter names and shapes, same function.
    flax_conv = nn.Conv(features=5, kernel_size=(3, 3), strides=strides, padding=padding)
    flax_params = flax_conv.init(jax.random.key(4), x)
    shapes = functools.partial(jax.tree_util.tree_map, jnp.shape)
    assert shapes(flax_params) == shapes(params["native"])
    np.testing.assert_allclose(outs["im2col"], flax_conv.apply(params["native"], x), rtol=1e-5, atol=1e-5)


def test_resolve_impl():
    assert resolve_impl("auto") == ("im2col" if jax.default_backend() == "cpu" else "native")
    assert resolve_impl("native") == "native" and resolve_impl("im2col") == "im2col"
    with pytest.raises(ValueError, match="conv_impl"):
        resolve_impl("winograd")


@pytest.mark.parametrize("shape, window, stride, padding", [
    ((2, 8, 6, 3), 2, 2, "VALID"),  # the reshape path
    ((2, 7, 6, 3), 2, 2, "VALID"),  # odd height: the generic path
    ((2, 8, 8, 3), 3, 2, "SAME"),  # the ResNet stem's pool
])
def test_max_pool_matches_flax(shape, window, stride, padding):
    x = images(3, shape)
    expected = nn.max_pool(x, (window, window), (stride, stride), padding=padding)
    got = max_pool(x, window, stride, padding)
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


# --- depthwise convolution and the pretrained backbones' models -----------------------------------

@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("padding", ["SAME", "VALID", ((1, 1), (1, 1))])
def test_shifted_depthwise_conv_matches_grouped_conv_outputs_and_gradients(stride, padding):
    rng = np.random.default_rng(stride)
    x = jnp.asarray(rng.normal(size=(2, 11, 10, 6)), jnp.float32)  # odd height: SAME pads unevenly
    kernel = jnp.asarray(rng.normal(size=(3, 3, 1, 6)), jnp.float32)
    strides = (stride, stride)
    out_shape = jax.eval_shape(lambda a, b: native_depthwise_conv(a, b, strides, padding), x, kernel).shape
    cotangent = jnp.asarray(rng.normal(size=out_shape), jnp.float32)
    results = {name: jax.jit(lambda a, b, c, conv=conv: conv_with_grads(conv, a, b, c, strides, padding))(
        x, kernel, cotangent) for name, conv in (("native", native_depthwise_conv),
                                                 ("shifted", shifted_depthwise_conv))}
    for label, native, shifted in zip(("output", "d/dinput", "d/dkernel"), results["native"],
                                      results["shifted"], strict=True):
        assert native.shape == shifted.shape, label
        np.testing.assert_allclose(shifted, native, rtol=1e-5, atol=1e-5, err_msg=label)


def test_depthwise_module_is_a_drop_in_for_a_grouped_flax_conv():
    x = images(5, (2, 9, 8, 4))
    module = DepthwiseConv((3, 3), (2, 2), ((1, 1), (1, 1)), impl="shifted")
    params = module.init(jax.random.key(0), x)
    flax_conv = nn.Conv(4, (3, 3), (2, 2), ((1, 1), (1, 1)), feature_group_count=4, use_bias=False)
    shapes = functools.partial(jax.tree_util.tree_map, jnp.shape)
    assert shapes(flax_conv.init(jax.random.key(0), x)) == shapes(params)
    np.testing.assert_allclose(module.apply(params, x), flax_conv.apply(params, x), rtol=1e-5, atol=1e-5)
    assert resolve_depthwise_impl("auto") == ("shifted" if jax.default_backend() == "cpu" else "native")
    with pytest.raises(ValueError, match="depthwise_impl"):
        resolve_depthwise_impl("fft")


@pytest.mark.parametrize("config_name, trunk", [("mobilenet_v2_multitask", MobileNetV2Trunk),
                                                ("dlib_resnet_multitask", DlibResNetTrunk)])
def test_factory_builds_pretrained_backbones_with_the_shared_heads(config_name, trunk):
    config = load_config(config_name, "smoke")
    model = create_model(config.model, axis_name="batch")
    assert isinstance(model, BackboneMultiTask) and isinstance(model.trunk, trunk)
    assert model.trunk.axis_name == "batch" and model.input_norm == config.model.input_norm
    model = create_model(config.model)  # outside pmap: no axis to synchronise BatchNorm over
    x = images(0, (BATCH, config.image_size, config.image_size, 3))
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))
    assert set(variables["params"]) == {"trunk", "heads"}
    out = jax.eval_shape(lambda v: model.apply(v, x, train=True, mutable=["batch_stats"],
                                               rngs={"dropout": jax.random.key(1)})[0], variables)
    assert out["age"].shape == (BATCH, NUM_AGE_BINS) and out["gender"].shape == (BATCH, NUM_GENDERS)
    assert out["race"].shape == (BATCH, NUM_ETHNICITIES)
