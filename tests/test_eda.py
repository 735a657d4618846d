"""EDA stage end to end on a tiny synthetic UTKFace folder: files written, counts from the manifest."""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from research.viz import eda
from research.vocabulary import AGE_GROUPS, ETHNICITIES, GENDERS

# (age, gender, race, status): every age group, both genders, every race, every cleaning status.
ROWS = [
    (1, 0, 2, "kept"), (1, 1, 0, "kept"), (5, 1, 1, "kept"), (9, 0, 3, "kept"), (10, 0, 0, "kept"),
    (13, 1, 4, "kept"), (17, 0, 1, "kept"), (18, 1, 2, "kept"), (20, 0, 0, "kept"), (21, 1, 3, "kept"),
    (24, 0, 0, "kept"), (25, 1, 1, "kept"), (26, 1, 0, "kept"), (26, 0, 2, "kept"), (26, 0, 0, "kept"),
    (30, 1, 0, "kept"), (31, 0, 4, "kept"), (34, 0, 3, "kept"), (35, 1, 1, "kept"), (39, 1, -1, "kept"),
    (44, 0, 0, "kept"), (45, 1, 2, "kept"), (59, 0, 3, "kept"), (60, 1, 0, "kept"), (85, 0, 1, "kept"),
    (116, 1, 2, "kept"), (26, 0, 0, "duplicate"), (40, 1, 1, "conflicting_labels"),
    (12, 1, 1, "conflicting_labels"), (70, 0, 4, "corrupt"), (-1, 0, 0, "missing_label"),
]


