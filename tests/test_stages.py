"""Content-based stage freshness (research/stages.py) and the Makefile built on it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from research import stages
from research.configs import experiments

REPO = Path(__file__).resolve().parents[1]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def chain(tmp_path, monkeypatch):
    """source -> middle -> final, each recorded in a lock under tmp_path."""
    monkeypatch.chdir(tmp_path)
    lock = tmp_path / "lock.json"
    write(tmp_path / "source.txt", "a")
    write(tmp_path / "middle.txt", "m")
    stages.record("middle.txt", ["source.txt"], lock)
    write(tmp_path / "final.txt", "f")
    stages.record("final.txt", ["middle.txt", "registry:EVALUATION"], lock)
    return lock


def test_unchanged_content_makes_targets_newer_than_inputs_in_dependency_order(chain):
    for name in ("final.txt", "middle.txt", "source.txt"):
        os.utime(name, ns=(10**9, 10**9))  # what a fresh clone may do: any order
    os.utime("source.txt", ns=(5 * 10**18, 5 * 10**18))
    os.utime("source.txt")  # the input is newer than both targets
    fresh, stale = stages.sync(chain)
    assert fresh == ["middle.txt", "final.txt"] and stale == []
    times = {n: os.stat(n).st_mtime_ns for n in ("source.txt", "middle.txt", "final.txt")}
    assert times["source.txt"] < times["middle.txt"] < times["final.txt"]


def test_changed_input_makes_the_target_and_everything_downstream_stale(chain):
    write(Path("source.txt"), "changed")
    fresh, stale = stages.sync(chain)
    assert fresh == [] and stale == ["middle.txt", "final.txt"]
    assert os.stat("middle.txt").st_mtime_ns == stages.OLD * 10**9
    assert os.stat("final.txt").st_mtime_ns == stages.OLD * 10**9


def test_a_target_edited_by_hand_is_stale_but_its_inputs_stay_fresh(chain):
    write(Path("final.txt"), "typed by hand")
    fresh, stale = stages.sync(chain)
    assert fresh == ["middle.txt"] and stale == ["final.txt"]


def test_a_registry_entry_is_an_input(chain, monkeypatch):
    monkeypatch.setattr(experiments, "EVALUATION", experiments.Evaluation(resamples=10))
    assert stages.sync(chain) == (["middle.txt"], ["final.txt"])


def test_code_inputs_follow_imports_and_leave_the_registry_out():
    found = stages.code_inputs("scripts/train.py", REPO)
    assert "research/training/loop.py" in found and "research/runs/checkpoints.py" in found
    assert "research/models/cnn.py" in found  # through the model factory
    assert "research/configs/experiments.py" not in found  # its entries are registry: keys
    assert "research/release/export.py" not in found  # training does not reach the release stage


def test_makefile_variables_name_every_run_and_script():
    text = stages.make_variables(REPO)
    assert f"RELEASE_RUN := {experiments.RELEASE}" in text
    for name in experiments.RUNS:
        assert f"CONFIG_CODE_{name} := " in text
    for script in (REPO / "scripts").glob("*.py"):
        assert f"CODE_{script.stem} := " in text
    built = next(line for line in text.splitlines() if line.startswith("CPU_RUNS := ")).split()[2:]
    for name in experiments.PENDING_RUNS:  # left out of `make all` only while it has no results
        assert name in experiments.RUNS and name not in built
        trained = (REPO / "results" / "runs" / name / "summary.json").exists()
        assert not trained, f"{name} has results: take it out of PENDING_RUNS"


def test_the_committed_lock_matches_the_committed_results():
    """A fresh clone rebuilds nothing: every recorded target and input matches its content."""
    entries = stages.load_lock(REPO / stages.LOCK)
    assert entries, "results/stages.lock.json is missing: run `make adopt` or the stages"
    cwd = os.getcwd()
    try:
        os.chdir(REPO)
        stale = [t for t, ok in stages.freshness(entries).items() if not ok]
    finally:
        os.chdir(cwd)
    assert stale == [], f"stale after the last commit: {stale[:5]}"


def test_an_earlier_release_is_a_committed_artefact_not_a_stage():
    """No rule builds an earlier release any more, so a lock entry for its files would go stale with
    the export code and never be rebuilt: run `python3 -m research.stages invalidate` on those files
    when the release changes. They stay inputs (the corruption benchmark reads them)."""
    entries = stages.load_lock(REPO / stages.LOCK)
    for name in experiments.EARLIER_RELEASES:
        assert name != experiments.RELEASE
        folder = f"results/models/{name}/"
        assert (REPO / folder / "params.msgpack").is_file(), f"{folder} is not committed"
        recorded = [t for t in entries if t.startswith(folder)]
        assert recorded == [], f"earlier release files still recorded as stages: {recorded}"


# --- the Makefile's own rules on the smoke profile, serial and with -j2 -------------------------

PIPELINE = "results/breakdowns/cnn_ensemble/summary.json"


def copy_project(dest: Path) -> Path:
    """The code of the project (no results) beside the shared virtual environment."""
    dest.mkdir(parents=True)
    for name in ("Makefile", "pyproject.toml", "requirements.lock", "requirements-gpu.lock"):
        shutil.copy(REPO / name, dest / name)
        os.utime(dest / name, (stages.OLD, stages.OLD))  # older than the environment: no reinstall
    for folder in ("research", "scripts"):
        shutil.copytree(REPO / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (dest / ".venv").symlink_to(REPO / ".venv")
    return dest


def coral_files(folder: Path, out: Path) -> Path:
    """CORAL-style utk_train.csv / utk_test.csv (ages 21-60, stored minus 21) for the folder."""
    names = sorted(p.name for p in folder.glob("*.jpg") if 21 <= int(p.name.split("_")[0]) <= 60)
    frame = pd.DataFrame({"file": names, "age": [int(n.split("_")[0]) - 21 for n in names]})
    out.mkdir(parents=True, exist_ok=True)
    frame.iloc[::2].to_csv(out / "utk_train.csv")
    frame.iloc[1::2].to_csv(out / "utk_test.csv")
    return out


def run_make(project: Path, data: Path, coral: Path, *flags: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(project)}
    command = ["make", *flags, PIPELINE, f"DATA={data}", f"CORAL={coral}", "PROFILE=smoke",
               f"PYTHON={sys.executable}"]
    done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def outcome(project: Path) -> dict:
    """What the pipeline computed: every table, and every JSON file but for when and how fast."""
    timing = ("provenance", "inputs", "wall_time_s", "member_wall_time_s", "train_seconds_all_epochs",
              "mean_images_per_s")
    results, out = project / "results", {}
    for path in sorted(results.rglob("*")):
        rel = str(path.relative_to(results))
        if path.suffix == ".csv" and path.name != "history.csv":  # history holds epoch times
            out[rel] = path.read_text()
        elif path.suffix == ".json" and path.name != "stages.lock.json":
            out[rel] = {k: v for k, v in json.loads(path.read_text()).items() if k not in timing}
    return out


def test_make_j2_builds_what_a_serial_make_builds(tmp_path, utk_writer):
    data = utk_writer(tmp_path / "UTKFace", count=48, seed=0)
    coral = coral_files(data, tmp_path / "coral")
    serial, parallel = copy_project(tmp_path / "serial"), copy_project(tmp_path / "parallel")
    run_make(serial, data, coral)
    run_make(parallel, data, coral, "-j2")
    got, want = outcome(parallel), outcome(serial)
    assert "runs/cnn_ensemble/metrics_test.json" in want and "breakdowns/cnn_ensemble/by_group.csv" in want
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == want[key], key
    # Nothing is stale afterwards, and a second make rebuilds nothing.
    again = run_make(parallel, data, coral, "-n")
    assert "scripts/" not in again.stdout, again.stdout
