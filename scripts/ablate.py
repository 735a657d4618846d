"""Train every arm of an ablation study, then write its results folder.

    python scripts/ablate.py [--study cnn|pretrained] [--arms full ...] [--seeds 0 1] [--table-only]
                             [--data PATH]

Studies, their arms and their shared short profiles are declared in research/configs/ablations.py
(cnn -> results/ablations/, pretrained -> results/ablations_pretrained/). Finished runs (a
summary.json in <out>/runs/<arm>/seed<k>/) are skipped and an interrupted run resumes from its
last checkpoint, so rerunning the same command continues where it stopped. Writes runs.csv (one
row per run), ablations.csv (mean and spread over seeds), ablations.png and summary.json.
"""

import argparse
import json
from pathlib import Path

from research.configs.experiments import force_host_devices

force_host_devices()  # before jax starts

from research.configs import load_config  # noqa: E402
from research.configs.ablations import STUDIES  # noqa: E402
from research.configs.overrides import apply_overrides  # noqa: E402
from research.errors import cli  # noqa: E402
from research.evaluation.ablations import ablation_table, collect_runs, plot_ablations, run_dir  # noqa: E402
from research.outputs import write_csv, write_json  # noqa: E402
from research.provenance import provenance  # noqa: E402
from research.runs.folder import lineage  # noqa: E402
from research.training.loop import train_and_evaluate  # noqa: E402


def study_summary(study, profile: str) -> dict:
    """What the study shares, and the full-length run its reference arm is measured against."""
    out = {"title": study.title, "base_config": study.base_config, "profile": profile,
           "shared_overrides": study.profile, **({"init_from": study.init_from} if study.init_from else {})}
    if study.reference_run:
        summary = Path("results/runs") / study.reference_run / "summary.json"
        if not summary.is_file():
            raise SystemExit(f"{summary} is missing: the reference run of this study must be trained first "
                             f"(make {summary.parent}/metrics_test.json)")
        reference = json.loads(summary.read_text())
        seconds, epochs = lineage(summary.parent.parent, reference)  # a continuation counts its ancestors
        out |= {"reference_run": study.reference_run, "reference_epochs": epochs,
                "reference_train_minutes": round(seconds / 60, 1),
                "reference_val": {key: reference["final_val"][key]
                                  for key in ("age_mae", "gender_accuracy", "ethnicity_accuracy")}}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--study", default="cnn", choices=list(STUDIES))
    parser.add_argument("--arms", nargs="+", help="a subset of the study's arms (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, help="default: the study's seeds")
    parser.add_argument("--out", type=Path, help="default: the study's results folder")
    parser.add_argument("--profile", help="default: the study's profile; smoke: a seconds-long rehearsal")
    parser.add_argument("--table-only", action="store_true", help="only rebuild the table from finished runs")
    parser.add_argument("--data", help="UTKFace archive or folder (else $UTKFACE, data/raw, ../shared/data)")
    args = parser.parse_args()
    declared = STUDIES[args.study]
    unknown = sorted(set(args.arms or ()) - set(declared.arms))
    if unknown:
        parser.error(f"--study {args.study} has no arm {', '.join(unknown)}; "
                     f"its arms: {', '.join(declared.arms)}")
    args.arms = args.arms or list(declared.arms)
    args.seeds = args.seeds if args.seeds is not None else list(declared.seeds)
    args.out = args.out or Path(declared.out)
    args.profile = args.profile or declared.base_profile
    if not args.table_only:
        for seed in args.seeds:  # every arm once before any arm twice: an early stop still covers all
            for arm in args.arms:
                workdir = run_dir(args.out, arm, seed)
                if (workdir / "summary.json").exists():
                    continue
                print(f"== ablation {arm} seed {seed} -> {workdir}")
                config = apply_overrides(load_config(declared.base_config, args.profile),
                                         declared.arm_overrides(arm, seed))
                if declared.init_from:  # as research.configs.load_run_config does for a registered run
                    config.model.init_from = declared.init_from
                train_and_evaluate(config, workdir, args.data)
    seeds = sorted({*declared.seeds, *args.seeds})
    runs = collect_runs(args.out, declared.arms, seeds, declared.disabled_heads)
    if runs.empty:
        raise SystemExit(f"no finished ablation runs under {args.out}/runs: run without --table-only first")
    table = ablation_table(runs, declared.arms, declared.overrides_of)
    write_csv(args.out / "runs.csv", runs, float_format="%.4f")
    write_csv(args.out / "ablations.csv", table, float_format="%.4f")
    plot_ablations(table, runs, args.out / "ablations.png", declared.title,
                   declared.profile.get("optimizer.num_epochs", "?"))
    write_json(args.out / "summary.json", {
        "study": args.study, **study_summary(declared, args.profile),
        "split": "validation (last epoch)", "runs_finished": len(runs),
        "runs_declared": len(declared.arms) * len(seeds),
        "provenance": provenance(with_device=True)})
    print(table.to_string(index=False))


if __name__ == "__main__":
    cli(main)()
