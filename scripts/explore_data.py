"""Explore cleaned UTKFace: count tables, figures, face grids and key facts -> results/eda/.

    python scripts/explore_data.py [--data PATH] [--manifest results/cleaning/manifest.csv] [--seed 0]
"""

import argparse
from pathlib import Path

from research.data import locate
from research.errors import cli
from research.viz import eda


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", help="UTKFace.tar.gz or extracted folder "
                        "(else $UTKFACE, data/raw, ../shared/data)")
    parser.add_argument("--manifest", type=Path, default=Path("results/cleaning/manifest.csv"))
    parser.add_argument("--out", type=Path, default=Path("results/eda"))
    parser.add_argument("--seed", type=int, default=0, help="which faces the sample grids show")
    args = parser.parse_args()
    summary = eda.explore(eda.read_manifest(args.manifest), locate.locate_dataset(args.data), args.out,
                          seed=args.seed)
    print(f"{summary['images_kept']:,} clean images; largest ten-year bins: {summary['largest_decade']}; "
          f"largest age group: {summary['largest_age_group']} ({summary['wall_time_s']} s)")


if __name__ == "__main__":
    cli(main)()
