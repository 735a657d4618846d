"""The release model's full age distribution on one split (the input of scripts/age_bias.py).

    python scripts/release_probs.py --split val [--part K/M] [--release results/models/NAME]
                                    [--data PATH]

Reads the split's crops from the UTKFace archive as evaluation saw them and writes
results/bias/release_probs_<split>.npz (files, age_probs: faces x 117) and release_probs_<split>.json
(provenance; agreement of each distribution's mean and sd with results/decision/release_<split>.csv).
About 9 minutes (val) and 17 (test) on 2 busy CPU cores; ``--part K/M`` computes the K-th of M
equal slices of the split (parts 0..M-1, in any order) and the last one to finish writes the file.
"""

import argparse
from pathlib import Path

import pandas as pd

from research.configs.experiments import RELEASE_DIR
from research.data import archive
from research.data.locate import locate_dataset
from research.errors import cli
from research.evaluation import decision, release_probs
from research.outputs import write_json
from research.predict.release import load_release
from research.provenance import provenance
from research.runs.folder import SPLITS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--split", choices=SPLITS, required=True)
    parser.add_argument("--release", type=Path, default=Path(RELEASE_DIR), help="a release model folder")
    parser.add_argument("--split-file", type=Path, default=Path("results/splits/utkface.csv"))
    parser.add_argument("--data", help="UTKFace archive or folder (else $UTKFACE, data/raw, ../shared/data)")
    parser.add_argument("--decision-dir", type=Path, default=Path("results/decision"),
                        help="where release_<split>.csv is compared")
    parser.add_argument("--out", type=Path, default=Path("results/bias"))
    parser.add_argument("--part", default="0/1", help="K/M: only the K-th of M slices of the split")
    args = parser.parse_args()
    part, parts = release_probs.parse_part(args.part)
    source = locate_dataset(args.data)
    release = load_release(args.release)
    table = pd.read_csv(args.split_file, keep_default_na=False)
    table = table[table["split"] == args.split].reset_index(drop=True)
    rows = release_probs.part_rows(len(table), part, parts)
    images = decision.decoded_images(source, table["file"].iloc[rows], int(release.config.image_size))
    probs = release_probs.release_probabilities(release.members, release.weights, release.model.apply,
                                                bool(release.config.eval.tta_flip), images,
                                                int(release.config.eval.batch_size))
    target = release_probs.probs_path(args.out, args.split)
    release_probs.write_probs(release_probs.part_path(target, part, parts), table["file"].iloc[rows], probs)
    if not release_probs.merge_parts(target, parts):
        print(f"part {part} of {parts} written; the other parts are still to run")
        return
    probs = release_probs.read_probs(target)[1]
    committed = args.decision_dir / f"release_{args.split}.csv"
    check = (release_probs.agreement_with(table["file"].to_numpy(), probs, pd.read_csv(committed))
             if committed.is_file() else None)
    write_json(target.with_suffix(".json"), {
        "release": str(args.release), "params_sha256": release.metadata["params_sha256"], "split": args.split,
        "split_file": str(args.split_file), "split_sha256": archive.sha256_file(args.split_file),
        "file_sha256": archive.sha256_file(target), "parts": parts, "against": str(committed),
        "agreement": check,
        "provenance": provenance(data_sha256=archive.data_checksum(source), with_device=True)})
    print(f"{target}: {len(probs)} faces; {check}")


if __name__ == "__main__":
    cli(main)()
