"""Reproducible facial age estimation (with gender and ethnicity) on UTKFace, in JAX/Flax."""

__version__ = "0.1.0"
