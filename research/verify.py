"""A reviewer's check: recompute every committed metric, breakdown, ensemble, comparison and table
from the committed prediction files, and list every value that differs, with its file and key.

Nothing is trained and no checkpoint is read: what is recomputed is everything downstream of the
prediction files (and of the ablation runs' histories). Provenance, wall times and figures are not
compared (they describe when and how a file was made, not what it says).
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from research.configs import experiments
from research.configs.ablations import STUDIES
from research.evaluation.ablations import ablation_table, collect_runs
from research.evaluation.breakdowns import TABLE_FLOAT_FORMAT, breakdown_tables
from research.evaluation.comparison import (
    COMPARISON_FLOAT_FORMAT,
    compared_folders,
    comparison_table,
    mae_by_age_group,
    model_sweeps,
)
from research.evaluation.ensemble import average_predictions
from research.evaluation.metrics import evaluate_predictions
from research.report import tables
from research.runs.folder import RunFolder

SKIPPED_KEYS = ("provenance", "wall_time_s")


@dataclasses.dataclass(frozen=True)
class Difference:
    """One value that the committed file and the recomputation disagree on."""

    file: str
    key: str
    committed: object
    recomputed: object

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: committed {self.committed!r}, recomputed {self.recomputed!r}"


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def json_differences(file: Path, recomputed: object, committed: object | None = None,
                     key: str = "") -> list[Difference]:
    """Differences between a JSON value and the file's (keys in SKIPPED_KEYS are not compared)."""
    committed = json.loads(Path(file).read_text()) if committed is None else committed
    recomputed = json.loads(json.dumps(recomputed))  # as written: tuples -> lists, numpy -> Python
    if isinstance(committed, dict) and isinstance(recomputed, dict):
        out = []
        for name in sorted(set(committed) | set(recomputed)):
            if name in SKIPPED_KEYS:
                continue
            if name not in committed or name not in recomputed:
                out.append(Difference(str(file), f"{key}/{name}", committed.get(name, "<absent>"),
                                      recomputed.get(name, "<absent>")))
            else:
                out += json_differences(file, recomputed[name], committed[name], f"{key}/{name}")
        return out
    if isinstance(committed, list) and isinstance(recomputed, list) and len(committed) == len(recomputed):
        return [d for i, (c, r) in enumerate(zip(committed, recomputed, strict=True))
                for d in json_differences(file, r, c, f"{key}[{i}]")]
    return [] if _same(committed, recomputed) else [Difference(str(file), key or "/", committed, recomputed)]


def csv_differences(file: Path, frame: pd.DataFrame, float_format: str | None = None) -> list[Difference]:
    """Cell-by-cell differences between a CSV file and ``frame`` written the same way."""
    read = {"dtype": str, "keep_default_na": False}
    committed = pd.read_csv(file, **read)
    recomputed = pd.read_csv(io.StringIO(frame.to_csv(index=False, float_format=float_format)), **read)
    if list(committed.columns) != list(recomputed.columns) or len(committed) != len(recomputed):
        return [Difference(str(file), "shape", [len(committed), *committed.columns],
                           [len(recomputed), *recomputed.columns])]
    cells = (committed != recomputed).to_numpy().nonzero()
    return [Difference(str(file), f"row {i + 1} {committed.columns[j]}", committed.iat[i, j],
                       recomputed.iat[i, j]) for i, j in zip(*cells, strict=True)]


def verify_metrics(folder: RunFolder) -> list[Difference]:
    """metrics_test.json from the run's prediction files, with the settings the file records."""
    committed = folder.metrics()
    boot = committed["bootstrap"]
    target = (committed.get("operating_point") or {}).get("max_minor_pass_rate",
                                                          experiments.EVALUATION.max_minor_pass_rate)
    recomputed = evaluate_predictions(folder.predictions("test"), folder.predictions("val"),
                                      boot["resamples"], boot["seed"], target, boot["level"])
    return json_differences(folder.metrics_file, recomputed, committed)


def verify_ensemble(folder: RunFolder) -> list[Difference]:
    """An ensemble's prediction files from its members' files and the weights its config records."""
    config = folder.config()
    members = [RunFolder(folder.path.parent / m) for m in config["members"]]
    weights = [config["weights"][m] for m in config["members"]]
    return [d for split in ("val", "test") for d in csv_differences(
        folder.predictions_file(split), average_predictions([m.predictions(split) for m in members], weights),
        "%.4f")]


