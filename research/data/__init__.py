"""UTKFace data layer: locating the archive, labels, cleaning, splits, caches and the TFDS builder."""
