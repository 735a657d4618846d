"""Calibrate the release's age interval on validation (split-conformal within bands of the
estimate, or inverted per true age; research.evaluation.calibration) and score its coverage on
test, from predictions files only.

    python scripts/calibrate_intervals.py [--run RELEASE] [--resamples 2000] [--seed 0]

Writes results/calibration/intervals.json (the chosen calibration, which
research.models.age_interval.calibrated_interval reads), coverage.csv and coverage.png
(research.evaluation.calibration).
"""

import argparse
from pathlib import Path

from research.configs.experiments import EVALUATION, RELEASE
from research.errors import cli
from research.evaluation.calibration import CHOICE_LEVEL, write_calibration
from research.runs.folder import RunFolder
from research.vocabulary import describe_calibration


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--run", default=RELEASE, help="the run whose predictions are calibrated")
    parser.add_argument("--runs-dir", type=Path, default=Path("results/runs"))
    parser.add_argument("--out", type=Path, default=Path("results/calibration"))
    parser.add_argument("--resamples", type=int, default=EVALUATION.resamples)
    parser.add_argument("--seed", type=int, default=EVALUATION.seed)
    args = parser.parse_args()
    folder = RunFolder(args.runs_dir / args.run)
    record = write_calibration(folder.predictions("val"), folder.predictions("test"),
                               [folder.predictions_file(s) for s in ("val", "test")], args.run, args.out,
                               args.resamples, args.seed, EVALUATION.level)
    print(f"{args.out / 'intervals.json'}: {CHOICE_LEVEL:g} interval {describe_calibration(record)}")


if __name__ == "__main__":
    cli(main)()
