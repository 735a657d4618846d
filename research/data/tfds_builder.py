"""TFDS builder for UTKFace: a committed split CSV plus the official archive -> array_record files.

Works without TensorFlow (checked with tensorflow-datasets 4.9.10, TF not installed):
``download_and_prepare`` serialises with tfds' own vendored ``tf.Example`` protos and writes
``array_record`` files, and ``tfds.data_source`` / ``builder.as_data_source()`` read them back,
decoding JPEGs with PIL (or OpenCV when installed). What still needs TF: ``tfds.load`` and
``builder.as_dataset`` (they build a ``tf.data.Dataset``), the ``tfrecord`` file format, and
``tfds.features.Image`` given a NumPy array (it encodes through a TF graph). This builder hands the
Image feature the original JPEG bytes, which tfds stores unchanged, so TF is never needed.

Build (from the project root)::

    python scripts/build_tfds.py --protocol utkface          # -> data/tfds/utkface/utkface/1.0.0

Read::

    import tensorflow_datasets as tfds
    import research.data.tfds_builder  # registers 'utkface'
    train = tfds.data_source("utkface/utkface", split="train", data_dir="data/tfds")
    train[0]  # {'image': uint8 (200, 200, 3), 'age': 25, 'gender': 0, 'race': 1, 'file_name': b'...'}

The split CSV and the archive path are builder arguments, not part of the config: the prepared
folder is keyed on protocol and version only, so rebuild into a fresh ``data_dir`` after
changing either.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow_datasets as tfds
from etils import epath
from PIL import Image

from research.data.archive import data_checksum, iter_files
from research.data.locate import HOW_TO_GET, DatasetNotFoundError, is_usable
from research.data.splits import SPLIT_COLUMNS
from research.vocabulary import ETHNICITIES, GENDERS, MISSING

PROTOCOLS = {
    "utkface": "Every clean image, stratified by age group x gender x race, 70/10/20 train/val/test.",
    "coral": "CORAL benchmark split (ages 21-60, Cao et al. 2019): its test file kept whole, "
             "10% of its train file held out as val.",
}
SPLITS = ("train", "val", "test")
IMAGE_SHAPE = (200, 200, 3)

MANUAL_DOWNLOAD_INSTRUCTIONS = """\
UTKFace cannot be downloaded automatically. Download "Aligned&Cropped Faces" (UTKFace.tar.gz,
23,708 JPEGs of 200x200 pixels) from the official page https://susanqq.github.io/UTKFace/ .
UTKFace is licensed for non-commercial research purposes only; the copyright of the images
belongs to their original owners.
Put the tarball (or the extracted UTKFace/ folder) in the manual directory,
<data_dir>/downloads/manual/UTKFace.tar.gz by default, or pass the builder data_path=PATH
(scripts/build_tfds.py --data PATH; it also finds data/raw/UTKFace.tar.gz and $UTKFACE).
"""

CITATION = """\
@inproceedings{zhifei2017cvpr,
  title={Age Progression/Regression by Conditional Adversarial Autoencoder},
  author={Zhang, Zhifei and Song, Yang and Qi, Hairong},
  booktitle={IEEE Conference on Computer Vision and Pattern Recognition (CVPR)},
  year={2017}
}"""


def default_split_csv(protocol: str) -> Path:
    """The committed split of ``protocol``, relative to the project root (the working directory)."""
    return Path("results/splits") / f"{protocol}.csv"


def read_split_csv(path: str | os.PathLike) -> pd.DataFrame:
    """The split table (columns ``SPLIT_COLUMNS``), checked for names, splits and labels."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"split CSV {path} not found; run scripts/make_splits.py or pass split_csv")
    table = pd.read_csv(path, dtype={"file": str, "sha256": str})
    missing = set(SPLIT_COLUMNS) - set(table.columns)
    if missing:
        raise ValueError(f"{path} lacks columns {sorted(missing)}")
    if table["file"].duplicated().any():
        raise ValueError(f"{path} lists a file twice: {table['file'][table['file'].duplicated()].iloc[0]}")
    if not table["split"].isin(SPLITS).all():
        raise ValueError(f"{path}: unknown split names {sorted(set(table['split']) - set(SPLITS))}")
    if not table["gender"].isin(list(GENDERS)).all():
        raise ValueError(f"{path}: gender must be one of {sorted(GENDERS)} (no missing gender allowed)")
    if not table["race"].isin([*ETHNICITIES, MISSING]).all():
        raise ValueError(f"{path}: race must be one of {sorted(ETHNICITIES)} or {MISSING} (missing)")
    return table


