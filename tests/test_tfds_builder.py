"""The UTKFace TFDS builder on a tiny synthetic UTKFace-style folder, built and read without TF."""

import hashlib
import io
import sys
import tarfile

import numpy as np
import pandas as pd
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from research.data.locate import DatasetNotFoundError
from research.data.tfds_builder import Utkface, check_image, find_archive, read_split_csv, split_examples

# (file name, split); race is missing in the malformed real-style name "39_1_<stamp>".
FILES = [
    ("25_0_1_20170116174525125.jpg.chip.jpg", "train"),
    ("26_1_0_20170116174525126.jpg.chip.jpg", "train"),
    ("1_0_2_20170116174525127.jpg.chip.jpg", "train"),
    ("116_1_3_20170116174525128.jpg.chip.jpg", "train"),
    ("40_0_4_20170116174525129.jpg.chip.jpg", "train"),
    ("39_1_20170116174525125.jpg.chip.jpg", "train"),
    ("30_0_0_20170116174525130.jpg.chip.jpg", "val"),
    ("31_1_1_20170116174525131.jpg.chip.jpg", "val"),
    ("60_0_2_20170116174525132.jpg.chip.jpg", "val"),
    ("8_1_3_20170116174525133.jpg.chip.jpg", "test"),
    ("70_0_4_20170116174525134.jpg.chip.jpg", "test"),
    ("21_1_0_20170116174525135.jpg.chip.jpg", "test"),
]
EXCLUDED = "22_0_0_20170116174525136.jpg.chip.jpg"  # in the folder, not in the split (cleaned out)


def _jpeg(shade: int, size: tuple[int, int] = (200, 200), mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, (shade, 255 - shade, shade // 2) if mode == "RGB" else shade).save(buffer, "JPEG")
    return buffer.getvalue()


def _labels(name: str) -> tuple[int, int, int]:
    fields = name.split("_")
    return int(fields[0]), int(fields[1]), int(fields[2]) if len(fields) == 4 else -1


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A UTKFace/ folder of 13 JPEGs and a split CSV for 12 of them; returns (root, csv, table)."""
    root = tmp_path_factory.mktemp("raw")
    folder = root / "UTKFace"
    folder.mkdir()
    rows = []
    for index, (name, split) in enumerate(FILES):
        blob = _jpeg(20 * index)
        (folder / name).write_bytes(blob)
        age, gender, race = _labels(name)
        rows.append({"file": name, "sha256": hashlib.sha256(blob).hexdigest(), "age": age,
                     "gender": gender, "race": race, "split": split})
    (folder / EXCLUDED).write_bytes(_jpeg(250))
    table = pd.DataFrame(rows)
    csv = root / "split.csv"
    table.to_csv(csv, index=False)
    return root, csv, table


@pytest.fixture(scope="module")
def built(synthetic, tmp_path_factory):
    root, csv, _ = synthetic
    data_dir = tmp_path_factory.mktemp("tfds")
    builder = Utkface(config="utkface", data_dir=data_dir, data_path=root, split_csv=csv)
    builder.download_and_prepare()
    return builder, data_dir


def test_build_writes_array_record_splits_of_the_csv(built, synthetic):
    builder, _ = built
    sizes = {name: split.num_examples for name, split in builder.info.splits.items()}
    assert sizes == {"train": 6, "val": 3, "test": 3}
    assert builder.info.file_format.value == "array_record"
    assert list(builder.data_path.glob("utkface-train.array_record-*"))
    assert builder.info.metadata["split_csv_sha256"] == hashlib.sha256(synthetic[1].read_bytes()).hexdigest()


def test_data_source_reads_back_labels_and_images_without_tensorflow(built, synthetic):
    _, data_dir = built
    table = synthetic[2].set_index("file")
    sources = tfds.data_source("utkface/utkface", data_dir=data_dir)
    for split in ("train", "val", "test"):
        examples = [sources[split][i] for i in range(len(sources[split]))]
        names = sorted(e["file_name"].decode() for e in examples)
        assert names == sorted(table.index[table["split"] == split])
        for example in examples:
            row = table.loc[example["file_name"].decode()]
            assert (example["age"], example["gender"], example["race"]) == (row.age, row.gender, row.race)
            image = example["image"]
            assert image.shape == (200, 200, 3) and image.dtype == np.uint8
            shade = 20 * [name for name, _ in FILES].index(row.name)
            assert np.abs(image.mean(axis=(0, 1)) - [shade, 255 - shade, shade // 2]).max() < 3
    assert "tensorflow" not in sys.modules  # the whole round trip stayed TF-free


def test_stored_jpeg_bytes_are_the_original_file(built, synthetic):
    builder, _ = built
    root = synthetic[0]
    source = builder.as_data_source(split="val", decoders={"image": tfds.decode.SkipDecoding()})
    example = source[0]
    assert example["image"] == (root / "UTKFace" / example["file_name"].decode()).read_bytes()


def test_builds_from_tarball_in_manual_dir(synthetic, tmp_path):
    root, csv, table = synthetic
    manual = tmp_path / "downloads" / "manual"
    manual.mkdir(parents=True)
    with tarfile.open(manual / "UTKFace.tar.gz", "w:gz") as tar:
        tar.add(root / "UTKFace", arcname="UTKFace")
    assert find_archive(manual) == manual / "UTKFace.tar.gz"
    builder = Utkface(config="coral", data_dir=tmp_path, split_csv=csv)
    builder.download_and_prepare()
    test = builder.as_data_source(split="test")
    assert sorted(test[i]["file_name"].decode() for i in range(len(test))) == sorted(
        table["file"][table["split"] == "test"])


def test_missing_manual_data_says_where_to_get_it(synthetic, tmp_path):
    builder = Utkface(config="utkface", data_dir=tmp_path, split_csv=synthetic[1])
    with pytest.raises(AssertionError, match="susanqq.github.io/UTKFace"):
        builder.download_and_prepare()
    (tmp_path / "downloads" / "manual").mkdir(parents=True)
    (tmp_path / "downloads" / "manual" / "notes.txt").write_text("not the data")
    with pytest.raises(DatasetNotFoundError, match="UTKFace.tar.gz"):
        find_archive(tmp_path / "downloads" / "manual")


def test_bad_inputs_raise(synthetic, tmp_path):
    root, _, table = synthetic
    blob = _jpeg(10)
    with pytest.raises(ValueError, match="sha256"):
        check_image("x.jpg", blob, "0" * 64)
    for bad in (_jpeg(10, size=(100, 200)), _jpeg(10, mode="L")):
        with pytest.raises(ValueError, match="200x200 RGB JPEG"):
            check_image("x.jpg", bad, hashlib.sha256(bad).hexdigest())
    absent = table.assign(file=table["file"].str.replace("_2017", "_1999"))
    with pytest.raises(FileNotFoundError, match="not in"):
        list(split_examples(root, absent))
    table.assign(gender=-1).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match="gender"):
        read_split_csv(tmp_path / "bad.csv")
