"""Outputs of the prediction command besides JSON: one CSV row per face, annotated copies of photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

CSV_COLUMNS = ["path", "status", "message", "face", "left", "top", "right", "bottom", "detection_score",
               "age", "age_low", "age_high", "age_interval_level", "age_std", "gender", "gender_probability",
               "challenge", "rule", "parameter", "p_under", "decision"]
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
                         "age_interval_level": f["age_interval_level"], "age_std": f["age_std"],
                         "gender": f["gender"], "gender_probability": f["gender_probability"],
                         "challenge": f["challenge"]["threshold"], "rule": f["challenge"]["rule"],
                         "parameter": f["challenge"]["parameter"], "p_under": f["challenge"]["p_under"],
                         "decision": f["challenge"]["decision"]})
    table = pd.DataFrame(rows, columns=CSV_COLUMNS)
    for column in ("face", "left", "top", "right", "bottom"):  # integers, empty where a file has no face
        table[column] = table[column].astype("Int64")
    return table


def label(face: dict) -> str:
    low, high = face["age_interval"]
    return (f"{face['age']:.0f} ({low:.0f}-{high:.0f}) {face['gender']} {face['gender_probability']:.0%}"
            f" | {face['challenge']['decision']}")


Box = tuple[int, int, int, int]  # left, top, right, bottom (exclusive right and bottom for labels)


def overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _candidates(box: Box, size: tuple[int, int], image: tuple[int, int], gap: int) -> list[tuple[int, int]]:
    """Top-left corners for a label of ``size`` near ``box``, best first: above the box, below it,
    inside its top, then further up or down in label-height steps; each shifted into the image."""
    (w, h), (width, height) = size, image
    left, top, right, bottom = box
    xs = list(dict.fromkeys(min(max(0, x), width - w) for x in (left, right - w, (left + right - w) // 2)))
    preferred = [top - h - gap, bottom + gap, top + gap]
    steps = sorted(range(0, max(1, height - h + 1), max(1, h // 2)), key=lambda y: abs(y - preferred[0]))
    ys = list(dict.fromkeys(min(max(0, y), height - h) for y in preferred + steps))
    return [(x, y) for y in ys for x in xs]


def place_labels(boxes: list[Box], sizes: list[tuple[int, int]], image: tuple[int, int],
                 gap: int = 2) -> list[Box | None]:
    """A rectangle inside ``image`` (width, height) for each label, none over another; None where
    no free place is left. Labels of higher boxes are placed first (they take the place above)."""
    placed: list[Box | None] = [None] * len(boxes)
    taken: list[Box] = []
    for i in sorted(range(len(boxes)), key=lambda i: (boxes[i][1], boxes[i][0])):
        w, h = sizes[i]
        if w > image[0] or h > image[1]:
            continue
        for x, y in _candidates(boxes[i], sizes[i], image, gap):
            rect = (x, y, x + w, y + h)
            if not any(overlaps(rect, t) for t in taken):
                placed[i] = rect
                taken.append(rect)
                break
    return placed


def font_size(image: tuple[int, int]) -> int:
    """Text height that reads at any photo size: 1/40 of the shorter side, at least 11 px."""
    return max(11, round(min(image) / 40))


def label_layout(faces: list[dict], boxes: list[Box], image: tuple[int, int],
                 min_size: int = 8) -> tuple[ImageFont.ImageFont, list[str], list[Box | None]]:
    """Font, texts and label rectangles; the font shrinks (to ``min_size``) until every label fits
    (a label wider than the photo breaks before the decision)."""
    size = font_size(image)
    while True:
        font = ImageFont.load_default(size=size)
        pad = max(1, size // 6)
        texts, sizes = [], []
        for face in faces:
            text = label(face)
            if font.getlength(text) + 2 * pad > image[0]:
                text = text.replace(" | ", "\n")
            bbox = ImageDraw.Draw(Image.new("L", (1, 1))).multiline_textbbox((0, 0), text, font=font)
            texts.append(text)
            sizes.append((int(bbox[2]) + 2 * pad, int(bbox[3]) + 2 * pad))
        rects = place_labels(boxes, sizes, image, gap=pad)
        if all(r is not None for r in rects) or size <= min_size:
            return font, texts, rects
        size = max(min_size, round(size * 0.8))


def annotate(array: np.ndarray, record: dict) -> Image.Image:
    """The photo (as read, possibly downscaled) with each face's box and label drawn on it.

    Every label lies inside the photo and over no other label; when a crowded photo leaves one
    no room even at the smallest font, its face gets a number and the label goes below the photo
    in a legend strip."""
    image = Image.fromarray(array)
    scale = record.get("scale", 1.0)
    width = max(2, round(max(image.size) / 400))
    faces = record["faces"]
    boxes = [tuple(round(v * scale) for v in f["box"]) for f in faces]
    font, texts, rects = label_layout(faces, boxes, image.size)
    pad = max(1, font.size // 6)
    legend = [i for i, r in enumerate(rects) if r is None]
    heights = [ImageDraw.Draw(image).multiline_textbbox((0, 0), texts[i], font=font)[3] + pad for i in legend]
    if legend:
        grown = Image.new("RGB", (image.width, image.height + sum(heights) + 2 * pad), (255, 255, 255))
        grown.paste(image, (0, 0))
        image = grown
    draw = ImageDraw.Draw(image)
    for i, (face, box) in enumerate(zip(faces, boxes, strict=True)):
        colour = COLOURS.get(face["challenge"]["decision"], (255, 255, 0))
        draw.rectangle(box, outline=colour, width=width)
        if rects[i] is not None:
            x0, y0, x1, y1 = rects[i]
            draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=colour)
            draw.multiline_text((x0 + pad, y0 + pad), texts[i], fill=(255, 255, 255), font=font)
    y = array.shape[0] + pad
    for i, height in zip(legend, heights, strict=True):
        colour = COLOURS.get(faces[i]["challenge"]["decision"], (255, 255, 0))
        draw.text((boxes[i][0] + width, boxes[i][1] + width), str(i + 1), fill=colour, font=font)
        draw.multiline_text((pad, y), f"{i + 1}: {texts[i]}", fill=colour, font=font)
        y += height
    return image


def annotated_path(out_dir: Path, path: Path, index: int) -> Path:
    """``<index>_<stem>.jpg`` in ``out_dir``: the index keeps same-named files of different folders apart."""
    return Path(out_dir) / f"{index:04d}_{Path(path).stem}.jpg"
