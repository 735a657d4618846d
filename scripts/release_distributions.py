"""The release model's age distribution on the validation and test splits.

    python scripts/release_distributions.py [--release results/models/NAME] [--data PATH]

Reads each split's crops from the UTKFace archive as evaluation saw them (decode_resize at the
model's image size, flip TTA as the release config says) and writes results/decision/:
release_val.csv and release_test.csv (file, age, gender, race, pred_age, age_std, p_under_<N> for
N in research.evaluation.decision.DECISION_CHALLENGES) and release_distributions.json (provenance,
and how pred_age agrees with the release run's committed predictions_<split>.csv).
"""

import argparse
from pathlib import Path

import pandas as pd

from research.configs.experiments import RELEASE, RELEASE_DIR
from research.data import archive
from research.data.locate import locate_dataset
from research.errors import cli
from research.evaluation import decision
from research.outputs import write_csv, write_json
from research.predict.release import load_release
from research.provenance import provenance
from research.runs.folder import SPLITS, RunFolder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--release", type=Path, default=Path(RELEASE_DIR), help="a release model folder")
    parser.add_argument("--split-file", type=Path, default=Path("results/splits/utkface.csv"))
    parser.add_argument("--data", help="UTKFace archive or folder (else $UTKFACE, data/raw, ../shared/data)")
    parser.add_argument("--runs-dir", type=Path, default=Path("results/runs"),
                        help="where the release run's committed predictions are compared")
    parser.add_argument("--out", type=Path, default=Path("results/decision"))
    args = parser.parse_args()
    source = locate_dataset(args.data)
    release = load_release(args.release)
    table = pd.read_csv(args.split_file, keep_default_na=False)
    table = table[table["split"].isin(SPLITS)].reset_index(drop=True)
    images = decision.decoded_images(source, table["file"], int(release.config.image_size))
    frame = decision.release_distributions(release.members, release.weights, release.model.apply,
                                           bool(release.config.eval.tta_flip), images, table,
                                           int(release.config.eval.batch_size))
    committed = RunFolder(args.runs_dir / args.release.name)
    checks = {}
    for split in SPLITS:
        part = frame[(table["split"] == split).to_numpy()]
        write_csv(args.out / f"release_{split}.csv", part, float_format="%.4f")
        if committed.predictions_file(split).is_file():
            checks[split] = decision.agreement(part, committed.predictions(split))
        print(f"{args.out / f'release_{split}.csv'}: {len(part)} rows; {checks.get(split)}")
    write_json(args.out / "release_distributions.json", {
        "release": str(args.release), "release_run": RELEASE,
        "params_sha256": release.metadata["params_sha256"],
        "split_file": str(args.split_file), "split_sha256": archive.sha256_file(args.split_file),
        "image_size": int(release.config.image_size), "tta_flip": bool(release.config.eval.tta_flip),
        "challenges": list(decision.DECISION_CHALLENGES),
        "pred_age_against_committed_predictions": checks,
        "provenance": provenance(data_sha256=archive.data_checksum(source), with_device=True)})


if __name__ == "__main__":
    cli(main)()
