"""Estimate age and gender of every face in new photos and decide Challenge N.

    python -m scripts.predict PATH... [--json] [--csv out.csv] [--annotate DIR] [--challenge 25]
                                      [--rule threshold|interval|probability] [--parameter X]
                                      [--checkpoint results/models/NAME]

PATH is an image or a folder (searched recursively). Faces are found with dlib's HOG detector,
aligned on 5 landmarks to 200x200 chips like the UTKFace crops, and estimated by the release
model (its age distribution, after the age correction the release carries). "ID check" is
suggested under the rule chosen on validation for N (research/predict/rules.py), or the one given.
Exit code: 0 when every input was handled, 1 when none could be read, 2 on usage errors.
"""

import argparse
import sys
from pathlib import Path

from research.configs.predict import get_config
from research.predict.command import run_predict
from research.predict.release import DEFAULT_RELEASE
from research.predict.rules import RULES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="image files or folders")
    parser.add_argument("--json", action="store_true", help="print one JSON document (status per file)")
    parser.add_argument("--csv", type=Path, help="also write one row per face to this CSV")
    parser.add_argument("--annotate", type=Path, metavar="DIR", help="write annotated photos here")
    parser.add_argument("--challenge", type=float, default=get_config().challenge, help="N of Challenge N")
    parser.add_argument("--rule", choices=RULES, default=get_config().rule or None,
                        help="threshold: ID when the estimate is below N; interval: when the lower end of\n"
                             "the calibrated interval at level --parameter is; probability: when P(age < N)\n"
                             "is above --parameter. Default: the rule chosen on validation for N.")
    parser.add_argument("--parameter", type=float, default=get_config().rule_parameter, metavar="X",
                        help="the rule's level or p (default: its operating point chosen on validation)")
    parser.add_argument("--interval-z", type=float, default=get_config().interval_z, metavar="Z",
                        help="only for a release without rules.json: the uncalibrated interval\n"
                             "estimate +- Z sd, and the interval rule's width (0: the estimate alone)")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_RELEASE,
                        help="release model folder (scripts/export_model.py)")
    args = parser.parse_args(argv)
    if not 0 < args.challenge <= 116:
        parser.error(f"--challenge must be an age in (0, 116], got {args.challenge:g}")
    if not 0 <= args.interval_z <= 5:
        parser.error(f"--interval-z must be in [0, 5], got {args.interval_z:g}")
    config = get_config()
    config.interval_z, config.rule, config.rule_parameter = args.interval_z, args.rule or "", args.parameter
    return run_predict(args.paths, config, args.checkpoint, as_json=args.json, csv=args.csv,
                       annotate_dir=args.annotate, challenge=args.challenge)


if __name__ == "__main__":
    sys.exit(main())
