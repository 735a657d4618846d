"""The grid of crops in which the face scan found no face (results/cleaning/no_face_grid.png).

Every candidate when there are at most ``grid_max``, else a seeded sample of them (the title says
how many there are); sorted by age label. Each cell is titled with the age label, the split and the
best HOG score (the first pass's, down to the scan's floor); confirmed non-faces
(research/configs/nonfaces.py) get a red frame, the other candidates are faces the detector missed.
"""

from __future__ import annotations

import io
import time
from collections.abc import Mapping
from pathlib import Path

import ml_collections
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image

from research.data import archive
from research.outputs import save_figure, write_json
from research.provenance import provenance
from research.screening.face_scan import NONE

DPI = 100  # photographs: a low dpi keeps the PNG small
CONFIRMED_COLOUR = "#d62728"


def candidates(scan: pd.DataFrame) -> pd.DataFrame:
    """The scan's rows with no face found by any pass, by file name."""
    return scan[scan["found_by"] == NONE].sort_values("file").reset_index(drop=True)


def grid_sample(scan: pd.DataFrame, limit: int, seed: int) -> pd.DataFrame:
    """At most ``limit`` candidates (a seeded sample when there are more), sorted by age then file."""
    pool = candidates(scan)
    if len(pool) > limit:
        pool = pool.sample(limit, random_state=np.random.default_rng(seed))
    return pool.sort_values(["age", "file"]).reset_index(drop=True)


def load_crops(source: Path, names: list[str]) -> dict[str, np.ndarray]:
    """RGB arrays of the named crops, read in one pass over the archive or folder."""
    crops = {name: np.asarray(Image.open(io.BytesIO(blob)).convert("RGB"))
             for name, blob in archive.iter_files(source, only=set(names))}
    if missing := set(names) - crops.keys():
        raise FileNotFoundError(f"{len(missing)} crops are not in {source}: {sorted(missing)[:3]}")
    return crops


def plot_grid(shown: pd.DataFrame, crops: Mapping[str, np.ndarray], total: int, nonfaces: Mapping[str, str],
              columns: int, title: str, score: str) -> Figure:
    """One crop per cell, titled 'age · split · <score column>'; confirmed non-faces framed in red."""
    rows = max(1, -(-len(shown) // columns))
    fig = Figure(figsize=(1.25 * columns, 1.45 * rows + 0.7), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax in axes:
        ax.set(xticks=[], yticks=[])
        ax.spines[:].set_visible(False)
    for ax, (_, record) in zip(axes, shown.iterrows(), strict=False):
        ax.imshow(crops[record["file"]])
        shown_score = "-" if pd.isna(record[score]) else f"{record[score]:.2f}"
        ax.set_title(f"{record['age']} · {record['split']} · {shown_score}", fontsize=7, pad=2)
        if record["file"] in nonfaces:
            ax.spines[:].set_visible(True)
            ax.spines[:].set(color=CONFIRMED_COLOUR, linewidth=3)
    confirmed = int(shown["file"].isin(set(nonfaces)).sum())
    fig.suptitle(f"{title}: {len(shown)} of {total} shown, by age label; red frame: confirmed non-face "
                 f"({confirmed} shown)\ncell: age label · split · best score of the first HOG pass "
                 "(- below the floor)",
                 fontsize=10)
    return fig


def write_no_face_grid(config: ml_collections.ConfigDict, scan_csv: Path, source: Path,
                       nonfaces: Mapping[str, str], out: Path) -> dict:
    """no_face_grid.png and no_face_grid.json (what it shows) under ``out``."""
    started = time.time()
    scan = pd.read_csv(scan_csv, keep_default_na=False, na_values=[""])
    shown = grid_sample(scan, config.grid_max, config.grid_seed)
    total = len(candidates(scan))
    crops = load_crops(source, list(shown["file"]))
    figure = plot_grid(shown, crops, total, nonfaces, config.grid_columns, "Crops with no face found",
                       f"{config.hog_settings[0]}_score")
    save_figure(out / "no_face_grid.png", figure, dpi=DPI)
    facts = {"candidates": total, "shown": int(len(shown)), "seed": config.grid_seed,
             "confirmed_shown": int(shown["file"].isin(set(nonfaces)).sum()), "files": list(shown["file"]),
             "wall_time_s": round(time.time() - started, 1),
             "provenance": provenance(data_sha256=archive.data_checksum(source))}
    write_json(out / "no_face_grid.json", facts)
    return facts
