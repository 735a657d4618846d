"""Make an ensemble run folder from trained runs' prediction files (no retraining).

    python scripts/ensemble.py --name ensemble --members resnet50_multitask cnn_baseline
    python scripts/evaluate.py --run results/runs/ensemble --from-predictions

The members were chosen on the validation split (validation MAE of each subset is printed and
written to the folder's summary.json); the test split is only scored afterwards by evaluate.py.
"""

import argparse
import json
from pathlib import Path

from research.evaluation.ensemble import average_predictions, subset_scores
from research.evaluation.prediction_table import read_predictions
from research.outputs import write_csv, write_json
from research.provenance import provenance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--name", default="ensemble")
    parser.add_argument("--members", nargs="+", required=True, help="run names under --runs-dir")
    parser.add_argument("--candidates", nargs="*", default=[],
                        help="further runs whose subsets are scored on validation for the record")
    parser.add_argument("--runs-dir", type=Path, default=Path("results/runs"))
    args = parser.parse_args()
    summaries = {}
    for name in {*args.members, *args.candidates}:
        folder = args.runs_dir / name
        if not (folder / "predictions_val.csv").is_file():
            raise SystemExit(f"{folder} has no predictions_val.csv: run scripts/evaluate.py --run {folder}")
        summaries[name] = json.loads((folder / "summary.json").read_text())
    protocols = {summaries[m]["protocol"] for m in args.members}
    if len(protocols) != 1:
        raise SystemExit(f"members come from different protocols {sorted(protocols)}")

    scored = subset_scores({name: read_predictions(args.runs_dir / name / "predictions_val.csv")
                            for name in summaries})
    out = args.runs_dir / args.name
    for split in ("val", "test"):
        frames = [read_predictions(args.runs_dir / m / f"predictions_{split}.csv") for m in args.members]
        write_csv(out / f"predictions_{split}.csv", average_predictions(frames), float_format="%.4f")
    first = summaries[args.members[0]]
    write_json(out / "config.json", {"name": args.name, "kind": "ensemble", "members": args.members,
                                     "weights": "equal", "combine": "mixture of predicted distributions"})
    write_json(out / "summary.json", {
        "name": args.name, "kind": "ensemble", "protocol": first["protocol"], "members": args.members,
        "member_devices": {m: summaries[m].get("device_kind") for m in args.members},
        "member_wall_time_s": {m: summaries[m].get("wall_time_s") for m in args.members},
        "wall_time_s": sum(summaries[m].get("wall_time_s", 0) for m in args.members),
        "device_kind": "+".join(sorted({str(summaries[m].get("device_kind")) for m in args.members})),
        "image_size": "+".join(str(summaries[m].get("image_size")) for m in args.members),
        "reduced_run": any(summaries[m].get("reduced_run") for m in args.members),
        "val_age_mae_of_subsets": scored,
        "provenance": provenance(data_sha256=first["provenance"]["data_sha256"])})
    for subset, mae in sorted(scored.items(), key=lambda kv: kv[1]):
        print(f"validation MAE {mae:.3f}  {subset}")


if __name__ == "__main__":
    main()
