"""Train one experiment config into results/runs/<name>/ (resumes from its last checkpoint).

    python scripts/train.py --config cnn_baseline --profile cpu [--set optimizer.num_epochs=3]

Several processes (hosts): the same command in each, with --coordinator/--num-processes/
--process-id or their JAX_* variables (docs/multihost.md; locally scripts/launch_local.py).
"""

import argparse
import os
from pathlib import Path

# Two XLA host devices on CPU (the machines this project runs on have 2 cores), so pmap spreads
# a step over both; a fixed count keeps CPU results independent of the core count. GPUs ignore it.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")

from research.configs import PROFILES, load_config
from research.configs.overrides import apply_overrides
from research.training import distributed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--config", required=True, help="module name under research/configs/")
    parser.add_argument("--profile", choices=PROFILES, default="cpu")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. --set optimizer.num_epochs=3 (repeatable)")
    parser.add_argument("--data", help="UTKFace archive or folder (else $UTKFACE, data/raw, ../shared/data)")
    parser.add_argument("--workdir", type=Path, help="default results/runs/<config name>")
    distributed.add_flags(parser)
    args = parser.parse_args()
    distributed.initialize_from_args(args)
    # Imported only now: the model modules create JAX arrays at import, which starts the backend,
    # and jax.distributed must be initialised before that.
    from research.training.loop import train_and_evaluate

    config = apply_overrides(load_config(args.config, args.profile), args.set)
    summary = train_and_evaluate(config, args.workdir or Path("results/runs") / config.name, args.data)
    if distributed.is_primary():
        print(f"best validation epoch {summary['best_epoch']}: {summary['best_val']}")


if __name__ == "__main__":
    main()
