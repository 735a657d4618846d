"""Export a run's best checkpoint as the release model the prediction command ships.

    python scripts/export_model.py [--run RUN] [--checkpoint DIR] [--out DIR] [--card-only]

RUN is a trained run or an ensemble run (scripts/ensemble.py) whose members share one architecture.
Writes params.msgpack (params + BatchNorm statistics of each member, no optimizer state; at most 25 MB),
config.json, metadata.json and MODEL_CARD.md into results/models/<run name>/. RUN defaults to the
release named in research/configs/experiments.py. --card-only re-renders MODEL_CARD.md of an existing
release from results files (no checkpoint needed).
"""

import argparse
from pathlib import Path

from research.configs.experiments import RELEASE
from research.errors import cli
from research.release.export import export_release, write_card
from research.runs.folder import RunFolder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--run", type=Path, default=RunFolder.named(RELEASE).path, help="run folder")
    parser.add_argument("--checkpoint", type=Path, help="orbax checkpoint (default RUN/checkpoints/best)")
    parser.add_argument("--out", type=Path, help="release folder (default results/models/<run name>)")
    parser.add_argument("--card-only", action="store_true", help="only re-render MODEL_CARD.md")
    args = parser.parse_args()
    out = args.out or Path("results/models") / args.run.name
    if args.card_only:
        print(write_card(out, args.run))
        return
    metadata = export_release(args.run, out, args.checkpoint)
    print(f"{out}: {metadata['params_bytes'] / 1e6:.2f} MB, sha256 {metadata['params_sha256'][:16]}…")


if __name__ == "__main__":
    cli(main)()
