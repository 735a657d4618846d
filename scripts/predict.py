"""Estimate age and gender of every face in new photos and decide Challenge N.

    python -m scripts.predict PATH... [--json] [--csv out.csv] [--annotate DIR] [--challenge 25]
                                      [--checkpoint results/models/cnn_ensemble]

PATH is an image or a folder (searched recursively). Faces are found with dlib's HOG detector,
aligned on 5 landmarks to 200x200 chips like the UTKFace crops, and estimated by the release
model. "ID check" is suggested when the estimate, or the lower end of its interval, is below N.
Exit code: 0 when every input was handled, 1 when none could be read, 2 on usage errors.
"""

import argparse
import sys
from pathlib import Path

from research.configs.predict import get_config
from research.predict.command import run_predict
from research.predict.release import DEFAULT_RELEASE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="image files or folders")
    parser.add_argument("--json", action="store_true", help="print one JSON document (status per file)")
    parser.add_argument("--csv", type=Path, help="also write one row per face to this CSV")
    parser.add_argument("--annotate", type=Path, metavar="DIR", help="write annotated photos here")
    parser.add_argument("--challenge", type=float, default=get_config().challenge, help="N of Challenge N")
    parser.add_argument("--interval-z", type=float, default=get_config().interval_z, metavar="Z",
                        help="age interval = estimate +- Z sd of the model's age distribution; ID is asked\n"
                             "when its lower end is below N (0: decide on the estimate alone). The model\n"
                             "card tabulates minors let through and adults asked for several Z.")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_RELEASE,
                        help="release model folder (scripts/export_model.py)")
    args = parser.parse_args(argv)
    if not 0 < args.challenge <= 116:
        parser.error(f"--challenge must be an age in (0, 116], got {args.challenge:g}")
    if not 0 <= args.interval_z <= 5:
        parser.error(f"--interval-z must be in [0, 5], got {args.interval_z:g}")
    config = get_config()
    config.interval_z = args.interval_z
    return run_predict(args.paths, config, args.checkpoint, as_json=args.json, csv=args.csv,
                       annotate_dir=args.annotate, challenge=args.challenge)


if __name__ == "__main__":
    sys.exit(main())
