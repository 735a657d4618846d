"""The prediction command (``python -m scripts.predict``): outputs, per-file status lines, exit code.

Exit code 0 when every input was handled (each file gets a status, including unreadable ones),
1 when no input could be read as an image, 2 for usage errors (a missing or corrupt model).
Records stream through: the JSON document, the CSV and predictions.json are written as each
photo is done, so a folder of any size runs in constant memory. A summary line ends on stderr.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
from pathlib import Path
from typing import TextIO

import jax
import ml_collections
from tqdm import tqdm

from research.predict.annotate import annotate, annotated_path
from research.predict.pipeline import READ_STATUSES, Predictor, Tally, expand_paths, iter_records
from research.predict.release import ReleaseError
from research.predict.rules import Decision, RuleError
from research.predict.stream import CsvStream, JsonStream, atomic_text
from research.vocabulary import describe_calibration

COMPILE_CACHE_ENV = "RESEARCH_COMPILE_CACHE"  # a folder, or empty to switch the cache off


def interval_note(decision: Decision, rules: dict | None) -> str:
    """What age_interval means, for the output's head (coverage read from the release's rules)."""
    if decision.interval is None:
        return (f"age_interval is age +- {decision.z:g} sd of the model's own age distribution, clipped to "
                "[0, 116]; it is not a calibrated interval (this release carries no rules.json)")
    covered = rules["coverage"]
    share = "" if covered["level"] != decision.stated_level else (
        f"; on the test split it covered {100 * covered['overall'][0]:.1f}% of faces")
    return (f"age_interval is the {100 * decision.stated_level:g}% interval, "
            f"{describe_calibration(decision.interval)}{share}")


def rule_head(decision: Decision) -> dict:
    """The rule, its parameter and where it came from; the age correction applied (if any)."""
    c = decision.correction
    parameter = None if c is None else ("tau" if c["kind"] == "label_prior" else "lambda")
    return {"rule": decision.describe(),
            "age_correction": None if c is None else {"kind": c["kind"], parameter: c[parameter]}}


def face_line(index: int, face: dict) -> str:
    low, high = face["age_interval"]
    c = face["challenge"]
    p_under = "" if c["p_under"] is None else f", P(age < {c['threshold']:g}) {c['p_under']:.3f}"
    return (f"  face {index + 1} box {face['box']}: age {face['age']:.1f} [{low:.1f}, {high:.1f}], "
            f"{face['gender']} ({face['gender_probability']:.0%}){p_under}, "
            f"Challenge {c['threshold']:g} ({c['rule']}): {c['decision']}")


def status_line(record: dict) -> str:
    notes = f" ({'; '.join(record['notes'])})" if record.get("notes") else ""
    return f"{record['path']}: {record['status']}: {record['message']}{notes}"


def summary_line(summary: dict, challenge: float) -> str:
    """photos, faces, statuses and faces/s in one line (the command's last line, on stderr)."""
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(summary["statuses"].items(), key=lambda kv: -kv[1]))
    return (f"{summary['files']} photos ({statuses or 'none'}), {summary['faces']} faces, "
            f"{summary['id_checks']} ID checks at Challenge {challenge:g}; {summary['seconds']:.1f} s, "
            f"{summary['faces_per_s'] or 0:.1f} faces/s")


def enable_compile_cache(folder: str) -> None:
    """jax's persistent compilation cache: start-ups after the first load compiled buckets from disk."""
    if folder:
        jax.config.update("jax_compilation_cache_dir", os.path.expanduser(folder))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def run_predict(paths: list[Path], config: ml_collections.ConfigDict, release_dir: Path, *,
                as_json: bool = False, csv: Path | None = None, annotate_dir: Path | None = None,
                challenge: float | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Predict every file under ``paths`` and write the requested outputs; returns the exit code."""
    out, err = out or sys.stdout, err or sys.stderr
    challenge = config.challenge if challenge is None else challenge
    if next(expand_paths([Path(p) for p in paths]), None) is None:
        print(f"error: no files found under {', '.join(map(str, paths))}", file=err)
        return 1
    enable_compile_cache(os.environ.get(COMPILE_CACHE_ENV, config.compile_cache_dir))
    try:
        predictor = Predictor.from_release(release_dir, config)
        decision = predictor.estimator.decision(challenge)
    except (ReleaseError, RuleError, FileNotFoundError) as error:
        print(f"error: {error}", file=err)
        return 2
    release = predictor.estimator.release
    if release.rules is None:
        print(f"warning: {decision.source}", file=err)
    meta = release.metadata
    head = {"model": {"name": meta["name"], "params_sha256": meta["params_sha256"],
                      "test_age_mae": meta["test_metrics"]["metrics"]["age_mae"]["value"]},
            "challenge": challenge, **rule_head(decision), "interval": interval_note(decision, release.rules)}
    tally, counter = Tally(), itertools.count()
    with contextlib.ExitStack() as files:
        streams = [JsonStream(out, head)] if as_json else []
        if csv is not None:
            streams.append(CsvStream(files.enter_context(atomic_text(csv))))
        if annotate_dir is not None:
            target = files.enter_context(atomic_text(Path(annotate_dir) / "predictions.json"))
            streams.append(JsonStream(target, head))
        for record, array in iter_records(predictor, paths, challenge):
            index = next(counter)
            if annotate_dir is not None and array is not None and record["status"] in READ_STATUSES:
                target = annotated_path(annotate_dir, Path(record["path"]), index)
                target.parent.mkdir(parents=True, exist_ok=True)
                annotate(array, record).save(target, quality=90)
                record["annotated"] = str(target)
            lines = [status_line(record)] + ([] if as_json else
                                             [face_line(i, f) for i, f in enumerate(record["faces"])])
            tqdm.write("\n".join(lines), file=err if as_json else out)
            tally.add(record)
            for stream in streams:
                stream.add(record)
        summary = tally.summary()
        for stream in streams:
            if isinstance(stream, JsonStream):
                stream.close(summary)
    if not as_json:
        print(head["interval"], file=out)
    print(summary_line(summary, challenge), file=err)
    return 0 if summary["read"] else 1
