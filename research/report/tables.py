"""The README's tables (headline, seeds, peer comparison, ablations, timings) from results files.

Run names come from the registry (research/configs/experiments.py): the headline order is
``experiments.HEADLINE``, the further seeds of the baseline ``experiments.SEED_RUNS``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from research.configs import experiments
from research.configs.ablations import STUDIES
from research.runs.folder import lineage, run_seconds


def _interval(metrics: dict, name: str, scale: float = 1.0, digits: int = 2) -> str:
    low, high = metrics["bootstrap"]["intervals"][name]
    return f"{metrics[name] * scale:.{digits}f} [{low * scale:.{digits}f}, {high * scale:.{digits}f}]"


def _ensemble_profile(summary: dict) -> str:
    """'ensemble of a + b', with each member's weight where the weights are not equal."""
    weights = summary.get("weights")
    if not weights or summary.get("weighting", "equal") == "equal":
        return "ensemble of " + " + ".join(summary["members"])
    return "ensemble of " + " + ".join(f"{weights[m]:.2f} {m}" for m in summary["members"])


def seed_runs(runs_dir: Path, names: tuple[str, ...] = experiments.SEED_RUNS) -> list[str]:
    """The registered further-seed runs (``names``, in registry order) whose folder holds a summary.json."""
    return [name for name in names if (Path(runs_dir) / name / "summary.json").is_file()]


def seed_table(runs_dir: Path, base: str = experiments.SEED_BASE,
               seeds: tuple[str, ...] = experiments.SEED_RUNS) -> pd.DataFrame:
    """The same config trained from different seeds: one row per tested run (validation MAE of the
    checkpoint that was tested, test metrics), then the mean and sample sd over them."""
    rows = []
    for name in [base, *seed_runs(runs_dir, seeds)]:
        folder = Path(runs_dir) / name
        if not (folder / "metrics_test.json").is_file():
            continue
        m = json.loads((folder / "metrics_test.json").read_text())
        s = json.loads((folder / "summary.json").read_text())
        rows.append({"run": name, "seed": s["config"]["seed"], "val_age_MAE": s["best_val"]["age_mae"],
                     "test_age_MAE": m["age_mae"], "test_gender_acc_%": 100 * m["gender_accuracy"],
                     "test_ethnicity_acc_%": 100 * m["ethnicity_accuracy"],
                     "train_minutes": run_seconds(s) / 60})
    frame = pd.DataFrame(rows)
    if len(frame) < 2:
        return pd.DataFrame({"not yet produced": [f"train seeds of {base}: see the Makefile's SEED_RUNS"]})
    values = frame.drop(columns=["run", "seed"])
    digits = {"val_age_MAE": 2, "test_age_MAE": 2, "test_gender_acc_%": 1, "test_ethnicity_acc_%": 1,
              "train_minutes": 1}
    out = frame.astype(object)
    for column, d in digits.items():
        out[column] = frame[column].map(lambda v, d=d: f"{v:.{d}f}")
    summary = {c: f"{values[c].mean():.{d}f} ± {values[c].std(ddof=1):.{d}f}" for c, d in digits.items()}
    spread = pd.DataFrame([{"run": f"mean ± sd ({len(frame)} seeds)", "seed": "-", **summary}])
    return pd.concat([out, spread], ignore_index=True)


def headline_table(runs_dir: Path, runs: tuple[str, ...] = experiments.HEADLINE) -> pd.DataFrame:
    """One row per run that has metrics_test.json: metrics with 95% bootstrap intervals."""
    rows = []
    for name in runs:
        metrics_path = Path(runs_dir) / name / "metrics_test.json"
        if not metrics_path.is_file():
            continue
        m = json.loads(metrics_path.read_text())
        s = json.loads((Path(runs_dir) / name / "summary.json").read_text())
        c25 = m["challenge25_fpr_13_17"]
        ensemble = s.get("kind") == "ensemble"
        rows.append({
            "run": name, "protocol": s["protocol"],
            "profile": _ensemble_profile(s) if ensemble else s["profile"],
            "image_px": s["image_size"], "epochs": "-" if ensemble else s["epochs"],
            "device": s["device_kind"],
            "test_images": m["n"], "age_MAE": _interval(m, "age_mae"),
            "gender_acc_%": _interval(m, "gender_accuracy", 100, 1),
            "ethnicity_acc_%": _interval(m, "ethnicity_accuracy", 100, 1),
            "C25_minors_passed_%": "n/a (no minors)" if c25 != c25 else _interval(
                m, "challenge25_fpr_13_17", 100, 1),
            "train_minutes": round(s["wall_time_s"] / 60, 1) if ensemble else round(run_seconds(s) / 60, 1),
        })
    return pd.DataFrame(rows)


