"""The face scan of every cleaned crop (scripts/scan_faces.py -> results/cleaning/face_scan.csv).

    python scripts/scan_faces.py [--data PATH] [--smoke]

The prediction command's dlib detectors (research/predict/faces.py) run over every crop of the
utkface split file, as a cascade: HOG on the crop as it is (the setting the UTKFace crops suit
best), then, for crops with no face there, HOG as the command runs it (upscaled 2x, luminance),
then dlib's CNN detector. A crop where none of them finds a face is a non-face *candidate*; a
person decides which candidates are not faces (research/configs/nonfaces.py).

Measured here on 200 crops (2 shared cores, another job running): HOG at scale 1 takes 8 ms of CPU
per crop and finds a face of score >= 0 in 195; the command's setting 21 ms (187); the CNN
detector about 1 s of CPU (4.6 s of wall time) per crop, so it runs on the remaining candidates
only. The whole scan is about 4 minutes of CPU, much more of wall time on a loaded machine; it
writes one part per ``chunk`` crops under build/face_scan/ and resumes from them.
``arg="smoke"`` scans the first few crops only.
"""

import ml_collections


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.split_file = "results/splits/utkface.csv"
    # HOG passes, in order, as research/configs/predict.py DETECTOR_SETTINGS names ("default": the
    # command's own setting); a crop goes to the next pass only if no face was found in this one.
    c.hog_settings = ("no_upsampling", "default")
    # A face is "found" at dlib's own threshold (0). The command asks 0.3 to avoid false detections
    # on clutter in photos; a 200 px crop has no clutter, and here a missed face costs a review.
    c.min_score = 0.0
    c.score_floor = -0.5  # detections down to this score are recorded (best score of each pass)
    c.cnn_pass = True  # dlib's CNN detector on the crops HOG misses (seconds per crop)
    c.cnn_min_confidence = 0.0
    c.chunk = 1000  # crops per resumable part
    c.parts_dir = "build/face_scan"
    c.max_crops = 40 if arg == "smoke" else 0  # 0: every crop
    # The grid of crops with no face found (results/cleaning/no_face_grid.png).
    c.grid_seed = 0
    c.grid_max = 120  # a seeded sample of the candidates when there are more
    c.grid_columns = 12
    return c
