"""Consistency check of the prediction command: full path on crops pasted into canvases vs direct.

    python scripts/predict_consistency.py [--n 500] [--n-val 300] [--seed 0] [--data PATH]

On the validation split, compares chip paddings (results/predict/padding_sweep.csv) so the one in
research/configs/predict.py can be chosen without test data; on the test split, runs the
configured padding (results/predict/consistency.csv) and writes summary.json with provenance.
"""

import argparse
from pathlib import Path

from research.configs.predict import get_config
from research.errors import cli
from research.predict.release import DEFAULT_RELEASE
from research.release.consistency import write_consistency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_RELEASE, help="release model folder")
    parser.add_argument("--splits", type=Path, default=Path("results/splits/utkface.csv"))
    parser.add_argument("--data", help="UTKFace archive or folder (default: the usual places)")
    parser.add_argument("--n", type=int, default=500, help="test images")
    parser.add_argument("--n-val", type=int, default=300, help="validation images for the padding sweep")
    parser.add_argument("--paddings", default="0.1,0.15,0.2,0.25,0.3", help="paddings compared on validation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results/predict"))
    args = parser.parse_args()
    summary = write_consistency(args.checkpoint, get_config(), args.splits, args.data, args.n, args.n_val,
                                [float(p) for p in args.paddings.split(",")], args.seed, args.out)
    print({k: v for k, v in summary["test"].items() if not isinstance(v, list)})


if __name__ == "__main__":
    cli(main)()
