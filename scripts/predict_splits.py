"""Predict a trained run's validation and test splits with its best checkpoint.

    python scripts/predict_splits.py --run results/runs/cnn_baseline [--data PATH]

Writes predictions_val.csv and predictions_test.csv (columns research.runs.folder.PREDICTION_COLUMNS)
into the run folder; scripts/evaluate.py then scores them.
"""

import argparse
from pathlib import Path

from research.errors import cli
from research.evaluation.predictions import predict_split
from research.outputs import write_csv
from research.runs.folder import SPLITS, RunFolder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a run folder made by scripts/train.py")
    parser.add_argument("--data", help="UTKFace archive or folder (only needed if the cache is missing)")
    args = parser.parse_args()
    folder = RunFolder(args.run)
    for split in SPLITS:
        write_csv(folder.predictions_file(split), predict_split(folder.path, split, args.data),
                  float_format="%.4f")
        print(f"{folder.predictions_file(split)}")


if __name__ == "__main__":
    cli(main)()