def to_markdown(frame: pd.DataFrame) -> str:
    """A plain pipe table (the README's)."""
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def timings_table(results: Path, runs: tuple[str, ...] = experiments.HEADLINE,
                  seeds: tuple[str, ...] = experiments.SEED_RUNS) -> pd.DataFrame:
    """Measured wall time of each stage and run, read from the files that recorded it, and the total
    of what `make clean all` reruns on a CPU (every row but the GPU runs')."""
    rows = []
    for stage, path in (("cleaning", "cleaning/summary.json"), ("data visualization", "eda/summary.json")):
        file = Path(results) / path
        if file.is_file():
            rows.append({"stage": stage, "device": "CPU",
                         "minutes": round(json.loads(file.read_text())["wall_time_s"] / 60, 1)})
    for name in (*runs, *seed_runs(Path(results) / "runs", seeds)):
        file = Path(results) / "runs" / name / "summary.json"
        if file.is_file():
            s = json.loads(file.read_text())
            if s.get("kind") == "ensemble":
                continue  # no training of its own: its members' rows carry the time
            device = f"{s['device_kind']} x{s['num_devices']}"
            seconds = run_seconds(s)
            rows.append({"stage": f"train {name} ({s['profile']} profile)", "device": device,
                         "minutes": round(seconds / 60, 1)})
    for study, declared in STUDIES.items():
        ablations = Path(results) / Path(declared.out).name / "runs.csv"
        if ablations.is_file():
            runs_csv = pd.read_csv(ablations)
            label = "ablations" if study == "cnn" else f"ablations, {study} study"
            rows.append({"stage": f"{label} ({len(runs_csv)} runs)", "device": "CPU",
                         "minutes": round(runs_csv["train_seconds"].sum() / 60, 1)})
    if rows:
        cpu = sum(r["minutes"] for r in rows if "cpu" in r["device"].lower())
        rows.append({"stage": "make clean all on the CPU (the rows above but the GPU runs)", "device": "CPU",
                     "minutes": round(cpu, 1)})
    return pd.DataFrame(rows)


def _pct(value: float) -> str:
    return "n/a" if value != value else f"{100 * value:.1f}"


def comparison_table(results: Path) -> pd.DataFrame:
    """Our utkface-protocol models beside the peer package (results/peer/comparison.csv)."""
    file = Path(results) / "peer" / "comparison.csv"
    if not file.is_file():
        return pd.DataFrame({"not yet produced": ["run `make peer`"]})
    frame = pd.read_csv(file)
    return pd.DataFrame({
        "model": frame["model"], "trained on": frame["trained_on"],
        "age_MAE": [f"{r.age_mae:.2f} [{r.age_mae_lo:.2f}, {r.age_mae_hi:.2f}]" for r in frame.itertuples()],
        "gender_acc_%": [f"{100 * r.gender_accuracy:.1f} [{100 * r.gender_accuracy_lo:.1f}, "
                         f"{100 * r.gender_accuracy_hi:.1f}]" for r in frame.itertuples()],
        "ethnicity_acc_%": frame["ethnicity_accuracy"].map(_pct),
        "C25_minors_passed_%": frame["challenge25_fpr_13_17"].map(_pct),
        "C25_adults_25+_asked_%": frame["challenge25_friction_25plus"].map(_pct),
    })


def ablations_markdown_table(results: Path, study: str = "cnn") -> pd.DataFrame:
    """One study's ablation arms (<its folder>/ablations.csv): validation metrics, mean ± sd over
    seeds; a study measured against a full-length run ends with that run's row."""
    folder = Path(results) / Path(STUDIES[study].out).name
    file = folder / "ablations.csv"
    if not file.is_file():
        return pd.DataFrame({"not yet produced": [f"run `make {folder.name}`"]})
    frame = pd.read_csv(file)

    def spread(mean: float, sd: float, scale: float, digits: int) -> str:
        if mean != mean:
            return "head off"
        return f"{mean * scale:.{digits}f}" + ("" if sd != sd else f" ± {sd * scale:.{digits}f}")

    table = pd.DataFrame({
        "arm": frame["arm"], "what changes": frame["description"], "seeds": frame["n_seeds"],
        "val_age_MAE": [spread(r.val_age_mae_mean, r.val_age_mae_std, 1, 2) for r in frame.itertuples()],
        "val_gender_acc_%": [spread(r.val_gender_accuracy_mean, r.val_gender_accuracy_std, 100, 1)
                             for r in frame.itertuples()],
        "val_ethnicity_acc_%": [spread(r.val_ethnicity_accuracy_mean, r.val_ethnicity_accuracy_std, 100, 1)
                                for r in frame.itertuples()],
        "minutes_per_run": frame["train_minutes_mean"].round(1),
    })
    summary = json.loads((folder / "summary.json").read_text()) if (folder / "summary.json").is_file() else {}
    if "reference_run" in summary:
        val = summary["reference_val"]
        reference = {"arm": f"(reference) {summary['reference_run']}",
                     "what changes": f"the full run: {summary['reference_epochs']} epochs in all",
                     "seeds": 1, "val_age_MAE": f"{val['age_mae']:.2f}",
                     "val_gender_acc_%": f"{100 * val['gender_accuracy']:.1f}",
                     "val_ethnicity_acc_%": f"{100 * val['ethnicity_accuracy']:.1f}",
                     "minutes_per_run": round(summary["reference_train_minutes"], 1)}
        table = pd.concat([table, pd.DataFrame([reference])], ignore_index=True)
    return table


