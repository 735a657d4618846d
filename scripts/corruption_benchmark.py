"""The corruption benchmark: the release (and any run folders) on corrupted test faces.

    python scripts/corruption_benchmark.py [--release results/models/NAME] [--release-members]
                                           [--earlier-release results/models/NAME] [--run results/runs/NAME]
                                           [--subset 200] [--seed 0]
                                           [--corruptions grayscale blur ...]

Draws a seeded subset of the test split, stratified by age group (research/configs/experiments.py
ROBUSTNESS), decodes its crops from the UTKFace archive, corrupts each at severities 1-3
(research/data/corruptions.py) before the resize to the model's input, and writes
results/robustness/: corruptions.csv (age MAE, mean signed error, gender accuracy, Challenge-25
rates per model, corruption and severity), predictions.csv, summary.json (the issue's targets,
computed) and the figures corruptions.png and samples.png (a procedurally drawn face).
The release runs at roughly 5-150 faces/s on a CPU depending on its load: 34 conditions of
1000 faces take between 4 minutes and 2 hours per model.
"""

import argparse
from pathlib import Path

import pandas as pd

from research.configs.experiments import RELEASE_DIR, ROBUSTNESS
from research.data import archive
from research.data.corruptions import CORRUPTIONS
from research.data.locate import locate_dataset
from research.errors import UserError, cli
from research.evaluation import robustness
from research.predict.release import load_release
from research.provenance import provenance
from research.runs.folder import RunFolder
from research.runs.restore import load_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--release", type=Path, default=Path(RELEASE_DIR), help="a release model folder")
    parser.add_argument("--no-release", action="store_true", help="score only the --run folders")
    parser.add_argument("--release-members", action="store_true",
                        help="also score each member of an ensemble release alone (<release>.<member>)")
    parser.add_argument("--earlier-release", type=Path, action="append", default=[],
                        help="another release folder scored beside it, e.g. the one it replaced (repeatable)")
    parser.add_argument("--run", type=Path, action="append", default=[],
                        help="a run folder with a best checkpoint (repeatable)")
    parser.add_argument("--subset", type=int, default=ROBUSTNESS.subset, help="test faces scored")
    parser.add_argument("--seed", type=int, default=ROBUSTNESS.seed)
    parser.add_argument("--corruptions", nargs="+", default=list(CORRUPTIONS), choices=list(CORRUPTIONS))
    parser.add_argument("--split-file", type=Path, default=Path("results/splits/utkface.csv"))
    parser.add_argument("--runs-dir", type=Path, default=Path("results/runs"),
                        help="where the release run's committed predictions_test.csv is compared")
    parser.add_argument("--data", help="UTKFace archive or folder (else $UTKFACE, data/raw, ../shared/data)")
    parser.add_argument("--out", type=Path, default=Path("results/robustness"))
    args = parser.parse_args()
    models, committed = [], {}
    if not args.no_release:
        release = load_release(args.release)
        models.append(robustness.release_model(release))
        committed[models[-1].name] = RunFolder(args.runs_dir / args.release.name)
        if args.release_members:
            for member in robustness.release_member_models(release):
                models.append(member)
                committed[member.name] = RunFolder(args.runs_dir / member.source["member"])
    for folder in args.earlier_release:
        models.append(robustness.release_model(load_release(folder), kind="earlier release"))
        committed[models[-1].name] = RunFolder(args.runs_dir / folder.name)
    for workdir in args.run:
        if not RunFolder(workdir).best_checkpoint.exists():
            raise UserError(f"{workdir} has no best checkpoint (checkpoints are git-ignored): train it first")
        models.append(robustness.run_model(workdir, *load_run(workdir)))
        committed[models[-1].name] = RunFolder(workdir)
    if not models:
        raise UserError("nothing to score: give --run folders or drop --no-release")
    committed = {name: folder.predictions("test") for name, folder in committed.items()
                 if folder.predictions_file("test").is_file()}
    source = locate_dataset(args.data)
    table = pd.read_csv(args.split_file, keep_default_na=False)
    test = table[table["split"] == "test"].reset_index(drop=True)
    record = {"split_file": str(args.split_file), "split_sha256": archive.sha256_file(args.split_file),
              "provenance": provenance(data_sha256=archive.data_checksum(source), with_device=True)}
    summary = robustness.benchmark(models, source, test, args.subset, args.seed, tuple(args.corruptions),
                                   committed, args.out, record)
    for name, checks in summary["targets"].items():
        print(f"{name}: " + "; ".join(f"{k} {'pass' if v['pass'] else 'FAIL'}"
                                      for k, v in checks.items() if k != "all_pass"))
    print(f"wrote {args.out}/corruptions.csv, summary.json, predictions.csv and the figures")


if __name__ == "__main__":
    cli(main)()
