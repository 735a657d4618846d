"""Build a model from a config (the only place that maps config names to classes)."""

from __future__ import annotations

import jax.numpy as jnp
import ml_collections

from research.models.cnn import CNN
from research.models.pretrained.dlib_resnet import DlibResNetTrunk
from research.models.pretrained.mobilenet_v2 import MobileNetV2Trunk
from research.models.pretrained.multitask import BackboneMultiTask
from research.models.resnet import ResNet

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
BACKBONES = ("mobilenet_v2", "dlib_resnet")


def create_model(model: ml_collections.ConfigDict, axis_name: str | None = None):
    """``model.name`` in {'cnn', 'resnet', 'mobilenet_v2', 'dlib_resnet'}; other fields are
    that class's arguments."""
    if model.dtype not in DTYPES:
        raise ValueError(f"model.dtype must be one of {sorted(DTYPES)}, got {model.dtype!r}")
    common = dict(age_head=model.age_head, dropout=model.dropout, conv_impl=model.conv_impl,
                  dtype=DTYPES[model.dtype], axis_name=axis_name)
    if model.name == "cnn":
        return CNN(widths=tuple(model.widths), convs_per_stage=model.convs_per_stage, **common)
    if model.name == "resnet":
        return ResNet(stage_sizes=tuple(model.stage_sizes), num_filters=model.num_filters,
                      small_input_stem=model.small_input_stem, **common)
    if model.name in BACKBONES:
        return BackboneMultiTask(_trunk(model, axis_name), input_norm=model.input_norm,
                                 frame_scale=model.frame_scale, age_head=model.age_head,
                                 dropout=model.dropout)
    raise ValueError(f"unknown model.name {model.name!r}; expected 'cnn', 'resnet' or one of {BACKBONES}")


def _trunk(model: ml_collections.ConfigDict, axis_name: str | None):
    common = dict(conv_impl=model.conv_impl, dtype=DTYPES[model.dtype], axis_name=axis_name,
                  bn_mode=model.trunk_bn, bn_momentum=model.bn_momentum)
    if model.name == "mobilenet_v2":
        return MobileNetV2Trunk(depthwise_impl=model.depthwise_impl, **common)
    return DlibResNetTrunk(**common)
