"""Train a registered run (research/configs/experiments.py) or any config into a run folder; a rerun
resumes from the run's last checkpoint.

    python scripts/train.py --run cnn_baseline                    (-> results/runs/cnn_baseline/)
    python scripts/train.py --run cnn_baseline --profile smoke --workdir smoke/cnn_baseline
    python scripts/train.py --config cnn_baseline --profile cpu [--set optimizer.num_epochs=3]

Several processes (hosts): the same command in each, with --coordinator/--num-processes/
--process-id or their JAX_* variables (docs/multihost.md; locally scripts/launch_local.py).
"""

import argparse
from pathlib import Path

from research.configs.experiments import RUNS, force_host_devices

force_host_devices()  # before jax starts: pmap spreads a CPU step over the forced host devices

from research.configs import PROFILES, load_config, load_run_config  # noqa: E402
from research.configs.overrides import apply_overrides  # noqa: E402
from research.errors import cli  # noqa: E402
from research.runs.folder import RunFolder  # noqa: E402
from research.training import distributed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", choices=list(RUNS), metavar="RUN",
                       help=f"a registered run: {', '.join(RUNS)}")
    which.add_argument("--config", help="module name under research/configs/ (an unregistered experiment)")
    parser.add_argument("--profile", choices=PROFILES, help="default: the run's own profile (else cpu)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. --set optimizer.num_epochs=3 (repeatable)")
    parser.add_argument("--data", help="UTKFace archive or folder (else $UTKFACE, data/raw, ../shared/data)")
    parser.add_argument("--workdir", type=Path, help="default results/runs/<run name>")
    distributed.add_flags(parser)
    args = parser.parse_args()
    distributed.initialize_from_args(args)
    # Imported only now: nothing may start the JAX backend before jax.distributed is initialised.
    from research.training.hardware import check_profile_device
    from research.training.loop import train_and_evaluate

    base = (load_run_config(args.run, args.profile) if args.run else
            load_config(args.config, args.profile or "cpu"))
    config = apply_overrides(base, args.set)
    check_profile_device(config.profile)
    summary = train_and_evaluate(config, args.workdir or RunFolder.named(config.name).path, args.data)
    if distributed.is_primary():
        print(f"best validation epoch {summary['best_epoch']}: {summary['best_val']}")


if __name__ == "__main__":
    cli(main)()