def _name(i: int, age: int, gender: int, race: int) -> str:
    labels = "_".join(str(v) for v in (age, gender, race) if v != -1)
    return f"{labels}_2017011617452{i:04d}.jpg.chip.jpg"


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A folder of 200x200 JPEGs (the 'corrupt' one is not an image) and its cleaning manifest."""
    root = tmp_path_factory.mktemp("utkface")
    data = root / "UTKFace"
    data.mkdir()
    rng = np.random.default_rng(0)
    records = []
    for i, (age, gender, race, status) in enumerate(ROWS):
        name = _name(i, age, gender, race)
        if status == "corrupt":
            (data / name).write_bytes(b"not a jpeg")
        else:
            pixels = rng.integers(0, 256, size=(200, 200, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(data / name, quality=80)
        records.append({"file": name, "sha256": f"{i:064x}", "age": age, "gender": gender, "race": race,
                        "status": status, "reason": "" if status == "kept" else status,
                        "duplicate_group": -1, "phash": "0" * 16})
    manifest = pd.DataFrame(records)
    out = root / "eda"
    summary = eda.explore(manifest, data, out, seed=3, grid=(2, 4), per_group=3)
    return manifest, data, out, summary


def _kept(manifest: pd.DataFrame) -> pd.DataFrame:
    return manifest[manifest["status"] == "kept"]


def test_writes_every_table_figure_and_summary(synthetic):
    _, _, out, summary = synthetic
    assert summary["figures"] and summary["tables"]
    for name in summary["figures"]:
        with Image.open(out / name) as image:
            assert image.format == "PNG" and min(image.size) > 200
    for name in summary["tables"]:
        assert len(pd.read_csv(out / name, keep_default_na=False)) > 0
    expected = {"age_histogram.png", "age_group_counts.png", "gender_ethnicity_counts.png",
                "age_by_gender_ethnicity.png", "gender_by_ethnicity_heatmap.png", "sample_grid.png",
                "age_group_samples.png", "before_after_cleaning.png", "age_group_counts.csv",
                "decade_counts.csv", "gender_counts.csv", "ethnicity_counts.csv", "gender_by_ethnicity.csv",
                "age_stats_by_group.csv", "before_after.csv", "status_counts.csv", "summary.json"}
    assert expected <= {p.name for p in out.iterdir()}
    assert json.loads((out / "summary.json").read_text())["provenance"]["data_sha256"]


def test_age_tables_match_manifest(synthetic):
    manifest, _, out, summary = synthetic
    ages = _kept(manifest)["age"]
    groups = pd.read_csv(out / "age_group_counts.csv")
    assert list(groups["age_group"]) == [label for label, _, _ in AGE_GROUPS]
    assert list(groups["images"]) == [int(ages.between(low, high).sum()) for _, low, high in AGE_GROUPS]
    decades = pd.read_csv(out / "decade_counts.csv")
    for binning, start in (("0-9", 0), ("1-10", 1)):
        table = decades[decades["binning"] == binning].set_index("low")["images"]
        assert table.to_dict() == ((ages - start) // 10 * 10 + start).value_counts().reindex(
            table.index, fill_value=0).to_dict()
        assert table.sum() == len(ages)
        top = ((ages - start) // 10).value_counts().idxmax() * 10 + start
        assert summary["largest_decade"][binning]["decade"] == f"{top}-{top + 9}"
    assert summary["largest_decade"]["1-10"] == {"decade": "21-30", "images": 7,
                                                 "percent": round(700 / 26, 2)}
    assert summary["images_kept"] == len(ages) == 26
    assert summary["most_common_ages"][0] == {"age": 26, "images": 3}


def test_label_tables_match_manifest(synthetic):
    manifest, _, out, _ = synthetic
    kept = _kept(manifest)
    genders = pd.read_csv(out / "gender_counts.csv").set_index("gender")["images"]
    assert genders.to_dict() == kept["gender"].value_counts().to_dict()
    races = pd.read_csv(out / "ethnicity_counts.csv", keep_default_na=False).set_index("race")
    assert races["images"].to_dict() == kept["race"].value_counts().to_dict()
    assert races.loc[-1, "ethnicity"] == "unknown"
    cross = pd.read_csv(out / "gender_by_ethnicity.csv", index_col="gender")
    direct = pd.crosstab(kept["gender"].map(GENDERS), kept["race"].map(ETHNICITIES).fillna("unknown"))
    for gender in GENDERS.values():
        for race in [*ETHNICITIES.values(), "unknown"]:
            assert cross.loc[gender, race] == direct.loc[gender, race], (gender, race)
    assert cross.loc["total", "total"] == len(kept)
    stats = pd.read_csv(out / "age_stats_by_group.csv").set_index(["grouping", "group"])
    for code, gender in GENDERS.items():
        ages = kept.loc[kept["gender"] == code, "age"]
        assert stats.loc[("gender", gender), "mean"] == pytest.approx(ages.mean(), abs=0.01)
        assert stats.loc[("gender", gender), "median"] == ages.median()
    assert stats.loc[("ethnicity", "White"), "images"] == (kept["race"] == 0).sum()


def test_before_after_and_status_match_manifest(synthetic):
    manifest, _, out, summary = synthetic
    kept = _kept(manifest)
    table = pd.read_csv(out / "before_after.csv", keep_default_na=False).set_index(["variable", "category"])
    assert tuple(table.loc[("all", "all"), ["raw", "kept"]]) == (len(manifest), len(kept))
    for code, gender in GENDERS.items():
        assert table.loc[("gender", gender), "raw"] == (manifest["gender"] == code).sum()
        assert table.loc[("gender", gender), "kept"] == (kept["gender"] == code).sum()
    assert table.loc[("age_group", "unknown"), "raw"] == 1  # the missing-label file
    assert table.loc[("age_group", "60+"), "removed"] == 1  # the corrupt 70-year-old
    statuses = pd.read_csv(out / "status_counts.csv").set_index("status")["images"]
    assert statuses.to_dict() == {"kept": 26, "corrupt": 1, "missing_label": 1, "conflicting_labels": 2,
                                  "duplicate": 1}
    assert summary["status_counts"] == statuses.to_dict()


def test_face_samples_are_seeded_and_only_clean(synthetic):
    manifest, data, _, _ = synthetic
    kept = eda.labelled(manifest)[lambda f: f["status"] == "kept"]
    first, again = (eda.sample_faces(kept, seed=5, grid=(2, 4), per_group=3) for _ in range(2))
    other = eda.sample_faces(kept, seed=6, grid=(2, 4), per_group=3)
    files = pd.concat(first["random"])["file"].tolist()
    assert files == pd.concat(again["random"])["file"].tolist()
    assert files != pd.concat(other["random"])["file"].tolist()
    assert len(set(files)) == 8 and set(files) <= set(kept["file"])
    assert list(first["age_group"]) == [label for label, _, _ in AGE_GROUPS]
    for label, part in first["age_group"].items():
        assert 1 <= len(part) <= 3 and set(part["age_group"]) == {label}
    with pytest.raises(FileNotFoundError, match="not in"):
        eda.load_faces(data, ["99_0_0_20170101000000000.jpg.chip.jpg"])