def verify_breakdowns(out: Path, run: RunFolder) -> list[Difference]:
    """Every breakdown table of ``run`` with the bootstrap settings its summary records."""
    summary = json.loads((out / "summary.json").read_text())
    boot = summary["bootstrap"]
    val = run.predictions("val") if run.predictions_file("val").is_file() else None
    metrics = run.metrics() if run.metrics_file.is_file() else {}
    found, _ = breakdown_tables(run.predictions("test"), val, metrics, summary.get("protocol"),
                                boot["resamples"], boot["seed"], boot["level"],
                                summary["min_group_n_for_gaps"])
    return [d for name, table in found.items()
            for d in csv_differences(out / f"{name}.csv", table, TABLE_FLOAT_FORMAT)]


def verify_peer(results: Path) -> list[Difference]:
    """The peer's comparison, per-age-group MAE and sweep tables from the prediction files."""
    peer = results / "peer"
    committed = pd.read_csv(peer / "comparison.csv", keep_default_na=False)
    last = committed.iloc[-1]
    folders = compared_folders(results / "runs", list(committed["model"].iloc[:-1]))
    found = comparison_table(peer, folders, last["model"], last["trained_on"], last["note"])
    models = {**folders, last["model"]: peer}
    return [*csv_differences(peer / "comparison.csv", found, COMPARISON_FLOAT_FORMAT),
            *csv_differences(peer / "mae_by_age_group.csv", mae_by_age_group(models), "%.4f"),
            *csv_differences(peer / "challenge_sweep.csv", model_sweeps(models), "%.4f")]


def verify_ablations(results: Path, study: str = "cnn") -> list[Difference]:
    """runs.csv and ablations.csv of one ablation study from its runs' histories."""
    declared = STUDIES[study]
    out = results / Path(declared.out).name
    seeds = sorted({*declared.seeds, *pd.read_csv(out / "runs.csv")["seed"]})
    runs = collect_runs(out, declared.arms, seeds, declared.disabled_heads)
    table = ablation_table(runs, declared.arms, declared.overrides_of)
    return [*csv_differences(out / "runs.csv", runs, "%.4f"),
            *csv_differences(out / "ablations.csv", table, "%.4f")]


def readme_block(text: str, name: str) -> str:
    match = re.search(rf"<!-- {name}:START [^>]*-->\n(.*?)\n<!-- {name}:END -->", text, flags=re.S)
    return match.group(1) if match else "<no block>"


def verify_tables(results: Path, readme: Path) -> list[Difference]:
    """results/summary/*.csv and the README's generated blocks from the files they are made of."""
    made = {"RESULTS": tables.headline_table(results / "runs"), "SEEDS": tables.seed_table(results / "runs"),
            "COMPARISON": tables.comparison_table(results),
            "ABLATIONS": tables.ablations_markdown_table(results),
            "ABLATIONS_PRETRAINED": tables.ablations_markdown_table(results, "pretrained"),
            "TIMINGS": tables.timings_table(results)}
    out = [*csv_differences(results / "summary/headline.csv", made["RESULTS"]),
           *csv_differences(results / "summary/seeds.csv", made["SEEDS"]),
           *csv_differences(results / "summary/timings.csv", made["TIMINGS"])]
    text = readme.read_text() if readme.is_file() else ""
    for name, frame in made.items():
        committed, recomputed = readme_block(text, name), tables.to_markdown(frame)
        if committed != recomputed:
            lines = [(c, r) for c, r in zip(committed.splitlines(), recomputed.splitlines(), strict=False)
                     if c != r] or [(committed, recomputed)]
            out.append(Difference(str(readme), f"{name} block", lines[0][0], lines[0][1]))
    return out


def checks(results: Path, readme: Path) -> Iterator[tuple[str, list[Difference]]]:
    """(what was checked, its differences) for every recomputable file under ``results``."""
    runs = sorted(p for p in (results / "runs").iterdir() if RunFolder(p).has_predictions())
    for path in runs:
        folder = RunFolder(path)
        if folder.summary().get("kind") == "ensemble":
            yield f"ensemble {folder.name}", verify_ensemble(folder)
        if folder.metrics_file.is_file():
            yield f"metrics {folder.name}", verify_metrics(folder)
    for out in sorted((results / "breakdowns").glob("*/summary.json")):
        source = results / "peer" if out.parent.name == "peer" else results / "runs" / out.parent.name
        yield f"breakdowns {out.parent.name}", verify_breakdowns(out.parent, RunFolder(source))
    if (results / "peer/comparison.csv").is_file():
        yield "peer comparison", verify_peer(results)
    for study, declared in STUDIES.items():
        if (results / Path(declared.out).name / "runs.csv").is_file():
            yield f"ablations {study}", verify_ablations(results, study)
    if (results / "summary/headline.csv").is_file():
        yield "README and summary tables", verify_tables(results, readme)
