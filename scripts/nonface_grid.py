"""The grid of crops with no face found -> results/cleaning/no_face_grid.png (and .json).

    python scripts/nonface_grid.py [--data PATH] [--scan results/cleaning/face_scan.csv]

Confirmed non-faces (research/configs/nonfaces.py) are framed in red; sample size and seed in
research/configs/face_scan.py.
"""

import argparse
from pathlib import Path

from research.configs.face_scan import get_config
from research.configs.nonfaces import NONFACES
from research.data import locate
from research.errors import cli
from research.screening.grid import write_no_face_grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", help="UTKFace.tar.gz or extracted folder "
                        "(else $UTKFACE, data/raw, ../shared/data)")
    parser.add_argument("--scan", type=Path, default=Path("results/cleaning/face_scan.csv"))
    parser.add_argument("--out", type=Path, default=Path("results/cleaning"))
    args = parser.parse_args()
    facts = write_no_face_grid(get_config(), args.scan, locate.locate_dataset(args.data), NONFACES, args.out)
    print(f"{facts['shown']} of {facts['candidates']} crops with no face shown, "
          f"{facts['confirmed_shown']} of them confirmed non-faces")


if __name__ == "__main__":
    cli(main)()
