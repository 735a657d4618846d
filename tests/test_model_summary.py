"""The layer table behind the report's architecture tables (research/models/summary.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.configs import load_config
from research.models.factory import create_model
from research.models.heads import NUM_AGE_BINS
from research.models.summary import layer_table


@pytest.mark.parametrize("name", ["cnn_baseline", "resnet50_multitask"])
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
    expected = len(config.model.widths if name == "cnn_baseline" else config.model.stage_sizes)
    assert [r["block"] for r in stages] == [f"stage {k}" for k in range(1, expected + 1)]
    age = next(r for r in rows if r["block"].startswith("age head"))
    features = int(stages[-1]["output"].split("x")[-1])  # global pooling feeds the heads
    assert age["params"] == (features + 1) * NUM_AGE_BINS and age["output"] == str(NUM_AGE_BINS)


def test_cnn_stage_output_is_after_its_pool():
    config = load_config("cnn_baseline", "smoke")
    first = layer_table(config)[0]
    assert first["output"] == f"{config.image_size // 2}x{config.image_size // 2}x{config.model.widths[0]}"
