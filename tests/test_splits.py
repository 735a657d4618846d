"""Splits for both protocols on manifests built directly (no images needed)."""

import numpy as np
import pandas as pd
import pytest

from research.data.splits import (
    SPLIT_COLUMNS,
    coral_split,
    read_coral_csv,
    split_sizes,
    stratified_assign,
    utkface_split,
)
from research.vocabulary import age_group

FRACTIONS = {"train": 0.7, "val": 0.1, "test": 0.2}
# (age, gender, race) -> images: uneven strata, so rounding is exercised (47 * 0.1 = 4.7, ...).
STRATA = {(8, 0, 0): 60, (15, 1, 2): 47, (22, 0, 4): 33, (30, 1, 1): 80, (50, 0, 3): 21, (70, 1, 0): 9,
          (40, 0, 1): 50}


def _row(i, age, gender, race, status="kept", group=-1):
    return {"file": f"{age}_{gender}_{race}_{20170116000000000 + i}.jpg.chip.jpg", "sha256": f"{i:064x}",
            "age": age, "gender": gender, "race": race, "status": status, "reason": "",
            "duplicate_group": group, "phash": "0" * 16}


def _manifest(strata=STRATA, extra=()):
    rows = [(age, gender, race) for (age, gender, race), n in strata.items() for _ in range(n)]
    frame = pd.DataFrame([_row(i, *labels) for i, labels in enumerate(rows)])
    return pd.concat([frame, pd.DataFrame(list(extra))], ignore_index=True) if extra else frame


def _stratum(frame):
    return frame["age"].map(age_group) + "|" + frame["gender"].astype(str) + "|" + frame["race"].astype(str)


def _grouped_manifest(groups=40):
    """The manifest with ``groups`` groups of 2-4 kept rows (one stratum each, as if consistent)."""
    manifest = _manifest()
    rng = np.random.default_rng(0)
    group = 0
    for _, rows in manifest.groupby(_stratum(manifest)):
        index = list(rng.permutation(rows.index))  # members far apart in name order
        while len(index) >= 4 and group < groups:
            size = 2 + group % 3
            manifest.loc[index[:size], "duplicate_group"] = group
            index, group = index[size:], group + 1
    assert group == groups
    return manifest


def test_same_seed_gives_the_same_csv(tmp_path):
    manifest = _grouped_manifest()
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    utkface_split(manifest, seed=3).to_csv(first, index=False)
    shuffled = manifest.sample(frac=1, random_state=1)  # input row order must not matter
    utkface_split(shuffled, seed=3).to_csv(second, index=False)
    assert first.read_bytes() == second.read_bytes()


def test_other_seed_gives_another_assignment():
    manifest = _manifest()
    one = utkface_split(manifest, seed=0).set_index("file")["split"]
    two = utkface_split(manifest, seed=1).set_index("file")["split"]
    assert (one != two.loc[one.index]).mean() > 0.2
    assert split_sizes(utkface_split(manifest, 0)) == split_sizes(utkface_split(manifest, 1))


def test_proportions_per_stratum_are_70_10_20():
    split = utkface_split(_manifest(), seed=0)
    assert list(split.columns) == SPLIT_COLUMNS
    assert len(split) == sum(STRATA.values())
    for stratum, rows in split.groupby(_stratum(split)):
        counts = rows["split"].value_counts()
        for name, fraction in FRACTIONS.items():
            # Cutting at rounded cumulative fractions is never more than one image off.
            assert abs(counts.get(name, 0) - fraction * len(rows)) <= 1, (stratum, name, counts.to_dict())
    overall = split["split"].value_counts(normalize=True)
    for name, fraction in FRACTIONS.items():
        assert overall[name] == pytest.approx(fraction, abs=0.02)


def test_only_kept_rows_are_split():
    excluded = [_row(1000 + k, 30, 0, 1, status=s) for k, s in
                enumerate(["corrupt", "missing_label", "conflicting_labels", "duplicate"])]
    manifest = _manifest(extra=excluded)
    split = utkface_split(manifest, seed=0)
    assert set(split["file"]) == set(manifest.loc[manifest["status"] == "kept", "file"])
    assert split["split"].notna().all()


def test_duplicate_groups_never_straddle_splits():
    manifest = _grouped_manifest()
    for seed in range(5):
        split = utkface_split(manifest, seed).merge(manifest[["file", "duplicate_group"]], on="file")
        grouped = split[split["duplicate_group"] >= 0].groupby("duplicate_group")["split"].nunique()
        assert len(grouped) == 40 and (grouped == 1).all()


def test_fractions_must_sum_to_one():
    with pytest.raises(ValueError, match="sum to 1"):
        stratified_assign(_manifest(), {"train": 0.7, "test": 0.2}, seed=0)


# ---- CORAL protocol -------------------------------------------------------------------------


def _write_coral(path, frame, offset=21):
    """The CORAL csv layout: an unnamed index column, file, and age as a class label (age - 21)."""
    pd.DataFrame({"file": frame["file"], "age": frame["age"] - offset}).to_csv(path)


