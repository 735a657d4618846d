"""Write the train/val/test splits of both protocols -> results/splits/.

    python scripts/make_splits.py [--manifest results/cleaning/manifest.csv] [--seed 0]
"""

import argparse
from pathlib import Path

import pandas as pd

from research.data import archive, locate, splits
from research.errors import cli
from research.outputs import write_csv, write_json
from research.provenance import provenance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--manifest", type=Path, default=Path("results/cleaning/manifest.csv"))
    parser.add_argument("--coral-dir", help="folder with the CORAL utk_train.csv and utk_test.csv "
                        "(else data/raw/coral_utkface, ../shared/data/splits/coral_utkface)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results/splits"))
    args = parser.parse_args()
    manifest = pd.read_csv(args.manifest, keep_default_na=False)
    made = {"utkface": (splits.utkface_split(manifest, args.seed), {}),
            "coral": splits.coral_split(manifest, locate.locate_coral_split(args.coral_dir), args.seed)}
    summary = {"seed": args.seed, "manifest_sha256": archive.sha256_file(args.manifest),
               "provenance": provenance()}
    for name, (split, removed) in made.items():
        path = args.out / f"{name}.csv"
        write_csv(path, split)
        summary[name] = {"file": path.name, "sha256": splits.split_checksum(path),
                         "sizes": splits.split_sizes(split), **removed}
        print(name, summary[name]["sizes"], removed)
    write_json(args.out / "summary.json", summary)


if __name__ == "__main__":
    cli(main)()
