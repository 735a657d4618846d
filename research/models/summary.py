"""Layer table of a model built from a config: output shape and parameter count per stage, and
the forward pass's floating-point operations per face.

Shapes come from ``jax.eval_shape`` (nothing is computed or allocated), so the table of a
200 px ResNet-50 costs a trace, not a forward pass; the operation count is XLA's cost analysis
of the lowered (not compiled) forward pass at batch 1.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from research.models.factory import BACKBONES, create_model
from research.models.pretrained import dlib_resnet, mobilenet_v2

HEAD_NAMES = {"age": "age head (Dense)", "gender": "gender head (Dense)", "race": "ethnicity head (Dense)"}


def _count(tree) -> int:
    return int(sum(np.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(tree)))


def _stage_of(module: str, model: ml_collections.ConfigDict) -> str:
    """Which row of the table a top-level module belongs to (stem, stage k, heads)."""
    index = _module_order(module)[0]
    if model.name == "cnn" and module.startswith(("Conv_", "BatchNorm_")):
        return f"stage {index // model.convs_per_stage + 1}"
    if model.name == "resnet" and module.startswith("BottleneckBlock_"):
        bounds = np.cumsum(model.stage_sizes)
        return f"stage {int(np.searchsorted(bounds, index, side='right')) + 1}"
    if module in ("conv_init", "bn_init"):
        return "stem"
    return module


def _describe(stage: str, model: ml_collections.ConfigDict) -> str:
    if stage == "stem":
        return ("3x3 conv, BN, ReLU" if model.small_input_stem
                else "7x7/2 conv, BN, ReLU, 3x3/2 max-pool")
    k = int(stage.split()[1]) - 1
    if model.name == "cnn":
        return f"{model.convs_per_stage} x (3x3 conv {model.widths[k]}, BN, ReLU), 2x2 max-pool"
    width = model.num_filters * 2**k
    return f"{model.stage_sizes[k]} bottleneck blocks ({width}-{width}-{4 * width})"


def _module_order(module: str) -> tuple[int, int]:
    match = re.search(r"_(\d+)$", module)
    return (int(match.group(1)) if match else -1, module.startswith("BatchNorm") or module == "bn_init")


def _pooled(shape: tuple[int, ...], stage: str, model: ml_collections.ConfigDict) -> str:
    """Output shape of a stage as text, after the max-pool that ends a CNN stage or the stem."""
    _, h, w, c = shape
    if model.name == "cnn" and stage != "stem":
        h, w = h // 2, w // 2
    elif stage == "stem" and not model.small_input_stem:
        h, w = -(-h // 2), -(-w // 2)
    return f"{h}x{w}x{c}"


def _backbone_stages(model: ml_collections.ConfigDict) -> list[tuple[str, tuple[str, ...], str]]:
    """(row, trunk modules, layers) of a pretrained backbone's trunk, in order."""
    if model.name == "mobilenet_v2":
        rows = [("stem", ("features_0",), f"3x3/2 conv {mobilenet_v2.STEM_CHANNELS}, BN, ReLU6")]
        first = 1
        for k, (t, c, n, s) in enumerate(mobilenet_v2.SETTINGS, start=1):
            blocks = tuple(f"features_{i}" for i in range(first, first + n))
            stride = ", /2 in the first" * (s > 1)
            rows.append((f"stage {k}", blocks, f"{n} inverted residual block{'s' * (n > 1)} "
                                               f"(expand x{t}, 3x3 depthwise{stride}, {c} out)"))
            first += n
        rows.append(("last conv", (f"features_{first}",), f"1x1 conv {mobilenet_v2.NUM_FEATURES}, BN, ReLU6"))
        return rows
    rows = [("stem", ("conv_init", "norm_init"), "7x7/2 conv 32, affine, ReLU, 3x3/2 max-pool")]
    for i, (width, n, down) in enumerate(dlib_resnet.STAGES):
        rows.append((f"stage {i + 1}", tuple(f"stage{i}_block{j}" for j in range(n)),
                     f"{n} residual block{'s' * (n > 1)} (2 x 3x3 conv {width}{', /2 in the first' * down})"))
    return rows