@pytest.fixture
def coral(tmp_path):
    """A manifest and CORAL files: 200 train rows in 4 strata, 30 test rows, with leaks and bad rows."""
    strata = {(25, 0, 0): 60, (30, 1, 0): 50, (40, 0, 0): 50, (38, 1, 0): 40, (33, 0, 1): 30}
    manifest = _manifest(strata)
    test_files = manifest.index[-30:]
    train_files = manifest.index[:-30]
    # Test: one corrupt (dropped), one missing label (dropped), one duplicate-of-kept (kept: usable).
    manifest.loc[test_files[0], "status"] = "corrupt"
    manifest.loc[test_files[1], "status"] = "missing_label"
    manifest.loc[test_files[2], ["status", "duplicate_group"]] = ["duplicate", 7]
    manifest.loc[test_files[3], ["status", "duplicate_group"]] = ["conflicting_labels", 8]
    # Train: two rows share groups with test rows (leaks), two were excluded by cleaning.
    manifest.loc[train_files[0], "duplicate_group"] = 7
    manifest.loc[train_files[1], ["status", "duplicate_group"]] = ["conflicting_labels", 8]
    manifest.loc[train_files[2], "status"] = "duplicate"
    manifest.loc[train_files[3], "status"] = "corrupt"
    # Train rows in one group among themselves (must stay together).
    manifest.loc[train_files[10:13], "duplicate_group"] = 9
    coral_files = manifest.copy()
    coral_files.loc[train_files[20], "age"] += 1  # a CORAL label that disagrees with the file name
    _write_coral(tmp_path / "utk_train.csv", coral_files.loc[train_files])
    _write_coral(tmp_path / "utk_test.csv", coral_files.loc[test_files])
    return manifest, tmp_path, manifest.loc[train_files, "file"], manifest.loc[test_files, "file"]


def test_read_coral_csv_adds_the_age_offset(coral):
    manifest, folder, train_files, _ = coral
    raw = pd.read_csv(folder / "utk_train.csv")
    assert list(raw.columns) == ["Unnamed: 0", "file", "age"]
    read = read_coral_csv(folder / "utk_train.csv")
    ages = manifest.set_index("file").loc[read["file"], "age"].to_numpy()
    assert (read["coral_age"].to_numpy() == ages).sum() == len(read) - 1
    assert read["coral_age"].min() >= 21


def test_coral_test_file_kept_whole_minus_unusable(coral):
    manifest, folder, _, test_files = coral
    split, removed = coral_split(manifest, folder, seed=0)
    test = split[split["split"] == "test"]
    assert set(test["file"]) == set(test_files.iloc[2:])  # corrupt and unlabelled rows dropped
    assert removed["coral_test_rows"] == 30 and removed["test_removed_unusable"] == 2


def test_coral_train_loses_cleaned_rows_and_duplicates_of_test(coral):
    manifest, folder, train_files, test_files = coral
    split, removed = coral_split(manifest, folder, seed=0)
    trainval = split[split["split"] != "test"]
    assert set(trainval["file"]) == set(train_files.iloc[4:])
    assert removed["train_removed_by_cleaning"] == 3
    assert removed["train_removed_duplicate_of_test"] == 1
    assert removed["age_label_mismatches_with_file_names"] == 1
    assert not set(trainval["file"]) & set(split.loc[split["split"] == "test", "file"])


def test_coral_val_is_about_ten_percent_and_groups_stay_together(coral):
    manifest, folder, train_files, _ = coral
    split, _ = coral_split(manifest, folder, seed=0)
    trainval = split[split["split"] != "test"]
    assert set(trainval["split"]) == {"train", "val"}
    assert (trainval["split"] == "val").mean() == pytest.approx(0.1, abs=0.02)
    assert split.loc[split["file"].isin(train_files.iloc[10:13]), "split"].nunique() == 1
    again, _ = coral_split(manifest, folder, seed=0)
    pd.testing.assert_frame_equal(split, again)
    other, _ = coral_split(manifest, folder, seed=1)
    before, after = split.set_index("file")["split"], other.set_index("file")["split"]
    assert (after.loc[before.index] != before).any()


def test_coral_file_names_not_in_manifest_are_an_error(coral):
    manifest, folder, _, _ = coral
    with pytest.raises(ValueError, match="not in the manifest"):
        coral_split(manifest.iloc[1:], folder, seed=0)


def test_coral_csv_without_expected_columns_is_an_error(tmp_path):
    pd.DataFrame({"name": ["a.jpg"], "label": [3]}).to_csv(tmp_path / "utk_train.csv")
    with pytest.raises(ValueError, match="lacks columns"):
        read_coral_csv(tmp_path / "utk_train.csv")


def test_stratified_assign_is_repeatable_and_aligned_with_rows():
    manifest = _manifest()
    assigned = [stratified_assign(manifest, FRACTIONS, seed=5) for _ in range(2)]
    assert assigned[0].equals(assigned[1])
    assert np.array_equal(assigned[0].index, manifest.index)
