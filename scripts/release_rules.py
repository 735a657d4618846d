"""The prediction command's rules for the release as it ships: its age correction (the one
scripts/age_bias.py chose on validation, if any), the interval calibrated on the corrected validation
estimates, and each rule's Challenge-N operating point chosen on validation, scored on test.

    python scripts/release_rules.py [--resamples 2000] [--seed 0]

Reads results/bias/summary.json and, with the correction, results/bias/correction.json and
release_corrected_{val,test}.csv, else results/decision/release_{val,test}.csv; writes
results/rules/rules.json (what the release carries: scripts/export_model.py --rules-only) and
coverage.csv (research.evaluation.rules).
"""

import argparse
import json
from pathlib import Path

import pandas as pd

from research.configs.experiments import EVALUATION, RELEASE
from research.errors import UserError, cli
from research.evaluation import rules
from research.runs.folder import SPLITS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--bias-dir", type=Path, default=Path("results/bias"))
    parser.add_argument("--decision-dir", type=Path, default=Path("results/decision"))
    parser.add_argument("--out", type=Path, default=Path("results/rules"))
    parser.add_argument("--resamples", type=int, default=EVALUATION.resamples)
    parser.add_argument("--seed", type=int, default=EVALUATION.seed)
    args = parser.parse_args()
    summary_file = args.bias_dir / "summary.json"
    if not summary_file.is_file():
        raise UserError(f"{summary_file} is missing: run scripts/age_bias.py first")
    corrected = json.loads(summary_file.read_text())["method_chosen_on_validation"] != "none"
    tables = ([args.bias_dir / f"release_corrected_{s}.csv" for s in SPLITS] if corrected else
              [args.decision_dir / f"release_{s}.csv" for s in SPLITS])
    correction_file = args.bias_dir / "correction.json"
    inputs = [summary_file, *tables, *([correction_file] if corrected else [])]
    made_by = (args.bias_dir / "release_probs_val.json" if corrected else
               args.decision_dir / "release_distributions.json")
    inputs.append(made_by)
    missing = [str(p) for p in inputs if not p.is_file()]
    if missing:
        raise UserError(f"missing {', '.join(missing)}: run scripts/age_bias.py first")
    correction = json.loads(correction_file.read_text()) if corrected else None
    if correction is not None and correction.get("kind") is None:
        raise UserError(f"{correction_file} holds no correction but {summary_file} chose one: "
                        "rerun scripts/age_bias.py")
    release = {"name": RELEASE, "params_sha256": json.loads(made_by.read_text())["params_sha256"]}
    val, test = (pd.read_csv(p) for p in tables)
    record = rules.write_rules(val, test, correction, release, inputs, args.out, args.resamples, args.seed,
                               EVALUATION.level)
    for n, entry in record["challenges"].items():
        for rule, point in entry["rules"].items():
            test_rates = point["test"]
            mark = " (default)" if rule == entry["default_rule"] else ""
            print(f"Challenge {n} {rule}{mark}: parameter {point['parameter']}; test 13-17 through "
                  f"{test_rates['fpr_13_17'][0]:.3f}, 25+ asked {test_rates['friction_25plus'][0]:.3f}")
    print(f"interval: {record['interval']['method']}; test coverage {record['coverage']['overall'][0]:.3f}")


if __name__ == "__main__":
    cli(main)()
