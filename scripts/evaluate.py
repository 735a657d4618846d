"""Score a run's prediction files: test metrics with bootstrap intervals and the operating points
chosen on validation -> metrics_test.json in the run folder.

    python scripts/evaluate.py --run results/runs/cnn_baseline

Reads predictions_val.csv and predictions_test.csv (scripts/predict_splits.py writes them; an
ensemble's come from scripts/ensemble.py), so anyone can recompute the metrics from the CSVs.
Settings (resamples, level, seed, the minors target) come from research/configs/experiments.py.
"""

import argparse
from pathlib import Path

from research.configs.experiments import EVALUATION
from research.errors import cli
from research.evaluation.metrics import evaluate_predictions
from research.outputs import write_json
from research.provenance import provenance
from research.runs.folder import RunFolder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a run folder with predictions_*.csv")
    parser.add_argument("--resamples", type=int, default=EVALUATION.resamples, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=EVALUATION.seed, help="bootstrap seed")
    args = parser.parse_args()
    folder = RunFolder(args.run)
    if not folder.has_predictions():
        raise SystemExit(f"{folder.path} has no predictions_val.csv / predictions_test.csv: run "
                         f"scripts/predict_splits.py --run {folder.path} first")
    metrics = evaluate_predictions(folder.predictions("test"), folder.predictions("val"), args.resamples,
                                   args.seed, EVALUATION.max_minor_pass_rate, EVALUATION.level)
    sha = folder.summary()["provenance"]["data_sha256"]
    metrics["provenance"] = provenance(data_sha256=sha, with_device=True)
    write_json(folder.metrics_file, metrics)
    print({k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)})


if __name__ == "__main__":
    cli(main)()
