"""The prediction command (``python -m scripts.predict``): outputs, per-file status lines, exit code.

Exit code 0 when every input was handled (each file gets a status, including unreadable ones),
1 when no input could be read as an image, 2 for usage errors (a missing or corrupt model).
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import TextIO

import ml_collections
from tqdm import tqdm

from research.outputs import write_csv, write_json
from research.predict.annotate import annotate, annotated_path, csv_table
from research.predict.pipeline import READ_STATUSES, Predictor, predict_paths, summarize
from research.predict.release import ReleaseError

INTERVAL_NOTE = ("age_interval is age +- {z} sd of the model's own age distribution, clipped to [0, 116]; "
                 "it is not a calibrated confidence interval")


def face_line(index: int, face: dict) -> str:
    low, high = face["age_interval"]
    c = face["challenge"]
    return (f"  face {index + 1} box {face['box']}: age {face['age']:.1f} [{low:.1f}, {high:.1f}], "
            f"{face['gender']} ({face['gender_probability']:.0%}), "
            f"Challenge {c['threshold']:g}: {c['decision']}")


def status_line(record: dict) -> str:
    notes = f" ({'; '.join(record['notes'])})" if record.get("notes") else ""
    return f"{record['path']}: {record['status']}: {record['message']}{notes}"


def run_predict(paths: list[Path], config: ml_collections.ConfigDict, release_dir: Path, *,
                as_json: bool = False, csv: Path | None = None, annotate_dir: Path | None = None,
                challenge: float | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Predict every file under ``paths`` and write the requested outputs; returns the exit code."""
    out, err = out or sys.stdout, err or sys.stderr
    challenge = config.challenge if challenge is None else challenge
    try:
        predictor = Predictor.from_release(release_dir, config)
    except (ReleaseError, FileNotFoundError) as error:
        print(f"error: {error}", file=err)
        return 2
    counter = itertools.count()

    def report(record: dict, array) -> None:
        lines = [status_line(record)] + ([] if as_json else
                                         [face_line(i, f) for i, f in enumerate(record["faces"])])
        tqdm.write("\n".join(lines), file=err if as_json else out)
        index = next(counter)
        if annotate_dir is not None and array is not None and record["status"] in READ_STATUSES:
            target = annotated_path(annotate_dir, Path(record["path"]), index)
            target.parent.mkdir(parents=True, exist_ok=True)
            annotate(array, record).save(target, quality=90)
            record["annotated"] = str(target)

    records = predict_paths(predictor, paths, challenge, on_record=report)
    if not records:
        print(f"error: no files found under {', '.join(map(str, paths))}", file=err)
        return 1
    meta = predictor.estimator.release.metadata
    payload = {"model": {"name": meta["name"], "params_sha256": meta["params_sha256"],
                         "test_age_mae": meta["test_metrics"]["metrics"]["age_mae"]["value"]},
               "challenge": challenge, "interval": INTERVAL_NOTE.format(z=config.interval_z),
               "summary": summarize(records), "files": records}
    if as_json:
        out.write(json.dumps(payload, indent=2) + "\n")
    else:
        s = payload["summary"]
        print(f"{s['files']} files, {s['read']} read, {s['faces']} faces, {s['id_checks']} ID checks at "
              f"Challenge {challenge:g}; {payload['interval']}", file=out)
    if csv is not None:
        write_csv(csv, csv_table(records))
    if annotate_dir is not None:
        write_json(Path(annotate_dir) / "predictions.json", payload)
    return 0 if payload["summary"]["read"] else 1
