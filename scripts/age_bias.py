"""The release's mean signed error per age group and its correction (label prior or de-shrinking
map), chosen on validation, scored once on test, from the release's full age distributions only.

    python scripts/age_bias.py [--smoke]

Reads results/bias/release_probs_{val,test}.npz (scripts/release_probs.py) and the training split's
ages (research/configs/age_bias.py) and writes results/bias/: bands.csv, challenge.csv, by_age.csv,
choice.csv, release_corrected_{val,test}.csv, correction.json (what the release carries),
summary.json and by_age.png (research.evaluation.age_bias).
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from research.configs.age_bias import get_config
from research.errors import UserError, cli
from research.evaluation import age_bias, release_probs
from research.evaluation.decision import DECISION_CHALLENGES
from research.runs.folder import SPLITS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--bias-dir", type=Path, default=Path("results/bias"),
                        help="the distributions in, the results out")
    parser.add_argument("--smoke", action="store_true", help="a small bootstrap (tests)")
    args = parser.parse_args()
    config = get_config("smoke" if args.smoke else "")
    split_table = pd.read_csv(config.split_file, keep_default_na=False)
    tables, probs, inputs = {}, {}, [Path(config.split_file)]
    for split in SPLITS:
        path = release_probs.probs_path(args.bias_dir, split)
        try:
            files, probs[split] = release_probs.read_probs(path)
        except (FileNotFoundError, ValueError) as error:
            raise UserError(str(error)) from None
        tables[split] = split_table.set_index("file").loc[files].reset_index()
        if not np.array_equal(tables[split]["split"], np.full(len(files), split)):
            raise UserError(f"{path} holds faces that are not in the {split} split of {config.split_file}")
        inputs.append(path)
    train_ages = split_table.loc[split_table["split"] == "train", "age"].astype(int)
    summary = age_bias.write_bias(tables, probs, train_ages, config, inputs, args.bias_dir,
                                  DECISION_CHALLENGES)
    for split in SPLITS:
        for method in age_bias.METHODS:
            row = summary["bands"][split][method]
            errors = ", ".join(f"{b} {row[b]['mean_signed_error'][0]:+.2f}" for b in age_bias.BANDS)
            print(f"{split} {method}: MAE {row['all']['mae'][0]:.2f}; mean signed error {errors}")
    print(f"tau {summary['tau']:g}, lambda {summary['lambda']:g}; chosen on validation: "
          f"{summary['method_chosen_on_validation']}")


if __name__ == "__main__":
    cli(main)()
