"""Make an ensemble run folder from trained runs' prediction files (no retraining).

    python scripts/ensemble.py --name ensemble --members resnet50_multitask cnn_baseline cnn_baseline_s1 \
        [--weights greedy --steps 20]
    python scripts/evaluate.py --run results/runs/ensemble --from-predictions

--weights equal mixes every member alike; --weights greedy gives each member the share of
--steps greedy selection steps (with replacement) that picked it on the validation split, so a
member may get weight 0. Validation MAE of each equal-weight subset is printed and written to
the folder's summary.json for the record; the test split is only scored afterwards by evaluate.py.
"""

import argparse
import json
from pathlib import Path

from research.evaluation.ensemble import average_predictions, greedy_weights, subset_scores
from research.outputs import write_csv, write_json
from research.provenance import provenance
from research.runs.folder import read_predictions, run_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--name", default="ensemble")
    parser.add_argument("--members", nargs="+", required=True, help="run names under --runs-dir")
    parser.add_argument("--candidates", nargs="*", default=[],
                        help="further runs whose subsets are scored on validation for the record")
    parser.add_argument("--weights", choices=("equal", "greedy"), default="equal")
    parser.add_argument("--steps", type=int, default=20, help="greedy selection steps (--weights greedy)")
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

    val = {name: read_predictions(args.runs_dir / name / "predictions_val.csv") for name in summaries}
    scored = subset_scores(val)
    weights = ({m: 1 / len(args.members) for m in args.members} if args.weights == "equal" else
               greedy_weights({m: val[m] for m in args.members}, args.steps))
    members = [m for m in args.members if weights[m] > 0]
    if len(members) < 2:
        raise SystemExit(f"only {members} would get weight ({args.weights}): a single run, not an ensemble")
    out = args.runs_dir / args.name
    mixed = {}
    for split in ("val", "test"):
        frames = [read_predictions(args.runs_dir / m / f"predictions_{split}.csv") for m in members]
        mixed[split] = average_predictions(frames, [weights[m] for m in members])
        write_csv(out / f"predictions_{split}.csv", mixed[split], float_format="%.4f")
    val_mae = float((mixed["val"]["pred_age"] - mixed["val"]["age"]).abs().mean())
    first = summaries[members[0]]
    write_json(out / "config.json", {"name": args.name, "kind": "ensemble", "members": members,
                                     "candidates": args.members, "weighting": args.weights,
                                     "greedy_steps": args.steps if args.weights == "greedy" else None,
                                     "weights": {m: weights[m] for m in members},
                                     "combine": "weighted mixture of predicted distributions"})
    write_json(out / "summary.json", {
        "name": args.name, "kind": "ensemble", "protocol": first["protocol"], "members": members,
        "weighting": args.weights, "greedy_steps": args.steps if args.weights == "greedy" else None,
        "weights": {m: weights[m] for m in members}, "val_age_mae": val_mae,
        "member_devices": {m: summaries[m].get("device_kind") for m in members},
        "member_wall_time_s": {m: summaries[m].get("wall_time_s") for m in members},
        "wall_time_s": sum(run_seconds(summaries[m]) for m in members),
        "device_kind": "+".join(sorted({str(summaries[m].get("device_kind")) for m in members})),
        "image_size": "+".join(map(str, sorted({summaries[m]["image_size"] for m in members}, reverse=True))),
        "reduced_run": any(summaries[m].get("reduced_run") for m in members),
        "val_age_mae_of_subsets": scored,
        "provenance": provenance(data_sha256=first["provenance"]["data_sha256"])})
    for subset, mae in sorted(scored.items(), key=lambda kv: kv[1])[:10]:
        print(f"validation MAE {mae:.3f}  {subset} (equal weights)")
    shares = ", ".join(f"{m} {weights[m]:.2f}" for m in members)
    print(f"validation MAE {val_mae:.3f}  {args.name}: {shares}")


if __name__ == "__main__":
    main()
