"""Export a run's best checkpoint as the release model the prediction command ships.

    python scripts/export_model.py [--run results/runs/cnn_ensemble] [--checkpoint DIR] [--out DIR]

RUN is a trained run or an ensemble run (scripts/ensemble.py) whose members share one architecture.
Writes params.msgpack (params + BatchNorm statistics of each member, no optimizer state; at most 25 MB),
config.json, metadata.json and MODEL_CARD.md into results/models/<run name>/.
"""

import argparse
from pathlib import Path

from research.predict.export import export_release


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--run", type=Path, default=Path("results/runs/cnn_ensemble"), help="run folder")
    parser.add_argument("--checkpoint", type=Path, help="orbax checkpoint (default RUN/checkpoints/best)")
    parser.add_argument("--out", type=Path, help="release folder (default results/models/<run name>)")
    args = parser.parse_args()
    out = args.out or Path("results/models") / args.run.name
    metadata = export_release(args.run, out, args.checkpoint)
    print(f"{out}: {metadata['params_bytes'] / 1e6:.2f} MB, sha256 {metadata['params_sha256'][:16]}…")


if __name__ == "__main__":
    main()
