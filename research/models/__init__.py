"""Flax models: a CNN baseline and a ResNet-50, each with age, gender and ethnicity heads."""
