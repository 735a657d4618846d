"""Per-group breakdowns, age-verification analysis and figures of runs, from predictions files only.

    python scripts/breakdown.py --run results/runs/cnn_baseline [--run ...] [--data PATH] [--no-faces]
    python scripts/breakdown.py --all            # every run folder with predictions_test.csv

Writes results/breakdowns/<run>/: by_group.csv, fairness_gaps.csv, challenge_by_group.csv,
challenge_sweep.csv, summary.json and figures (the face grid needs the UTKFace archive).
"""

import argparse
from pathlib import Path

from research.configs.experiments import EVALUATION
from research.data import locate
from research.errors import cli
from research.evaluation.breakdowns import analyse_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", type=Path, action="append", help="a run folder (repeatable)")
    which.add_argument("--all", action="store_true", help="every folder under --runs-dir with predictions")
    parser.add_argument("--runs-dir", type=Path, default=Path("results/runs"))
    parser.add_argument("--out", type=Path, default=Path("results/breakdowns"))
    parser.add_argument("--data", help="UTKFace archive or folder for the face grid "
                        "(else $UTKFACE, data/raw, ../shared/data)")
    parser.add_argument("--no-faces", action="store_true", help="skip the face grid (no dataset needed)")
    parser.add_argument("--seed", type=int, default=EVALUATION.seed, help="bootstrap seed and face sample")
    parser.add_argument("--resamples", type=int, default=EVALUATION.resamples,
                        help="bootstrap resamples per group")
    args = parser.parse_args()
    runs = args.run or sorted(p.parent for p in args.runs_dir.glob("*/predictions_test.csv"))
    if not runs:
        parser.error(f"no run folder with predictions_test.csv under {args.runs_dir}")
    data = None if args.no_faces else locate.locate_dataset(args.data)  # fail before any work
    for run in runs:
        summary = analyse_run(run, args.out / run.name, args.resamples, args.seed, data, EVALUATION.level)
        worst = {k: f"{v['worst_group']} {v['worst_mae']:.2f} vs {v['best_group']} {v['best_mae']:.2f}"
                 for k, v in summary["fairness"].items()}
        print(f"{run.name}: MAE {summary['overall_age_mae'][0]:.2f}; worst vs best {worst} "
              f"({summary['wall_time_s']} s)")


if __name__ == "__main__":
    cli(main)()
