"""Predict a run's validation and test splits with its best checkpoint; write metrics.

    python scripts/evaluate.py --run results/runs/cnn_baseline [--data PATH]

Writes predictions_val.csv, predictions_test.csv and metrics_test.json into the run folder.
"""

import argparse
import json
from pathlib import Path

from research.configs.experiments import EVALUATION
from research.evaluation.metrics import evaluate_predictions
from research.evaluation.predictions import predict_split
from research.outputs import write_csv, write_json
from research.provenance import provenance
from research.runs.folder import read_predictions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a run folder made by scripts/train.py")
    parser.add_argument("--data", help="UTKFace archive or folder (only needed if the cache is missing)")
    parser.add_argument("--resamples", type=int, default=EVALUATION.resamples, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=EVALUATION.seed, help="bootstrap seed")
    parser.add_argument("--max-minor-pass-rate", type=float, default=EVALUATION.max_minor_pass_rate,
                        help="operating points: share of minors let through, chosen on validation")
    parser.add_argument("--from-predictions", action="store_true",
                        help="recompute metrics from the run's predictions_*.csv (no checkpoint needed)")
    args = parser.parse_args()
    if args.from_predictions:
        frames = {split: read_predictions(args.run / f"predictions_{split}.csv") for split in ("val", "test")}
        frames["test"].attrs["data_sha256"] = json.loads((args.run / "summary.json").read_text())[
            "provenance"]["data_sha256"]
    else:
        frames = {split: predict_split(args.run, split, args.data) for split in ("val", "test")}
        for split, frame in frames.items():
            write_csv(args.run / f"predictions_{split}.csv", frame, float_format="%.4f")
        # Metrics are computed from the files as written, so anyone can recompute them exactly.
        sha = frames["test"].attrs.get("data_sha256")
        frames = {split: read_predictions(args.run / f"predictions_{split}.csv") for split in frames}
        frames["test"].attrs["data_sha256"] = sha
    metrics = evaluate_predictions(frames["test"], frames["val"], args.resamples, args.seed,
                                   args.max_minor_pass_rate, EVALUATION.level)
    metrics["provenance"] = provenance(data_sha256=frames["test"].attrs.get("data_sha256"), with_device=True)
    write_json(args.run / "metrics_test.json", metrics)
    print({k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)})


if __name__ == "__main__":
    main()
