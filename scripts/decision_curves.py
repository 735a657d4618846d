"""Challenge-N decision curves and validation-chosen operating points, from predictions files only.

    python scripts/decision_curves.py [--resamples 2000] [--seed 0]

Reads every registered run's predictions_{val,test}.csv (runs whose validation split holds
13-17 year-olds; threshold and interval rules) and the release's results/decision/release_*.csv
(all three rules, probability too) and writes results/decision/curves.csv, operating_points.json,
curves.png, groups.png and runs.png (research.evaluation.decision).
"""

import argparse
from pathlib import Path

import pandas as pd

from research.configs.experiments import ENSEMBLES, EVALUATION, RELEASE, RUNS
from research.errors import UserError, cli
from research.evaluation import decision
from research.runs.folder import SPLITS, RunFolder
from research.vocabulary import MINORS, in_band

RELEASE_NAME = "release"  # the run name of the release's rows (its distributions, not a run folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--runs-dir", type=Path, default=Path("results/runs"))
    parser.add_argument("--out", type=Path, default=Path("results/decision"))
    parser.add_argument("--resamples", type=int, default=EVALUATION.resamples)
    parser.add_argument("--seed", type=int, default=EVALUATION.seed)
    parser.add_argument("--max-minor-pass-rate", type=float, default=decision.MAX_MINOR_PASS_RATE)
    args = parser.parse_args()
    frames, inputs = {}, []
    for name in (*RUNS, *ENSEMBLES):
        folder = RunFolder(args.runs_dir / name)
        if folder.has_predictions() and in_band(folder.predictions("val")["age"], MINORS).any():
            frames[name] = {split: folder.predictions(split) for split in SPLITS}
            inputs += [folder.predictions_file(split) for split in SPLITS]
    release = [args.out / f"release_{split}.csv" for split in SPLITS]
    if not all(p.is_file() for p in release):
        raise UserError(f"{release[0]} is missing: run scripts/release_distributions.py first")
    frames[RELEASE_NAME] = {split: pd.read_csv(p) for split, p in zip(SPLITS, release, strict=True)}
    inputs += release
    record = decision.write_decision(frames, inputs, args.out, args.resamples, args.seed, EVALUATION.level,
                                     RELEASE_NAME, args.max_minor_pass_rate)
    for rule, by_n in record["runs"][RELEASE_NAME].items():
        for n, point in by_n.items():
            test = point["test"]
            print(f"{RELEASE} {rule} N={n}: parameter {point['parameter']:g}; test 13-17 through "
                  f"{test[decision.FPR][0]:.3f}, 25+ asked {test[decision.FRICTION][0]:.3f}")


if __name__ == "__main__":
    cli(main)()
