"""Train-step images/s without and with the robust augmentations -> results/bench/augment_throughput.csv.

    python scripts/bench_augment.py [--config cnn_baseline] [--profile cpu] [--steps 20] [--repeats 3]
                                    [--each] [--set KEY=VALUE]

Variants: "without" (the config as it is, robust augmentations off), "with" (the registry's
ROBUST_AUGMENT probabilities, research/configs/experiments.py) and, with --each, every robust
augmentation alone at probability 1 (what each one costs: its work is done for every image, only
where it is kept is drawn). The issue's budget: at most 10% fewer images/s with them. Measure on an
idle machine; a busy CPU makes the numbers meaningless. About 1-2 minutes per variant and repeat
for the cnn_baseline cpu profile on the 2-core CPU.
"""

import argparse
import os
from pathlib import Path

from research.configs.experiments import ROBUST_AUGMENT, force_host_devices

force_host_devices()  # as training: pmap spreads a CPU step over the forced host devices

import pandas as pd  # noqa: E402

from research.configs import PROFILES, load_config  # noqa: E402
from research.configs.overrides import apply_overrides  # noqa: E402
from research.errors import cli  # noqa: E402
from research.outputs import write_csv, write_json  # noqa: E402
from research.provenance import provenance  # noqa: E402
from research.training.augment import ROBUST  # noqa: E402
from research.training.bench import augment_throughput  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--config", default="cnn_baseline", help="module name under research/configs/")
    parser.add_argument("--profile", default="cpu", choices=PROFILES)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override applied to every variant (repeatable)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    parser.add_argument("--warmup-steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="measurements per variant, taken in turn")
    parser.add_argument("--each", action="store_true", help="also each robust augmentation alone")
    parser.add_argument("--out", type=Path, default=Path("results/bench/augment_throughput.csv"))
    args = parser.parse_args()
    config = apply_overrides(load_config(args.config, args.profile), args.set)
    variants = {"without": {}, "with": dict(ROBUST_AUGMENT)}
    if args.each:
        variants.update({f"only_{name}": {f"augment.{name}": 1.0} for name in ROBUST})
    load_before = os.getloadavg()
    rows = augment_throughput(config, variants, args.steps, args.repeats, args.warmup_steps)
    for row in rows:
        print(row, flush=True)
    write_csv(args.out, pd.DataFrame(rows))
    write_json(args.out.with_suffix(".json"), {
        "provenance": provenance(with_device=True), "cpu_count": os.cpu_count(),
        "config": args.config, "profile": args.profile, "overrides": args.set,
        "loadavg_1min_before": load_before[0], "loadavg_1min_after": os.getloadavg()[0]})


if __name__ == "__main__":
    cli(main)()
