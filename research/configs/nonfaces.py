"""Crops confirmed not to be faces: a reviewed list, a human judgement like the cleaning thresholds.

How it was made: scripts/scan_faces.py ran the prediction command's dlib detectors over every
cleaned crop (results/cleaning/face_scan.csv); the crops where no detector found a face were
shown in results/cleaning/no_face_grid.png (scripts/nonface_grid.py) and looked at one by one. A
crop is listed here only when it clearly shows no face a person could estimate an age from
(an eye or mouth close-up, an object, a drawing, a blank or unrecognisable image); faces the
detector missed (profiles, tilted, small, occluded, infants) are not listed, nor are doubtful
cases. The reason says what the crop shows.

Only scan candidates are listed: the test crops among them were picked by the detector, not by a
model's error, so the test metrics without them are not flattered by the choice. (A look at the
release's 60 largest test errors found two more non-faces the HOG detector accepted at the full-crop
window, a nose-and-mouth close-up 1_0_2_20161219205107772 and a cartoon 26_0_0_20170113210127170;
they are left out of this list for that reason. The 1,309 crops whose first-pass HOG score is
below the command's 0.3 were not reviewed.)

With ``config.data.exclude_nonfaces`` (off by default) training and its validation leave these
files out (research/data/nonfaces.py); the test split keeps them, and results/cleaning/
nonfaces_test_metrics.csv reports the test metrics with and without them.
"""

EYE = "close-up of an eye"
BLANK = "blank or blurred beyond recognition"
OBJECT = "an object, no face"
TEXT = "printed text, no face"

# file name -> what the crop shows. Reviewed on the scan of the 22,022 cleaned crops (14
# with no face found, all 14 looked at at full size). Not listed, being faces the detector missed:
# 26_0_0_20170113210127395 (blurred, dark), 35_1_1_20170117154137390 (grey, tilted, a cap),
# 58_0_1_20170113175352418 (cut off at the left), 72_0_0_20170111222516126 (faint, washed out) and
# 86_1_2_20170105174652949 (very dark and blurred: face-like, kept as a doubtful case).
NONFACES: dict[str, str] = {
    "1_0_0_20170109193052283.jpg.chip.jpg": EYE,
    "1_0_0_20170109194120301.jpg.chip.jpg": EYE,
    "1_1_0_20170109194452834.jpg.chip.jpg": EYE,
    "18_0_1_20170113175821404.jpg.chip.jpg": EYE,  # blurred
    "1_1_4_20170109194502921.jpg.chip.jpg": OBJECT,  # grey ribbed fabric or plastic
    "80_0_2_20170111210646563.jpg.chip.jpg": TEXT,  # the digits "978449" on white
    "28_0_1_20170117020012900.jpg.chip.jpg": BLANK,  # a blue blur
    "37_0_1_20170117134417970.jpg.chip.jpg": BLANK,  # a green blur, foliage-like
    "90_0_0_20170111210338948.jpg.chip.jpg": BLANK,  # pale cream, a faint pattern
}
