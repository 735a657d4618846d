"""Evaluation: predictions from checkpoints, metrics with bootstrap intervals, age verification."""
