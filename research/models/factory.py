"""Build a model from a config (the only place that maps config names to classes)."""

from __future__ import annotations

import jax.numpy as jnp
import ml_collections

from research.models.cnn import CNN
from research.models.heads import NUM_AGE_BINS
from research.models.pretrained.dlib_resnet import DlibResNetTrunk
from research.models.pretrained.mobilenet_v2 import MobileNetV2Trunk
from research.models.pretrained.multitask import BackboneMultiTask
from research.models.resnet import ResNet
from research.vocabulary import NUM_ETHNICITIES, NUM_GENDERS

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


def describe_architecture(model: ml_collections.ConfigDict | dict) -> str:
    """One sentence on the network a config builds (for model cards and tables)."""
    model = ml_collections.ConfigDict(dict(model))
    if model.name == "cnn":
        widths = ", ".join(str(w) for w in model.widths)
        trunk = (f"CNN, stages of width {widths}, {model.convs_per_stage} 3x3 convolutions per stage "
                 "(BatchNorm, ReLU, max-pool), global average pooling")
    elif model.name == "resnet":
        depth = 2 + 3 * sum(model.stage_sizes)
        trunk = (f"ResNet-{depth} (v1.5 bottleneck blocks, stages {list(model.stage_sizes)}, "
                 f"{model.num_filters} stem filters, BatchNorm), global average pooling")
    elif model.name == "mobilenet_v2":
        trunk = "MobileNetV2 (torchvision's layout: inverted residual blocks, depthwise convolutions, ReLU6)"
    elif model.name == "dlib_resnet":
        trunk = "dlib's face-recognition ResNet (29 convolutions, dlib's anet_type)"
    else:
        trunk = model.name
    age = (f"a distribution over 0-{NUM_AGE_BINS - 1} years" if model.age_head == "classification"
           else "one regressed number")
    return (f"{trunk}; heads for age ({age}), gender ({NUM_GENDERS} classes) and ethnicity "
            f"({NUM_ETHNICITIES} classes)")


def describe_initialisation(model: ml_collections.ConfigDict | dict) -> str:
    """Where the weights started: random initialisation, or the pretrained source the config names."""
    init = dict(model).get("init", "scratch")
    if init == "scratch":
        return "random initialisation (no pretraining; trained on UTKFace's training split only)"
    source = dict(model).get("pretrained_source", init)
    return f"pretrained weights ({source}), then fine-tuned on UTKFace's training split"