def find_archive(manual_dir: Path) -> Path:
    """The UTKFace tarball or folder inside a tfds manual directory."""
    for path in (manual_dir / "UTKFace.tar.gz", manual_dir / "UTKFace", manual_dir):
        if is_usable(path):
            return path
    raise DatasetNotFoundError(f"no UTKFace.tar.gz or UTKFace/ folder in {manual_dir}. {HOW_TO_GET}")


def check_image(name: str, blob: bytes, sha256: str) -> None:
    """Raise unless ``blob`` is the exact file the split was made from, a 200x200 RGB JPEG.

    tfds stores encoded bytes without looking at them, so this is the only check they get.
    """
    if hashlib.sha256(blob).hexdigest() != sha256:
        raise ValueError(f"{name}: sha256 differs from the split CSV (a different archive?)")
    with Image.open(io.BytesIO(blob)) as image:  # reads the header only
        if image.format != "JPEG" or image.mode != "RGB" or image.size != IMAGE_SHAPE[1::-1]:
            raise ValueError(f"{name}: expected a {IMAGE_SHAPE[1]}x{IMAGE_SHAPE[0]} RGB JPEG, got "
                             f"{image.format} {image.mode} {image.size[0]}x{image.size[1]}")


def split_examples(archive: Path, rows: pd.DataFrame) -> Iterator[tuple[str, dict]]:
    """Yield ``(file name, example)`` for every row, in archive order; every row must be found."""
    by_name = rows.set_index("file")
    seen: set[str] = set()
    for name, blob in iter_files(archive, only=set(by_name.index)):
        row = by_name.loc[name]
        check_image(name, blob, row["sha256"])
        seen.add(name)
        yield name, {"image": blob, "age": int(row["age"]), "gender": int(row["gender"]),
                     "race": int(row["race"]), "file_name": name}
    absent = sorted(set(by_name.index) - seen)
    if absent:
        raise FileNotFoundError(f"{len(absent)} files of the split are not in {archive}, e.g. {absent[0]}")


class Utkface(tfds.core.GeneratorBasedBuilder):
    """UTKFace aligned and cropped faces with age, gender and race, split by a committed CSV."""

    name = "utkface"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Splits from results/splits/<protocol>.csv; original JPEG bytes."}
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=protocol, description=text)
                       for protocol, text in PROTOCOLS.items()]
    MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS

    def __init__(self, *, data_path: str | os.PathLike | None = None,
                 split_csv: str | os.PathLike | None = None, **kwargs):
        """``data_path``: archive or folder (default: the manual dir); ``split_csv``: split table."""
        kwargs.setdefault("file_format", "array_record")  # the TF-free format
        self._data_path = Path(data_path) if data_path else None
        self._split_csv = Path(split_csv) if split_csv else None
        super().__init__(**kwargs)
        # Keep the extra arguments when tfds pickles the builder (it re-runs __init__).
        self._original_state.update(data_path=data_path, split_csv=split_csv)

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path:
        # tfds 4.9.10 finds this file through `importlib_resources`, which it only installs on
        # Python < 3.9 (tensorflow/datasets#11212); without this, download_and_prepare fails.
        return epath.Path(__file__)

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=("UTKFace aligned and cropped faces (200x200 RGB), labelled from file names. "
                         "Non-commercial research use only."),
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=IMAGE_SHAPE, encoding_format="jpeg"),
                "age": tfds.features.Scalar(np.int32, doc="Age in years, 1-116."),
                "gender": tfds.features.ClassLabel(names=[GENDERS[k] for k in sorted(GENDERS)]),
                "race": tfds.features.Scalar(
                    np.int32,
                    doc=f"{', '.join(f'{k} {v}' for k, v in ETHNICITIES.items())}; {MISSING} missing."),
                "file_name": tfds.features.Text(doc="Original UTKFace file name."),
            }),
            supervised_keys=("image", "age"),
            homepage="https://susanqq.github.io/UTKFace/",
            citation=CITATION,
            metadata=tfds.core.MetadataDict(),
            license="Non-commercial research purposes only; image copyright stays with the owners.",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        archive = self._data_path or find_archive(Path(dl_manager.manual_dir))
        csv = self._split_csv or default_split_csv(self.builder_config.name)
        table = read_split_csv(csv)
        # Provenance, saved next to the records in metadata.json.
        self.info.metadata.update(split_csv=str(csv), split_csv_sha256=data_checksum(Path(csv)),
                                  data_sha256=data_checksum(archive))
        return {split: self._generate_examples(archive, table[table["split"] == split])
                for split in SPLITS}

    def _generate_examples(self, archive: Path, rows: pd.DataFrame):
        yield from split_examples(archive, rows)
