"""Make a registered ensemble's run folder from its members' prediction files (no retraining).

    python scripts/ensemble.py --name ensemble
    python scripts/evaluate.py --run results/runs/ensemble --from-predictions

Members, weighting (equal, or greedy selection on the validation split) and the further candidates
scored for the record are declared in research/configs/experiments.py (ENSEMBLES). The validation
MAE of each equal-weight subset goes to the folder's summary.json; the test split is only scored
afterwards by evaluate.py.
"""

import argparse
from pathlib import Path

from research.configs.experiments import ENSEMBLES
from research.errors import cli
from research.evaluation.ensemble import make_ensemble


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--name", required=True, choices=list(ENSEMBLES), help="a registered ensemble")
    parser.add_argument("--runs-dir", type=Path, default=Path("results/runs"))
    args = parser.parse_args()
    summary = make_ensemble(args.name, ENSEMBLES[args.name], args.runs_dir)
    for subset, mae in sorted(summary["val_age_mae_of_subsets"].items(), key=lambda kv: kv[1])[:10]:
        print(f"validation MAE {mae:.3f}  {subset} (equal weights)")
    shares = ", ".join(f"{m} {w:.2f}" for m, w in summary["weights"].items())
    print(f"validation MAE {summary['val_age_mae']:.3f}  {args.name}: {shares}")


if __name__ == "__main__":
    cli(main)()
