"""The layer table behind the report's architecture tables (research/models/summary.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.configs import load_config
from research.models.factory import create_model
from research.models.heads import NUM_AGE_BINS
from research.models.pretrained import dlib_resnet, mobilenet_v2
from research.models.summary import forward_gflops, layer_table

STAGE_COUNTS = {"mobilenet_v2_multitask": len(mobilenet_v2.SETTINGS),
                "dlib_resnet_multitask": len(dlib_resnet.STAGES)}


@pytest.mark.parametrize("name", ["cnn_baseline", "resnet50_multitask", "mobilenet_v2_multitask",
                                  "dlib_resnet_multitask"])
def test_layer_table_rows_add_up_to_the_model(name):
    config = load_config(name, "smoke")
    table = layer_table(config)
    rows, total = table[:-1], table[-1]
    model = create_model(config.model)
    x = jnp.zeros((1, config.image_size, config.image_size, 3))
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))
    count = sum(int(np.prod(leaf.shape)) for leaf in jax.tree_util.tree_leaves(variables["params"]))
    assert total["block"] == "total" and total["params"] == count == sum(r["params"] for r in rows)
    stages = [r for r in rows if r["block"].startswith("stage")]
    expected = STAGE_COUNTS.get(name) or len(config.model.widths if name == "cnn_baseline"
                                             else config.model.stage_sizes)
    assert [r["block"] for r in stages] == [f"stage {k}" for k in range(1, expected + 1)]
    assert rows[0]["block"] == "stem" or name == "cnn_baseline"
    assert total["batch_stats"] == sum(r["batch_stats"] for r in rows)
    age = next(r for r in rows if r["block"].startswith("age head"))
    trunk = [r for r in rows if "head" not in r["block"]]
    features = int(trunk[-1]["output"].split("x")[-1])  # global pooling feeds the heads
    assert age["params"] == (features + 1) * NUM_AGE_BINS and age["output"] == str(NUM_AGE_BINS)


def test_cnn_stage_output_is_after_its_pool():
    config = load_config("cnn_baseline", "smoke")
    first = layer_table(config)[0]
    assert first["output"] == f"{config.image_size // 2}x{config.image_size // 2}x{config.model.widths[0]}"


def test_forward_gflops_counts_the_convolutions():
    """XLA's count of the CNN's forward pass is its convolutions' and heads' multiply-adds (two
    operations each), within a few per cent (BatchNorm, ReLU and pooling add some; XLA counts the
    padded borders of a SAME convolution slightly short)."""
    config = load_config("cnn_baseline", "smoke")
    size, channels, macs = config.image_size, 3, 0
    for width in config.model.widths:
        for _ in range(config.model.convs_per_stage):
            macs += size * size * 9 * channels * width
            channels = width
        size //= 2
    macs += channels * (NUM_AGE_BINS + 2 + 5)
    assert 0.95 * 2 * macs / 1e9 <= forward_gflops(config) <= 1.1 * 2 * macs / 1e9
