"""Mirror averaging or one view: how the release runs, chosen on validation -> <release>/inference.json.

    python scripts/release_inference.py [--release results/models/NAME] [--data PATH]

Scores the release on the validation split with and without flip TTA (age MAE, gender and ethnicity
accuracy, forward seconds), against the validation accuracy of the release it replaced (the
registry's ACCURACY_BAR_RELEASE, from its committed predictions_val.csv), and keeps the mirror only
when without it the release misses that bar (research.release.inference). The registry's
INFERENCE_COMPARED releases are scored the same way beside it, as evidence. Writes inference.json
into the release folder (made for its params; research.predict.release.load_release applies it)
with the measurements and provenance. Needs no checkpoint.
"""

import argparse
from pathlib import Path

import pandas as pd

from research.configs.experiments import ACCURACY_BAR_RELEASE, INFERENCE_COMPARED, RELEASE_DIR
from research.data import archive
from research.data.locate import locate_dataset
from research.errors import UserError, cli
from research.evaluation import decision
from research.outputs import write_json
from research.predict.release import INFERENCE_FILE, load_release
from research.provenance import provenance
from research.release import inference
from research.runs.folder import RunFolder


def measure(path: Path, table: pd.DataFrame, source: Path) -> tuple[object, dict]:
    release = load_release(path)
    size, batch = int(release.config.image_size), int(release.config.eval.batch_size)
    images = decision.decoded_images(source, table["file"], size)
    views = {}
    for flip in (True, False):
        key = "with_flip" if flip else "without_flip"
        views[key] = inference.view_metrics(release, images, table, flip, batch)
        print(f"{path.name} tta_flip={flip}: {views[key]}", flush=True)
    return release, {"release": str(path), "image_size": size,
                     "params_sha256": release.metadata["params_sha256"], **views}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--release", type=Path, default=Path(RELEASE_DIR), help="a release model folder")
    parser.add_argument("--split-file", type=Path, default=Path("results/splits/utkface.csv"))
    parser.add_argument("--data", help="UTKFace archive or folder (else $UTKFACE, data/raw, ../shared/data)")
    parser.add_argument("--runs-dir", type=Path, default=Path("results/runs"))
    parser.add_argument("--models-dir", type=Path, default=Path("results/models"))
    args = parser.parse_args()
    bar_file = RunFolder(args.runs_dir / ACCURACY_BAR_RELEASE).predictions_file("val")
    if not bar_file.is_file():
        raise UserError(f"{bar_file} is missing: the bar release {ACCURACY_BAR_RELEASE} needs its committed "
                        f"validation predictions (make {bar_file})")
    source = locate_dataset(args.data)
    table = pd.read_csv(args.split_file, keep_default_na=False)
    table = table[table["split"] == "val"].reset_index(drop=True)
    bar_predictions = pd.read_csv(bar_file)
    if set(bar_predictions["file"]) != set(table["file"]):
        raise UserError(f"{bar_file} does not cover the validation split of {args.split_file}: rerun its "
                        "predictions")
    bar = {"release": ACCURACY_BAR_RELEASE, **inference.bar_metrics(bar_predictions)}
    # The file is removed first: the release is measured as its training config runs it, not as a
    # previous choice does (load_release applies inference.json).
    (args.release / INFERENCE_FILE).unlink(missing_ok=True)
    release, measured = measure(args.release, table, source)
    flip, reason = inference.choose_flip(measured["with_flip"], measured["without_flip"], bar)
    compared = [measure(args.models_dir / name, table, source)[1] for name in INFERENCE_COMPARED]
    write_json(args.release / INFERENCE_FILE, {
        "tta_flip": flip, "reason": reason, "chosen_on": "val",
        "release": {"path": str(args.release), "params_sha256": release.metadata["params_sha256"]},
        "bar": bar, "measured": measured, "compared": compared,
        "split_file": str(args.split_file), "split_sha256": archive.sha256_file(args.split_file),
        "provenance": provenance(data_sha256=archive.data_checksum(source), with_device=True)})
    print(f"{args.release / INFERENCE_FILE}: tta_flip={flip}: {reason}")


if __name__ == "__main__":
    cli(main)()
