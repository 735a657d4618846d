"""Train every ablation arm of the CNN baseline, then write results/ablations/.

    python scripts/ablate.py [--arms full res48] [--seeds 0 1] [--table-only] [--data PATH]

Arms and the shared short profile are declared in research/configs/ablations.py. Finished runs
(a summary.json in results/ablations/runs/<arm>/seed<k>/) are skipped and an interrupted run
resumes from its last checkpoint, so rerunning the same command continues where it stopped.
Writes runs.csv (one row per run), ablations.csv (mean and spread over seeds), ablations.png.
"""

import argparse
from pathlib import Path

from research.configs.experiments import force_host_devices

force_host_devices()  # before jax starts

from research.configs import ablations as declared  # noqa: E402
from research.configs import load_config  # noqa: E402
from research.configs.overrides import apply_overrides  # noqa: E402
from research.errors import cli  # noqa: E402
from research.evaluation.ablations import ablation_table, collect_runs, plot_ablations, run_dir  # noqa: E402
from research.outputs import write_csv, write_json  # noqa: E402
from research.provenance import provenance  # noqa: E402
from research.training.loop import train_and_evaluate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--arms", nargs="+", default=list(declared.ARMS), choices=list(declared.ARMS))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(declared.SEEDS))
    parser.add_argument("--out", type=Path, default=Path("results/ablations"))
    parser.add_argument("--profile", default=declared.BASE_PROFILE, help="smoke for a seconds-long rehearsal")
    parser.add_argument("--table-only", action="store_true", help="only rebuild the table from finished runs")
    parser.add_argument("--data", help="UTKFace archive or folder (else $UTKFACE, data/raw, ../shared/data)")
    args = parser.parse_args()
    if not args.table_only:
        for seed in args.seeds:  # every arm once before any arm twice: an early stop still covers all
            for arm in args.arms:
                workdir = run_dir(args.out, arm, seed)
                if (workdir / "summary.json").exists():
                    continue
                print(f"== ablation {arm} seed {seed} -> {workdir}")
                config = apply_overrides(load_config(declared.BASE_CONFIG, args.profile),
                                         declared.arm_overrides(arm, seed))
                train_and_evaluate(config, workdir, args.data)
    seeds = sorted({*declared.SEEDS, *args.seeds})
    runs = collect_runs(args.out, declared.ARMS, seeds, declared.disabled_heads)
    if runs.empty:
        raise SystemExit(f"no finished ablation runs under {args.out}/runs: run without --table-only first")
    table = ablation_table(runs, declared.ARMS, lambda arm: declared.ARMS[arm][1])
    write_csv(args.out / "runs.csv", runs, float_format="%.4f")
    write_csv(args.out / "ablations.csv", table, float_format="%.4f")
    plot_ablations(table, runs, args.out / "ablations.png")
    write_json(args.out / "summary.json", {
        "base_config": declared.BASE_CONFIG, "profile": args.profile, "shared_overrides": declared.PROFILE,
        "split": "validation (last epoch)", "runs_finished": len(runs),
        "runs_declared": len(declared.ARMS) * len(seeds),
        "provenance": provenance(with_device=True)})
    print(table.to_string(index=False))


if __name__ == "__main__":
    cli(main)()
