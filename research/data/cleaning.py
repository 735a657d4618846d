"""Cleaning UTKFace: corrupted files, missing labels and (near-)duplicates, into a manifest.

Policy, applied in this order (the ``status`` column of the manifest):
1. ``corrupt``: empty, not an image, truncated (fails a full decode), or not an RGB image of
   the expected size. Excluded.
2. ``missing_label``: age or gender missing or out of range. Excluded. A missing *race* alone
   keeps the image (status ``kept``); its ethnicity loss is masked during training.
3. Duplicates: byte-identical files (same sha256) and near-identical ones (perceptual hashes
   within ``phash_max_distance`` bits *and* 32x32 grey thumbnails within ``thumb_max_mad`` mean
   absolute difference, the second test guarding against look-alike faces) form groups.
   A group whose members carry different (age, gender, race) labels is ``conflicting_labels``
   (all excluded: which label is true is unknowable); a consistent group keeps its first member
   by file name and marks the others ``duplicate``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from research.data import archive
from research.data.labels import parse_filename
from research.vocabulary import MINORS, MISSING, band_key, in_band

MANIFEST_COLUMNS = ["file", "sha256", "age", "gender", "race", "status", "reason",
                    "duplicate_group", "phash"]
EXCLUDED = ("corrupt", "missing_label", "conflicting_labels", "duplicate")


@dataclasses.dataclass(frozen=True)
class CleaningConfig:
    """Every threshold that can change the manifest."""

    image_size: tuple[int, int] = (200, 200)
    # Chosen by looking at pairs on the real archive: below a thumbnail MAD of about 10 the
    # pairs are the same photograph (re-crops, re-encodes); above about 13 different people appear.
    phash_max_distance: int = 10
    thumb_max_mad: float = 10.0  # on a 0-255 grey scale
    thumb_size: int = 32


def inspect_image(blob: bytes, config: CleaningConfig) -> tuple[str | None, np.ndarray | None, int]:
    """Decode fully; return (problem or None, grey thumbnail, 64-bit perceptual hash)."""
    import imagehash

    if not blob:
        return "empty file", None, 0
    try:
        image = Image.open(io.BytesIO(blob))
        image.load()  # full decode: a truncated JPEG raises here, not at open()
    except Exception as error:  # PIL raises many types for bad data
        kind = "truncated image" if "truncated" in str(error) else "not a decodable image"
        # PIL names the in-memory file by its address; drop it so the manifest is reproducible.
        message = re.sub(r" ?<[^<>]* at 0x[0-9a-fA-F]+>", "", str(error))
        return f"{kind}: {type(error).__name__}: {message}"[:200], None, 0
    if image.mode != "RGB":
        return f"unexpected mode {image.mode} (expected RGB)", None, 0
    if image.size != tuple(config.image_size):
        return f"unexpected size {image.size[0]}x{image.size[1]}", None, 0
    grey = image.convert("L")
    thumb = np.asarray(grey.resize((config.thumb_size,) * 2, Image.Resampling.BILINEAR), np.uint8)
    phash = int(str(imagehash.phash(grey)), 16)
    return None, thumb, phash


def _near_pairs(hashes: np.ndarray, thumbs: np.ndarray, config: CleaningConfig) -> list[tuple[int, int]]:
    """Index pairs whose perceptual hashes and thumbnails are both close (blockwise, O(n^2/2))."""
    bits = np.unpackbits(hashes.astype(">u8").view(np.uint8).reshape(-1, 8), axis=1)
    bits = bits.astype(np.float32)
    pairs = []
    block = 2048
    for start in range(0, len(bits), block):
        chunk = bits[start:start + block]
        # Hamming distance via dot products: d = a.(1-b) + (1-a).b
        dist = chunk @ (1 - bits).T + (1 - chunk) @ bits.T
        rows, cols = np.nonzero(dist <= config.phash_max_distance)
        rows = rows + start
        keep = rows < cols
        for i, j in zip(rows[keep], cols[keep], strict=False):
            mad = np.abs(thumbs[i].astype(np.int16) - thumbs[j].astype(np.int16)).mean()
            if mad <= config.thumb_max_mad:
                pairs.append((int(i), int(j)))
    return pairs


def _groups(n: int, pairs: Iterable[tuple[int, int]]) -> np.ndarray:
    """Union-find: the smallest member index of each item's connected component."""
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in pairs:
        a, b = find(i), find(j)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return np.array([find(i) for i in range(n)])


