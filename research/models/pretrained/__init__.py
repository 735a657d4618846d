"""Pretrained backbones ported to Flax, with converters for weights that ship in registry packages."""
