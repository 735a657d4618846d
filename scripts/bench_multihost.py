"""Train-step throughput, 1 process x 2 devices against 2 processes x 1 device on this machine
-> results/bench/multihost_throughput.csv and .json.

    python scripts/bench_multihost.py [--steps 200] [--warmup-steps 5]

The cnn_baseline cpu profile (64 px, global batch 64, augmentation on) on a synthetic batch of
that shape; each layout runs in fresh processes (scripts/launch_local.py's launcher). The
machine's load average is recorded: other jobs on the cores change the numbers.
"""

import argparse
import os
from pathlib import Path

import pandas as pd

from research.outputs import write_csv, write_json
from research.provenance import provenance
from research.training.bench import multihost_throughput


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--config", default="cnn_baseline")
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--steps", type=int, default=200, help="timed steps per layout")
    parser.add_argument("--warmup-steps", type=int, default=5, help="untimed steps after the compiling one")
    parser.add_argument("--out", type=Path, default=Path("results/bench/multihost_throughput.csv"))
    args = parser.parse_args()
    load_before = os.getloadavg()
    rows = multihost_throughput(args.config, args.profile, args.steps, args.warmup_steps)
    for row in rows:
        print(row)
    write_csv(args.out, pd.DataFrame(rows))
    write_json(args.out.with_suffix(".json"), {
        "provenance": provenance(with_device=True), "cpu_count": os.cpu_count(),
        "loadavg_before": list(load_before), "loadavg_after": list(os.getloadavg()),
        "note": "getloadavg (1, 5, 15 min) of the whole machine; other jobs shared its cores",
        "config": args.config, "profile": args.profile, "steps": args.steps,
        "warmup_steps": args.warmup_steps, "rows": rows})


if __name__ == "__main__":
    main()
