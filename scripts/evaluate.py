"""Predict a run's validation and test splits with its best checkpoint; write metrics.

    python scripts/evaluate.py --run results/runs/cnn_baseline [--data PATH]

Writes predictions_val.csv, predictions_test.csv and metrics_test.json into the run folder.
With several processes (docs/multihost.md) each predicts its share of the batches and process 0
writes the files.
"""

import argparse
import json
from pathlib import Path

from research.evaluation.prediction_table import read_predictions
from research.outputs import write_csv, write_json
from research.provenance import provenance
from research.training import distributed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a run folder made by scripts/train.py")
    parser.add_argument("--data", help="UTKFace archive or folder (only needed if the cache is missing)")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument(
        "--max-minor-pass-rate",
        type=float,
        default=0.05,
        help="operating point: share of 13-17 year-olds let through, chosen on validation",
    )
    parser.add_argument("--from-predictions", action="store_true",
                        help="recompute metrics from the run's predictions_*.csv (no checkpoint needed)")
    distributed.add_flags(parser)
    args = parser.parse_args()
    distributed.initialize_from_args(args)
    # After initialisation: the model modules create JAX arrays at import (see scripts/train.py).
    from research.evaluation.metrics import evaluate_predictions
    from research.evaluation.predict import predict_split

    if args.from_predictions and not distributed.is_primary():
        return
    if args.from_predictions:
        frames = {split: read_predictions(args.run / f"predictions_{split}.csv") for split in ("val", "test")}
        frames["test"].attrs["data_sha256"] = json.loads((args.run / "summary.json").read_text())[
            "provenance"]["data_sha256"]
    else:
        frames = {split: predict_split(args.run, split, args.data) for split in ("val", "test")}
        if not distributed.is_primary():  # every process predicted its share; process 0 writes
            return
        for split, frame in frames.items():
            write_csv(args.run / f"predictions_{split}.csv", frame, float_format="%.4f")
        # Metrics are computed from the files as written, so anyone can recompute them exactly.
        sha = frames["test"].attrs.get("data_sha256")
        frames = {split: read_predictions(args.run / f"predictions_{split}.csv") for split in frames}
        frames["test"].attrs["data_sha256"] = sha
    metrics = evaluate_predictions(
        frames["test"], frames["val"], args.resamples, args.seed, args.max_minor_pass_rate
    )
    metrics["provenance"] = provenance(data_sha256=frames["test"].attrs.get("data_sha256"), with_device=True)
    write_json(args.run / "metrics_test.json", metrics)
    print({k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)})


if __name__ == "__main__":
    main()
