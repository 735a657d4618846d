"""Clean UTKFace: corrupted files, missing labels, duplicates -> results/cleaning/.

    python scripts/clean_data.py [--data PATH] [--out results/cleaning]
"""

import argparse
import time
from pathlib import Path

from research.data import archive, cleaning, locate
from research.errors import cli
from research.provenance import provenance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", help="UTKFace.tar.gz or extracted folder "
                        "(else $UTKFACE, data/raw, ../shared/data)")
    parser.add_argument("--out", type=Path, default=Path("results/cleaning"))
    args = parser.parse_args()
    source = locate.locate_dataset(args.data)
    start = time.time()
    manifest, summary = cleaning.clean(source)
    summary["wall_time_s"] = round(time.time() - start, 1)
    summary["source"] = source.name
    summary["provenance"] = provenance(data_sha256=archive.data_checksum(source))
    cleaning.write_outputs(args.out, manifest, summary)
    print(f"{summary['images_in']} images in, {summary['images_out']} kept: {summary['status_counts']}")


if __name__ == "__main__":
    cli(main)()
