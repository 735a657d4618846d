"""The corruption benchmark: models scored on corrupted copies of a subset of the test split.

Each test crop is decoded in full from the archive (200 x 200, nothing written to disk), corrupted
by ``research.data.corruptions`` at each severity (seeded per image), then resized to each model's
input, and predicted as the model predicts (a release: its members' mixture with flip TTA). The
subset is drawn once, stratified by age group in proportion to the test split, and is the same for
every corruption, so that every row of the table compares the same faces.

corruptions.csv: one row per model x condition (``clean``, severity 0, then every corruption at
severities 1-3) with TABLE_COLUMNS; predictions.csv: one row per model x condition x face (file,
age, gender, pred_age, pred_gender, p_female), from which every number of the table is recomputed.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np
import pandas as pd
from tqdm import tqdm

from research.data import pipeline
from research.data.corruptions import CLEAN, CORRUPTIONS, SEVERITIES, corrupt, model_input
from research.evaluation import decision, metrics
from research.evaluation.robustness_figures import plot_corruptions, plot_sample_grid, procedural_face
from research.inference import mixture_step
from research.outputs import save_figure, write_csv, write_json
from research.vocabulary import AGE_GROUPS, CHALLENGE_AGE, MINORS, YOUNG_ADULTS, age_group, band_key, in_band

CROP_PX = 200  # UTKFace's aligned-and-cropped faces
SEVERITY_LEVELS = (1, 2, 3)
# The targets: grayscale MAE within 10% of clean (full grayscale: severity 3, equal
# channels, the black-and-white photos); at the middle severity the mean MAE over the corruptions
# within 15% of clean and every corruption's |mean signed error| at most 1.5 years.
GRAYSCALE_CHECK_SEVERITY = 3
GRAYSCALE_MAE_LIMIT = 1.10
TARGET_SEVERITY = 2
MEAN_MAE_LIMIT = 1.15
MAX_ABS_SIGNED_ERROR = 1.5
RATES = {f"challenge{CHALLENGE_AGE}_{r}": r
         for r in (metrics.FPR_MINORS, metrics.FRICTION_ADULTS, metrics.FRICTION_YOUNG)}
COUNTS = {f"n_{band_key(MINORS)}": MINORS, f"n_{band_key(YOUNG_ADULTS)}": YOUNG_ADULTS,
          f"n_{CHALLENGE_AGE}plus": (CHALLENGE_AGE, 1000)}
TABLE_COLUMNS = ("model", "corruption", "severity", "parameter", "n", "age_mae", "age_mae_ratio",
                 "age_mean_signed_error", "gender_accuracy", *RATES, *COUNTS)
PREDICTION_COLUMNS = ("model", "corruption", "severity", "file", "age", "gender", "pred_age", "pred_gender",
                      "p_female")


@dataclasses.dataclass(frozen=True)
class BenchModel:
    """A model as the benchmark sees it: ``predict`` maps uint8 images (N x S x S x 3, S =
    ``image_size``) to numpy ``pred_age``, ``pred_gender`` and ``p_female``; ``source`` says what
    it is (for the summary)."""

    name: str
    image_size: int
    predict: Callable[[np.ndarray], dict[str, np.ndarray]]
    source: dict


def mixture_predictor(members: tuple[dict, ...], weights: tuple[float, ...], apply_fn, tta_flip: bool,
                      batch_size: int) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """Batched, jitted ``research.inference.mixture_step`` (one member: ``predict_step``), as the
    prediction command and the release's distributions compute a face's outputs."""
    step = jax.jit(functools.partial(mixture_step, apply_fn=apply_fn, tta_flip=tta_flip, weights=weights))

    def predict(images: np.ndarray) -> dict[str, np.ndarray]:
        parts = []
        for chunk, real in pipeline.eval_batches(images, np.arange(len(images)), batch_size):
            out = jax.device_get(step(members, chunk))
            p_gender = np.asarray(out["p_gender"][:real], np.float64)
            parts.append({"pred_age": np.asarray(out["age"][:real], np.float64),
                          "pred_gender": p_gender.argmax(axis=1), "p_female": p_gender[:, 1]})
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}

    return predict


def release_model(release, kind: str = "release") -> BenchModel:
    """A loaded release (``research.predict.release.Release``) as a BenchModel named by its folder;
    ``kind`` "earlier release" for another release scored beside the shipped one."""
    config = release.config
    predict = mixture_predictor(release.members, release.weights, release.model.apply,
                                bool(config.eval.tta_flip), int(config.eval.batch_size))
    return BenchModel(release.path.name, int(config.image_size), predict,
                      {"kind": kind, "path": str(release.path), "members": len(release.members),
                       "params_sha256": release.metadata.get("params_sha256"),
                       "tta_flip": bool(config.eval.tta_flip)})


def release_member_models(release) -> list[BenchModel]:
    """Each member of an ensemble release alone, as a BenchModel named ``<release>.<member run>``:
    the like-for-like baseline of a single run trained otherwise (e.g. with robust augmentations)."""
    config = release.config
    names = [m["name"] for m in release.metadata.get("source_run", {}).get("members", [])]
    if not names and len(release.members) == 1:
        return []  # a single network: the release itself
    if len(names) != len(release.members):
        raise ValueError(f"{release.path}/metadata.json names {len(names)} members for the "
                         f"{len(release.members)} in its params: re-export the release")
    return [BenchModel(f"{release.path.name}.{name}", int(config.image_size),
                       mixture_predictor((member,), (1.0,), release.model.apply,
                                         bool(config.eval.tta_flip), int(config.eval.batch_size)),
                       {"kind": "release member", "path": str(release.path), "member": name,
                        "params_sha256": release.metadata.get("params_sha256"),
                        "tta_flip": bool(config.eval.tta_flip)})
            for name, member in zip(names, release.members, strict=True)]


def run_model(workdir: Path, config, variables: dict, model) -> BenchModel:
    """A run folder's best checkpoint (``research.runs.restore.load_run``'s outputs) as a BenchModel."""
    predict = mixture_predictor((variables,), (1.0,), model.apply, bool(config.eval.tta_flip),
                                int(config.eval.batch_size))
    return BenchModel(Path(workdir).name, int(config.image_size), predict,
                      {"kind": "run", "path": str(workdir), "tta_flip": bool(config.eval.tta_flip)})


# ---- the faces ------------------------------------------------------------------------------

def stratified_subset(table: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    """``size`` rows of ``table`` (all of it when smaller), allocated to the age groups in proportion
    to their counts (largest remainders), drawn without replacement within each group by a
    generator seeded by (seed, group); returned in the table's order."""
    if size >= len(table):
        return table.reset_index(drop=True)
    groups = table["age"].map(age_group).to_numpy()
    labels = [label for label, _, _ in AGE_GROUPS]
    counts = np.array([(groups == label).sum() for label in labels])
    quota = counts * size / len(table)
    take = np.floor(quota).astype(int)
    for g in np.argsort(-(quota - take), kind="stable")[: size - take.sum()]:
        take[g] += 1
    picked = [np.random.default_rng([seed, g]).choice(np.flatnonzero(groups == label), take[g], replace=False)
              for g, label in enumerate(labels) if take[g]]
    return table.iloc[np.sort(np.concatenate(picked))].reset_index(drop=True)


