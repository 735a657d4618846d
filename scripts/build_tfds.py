"""Build the UTKFace TFDS dataset (array_record, no TensorFlow needed) and print the split sizes.

    python scripts/build_tfds.py [--data PATH] [--protocol utkface|coral] [--data-dir data/tfds]

Writes <data-dir>/utkface/<protocol>/1.0.0/ (107 MB for 'utkface'). The 'utkface' protocol
(22,022 images) takes about 7 s on 2 shared CPU cores.
"""

import argparse
import time
from pathlib import Path

import tensorflow_datasets as tfds

from research.data import locate
from research.data.tfds_builder import PROTOCOLS, Utkface, default_split_csv
from research.errors import cli


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", help="UTKFace.tar.gz or extracted folder (else $UTKFACE, data/raw, "
                        "../shared/data)")
    parser.add_argument("--protocol", choices=list(PROTOCOLS), default="utkface")
    parser.add_argument("--split-csv", type=Path, help="split table (default results/splits/<protocol>.csv)")
    parser.add_argument("--data-dir", type=Path, default=Path("data/tfds"))
    parser.add_argument("--overwrite", action="store_true", help="rebuild even if already prepared")
    args = parser.parse_args()
    builder = Utkface(config=args.protocol, data_dir=args.data_dir,
                      data_path=locate.locate_dataset(args.data),
                      split_csv=args.split_csv or default_split_csv(args.protocol))
    mode = tfds.GenerateMode.FORCE_REDOWNLOAD if args.overwrite else tfds.GenerateMode.REUSE_DATASET_IF_EXISTS
    start = time.perf_counter()
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(download_mode=mode))
    print(f"{builder.data_dir} ({time.perf_counter() - start:.1f} s)")
    print({name: split.num_examples for name, split in builder.info.splits.items()})


if __name__ == "__main__":
    cli(main)()
