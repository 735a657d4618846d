"""Settings of the prediction command (detection, alignment, image limits, the age interval).

Used by scripts/predict.py, scripts/predict_consistency.py and scripts/bench_predict.py.
The chip padding was chosen on the validation split: results/predict/padding_sweep.csv.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    # dlib HOG frontal face detector: upsampling finds faces under ~80 px but costs ~4x the time,
    # so it is only retried on small images where nothing was found.
    c.detector_upsample = 0
    c.retry_upsample_max_side = 1000
    # dlib's default threshold is 0; on photos that are not UTKFace crops (skimage's astronaut,
    # alone or tiled) it also fired on clothing at scores up to 0.24, and on validation crops pasted
    # into canvases 0.3 still finds 93% of faces (results/predict/summary.json, val_detection_by_min_score).
    c.min_detection_score = 0.3
    # Alignment: dlib.get_face_chip on the 5-point landmarks, as the UTKFace crops were made.
    c.chip_size = 200
    c.chip_padding = 0.2
    # Images: decoded at most this many pixels (JPEGs are decoded at 1/2, 1/4 or 1/8 scale first),
    # then downscaled so the longer side is at most max_side before detection.
    c.max_decode_pixels = 50_000_000
    c.max_side = 2000
    # Age interval: mean +- z * sd of the model's age distribution (not a calibrated interval). ID is
    # asked when its lower end is below N. z = 1.15 is the smallest that lets at most 5% of 13-17
    # year-olds through on the validation split for the release model (interval_operating_point
    # in results/runs/cnn_ensemble/metrics_test.json); the model card tabulates other values.
    c.interval_z = 1.15
    c.challenge = 25
    c.batch_buckets = (1, 2, 4, 8, 16, 32)  # faces per forward pass are padded to one of these
    return c