def scan(source: Path, config: CleaningConfig, total: int | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Read every file once: labels, checksum, decode check, hash. Returns (rows, thumbnails)."""
    rows, thumbs = [], []
    blank = np.zeros((config.thumb_size,) * 2, np.uint8)
    for name, blob in tqdm(archive.iter_files(source), total=total, desc="scan", unit="img"):
        labels = parse_filename(name)
        problem, thumb, phash = inspect_image(blob, config)
        rows.append({"file": name, "sha256": hashlib.sha256(blob).hexdigest(), "age": labels.age,
                     "gender": labels.gender, "race": labels.race, "problem": problem,
                     "label_problems": "; ".join(labels.problems),
                     "name_notes": "; ".join(labels.notes), "phash": f"{phash:016x}"})
        thumbs.append(blank if thumb is None else thumb)
    return pd.DataFrame(rows), np.stack(thumbs) if thumbs else np.zeros((0,) * 3, np.uint8)


def apply_policy(rows: pd.DataFrame, thumbs: np.ndarray, config: CleaningConfig) -> pd.DataFrame:
    """Turn scanned rows into the manifest (see the module docstring for the policy)."""
    frame = rows.copy()
    frame["status"], frame["reason"], frame["duplicate_group"] = "kept", frame["name_notes"], -1
    corrupt = frame["problem"].notna()
    frame.loc[corrupt, "status"] = "corrupt"
    frame.loc[corrupt, "reason"] = frame.loc[corrupt, "problem"]
    unlabelled = ~corrupt & ((frame["age"] == MISSING) | (frame["gender"] == MISSING))
    frame.loc[unlabelled, "status"] = "missing_label"
    frame.loc[unlabelled, "reason"] = frame.loc[unlabelled, "label_problems"]
    race_only = ~corrupt & ~unlabelled & (frame["race"] == MISSING)
    frame.loc[race_only, "reason"] = ("race label missing, kept (masked in ethnicity loss): "
                                      + frame.loc[race_only, "label_problems"])

    # Duplicate detection runs over every decodable image, labelled or not.
    valid = np.flatnonzero(~corrupt.to_numpy())
    sub = frame.iloc[valid]
    exact = sub.groupby("sha256").indices
    pairs = [(int(m[0]), int(k)) for m in exact.values() for k in m[1:]]
    hashes = np.array([int(h, 16) for h in sub["phash"]], dtype=np.uint64)
    pairs += _near_pairs(hashes, thumbs[valid], config)
    root = _groups(len(valid), pairs)
    sizes = np.bincount(root, minlength=len(valid))
    in_group = sizes[root] > 1
    # Number groups by their first file name, not by read order: a tarball and its extracted
    # folder (sorted) then give the same ids.
    names = sub["file"].to_numpy()
    first_name: dict[int, str] = {}
    for local in np.flatnonzero(in_group):
        first_name[root[local]] = min(first_name.get(root[local], names[local]), names[local])
    group_ids = {r: g for g, r in enumerate(sorted(first_name, key=first_name.get))}
    for local in np.flatnonzero(in_group):
        frame.iat[valid[local], frame.columns.get_loc("duplicate_group")] = group_ids[root[local]]
    for _group, members in frame[frame["duplicate_group"] >= 0].groupby("duplicate_group"):
        _resolve_group(frame, members)
    return frame[MANIFEST_COLUMNS].sort_values("file", kind="stable").reset_index(drop=True)


def _resolve_group(frame: pd.DataFrame, members: pd.DataFrame) -> None:
    labelled = members[members["status"] == "kept"]
    if labelled.empty:
        return
    exact = members["sha256"].nunique() == 1
    kind = "byte-identical" if exact else "near-identical"
    labels = set(map(tuple, labelled[["age", "gender", "race"]].to_numpy().tolist()))
    if len(labels) > 1:
        shown = ", ".join("/".join(map(str, lab)) for lab in sorted(labels))
        frame.loc[labelled.index, "status"] = "conflicting_labels"
        frame.loc[labelled.index, "reason"] = (f"{kind} group of {len(members)} with conflicting "
                                               f"age/gender/race labels: {shown}")
        return
    first = labelled.sort_values("file").index[0]
    others = labelled.index.drop(first)
    frame.loc[others, "status"] = "duplicate"
    frame.loc[others, "reason"] = f"{kind} copy of {frame.at[first, 'file']}"


def summarize(manifest: pd.DataFrame, config: CleaningConfig) -> dict:
    """Counts per status and reason, raw label counts (before cleaning) and after cleaning."""
    kept = manifest[manifest["status"] == "kept"]

    def label_counts(frame: pd.DataFrame) -> dict:
        return {
            "images": int(len(frame)),
            "gender": {str(k): int(v) for k, v in frame["gender"].value_counts().sort_index().items()},
            "race": {str(k): int(v) for k, v in frame["race"].value_counts().sort_index().items()},
            "age_21_30": int(frame["age"].between(21, 30).sum()),
            "age_under_18": int(((frame["age"] >= 1) & (frame["age"] < 18)).sum()),
            f"age_{band_key(MINORS)}": int(in_band(frame["age"], MINORS).sum()),
        }

    groups = manifest[manifest["duplicate_group"] >= 0].groupby("duplicate_group")
    exact_groups = int(sum(g["sha256"].nunique() == 1 for _, g in groups))
    conflicting = int(manifest.loc[manifest["status"] == "conflicting_labels", "duplicate_group"].nunique())
    return {
        "images_in": int(len(manifest)),
        "images_out": int(len(kept)),
        "status_counts": {k: int(v) for k, v in manifest["status"].value_counts().items()},
        "race_missing_kept": int((kept["race"] == MISSING).sum()),
        "duplicate_groups": int(groups.ngroups),
        "duplicate_groups_byte_identical": exact_groups,
        "duplicate_groups_near_identical": int(groups.ngroups) - exact_groups,
        "duplicate_groups_conflicting": conflicting,
        "images_in_duplicate_groups": int((manifest["duplicate_group"] >= 0).sum()),
        "raw": label_counts(manifest),
        "clean": label_counts(kept),
        "policy": dataclasses.asdict(config),
    }


def clean(source: Path, config: CleaningConfig = CleaningConfig()) -> tuple[pd.DataFrame, dict]:
    """Scan ``source`` (tarball or folder) and return (manifest, summary)."""
    rows, thumbs = scan(source, config)
    manifest = apply_policy(rows, thumbs, config)
    return manifest, summarize(manifest, config)


def reason_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """Short table for the report: images per status with a typical reason."""
    category = (manifest["reason"].str.split(":").str[0]
                .str.replace(r" group of \d+ with conflicting.*", " group, conflicting labels", regex=True)
                .str.replace(r" copy of .*", " copy of a kept image", regex=True)
                .str.replace(r"\(.*", "", regex=True).str.strip())
    table = (manifest.assign(reason=category)
             .groupby(["status", "reason"]).size().rename("images").reset_index())
    table["reason"] = table["reason"].replace("", "-")
    order = {s: i for i, s in enumerate(("kept", *EXCLUDED))}
    return table.sort_values(["status", "images"], key=lambda c: c.map(order) if c.name == "status"
                             else -c).reset_index(drop=True)


def write_outputs(out_dir: Path, manifest: pd.DataFrame, summary: dict) -> None:
    """manifest.csv, summary.json and cleaning_table.csv under ``out_dir``."""
    from research.outputs import write_csv, write_json

    write_csv(out_dir / "manifest.csv", manifest)
    write_csv(out_dir / "cleaning_table.csv", reason_table(manifest))
    groups = manifest[manifest["duplicate_group"] >= 0].sort_values(["duplicate_group", "file"])
    write_csv(out_dir / "duplicate_groups.csv",
              groups[["duplicate_group", "file", "age", "gender", "race", "status", "sha256"]])
    write_json(out_dir / "summary.json", summary)
