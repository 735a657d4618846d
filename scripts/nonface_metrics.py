"""Test metrics of the headline runs with and without the confirmed non-faces, from their committed
predictions -> results/cleaning/nonfaces_test_metrics.csv and .json.

    python scripts/nonface_metrics.py [--scan results/cleaning/face_scan.csv]

Runs: research/configs/experiments.py HEADLINE and the RELEASE run (those with
predictions_test.csv); the list of non-faces: research/configs/nonfaces.py.
"""

import argparse
from pathlib import Path

from research.configs.experiments import HEADLINE, RELEASE
from research.configs.nonfaces import NONFACES
from research.errors import cli
from research.evaluation.nonfaces import write_nonface_metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--scan", type=Path, default=Path("results/cleaning/face_scan.csv"))
    parser.add_argument("--runs", type=Path, default=Path("results/runs"))
    parser.add_argument("--out", type=Path, default=Path("results/cleaning"))
    args = parser.parse_args()
    runs = tuple(dict.fromkeys((*HEADLINE, RELEASE)))
    summary = write_nonface_metrics(runs, args.runs, args.scan, NONFACES, args.out)
    print(f"{summary['confirmed_nonfaces']} confirmed non-faces; per split {summary['per_split']}")


if __name__ == "__main__":
    cli(main)()
