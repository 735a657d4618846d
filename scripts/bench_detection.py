"""Detection benchmark -> results/detection/ (recall per face width, false detections per canvas).

    python scripts/bench_detection.py [--smoke] [--data PATH] [--seed 0]

Test-split crops pasted into 640x480 and 1280x960 canvases with clutter, for each detector
setting in research/configs/predict.py (no upsampling = the peer's, the default, default + CNN).
Targets: recall >= 95% for faces 40 px and wider, at most 0.05 false detections per canvas.
"""

import argparse
from pathlib import Path

from research.configs.predict import get_detection_bench_config
from research.release.detection_bench import write_detection_bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--splits", type=Path, default=Path("results/splits/utkface.csv"))
    parser.add_argument("--data", help="UTKFace archive or folder (default: the usual places)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="a few canvases only")
    parser.add_argument("--out", type=Path, default=Path("results/detection"))
    args = parser.parse_args()
    config = get_detection_bench_config("smoke" if args.smoke else "")
    config.seed = args.seed
    summary = write_detection_bench(config, args.splits, args.data, args.out)
    for name, facts in summary["settings"].items():
        print(name, {k: v for k, v in facts.items() if k != "config_overrides"})


if __name__ == "__main__":
    main()
