"""Prediction on new photos: the release model, face detection and alignment, inference, the CLI logic."""