ARCHITECTURE_NAMES = {"mobilenet_v2": "MobileNetV2", "dlib_resnet": "dlib ResNet (29 convs)", "cnn": "CNN",
                      "resnet": "ResNet-50"}
INIT_NAMES = {"scratch": "random (scratch)", "imagenet": "ImageNet", "face": "face recognition"}


def _scored_run(results: Path, name: str) -> tuple[dict, dict] | None:
    """(metrics_test, summary) of a run folder that has test metrics, else None."""
    folder = Path(results) / "runs" / name
    if not (folder / "metrics_test.json").is_file():
        return None
    return (json.loads((folder / "metrics_test.json").read_text()),
            json.loads((folder / "summary.json").read_text()))


def _test_columns(m: dict) -> dict:
    """The pretraining table's test metrics of one run (with intervals where there are any)."""
    return {"age_MAE": _interval(m, "age_mae"), "gender_acc_%": _interval(m, "gender_accuracy", 100, 1),
            "ethnicity_acc_%": _interval(m, "ethnicity_accuracy", 100, 1),
            "C25_13-17_at_25+_%": _interval(m, "challenge25_fpr_13_17", 100, 1),
            "C25_adults_25+_asked_%": _pct(m["challenge25_friction_25plus"])}


def _architecture(models: dict, name: str) -> dict:
    """The architecture of run ``name``: its (config, profile)'s, with the run's own input size and
    operations where it trained at another size (models_summary "runs", under ("run", name))."""
    entry = experiments.run(name)
    return {**models.get((entry.config, entry.profile), {}), **models.get(("run", name), {})}


def _pretraining_row(results: Path, name: str, sources: dict, models: dict, recipe: str = "") -> dict | None:
    if not (scored := _scored_run(results, name)):
        return None
    m, s = scored
    seconds, epochs = lineage(Path(results) / "runs", s)
    model = s["config"]["model"]
    source = next((v for v in sources.values()
                   if (v["model"], v["init"]) == (model["name"], model["init"])), None)
    architecture = _architecture(models, name)
    return {
        "run": name, "architecture": ARCHITECTURE_NAMES.get(model["name"], model["name"]),
        "initialisation": INIT_NAMES.get(model["init"], model["init"]) + (f"; {recipe}" if recipe else ""),
        "pretrained on (licence)": f"{source['trained_on']} ({source['licence']})" if source else "-",
        **_test_columns(m), "input_px": s["image_size"],
        "params_M": round(architecture["params"] / 1e6, 2) if architecture else "?",
        "GFLOPs_per_face": architecture.get("gflops_per_face_evaluated", "?"),
        "train_minutes": round(seconds / 60, 1), "epochs": epochs,
        "device": f"{s['device_kind']} x{s['num_devices']}",
    }


def _pretrained_ensemble_row(results: Path, name: str, models: dict) -> dict | None:
    if not (scored := _scored_run(results, name)):
        return None
    m, s = scored
    gflops = [_architecture(models, member).get("gflops_per_face_evaluated") for member in s["members"]]
    return {
        "run": name, "architecture": _ensemble_profile(s), "initialisation": "mixed (members' own)",
        "pretrained on (licence)": "as its members", **_test_columns(m), "input_px": s["image_size"],
        "params_M": "-", "GFLOPs_per_face": round(sum(gflops), 4) if None not in gflops else "?",
        "train_minutes": round(s["wall_time_s"] / 60, 1), "epochs": "-", "device": s["device_kind"],
    }


def pretraining_table(results: Path, pairs: dict[str, str] = experiments.PRETRAINED_RUNS,
                      ensembles: tuple[str, ...] = experiments.PRETRAINED_ENSEMBLES,
                      recipes: dict[str, str] = experiments.PRETRAINED_RECIPES) -> pd.DataFrame:
    """Architecture x initialisation: each pretrained run beside its from-scratch control (same
    network, recipe and schedule), further recipes of a pretrained network (``recipes``: run -> what
    differs), then the ensembles with pretrained members; test metrics with
    95% bootstrap intervals, cost per face (with flip averaging, as evaluated; an ensemble's is its
    members' sum) and training time. Pretraining data and licences from
    results/models_summary/summary.json."""
    summary_file = Path(results) / "models_summary" / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
    models = {(v["config"], v["profile"]): v for v in summary.get("models", {}).values()}
    models.update({("run", name): v for name, v in summary.get("runs", {}).items()})
    rows = [_pretraining_row(results, name, summary.get("pretrained", {}), models)
            for pretrained, control in pairs.items() for name in (control, pretrained)]
    rows += [_pretraining_row(results, name, summary.get("pretrained", {}), models, recipe)
             for name, recipe in recipes.items()]
    rows += [_pretrained_ensemble_row(results, name, models) for name in ensembles]
    rows = [r for r in rows if r]
    if not rows:
        return pd.DataFrame({"not yet produced": ["train the pretrained runs (make all)"]})
    return pd.DataFrame(rows)
