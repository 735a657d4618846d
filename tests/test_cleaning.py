"""Cleaning on a synthetic UTKFace folder seeded with every kind of bad file and duplicate."""

import hashlib
import io
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from research.data.cleaning import MANIFEST_COLUMNS, CleaningConfig, clean, inspect_image
from research.data.labels import parse_filename
from research.vocabulary import MISSING

STAMP = 20170117000000000  # later than the base folder's stamps, so extra names sort predictably


def _name(age, gender, race, k):
    return f"{age}_{gender}_{race}_{STAMP + k}.jpg.chip.jpg"


def _jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _smooth(seed: int, size=(200, 200)) -> Image.Image:
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (5, 5, 3), dtype=np.uint8))
    return coarse.resize(size, Image.Resampling.BICUBIC)


@pytest.fixture(scope="module")
def dirty(tmp_path_factory, utk_writer):
    """The 40-image base folder plus one file per case; returns (folder, {case: file name})."""
    folder = utk_writer(tmp_path_factory.mktemp("dirty") / "UTKFace")
    base = sorted(p.name for p in folder.iterdir())
    # Base names sort by age first; pick three by their labels.
    a, b, c, d = (next(n for n in base if n.startswith(p)) for p in ("30_", "40_", "52_", "45_"))
    cases = {
        "truncated": _name(30, 1, 2, 1), "empty": _name(31, 0, 0, 2), "empty_too": _name(32, 1, 1, 3),
        "text": _name(33, 0, 3, 4), "grey": _name(34, 1, 4, 5), "small": _name(35, 0, 1, 6),
        "exact_same": _name(*parse_labels(a), 7), "exact_conflict": _name(41, 1, 0, 8),
        "near_conflict": _name(53, 0, 2, 9), "near_same": _name(*parse_labels(d), 10),
        "race_missing": f"39_1_{STAMP + 11}.jpg.chip.jpg", "age_zero": _name(0, 0, 1, 12),
        "space": f"24_0_1_{STAMP + 13} .jpg.chip.jpg", "nodot": f"55_0_0_{STAMP + 14}jpg.chip.jpg",
        "unlabelled_copy": f"200_0_1_{STAMP + 15}.jpg.chip.jpg",
        "a": a, "b": b, "c": c, "d": d,
    }
    whole = (folder / base[0]).read_bytes()
    (folder / cases["truncated"]).write_bytes(whole[: len(whole) // 2])
    (folder / cases["empty"]).write_bytes(b"")
    (folder / cases["empty_too"]).write_bytes(b"")
    (folder / cases["text"]).write_text("this is not a JPEG\n")
    (folder / cases["grey"]).write_bytes(_jpeg(_smooth(1).convert("L")))
    (folder / cases["small"]).write_bytes(_jpeg(_smooth(2, (100, 100))))
    shutil.copy(folder / a, folder / cases["exact_same"])
    shutil.copy(folder / b, folder / cases["exact_conflict"])
    (folder / cases["near_conflict"]).write_bytes(_jpeg(Image.open(folder / c), quality=60))
    shifted = np.roll(np.asarray(Image.open(folder / d)), 1, axis=1)  # one-pixel shift
    (folder / cases["near_same"]).write_bytes(_jpeg(Image.fromarray(shifted)))
    (folder / cases["race_missing"]).write_bytes(_jpeg(_smooth(3)))
    (folder / cases["age_zero"]).write_bytes(_jpeg(_smooth(4)))
    (folder / cases["space"]).write_bytes(_jpeg(_smooth(5)))
    (folder / cases["nodot"]).write_bytes(_jpeg(_smooth(6)))
    shutil.copy(folder / base[-1], folder / cases["unlabelled_copy"])  # age 200: missing label
    cases["last"] = base[-1]
    return folder, cases


def parse_labels(name):
    labels = parse_filename(name)
    return labels.age, labels.gender, labels.race


@pytest.fixture(scope="module")
def cleaned(dirty):
    folder, cases = dirty
    manifest, summary = clean(folder)
    return manifest.set_index("file", drop=False), summary, cases


def test_manifest_has_the_documented_columns_one_row_per_file(cleaned, dirty):
    manifest, _, _ = cleaned
    folder, _ = dirty
    assert {"file", "sha256", "age", "gender", "race", "status", "reason", "duplicate_group"} <= set(
        manifest.columns)
    assert list(manifest.columns) == MANIFEST_COLUMNS
    assert sorted(manifest["file"]) == sorted(p.name for p in folder.iterdir())
    assert list(manifest["file"]) == sorted(manifest["file"])
    for name in manifest["file"][:5]:
        assert manifest.at[name, "sha256"] == hashlib.sha256((folder / name).read_bytes()).hexdigest()


@pytest.mark.parametrize("case, reason", [
    ("truncated", "truncated image"),
    ("empty", "empty file"),
    ("empty_too", "empty file"),
    ("text", "not a decodable image"),
    ("grey", "unexpected mode L"),
    ("small", "unexpected size 100x100"),
])
def test_bad_files_are_corrupt_with_a_reason(cleaned, case, reason):
    manifest, _, cases = cleaned
    row = manifest.loc[cases[case]]
    assert row["status"] == "corrupt"
    assert row["reason"].startswith(reason)
    assert row["duplicate_group"] == -1  # two empty files are byte-identical but not a duplicate group


def test_distinct_synthetic_images_are_all_kept(cleaned):
    manifest, _, cases = cleaned
    special = {cases[k] for k in ("a", "b", "c", "d", "last")}
    from_base_folder = manifest["file"].map(lambda f: int(f.split("_")[-1][:17]) < STAMP)
    base = manifest[from_base_folder & ~manifest["file"].isin(special)]
    assert len(base) == 35
    assert (base["status"] == "kept").all()
    assert (base["duplicate_group"] == -1).all()
    assert (base["reason"] == "").all()


def test_byte_identical_copy_with_same_labels_keeps_first_by_name(cleaned):
    manifest, _, cases = cleaned
    first, copy = manifest.loc[cases["a"]], manifest.loc[cases["exact_same"]]
    assert cases["a"] < cases["exact_same"]
    assert first["status"] == "kept" and copy["status"] == "duplicate"
    assert first["duplicate_group"] == copy["duplicate_group"] >= 0
    assert copy["reason"] == f"byte-identical copy of {cases['a']}"
    assert (manifest["duplicate_group"] == first["duplicate_group"]).sum() == 2


def test_byte_identical_copy_with_other_labels_excludes_both(cleaned):
    manifest, _, cases = cleaned
    pair = manifest.loc[[cases["b"], cases["exact_conflict"]]]
    assert (pair["status"] == "conflicting_labels").all()
    assert pair["duplicate_group"].nunique() == 1 and pair["duplicate_group"].iloc[0] >= 0
    assert pair["reason"].str.startswith("byte-identical group of 2 with conflicting").all()
    shown = "/".join(map(str, parse_labels(cases["b"])))
    assert shown != "41/1/0"
    assert pair["reason"].str.contains(shown).all() and pair["reason"].str.contains("41/1/0").all()


def test_near_identical_reencode_with_other_labels_excludes_both(cleaned):
    manifest, _, cases = cleaned
    pair = manifest.loc[[cases["c"], cases["near_conflict"]]]
    assert pair["sha256"].nunique() == 2
    assert (pair["status"] == "conflicting_labels").all()
    assert pair["duplicate_group"].nunique() == 1 and pair["duplicate_group"].iloc[0] >= 0
    assert pair["reason"].str.startswith("near-identical group of 2").all()


def test_near_identical_shift_with_same_labels_is_a_duplicate(cleaned):
    manifest, _, cases = cleaned
    first, copy = manifest.loc[cases["d"]], manifest.loc[cases["near_same"]]
    assert first["status"] == "kept" and copy["status"] == "duplicate"
    assert first["duplicate_group"] == copy["duplicate_group"] >= 0
    assert copy["reason"] == f"near-identical copy of {cases['d']}"


def test_unlabelled_copy_shares_a_group_but_does_not_conflict(cleaned):
    manifest, _, cases = cleaned
    kept, unlabelled = manifest.loc[cases["last"]], manifest.loc[cases["unlabelled_copy"]]
    assert kept["status"] == "kept"
    assert unlabelled["status"] == "missing_label" and unlabelled["age"] == MISSING
    assert kept["duplicate_group"] == unlabelled["duplicate_group"] >= 0


def test_label_policy_for_malformed_names(cleaned):
    manifest, _, cases = cleaned
    race = manifest.loc[cases["race_missing"]]
    assert race["status"] == "kept" and race["race"] == MISSING and (race["age"], race["gender"]) == (39, 1)
    assert race["reason"].startswith("race label missing, kept") and "race missing" in race["reason"]
    age = manifest.loc[cases["age_zero"]]
    assert age["status"] == "missing_label" and age["reason"] == "age out of range (0)"
    for case, labels in (("space", (24, 0, 1)), ("nodot", (55, 0, 0))):
        row = manifest.loc[cases[case]]
        assert row["status"] == "kept" and (row["age"], row["gender"], row["race"]) == labels
        assert "irregular separator" in row["reason"]


def test_summary_counts_match_the_manifest(cleaned):
    manifest, summary, _ = cleaned
    assert summary["status_counts"] == manifest["status"].value_counts().to_dict()
    assert summary["status_counts"] == {"kept": 41, "corrupt": 6, "duplicate": 2, "conflicting_labels": 4,
                                        "missing_label": 2}
    kept = manifest[manifest["status"] == "kept"]
    assert summary["images_in"] == len(manifest) == 55
    assert summary["images_out"] == len(kept) == 41
    assert summary["race_missing_kept"] == 1
    assert summary["duplicate_groups"] == manifest.loc[manifest["duplicate_group"] >= 0,
                                                       "duplicate_group"].nunique() == 5
    assert summary["duplicate_groups_byte_identical"] == 3
    assert summary["duplicate_groups_near_identical"] == 2
    assert summary["duplicate_groups_conflicting"] == 2
    assert summary["images_in_duplicate_groups"] == 10
    assert summary["clean"]["images"] == 41
    assert summary["clean"]["gender"] == {str(k): v for k, v in kept["gender"].value_counts().sort_index()
                                          .items()}
    assert summary["policy"]["phash_max_distance"] == CleaningConfig().phash_max_distance


def test_tarball_and_folder_give_identical_manifests(dirty, tmp_path, tarball_writer):
    folder, _ = dirty
    tarball = tarball_writer(folder, tmp_path / "UTKFace.tar.gz", order_seed=7)  # not name order
    from_tar, tar_summary = clean(tarball)
    from_folder, folder_summary = clean(folder)
    pd.testing.assert_frame_equal(from_tar, from_folder)
    assert tar_summary == folder_summary


def test_thresholds_come_from_the_config(dirty):
    folder, cases = dirty
    blob = (folder / cases["small"]).read_bytes()
    assert inspect_image(blob, CleaningConfig())[0] == "unexpected size 100x100"
    assert inspect_image(blob, CleaningConfig(image_size=(100, 100)))[0] is None
    strict, _ = clean(folder, CleaningConfig(phash_max_distance=0, thumb_max_mad=0.0))
    strict = strict.set_index("file")
    assert strict.at[cases["near_same"], "status"] == "kept"  # a shift is no longer "near"
    assert strict.at[cases["exact_same"], "status"] == "duplicate"  # exact copies still are


def test_thumbnail_guard_separates_images_whose_hashes_match(dirty):
    folder, cases = dirty
    # Every pair passes a 64-bit hash test; only the thumbnail difference tells faces apart.
    loose, _ = clean(folder, CleaningConfig(phash_max_distance=64))
    loose = loose.set_index("file")
    grouped = loose[loose["duplicate_group"] >= 0]
    assert grouped["duplicate_group"].nunique() == 5 and len(grouped) == 10
    assert loose.at[cases["near_same"], "status"] == "duplicate"
