"""The project's domain vocabulary, in one place: label codes, age groups, the minors band and the
challenge ages that every stage (cleaning, training, evaluation, prediction, report) speaks.

UTKFace keeps its labels in file names as integer codes; these are their names.
"""

from __future__ import annotations

MISSING = -1  # a label that is absent or malformed in the file name
AGE_RANGE = (1, 116)  # inclusive; ages outside it are malformed labels
GENDERS = {0: "male", 1: "female"}
ETHNICITIES = {0: "White", 1: "Black", 2: "Asian", 3: "Indian", 4: "Others"}
NUM_GENDERS = len(GENDERS)
NUM_ETHNICITIES = len(ETHNICITIES)

# The evaluation protocols (results/splits/<protocol>.csv) and how each splits the images.
PROTOCOLS = {
    "utkface": "every clean image, split stratified by age group x gender x ethnicity",
    "coral": "the fixed CORAL benchmark split (ages 21-60; Cao, Mirjalili and Raschka, 2019)",
}

# Age groups used for stratification and for every per-group breakdown (inclusive bounds).
AGE_GROUPS = (("0-12", 0, 12), ("13-17", 13, 17), ("18-24", 18, 24), ("25-34", 25, 34),
              ("35-44", 35, 44), ("45-59", 45, 59), ("60+", 60, 200))

# Age verification: the minors whose being let through is the error that matters, the young adults
# who are asked most, and the adults of the challenge age or over, all as inclusive age bands.
MINORS = (13, 17)
YOUNG_ADULTS = (18, 24)
CHALLENGE_AGES = (18, 21, 25, 30)
CHALLENGE_AGE = 25  # "Challenge 25": the UK retail policy this project is built around


def age_group(age: int) -> str:
    """The AGE_GROUPS label holding ``age``."""
    for label, low, high in AGE_GROUPS:
        if low <= age <= high:
            return label
    raise ValueError(f"age {age} outside every age group")


def in_band(age, band: tuple[int, int]):
    """Boolean mask (array or Series, as given) of ages within the inclusive ``band``."""
    return (age >= band[0]) & (age <= band[1])


def band_label(band: tuple[int, int]) -> str:
    """'13-17' for (13, 17): how a band is named in tables and column names."""
    return f"{band[0]}-{band[1]}"


def band_key(band: tuple[int, int]) -> str:
    """'13_17' for (13, 17): the suffix of metric names (``challenge25_fpr_13_17``)."""
    return f"{band[0]}_{band[1]}"


def describe_calibration(calibration: dict) -> str:
    """How a calibrated age interval (research.evaluation.calibration) is made, in words: for the
    command's output, the model card and the report."""
    if calibration["method"] == "inverted":
        return (f"inverted on the validation split: the true ages whose central range of validation "
                f"estimates (the {calibration['neighbours']} faces nearest that age) holds the estimate, "
                "so that its level is aimed at for each true age, not only on average")
    kind = "absolute error" if calibration["method"] == "absolute" else "error in units of the model's sd"
    return (f"split-conformal on the validation split ({kind} within {len(calibration['edges']) + 1} "
            "bands of the estimate)")
