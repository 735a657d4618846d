"""The reproducibility appendix: package versions, provenance of every run and stage, measured
wall times and training throughput."""

from __future__ import annotations

import pandas as pd
from IPython.display import Markdown

from research.configs import experiments
from research.report.results import Results, num, table
from research.report.runs import TestedModels, run_minutes, training_description

STAGES = (
    ("cleaning", "cleaning/summary.json"),
    ("splits", "splits/summary.json"),
    ("visualization", "eda/summary.json"),
    ("layer tables", "models_summary/summary.json"),
)


def environment_table(models: TestedModels, run: str = experiments.MAIN_RUN) -> Markdown:
    """Package versions recorded by one run's training and by its evaluation."""
    trained, evaluated = (models.summaries[run]["provenance"], models.metrics[run]["provenance"])
    packages = trained["packages"]
    frame = pd.DataFrame(
        {
            "package": list(packages),
            "training": list(packages.values()),
            "evaluation": [evaluated["packages"].get(k, "") for k in packages],
        }
    )
    return table(
        frame,
        f"Package versions recorded by the training of {run} (on {models.summaries[run]['device_kind']}) "
        "and by its evaluation.",
        "environment",
    )


def commit(record: dict) -> str:
    """Short hash, keeping the '-dirty' mark of uncommitted code changes."""
    sha = record["provenance"]["git_commit"]
    return sha[:10] + ("-dirty" if sha.endswith("-dirty") else "")


def provenance_table(results: Results, models: TestedModels) -> Markdown:
    """The commit that trained (or wrote) each run and stage, the commit that evaluated it, and when."""
    rows = [
        {
            "run": n,
            "training": training_description(s),
            "train commit": commit(s),
            "train minutes": num(run_minutes(s), 1),
            "eval commit": commit(models.metrics[n]),
            "created (UTC)": s["provenance"]["created_utc"],
        }
        for n, s in models.summaries.items()
        if n in models.trained()
    ]
    for stage, path in STAGES:
        if results.exists(path):
            sm = results.json(path)
            seconds = sm.get("wall_time_s")
            rows.append(
                {
                    "run": stage,
                    "training": "CPU",
                    "train commit": commit(sm),
                    "train minutes": "" if seconds is None else num(seconds / 60, 1),
                    "eval commit": "",
                    "created (UTC)": sm["provenance"]["created_utc"],
                }
            )
    return table(
        pd.DataFrame(rows),
        "Provenance of each run and stage: the commit that trained (or wrote) it, the "
        "commit that evaluated it, device and wall time (a '-dirty' commit had uncommitted code changes).",
        "provenance",
    )


def timings_table(results: Results, models: TestedModels) -> Markdown:
    """Measured wall time per stage, the reduced run labelled as such."""
    timings = results.csv("summary/timings.csv")
    for name in models.trained():
        if models.summaries[name].get("reduced_run"):
            rows = timings["stage"].str.contains(name, regex=False)
            timings.loc[rows, "stage"] = timings.loc[rows, "stage"].str.replace(
                "(cpu profile)", "(reduced CPU profile)"
            )
    return table(
        timings,
        "Measured wall time per stage (results/summary/timings.csv, written by scripts/results_table.py).",
        "timings",
    )


def throughput_table(results: Results) -> Markdown:
    """Training throughput per model, image size, device count and convolution."""
    bench = results.csv("bench/train_throughput.csv")
    shown = bench[
        ["model", "image_size", "devices", "conv_impl", "dtype", "images_per_s", "compile_s"]
    ].rename(
        columns={
            "image_size": "px",
            "conv_impl": "convolution",
            "images_per_s": "images/s",
            "compile_s": "compile s",
        }
    )
    return table(
        shown,
        f"Training throughput on this project's {results.json('bench/train_throughput.json')['cpu_count']}"
        "-core CPU, per model, image size, device count and convolution "
        "(results/bench/train_throughput.csv).",
        "bench",
    )
