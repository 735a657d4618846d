"""Predict a trained run's validation and test splits with its best checkpoint.

    python scripts/predict_splits.py --run results/runs/cnn_baseline [--data PATH]

Writes predictions_val.csv and predictions_test.csv (columns research.runs.folder.PREDICTION_COLUMNS)
into the run folder; scripts/evaluate.py then scores them. With several processes
(docs/multihost.md) each predicts its share of the batches and process 0 writes the files.
"""

import argparse
from pathlib import Path

from research.configs.experiments import force_host_devices

force_host_devices()  # before jax starts

from research.errors import cli  # noqa: E402
from research.outputs import write_csv  # noqa: E402
from research.runs.folder import SPLITS, RunFolder  # noqa: E402
from research.training import distributed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a run folder made by scripts/train.py")
    parser.add_argument("--data", help="UTKFace archive or folder (only needed if the cache is missing)")
    distributed.add_flags(parser)
    args = parser.parse_args()
    distributed.initialize_from_args(args)
    from research.evaluation.predictions import predict_split  # after jax.distributed is initialised

    folder = RunFolder(args.run)
    for split in SPLITS:
        frame = predict_split(folder.path, split, args.data)  # every process takes part
        if distributed.is_primary():
            write_csv(folder.predictions_file(split), frame, float_format="%.4f")
            print(folder.predictions_file(split))


if __name__ == "__main__":
    cli(main)()
