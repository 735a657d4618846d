"""Train/validation/test splits for the two protocols, written as checksummed CSVs.

* ``utkface``: every clean image, stratified by age group x gender x ethnicity, 70/10/20.
* ``coral``: the CORAL benchmark split (ages 21-60, Cao et al. 2019). Its test file is kept whole
  (minus unreadable or unlabelled files) so that numbers stay comparable with the paper; its
  train file loses images that cleaning excluded and images whose duplicate group has a member in
  the test file; 10% of the rest, stratified, is validation.

Duplicate-group members never straddle splits: whole groups are assigned together.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from research.vocabulary import age_group

SPLIT_COLUMNS = ["file", "sha256", "age", "gender", "race", "split"]
CORAL_AGE_OFFSET = 21  # the CORAL csv's "age" column is a class label: true age - 21


def _strata(frame: pd.DataFrame) -> pd.Series:
    groups = frame["age"].map(age_group)
    return groups + "|" + frame["gender"].astype(str) + "|" + frame["race"].astype(str)


def _group_keys(frame: pd.DataFrame) -> pd.Series:
    """Duplicate group id, or a unique key for images outside any group."""
    return np.where(frame["duplicate_group"] >= 0, "g" + frame["duplicate_group"].astype(str),
                    "f" + frame["file"])


def stratified_assign(frame: pd.DataFrame, fractions: dict[str, float], seed: int) -> pd.Series:
    """Assign each row a split name, stratified by age group x gender x race, whole groups at once.

    Within each stratum the groups are shuffled with ``seed`` and cut at the cumulative
    fractions, so every stratum is split in (close to) the same proportions.
    """
    if not np.isclose(sum(fractions.values()), 1.0):
        raise ValueError(f"split fractions must sum to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    keys = pd.Series(_group_keys(frame), index=frame.index)
    # A group is stratified by its first member (members of a kept group share labels).
    first = frame.assign(key=keys).sort_values("file").drop_duplicates("key")
    first = first.assign(stratum=_strata(first)).sort_values(["stratum", "file"])
    names, bounds = list(fractions), np.cumsum(list(fractions.values()))
    assigned: dict[str, str] = {}
    for _, stratum in first.groupby("stratum", sort=True):
        order = rng.permutation(len(stratum))
        cuts = np.round(bounds * len(stratum)).astype(int)
        position = np.searchsorted(cuts, np.arange(len(stratum)), side="right")
        for key, slot in zip(stratum["key"].to_numpy()[order], position, strict=False):
            assigned[key] = names[min(slot, len(names) - 1)]
    return keys.map(assigned)


def utkface_split(manifest: pd.DataFrame, seed: int,
                  fractions: dict[str, float] | None = None) -> pd.DataFrame:
    """Protocol ``utkface``: all kept images, 70/10/20 by default."""
    fractions = fractions or {"train": 0.7, "val": 0.1, "test": 0.2}
    kept = manifest[manifest["status"] == "kept"].copy()
    kept["split"] = stratified_assign(kept, fractions, seed)
    return kept[SPLIT_COLUMNS].sort_values(["split", "file"]).reset_index(drop=True)


def read_coral_csv(path: Path) -> pd.DataFrame:
    """One CORAL split file: file name and true age (its label column + 21)."""
    frame = pd.read_csv(path)
    missing = {"file", "age"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path} lacks columns {sorted(missing)}; expected the CORAL utk_*.csv format")
    return pd.DataFrame({"file": frame["file"], "coral_age": frame["age"] + CORAL_AGE_OFFSET})


def coral_split(manifest: pd.DataFrame, coral_dir: Path, seed: int,
                val_fraction: float = 0.1) -> tuple[pd.DataFrame, dict]:
    """Protocol ``coral``. Returns the split and a dict of what was removed and why."""
    info = manifest.set_index("file")
    usable = info["status"].isin(["kept", "duplicate", "conflicting_labels"])
    test = read_coral_csv(coral_dir / "utk_test.csv")
    train = read_coral_csv(coral_dir / "utk_train.csv")
    for name, part in (("test", test), ("train", train)):
        unknown = set(part["file"]) - set(info.index)
        if unknown:
            raise ValueError(f"CORAL {name} file names not in the manifest: {sorted(unknown)[:3]}")
    test_ok = test[usable.loc[test["file"]].to_numpy()]
    test_groups = set(info.loc[test_ok["file"], "duplicate_group"]) - {-1}
    train_kept = train[(info.loc[train["file"], "status"] == "kept").to_numpy()]
    leaks = info.loc[train_kept["file"], "duplicate_group"].isin(test_groups).to_numpy()
    train_ok = train_kept[~leaks]
    rows = manifest.set_index("file").loc[list(train_ok["file"])].reset_index()
    rows["split"] = stratified_assign(rows, {"train": 1 - val_fraction, "val": val_fraction}, seed)
    test_rows = manifest.set_index("file").loc[list(test_ok["file"])].reset_index().assign(split="test")
    split = pd.concat([rows, test_rows])[SPLIT_COLUMNS]
    label_mismatch = int((pd.concat([train, test]).set_index("file")["coral_age"]
                          != info.loc[pd.concat([train, test])["file"], "age"]).sum())
    removed = {
        "coral_train_rows": len(train), "coral_test_rows": len(test),
        "test_removed_unusable": len(test) - len(test_ok),
        "train_removed_by_cleaning": len(train) - len(train_kept),
        "train_removed_duplicate_of_test": int(leaks.sum()),
        "age_label_mismatches_with_file_names": label_mismatch,
    }
    return split.sort_values(["split", "file"]).reset_index(drop=True), removed


def split_checksum(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def split_sizes(split: pd.DataFrame) -> dict[str, int]:
    return {k: int(v) for k, v in split["split"].value_counts().sort_index().items()}
