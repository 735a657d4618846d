"""Recompute every committed metric, breakdown, ensemble, comparison and README table from the
committed prediction files; list each value that differs (file and key). Exit 1 if any differs.

    python scripts/verify.py [--results results] [--readme README.md]

No training, no checkpoint, no dataset: a few minutes on a laptop.
"""

import argparse
import sys
import time
from pathlib import Path

from research.errors import cli
from research.verify import checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--readme", type=Path, default=Path("README.md"))
    args = parser.parse_args()
    start, failed, count = time.time(), [], 0
    for what, differences in checks(args.results, args.readme):
        count += 1
        print(f"{'ok ' if not differences else 'DIFFERS'}  {what}", flush=True)
        for difference in differences[:20]:
            print(f"    {difference}")
        failed += differences
    print(f"{count} checks, {len(failed)} differing values ({time.time() - start:.0f} s)")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    cli(main)()
