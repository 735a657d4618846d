"""Export a run's best checkpoint as the release model the prediction command ships.

    python scripts/export_model.py [--run RUN] [--checkpoint DIR] [--out DIR] [--rules FILE | --no-rules]
                                   [--card-only | --rules-only]

RUN is a trained run or an ensemble run (scripts/ensemble.py) whose members share one architecture.
Writes params.msgpack (params + BatchNorm statistics of each member, no optimizer state; at most 25 MB),
config.json, metadata.json and MODEL_CARD.md into results/models/<run name>/. RUN defaults to the
release named in research/configs/experiments.py. The release carries the prediction command's
rules, FILE (default results/rules/rules.json, from scripts/release_rules.py), as rules.json with its
sha256 in rules.sha256. --card-only re-renders MODEL_CARD.md of an existing release from results
files; --rules-only copies FILE into an existing release (neither needs a checkpoint).
"""

import argparse
from pathlib import Path

from research.configs.experiments import RELEASE
from research.errors import UserError, cli
from research.release.export import export_release, write_card
from research.release.rules import DEFAULT_RULES, attach_rules
from research.runs.folder import RunFolder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--run", type=Path, default=RunFolder.named(RELEASE).path, help="run folder")
    parser.add_argument("--checkpoint", type=Path, help="orbax checkpoint (default RUN/checkpoints/best)")
    parser.add_argument("--out", type=Path, help="release folder (default results/models/<run name>)")
    parser.add_argument("--rules", type=Path, default=DEFAULT_RULES, help="the command's rules to carry")
    parser.add_argument("--no-rules", action="store_true", help="a release without rules.json (the fallback)")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--card-only", action="store_true", help="only re-render MODEL_CARD.md")
    only.add_argument("--rules-only", action="store_true", help="only copy FILE into the release")
    args = parser.parse_args()
    out = args.out or Path("results/models") / args.run.name
    rules = None if args.no_rules else args.rules
    if rules is not None and not args.card_only and not rules.is_file():
        raise UserError(f"{rules} is missing: run scripts/release_rules.py first (or pass --no-rules)")
    if args.rules_only:
        if rules is None:
            raise UserError("--rules-only with --no-rules does nothing")
        print(f"{out / 'rules.json'}: sha256 {attach_rules(out, rules)[:16]}…")
        return
    if args.card_only:
        print(write_card(out, args.run))
        return
    metadata = export_release(args.run, out, args.checkpoint, rules=rules)
    print(f"{out}: {metadata['params_bytes'] / 1e6:.2f} MB, sha256 {metadata['params_sha256'][:16]}…")


if __name__ == "__main__":
    cli(main)()
