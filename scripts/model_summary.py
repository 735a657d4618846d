"""Layer table of each experiment's model (results/models_summary/architectures.csv + .json).

    python scripts/model_summary.py

Builds each model abstractly (jax.eval_shape: no weights are computed) at its config's image
size and counts parameters per stem, stage and head, and XLA's count of the forward pass's
operations per face (summary.json: gflops_per_face, and with flip averaging when the config's
evaluation uses it; "runs": the operations of runs trained at another input size than their
architecture's). The pretrained backbones' weight files (package, sha256, licence, training
data) are listed beside them. The report reads both files.
"""

import argparse
from pathlib import Path

import pandas as pd

from research.configs import load_run_config
from research.configs.experiments import RUNS, architecture_runs
from research.errors import cli
from research.models.pretrained.weights import NETWORKS, TRUNK_SOURCES
from research.models.summary import forward_gflops, layer_table
from research.outputs import write_csv, write_json
from research.provenance import provenance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("results/models_summary"))
    args = parser.parse_args()
    rows, models = [], {}
    for run in architecture_runs():  # one run per architecture (CORAL runs and seeds share them)
        config, entry = load_run_config(run), RUNS[run]
        table = layer_table(config)
        rows += [{"run": config.name, "image_px": config.image_size, **row} for row in table]
        gflops = forward_gflops(config)
        models[config.name] = {"config": entry.config, "profile": entry.profile,
                               "image_px": config.image_size,
                               "params": table[-1]["params"], "batch_stats": table[-1]["batch_stats"],
                               "gflops_per_face": round(gflops, 4),
                               "gflops_per_face_evaluated": round(gflops * (1 + config.eval.tta_flip), 4)}
        print(f"{config.name}: {table[-1]['params']:,} parameters, {gflops:.3f} GFLOPs per face "
              f"at {config.image_size} px")
    # Runs trained at another input size than their architecture's (operations scale with it).
    by_run = {}
    for run, entry in RUNS.items():
        key = (entry.config, entry.profile)
        base = next((m for m in models.values() if (m["config"], m["profile"]) == key), None)
        if entry.protocol != "utkface" or base is None:
            continue
        config = load_run_config(run)
        if config.image_size != base["image_px"]:
            gflops = forward_gflops(config)
            by_run[run] = {"image_px": config.image_size, "gflops_per_face": round(gflops, 4),
                           "gflops_per_face_evaluated": round(gflops * (1 + config.eval.tta_flip), 4)}
    pretrained = {name: {"model": model, "init": init, "package": NETWORKS[name].package,
                         "file": NETWORKS[name].resource, "sha256": NETWORKS[name].sha256,
                         "licence": NETWORKS[name].licence, "trained_on": NETWORKS[name].trained_on,
                         "install": NETWORKS[name].install}
                  for (model, init), name in TRUNK_SOURCES.items()}
    write_csv(args.out / "architectures.csv", pd.DataFrame(rows))
    write_json(args.out / "summary.json",
               {"models": models, "runs": by_run, "pretrained": pretrained, "provenance": provenance()})


if __name__ == "__main__":
    cli(main)()