def decoded_crops(source: Path, files: pd.Series) -> np.ndarray:
    """The files' crops decoded in full (CROP_PX square, RGB), in order; nothing is written to disk."""
    return decision.decoded_images(source, files, CROP_PX)


def conditions(corruptions: tuple[str, ...]) -> list[tuple[str, int]]:
    """(corruption, severity) of every row: clean (severity 0) first, then each corruption 1-3."""
    unknown = [c for c in corruptions if c not in CORRUPTIONS]
    if unknown:
        raise ValueError(f"unknown corruptions {unknown}; corruptions: {', '.join(CORRUPTIONS)}")
    return [(CLEAN, 0), *((c, s) for c in corruptions for s in SEVERITY_LEVELS)]


def corrupted(crops: np.ndarray, files: pd.Series, name: str, severity: int, seed: int) -> np.ndarray:
    """Every crop under (name, severity), each seeded by (seed, its file name); clean: the crops."""
    if name == CLEAN:
        return crops
    return np.stack([corrupt(crop, name, severity, seed, file)
                     for crop, file in zip(crops, files, strict=True)])


def benchmark_predictions(models: list[BenchModel], crops: np.ndarray, table: pd.DataFrame,
                          corruptions: tuple[str, ...], seed: int) -> pd.DataFrame:
    """PREDICTION_COLUMNS for every model, condition and face of ``table`` (rows aligned with ``crops``)."""
    files = table["file"].reset_index(drop=True)
    frames = []
    for name, severity in tqdm(conditions(corruptions), desc="conditions", unit="condition"):
        images = corrupted(crops, files, name, severity, seed)
        for size in sorted({m.image_size for m in models}):
            inputs = np.stack([model_input(image, size) for image in images])
            for model in (m for m in models if m.image_size == size):
                out = model.predict(inputs)
                frames.append(pd.DataFrame({"model": model.name, "corruption": name, "severity": severity,
                                            "file": files, "age": table["age"].to_numpy(),
                                            "gender": table["gender"].to_numpy(), **out}))
    return pd.concat(frames, ignore_index=True)[list(PREDICTION_COLUMNS)]


