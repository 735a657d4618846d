"""Screening the cleaned crops with the prediction command's face detector: which hold no face,
the grid a person reviews them in. Reads the archive and the split file; imports predict for the
detector, so it sits after predict (nothing but scripts imports it)."""
