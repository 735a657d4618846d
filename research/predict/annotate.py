"""Outputs of the prediction command besides JSON: one CSV row per face, annotated copies of photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

CSV_COLUMNS = ["path", "status", "message", "face", "left", "top", "right", "bottom", "detection_score",
               "age", "age_low", "age_high", "age_std", "gender", "gender_probability", "challenge",
               "decision"]
COLOURS = {"ID check": (220, 30, 30), "no ID check": (30, 170, 60)}


def csv_table(records: list[dict]) -> pd.DataFrame:
    """One row per face; a file without faces (or not read) gets one row with its status."""
    rows = []
    for r in records:
        base = {"path": r["path"], "status": r["status"], "message": r["message"]}
        if not r["faces"]:
            rows.append(base)
        for i, f in enumerate(r["faces"]):
            box = dict(zip(("left", "top", "right", "bottom"), f["box"], strict=True))
            rows.append({**base, "face": i, **box,
                         "detection_score": f["detection_score"], "age": f["age"],
                         "age_low": f["age_interval"][0], "age_high": f["age_interval"][1],
                         "age_std": f["age_std"], "gender": f["gender"],
                         "gender_probability": f["gender_probability"],
                         "challenge": f["challenge"]["threshold"], "decision": f["challenge"]["decision"]})
    table = pd.DataFrame(rows, columns=CSV_COLUMNS)
    for column in ("face", "left", "top", "right", "bottom"):  # integers, empty where a file has no face
        table[column] = table[column].astype("Int64")
    return table


def label(face: dict) -> str:
    low, high = face["age_interval"]
    return (f"{face['age']:.0f} ({low:.0f}-{high:.0f}) {face['gender']} {face['gender_probability']:.0%}"
            f" | {face['challenge']['decision']}")


def annotate(array: np.ndarray, record: dict) -> Image.Image:
    """The photo (as read, possibly downscaled) with each face's box and label drawn on it."""
    image = Image.fromarray(array)
    draw = ImageDraw.Draw(image)
    scale = record.get("scale", 1.0)
    width = max(2, round(max(image.size) / 400))
    font = ImageFont.load_default(size=max(12, round(max(image.size) / 45)))
    for face in record["faces"]:
        left, top, right, bottom = (round(v * scale) for v in face["box"])
        colour = COLOURS.get(face["challenge"]["decision"], (255, 255, 0))
        draw.rectangle((left, top, right, bottom), outline=colour, width=width)
        text = label(face)
        box = draw.textbbox((left, max(0, top - font.size - 2 * width)), text, font=font)
        draw.rectangle(box, fill=colour)
        draw.text((box[0], box[1]), text, fill=(255, 255, 255), font=font)
    return image


def annotated_path(out_dir: Path, path: Path, index: int) -> Path:
    """``<index>_<stem>.jpg`` in ``out_dir``: the index keeps same-named files of different folders apart."""
    return Path(out_dir) / f"{index:04d}_{Path(path).stem}.jpg"