# ---- the table and the targets --------------------------------------------------------------

def condition_metrics(frame: pd.DataFrame) -> dict:
    """n, age MAE, mean signed error (pred - true), gender accuracy and the Challenge-25 rates of
    the estimate alone (research.evaluation.metrics.challenge_rates), with the bands' sizes."""
    true, pred = frame["age"].to_numpy(float), frame["pred_age"].to_numpy(float)
    ages = metrics.age_metrics(true, pred)
    rates = metrics.challenge_rates(true, pred, CHALLENGE_AGE)
    return {"n": len(frame), "age_mae": ages["age_mae"],
            "age_mean_signed_error": ages["age_mean_signed_error"],
            "gender_accuracy": float((frame["gender"] == frame["pred_gender"]).mean()),
            **{column: rates[rate] for column, rate in RATES.items()},
            **{column: int(in_band(true, band).sum()) for column, band in COUNTS.items()}}


def benchmark_table(predictions: pd.DataFrame) -> pd.DataFrame:
    """TABLE_COLUMNS: one row per model and condition, in the order of the predictions;
    age_mae_ratio is the row's MAE over the model's clean MAE."""
    rows = []
    for (model, name, severity), part in predictions.groupby(["model", "corruption", "severity"], sort=False):
        value = np.nan if name == CLEAN else float(SEVERITIES[name][severity - 1])
        rows.append({"model": model, "corruption": name, "severity": int(severity), "parameter": value,
                     **condition_metrics(part)})
    table = pd.DataFrame(rows)
    clean = table[table["corruption"] == CLEAN].set_index("model")["age_mae"]
    table["age_mae_ratio"] = table["age_mae"] / table["model"].map(clean)
    return table[list(TABLE_COLUMNS)]


def target_checks(table: pd.DataFrame, model: str) -> dict:
    """The issue's three corruption targets for one model, computed from the table (pass: bool)."""
    part = table[table["model"] == model]
    clean_mae = float(part.loc[part["corruption"] == CLEAN, "age_mae"].iloc[0])
    middle = part[part["severity"] == TARGET_SEVERITY]
    checks = {}
    gray = part[(part["corruption"] == "grayscale") & (part["severity"] == GRAYSCALE_CHECK_SEVERITY)]
    if not gray.empty:
        value = float(gray["age_mae"].iloc[0])
        checks["grayscale_mae_within_10pct_of_clean"] = {
            "severity": GRAYSCALE_CHECK_SEVERITY, "clean_mae": clean_mae, "grayscale_mae": value,
            "ratio": value / clean_mae, "limit_ratio": GRAYSCALE_MAE_LIMIT,
            "pass": value / clean_mae <= GRAYSCALE_MAE_LIMIT}
    if not middle.empty:
        mean_mae = float(middle["age_mae"].mean())
        checks[f"mean_mae_at_severity{TARGET_SEVERITY}_within_15pct_of_clean"] = {
            "severity": TARGET_SEVERITY, "corruptions": list(middle["corruption"]), "clean_mae": clean_mae,
            "mean_mae": mean_mae, "ratio": mean_mae / clean_mae, "limit_ratio": MEAN_MAE_LIMIT,
            "pass": mean_mae / clean_mae <= MEAN_MAE_LIMIT}
        signed = dict(zip(middle["corruption"], middle["age_mean_signed_error"].astype(float), strict=True))
        failing = [c for c, v in signed.items() if abs(v) > MAX_ABS_SIGNED_ERROR]
        checks[f"abs_mean_signed_error_at_severity{TARGET_SEVERITY}_at_most_1.5"] = {
            "severity": TARGET_SEVERITY, "mean_signed_error": signed,
            "max_abs": max(abs(v) for v in signed.values()), "limit_years": MAX_ABS_SIGNED_ERROR,
            "failing": failing, "pass": not failing}
    checks["all_pass"] = all(c["pass"] for c in checks.values())
    return checks


