"""A user's mistake ends in one line that names the problem and the fix, exit status 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from research.data.archive import ARCHIVE_SHA256

REPO = Path(__file__).resolve().parents[1]


def run(args: list[str], cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "UTKFACE"}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr[-2000:]
    return errors[0]


def test_missing_dataset_lists_every_place_looked(tmp_path):
    line = one_line_error(run([str(REPO / "scripts/clean_data.py"), "--out", str(tmp_path / "out")],
                              cwd=tmp_path))
    assert "UTKFace not found" in line and "$UTKFACE (not set)" in line and "data/raw/UTKFace.tar.gz" in line
    assert "https://susanqq.github.io/UTKFace/" in line


def test_truncated_archive_names_the_file_and_the_expected_checksum(tmp_path, utk_folder, tarball_writer):
    archive = tarball_writer(utk_folder, tmp_path / "UTKFace.tar.gz")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    line = one_line_error(run(["scripts/clean_data.py", "--data", str(archive), "--out",
                               str(tmp_path / "o")]))
    assert str(archive) in line and "truncated or corrupt" in line and ARCHIVE_SHA256 in line
    assert not (tmp_path / "o" / "manifest.csv").exists()


@pytest.mark.parametrize("args, says", [
    (["--config", "no_such_config"], "no experiment config named 'no_such_config'"),
    (["--run", "cnn_baseline", "--set", "optimizer.no_such_key=1"],
     "unknown config key 'optimizer.no_such_key'"),
    (["--run", "cnn_baseline", "--set", "optimizer.num_epochs=three"], "optimizer.num_epochs='three'"),
    (["--run", "resnet50_multitask"], "the gpu profile needs a GPU"),
])
def test_training_refuses_unknown_configs_keys_and_a_gpu_profile_on_a_cpu(args, says):
    line = one_line_error(run(["scripts/train.py", *args]))
    assert says in line
    if "config named" in says:
        assert "cnn_baseline" in line  # the known configs are listed


def test_unknown_profile_or_run_is_a_usage_error():
    for args in (["--run", "cnn_baseline", "--profile", "tpu"], ["--run", "no_such_run"]):
        done = run(["scripts/train.py", *args])
        assert done.returncode == 2 and "invalid choice" in done.stderr and "Traceback" not in done.stderr