def _backbone_rows(params: dict, stats: dict, outputs: dict, model: ml_collections.ConfigDict) -> list[dict]:
    rows = []
    for stage, modules, layers in _backbone_stages(model):
        shape = outputs["trunk"][modules[-1]]["__call__"][0].shape
        rows.append({"block": stage, "layers": layers, "output": "x".join(map(str, shape[1:])),
                     "params": sum(_count(params["trunk"][m]) for m in modules if m in params["trunk"]),
                     "batch_stats": sum(_count(stats.get("trunk", {}).get(m, {})) for m in modules)})
    return rows


def _abstract_variables(config: ml_collections.ConfigDict):
    model = create_model(config.model)
    x = jnp.zeros((1, config.image_size, config.image_size, 3), jnp.float32)
    return model, x, jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))


def forward_gflops(config: ml_collections.ConfigDict) -> float:
    """Floating-point operations (10^9) of one face's forward pass at the config's input size,
    counted by XLA on the lowered graph (a multiply-add counts two); flip averaging doubles it."""
    model, x, variables = _abstract_variables(config)
    lowered = jax.jit(lambda v, images: model.apply(v, images, train=False)).lower(
        variables, jax.ShapeDtypeStruct(x.shape, x.dtype))
    cost = lowered.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost["flops"]) / 1e9


def layer_table(config: ml_collections.ConfigDict) -> list[dict[str, object]]:
    """One row per stem/stage/head: layers, output shape (batch of 1), trainable parameters,
    BatchNorm statistics; then a total row."""
    model, x, variables = _abstract_variables(config)
    _, state = jax.eval_shape(lambda v: model.apply(v, x, train=False, capture_intermediates=True,
                                                    mutable=["intermediates"]), variables)
    outputs = state["intermediates"]
    params, stats = variables["params"], variables.get("batch_stats", {})
    if config.model.name in BACKBONES:
        return _with_heads_and_total(_backbone_rows(params, stats, outputs, config.model), params["heads"],
                                     outputs["heads"], params, stats)
    rows: dict[str, dict[str, object]] = {}
    last: dict[str, str] = {}  # the module whose output is the stage's output
    for module in params:
        if module.startswith("MultiTaskHeads"):
            rows.update({row["block"]: row for row in _head_rows(params[module], outputs[module])})
            continue
        stage = _stage_of(module, config.model)
        row = rows.setdefault(stage, {"block": stage, "layers": _describe(stage, config.model),
                                      "output": "", "params": 0, "batch_stats": 0})
        row["params"] += _count(params[module])
        row["batch_stats"] += _count(stats.get(module, {}))
        last[stage] = max(last.get(stage, ""), module, key=_module_order)
    for stage, module in last.items():
        rows[stage]["output"] = _pooled(outputs[module]["__call__"][0].shape, stage, config.model)
    heads = list(HEAD_NAMES.values())
    table = sorted(rows.values(), key=lambda r: (r["block"] in heads, heads.index(r["block"])
                                                 if r["block"] in heads else 0,
                                                 r["block"] != "stem", r["block"]))
    table.append({"block": "total", "layers": "", "output": "",
                  "params": _count(params), "batch_stats": _count(stats)})
    return table


def _head_rows(head_params: dict, head_outputs: dict) -> list[dict]:
    rows = []
    for head, leaves in head_params.items():
        shape = head_outputs[head]["__call__"][0].shape
        rows.append({"block": HEAD_NAMES[head], "layers": f"Dense -> {shape[-1]}",
                     "output": "x".join(map(str, shape[1:])), "params": _count(leaves), "batch_stats": 0})
    return sorted(rows, key=lambda r: list(HEAD_NAMES.values()).index(r["block"]))


def _with_heads_and_total(rows: list[dict], head_params: dict, head_outputs: dict, params: dict,
                          stats: dict) -> list[dict]:
    return [*rows, *_head_rows(head_params, head_outputs),
            {"block": "total", "layers": "", "output": "", "params": _count(params),
             "batch_stats": _count(stats)}]