def against_committed(predictions: pd.DataFrame, model: str, committed: pd.DataFrame) -> dict:
    """How the benchmark's clean path (full decode, resize) compares on the subset with a committed
    predictions_test.csv (decoded at the model's size by libjpeg's DCT scaling, as training was)."""
    clean = predictions[(predictions["model"] == model) & (predictions["corruption"] == CLEAN)]
    joined = clean.merge(committed[["file", "pred_age"]], on="file", suffixes=("", "_committed"))
    true, mine, theirs = (joined[c].to_numpy(float) for c in ("age", "pred_age", "pred_age_committed"))
    diff = np.abs(mine - theirs)
    return {"faces": len(joined), "clean_mae": metrics.age_metrics(true, mine)["age_mae"],
            "committed_mae": metrics.age_metrics(true, theirs)["age_mae"],
            "mean_abs_pred_age_difference": float(diff.mean()),
            "max_abs_pred_age_difference": float(diff.max())}


def run_benchmark(models: list[BenchModel], source: Path, subset: pd.DataFrame, corruptions: tuple[str, ...],
                  seed: int) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Decode the subset's crops, predict every condition; (predictions, table, timing)."""
    tic = time.time()
    crops = decoded_crops(source, subset["file"])
    decode_s = time.time() - tic
    predictions = benchmark_predictions(models, crops, subset, corruptions, seed)
    seconds = time.time() - tic
    faces = len(predictions)
    return predictions, benchmark_table(predictions), {"wall_time_s": seconds, "decode_s": decode_s,
                                                       "faces_predicted": faces,
                                                       "faces_per_s": faces / max(seconds - decode_s, 1e-9)}


def subset_record(subset: pd.DataFrame, test_size: int, size: int, seed: int) -> dict:
    """What the summary says about the faces: how many, how drawn, per age group."""
    groups = subset["age"].map(age_group)
    return {"requested": size, "faces": len(subset), "test_split_faces": test_size, "seed": seed,
            "drawn": "stratified by age group in proportion to the test split, the same faces for every "
                     "corruption and severity",
            "per_age_group": {label: int((groups == label).sum()) for label, _, _ in AGE_GROUPS}}


def corruption_record(corruptions: tuple[str, ...]) -> dict:
    """Each corruption's parameter per severity and what it means (its function's docstring)."""
    return {name: {"parameters": dict(zip(SEVERITY_LEVELS, SEVERITIES[name], strict=True)),
                   "what": " ".join(CORRUPTIONS[name].__doc__.split())} for name in corruptions}


def benchmark(models: list[BenchModel], source: Path, test: pd.DataFrame, size: int, seed: int,
              corruptions: tuple[str, ...], committed: dict[str, pd.DataFrame], out: Path,
              record: dict) -> dict:
    """Score ``models`` on the stratified subset of ``test`` under every corruption and write
    out/corruptions.csv, predictions.csv, summary.json (``record``, e.g. provenance, added) and the
    figures corruptions.png and samples.png (the procedural face: no dataset image)."""
    subset = stratified_subset(test, size, seed)
    load_before = os.getloadavg()[0]
    predictions, table, timing = run_benchmark(models, source, subset, corruptions, seed)
    summary = {**record, "subset": subset_record(subset, len(test), size, seed),
               "pipeline": f"each {CROP_PX} px crop decoded in full from the archive, corrupted (seeded per "
                           "image by seed, corruption and file name), resized to the model's input "
                           "(antialiased bilinear), predicted as the model predicts (flip TTA, mixture)",
               "corruptions": corruption_record(corruptions),
               "models": {m.name: {"image_size": m.image_size, **m.source} for m in models},
               "targets": {m.name: target_checks(table, m.name) for m in models},
               "clean_against_committed_predictions": {name: against_committed(predictions, name, frame)
                                                       for name, frame in committed.items()},
               "timing": {**timing, "loadavg_1min_before": load_before,
                          "loadavg_1min_after": os.getloadavg()[0]}}
    write_csv(out / "corruptions.csv", table, float_format="%.4f")
    write_csv(out / "predictions.csv", predictions, float_format="%.4f")
    write_json(out / "summary.json", summary)
    save_figure(out / "corruptions.png", plot_corruptions(table, MEAN_MAE_LIMIT, MAX_ABS_SIGNED_ERROR))
    face = procedural_face(CROP_PX, seed)
    save_figure(out / "samples.png", plot_sample_grid(face, TARGET_SEVERITY, seed, models[0].image_size))
    return summary
