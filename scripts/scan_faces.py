"""Run the face detector over every cleaned crop -> results/cleaning/face_scan.csv and .json.

    python scripts/scan_faces.py [--data PATH] [--smoke] [--out results/cleaning]

Settings and measured speed: research/configs/face_scan.py. Resumes from build/face_scan/.
"""

import argparse
from pathlib import Path

from research.configs.face_scan import get_config
from research.data import locate
from research.errors import cli
from research.screening.face_scan import write_face_scan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", help="UTKFace.tar.gz or extracted folder "
                        "(else $UTKFACE, data/raw, ../shared/data)")
    parser.add_argument("--smoke", action="store_true", help="the first few crops only")
    parser.add_argument("--out", type=Path, default=Path("results/cleaning"))
    args = parser.parse_args()
    config = get_config("smoke" if args.smoke else "")
    summary = write_face_scan(config, locate.locate_dataset(args.data), args.out)
    print(f"{summary['crops']} crops, no face found in {summary['no_face']}: "
          f"{ {s: v['no_face'] for s, v in summary['per_split'].items()} }; speed {summary['speed']}")


if __name__ == "__main__":
    cli(main)()
