"""Several processes: two processes on 127.0.0.1 with one CPU device each against one process with
two forced devices (same losses, parameters and predictions files), a two-process run killed after
its first checkpoint and restarted, the launcher, and how global batches split over processes.

Every run is a subprocess with a time limit (the launcher stops its processes on failure).
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pandas as pd
import pytest
from _tiny_run import prepare_data

from research.configs import load_config
from research.configs.overrides import apply_overrides
from research.data import pipeline
from research.data.protocol import open_protocol
from research.runs import checkpoints
from research.training.distributed import check_global_batch

REPO = Path(__file__).resolve().parents[1]
RUN_TIMEOUT = 150  # seconds per run; a run that hangs in a collective fails the test instead
# The smoke CNN made smaller still (compiles dominate here); augmentation and dropout stay on, so
# the per-device random streams are compared too.
# Eval batches of 3 over 8 rows: 3 batches, so process 1 runs one batch and pads a second.
OVERRIDES = {"image_size": 16, "model.widths": "(4,)", "eval.batch_size": 3, "eval.tta_flip": False}
TIMING_KEYS = ("epoch_seconds", "images_per_s")

# One process of a run: scripts/train.py's main, then scripts/predict_splits.py's (every process)
# and scripts/evaluate.py's (process 0), in one interpreter
# (a start-up less). With "crash", process 1 is killed (SIGKILL) once the first `last`
# checkpoint is written by every process.
CHILD = """
import os, signal, sys
from research.training import distributed
distributed.initialize()
import jax
from research.runs import checkpoints
from scripts import evaluate, predict_splits, train
mode, args = sys.argv[1], sys.argv[2:]
cut = args.index("--eval") if "--eval" in args else len(args)
if mode == "crash":
    save = checkpoints.save
    def save_then_die(directory, step, state, meta):
        save(directory, step, state, meta)
        if directory.name == "last":
            distributed.barrier("first checkpoint written")
            if jax.process_index() == 1:
                os.kill(os.getpid(), signal.SIGKILL)
    checkpoints.save = save_then_die
sys.argv = ["train.py", *args[:cut]]
train.main()
if cut < len(args):
    sys.argv = ["predict_splits.py", *args[cut + 1:cut + 3]]
    predict_splits.main()
    if distributed.is_primary():
        sys.argv = ["evaluate.py", *args[cut + 1:]]
        evaluate.main()
"""


def child_env(root: Path, devices: int) -> dict:
    """A shared persistent compilation cache: the reference and process 0 of the resumed run find
    their programs there (process 1's never are: JAX writes the cache from process 0 only, and
    the keys name the devices), which leaves more of the two cores to process 1."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    env.update(XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", PYTHONPATH=str(REPO),
               JAX_COMPILATION_CACHE_DIR=str(root / "jax_cache"),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    return env


def data_overrides(root: Path) -> dict:
    return {"data.path": str(root / "UTKFace"), "data.split_dir": str(root / "splits"),
            "data.cache_root": str(root / "cache")}


def run_args(root: Path, workdir: Path, evaluate: bool) -> list[str]:
    sets = [arg for key, value in {**data_overrides(root), **OVERRIDES}.items()
            for arg in ("--set", f"{key}={value}")]
    args = ["--config", "cnn_baseline", "--profile", "smoke", "--workdir", str(workdir), *sets]
    return args + (["--eval", "--run", str(workdir), "--resamples", "20"] if evaluate else [])


class Runs:
    """Subprocesses writing their output to files (a pipe could fill while another is waited
    on); ``stop`` ends any still running (a stopped launcher stops its own processes)."""

    def __init__(self, root: Path):
        self.root, self.started = root, {}

    def start(self, name: str, command: list[str], env: dict) -> str:
        with (self.root / f"{name}.log").open("w") as log:
            self.started[name] = subprocess.Popen(command, cwd=REPO, env=env, stdout=log,
                                                  stderr=subprocess.STDOUT, text=True)
        return name

    def reference(self, name: str, workdir: Path) -> str:
        """``CHILD`` as one process with two forced CPU devices."""
        command = [sys.executable, "-c", CHILD, "run", *run_args(self.root, workdir, evaluate=True)]
        return self.start(name, command, child_env(self.root, 2))

    def launch(self, name: str, mode: str, workdir: Path, evaluate: bool) -> str:
        """``CHILD`` as two processes of one job (scripts/launch_local.py, one CPU device each)."""
        command = [sys.executable, "scripts/launch_local.py", "--num-processes", "2", "--timeout",
                   str(RUN_TIMEOUT - 10), "--", sys.executable, "-c", CHILD, mode,
                   *run_args(self.root, workdir, evaluate)]
        return self.start(name, command, child_env(self.root, 1))

    def finish(self, name: str) -> subprocess.CompletedProcess:
        process, log = self.started[name], self.root / f"{name}.log"
        try:
            process.wait(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.stop()
            pytest.fail(f"{name} ran past {RUN_TIMEOUT} s:\n{log.read_text()[-3000:]}")
        return subprocess.CompletedProcess(process.args, process.returncode, log.read_text())

    def stop(self) -> None:
        for process in self.started.values():
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, utk_writer) -> dict:
    """The reference (1 process x 2 devices) and a 2 x 1 run killed after epoch 1, then resumed.

    The reference runs beside the killed run: compiling is mostly single-threaded, so the three
    processes share the two cores better than two would.
    """
    root = tmp_path_factory.mktemp("distributed")
    prepare_data(root, utk_writer)
    # The image cache, built once here rather than by the first run.
    open_protocol(apply_overrides(load_config("cnn_baseline", "smoke"),
                                  {**data_overrides(root), "image_size": OVERRIDES["image_size"]}))
    subprocesses, tic = Runs(root), time.time()
    try:
        subprocesses.reference("one", root / "one")
        crashed = subprocesses.finish(subprocesses.launch("crashed", "crash", root / "two", evaluate=False))
        after_crash = {"metrics": len((root / "two" / "metrics.jsonl").read_text().splitlines()),
                       "summary": (root / "two" / "summary.json").exists(),
                       "last_step": checkpoints.latest_step(root / "two" / "checkpoints" / "last")}
        resumed = subprocesses.finish(subprocesses.launch("resumed", "run", root / "two", evaluate=True))
        reference = subprocesses.finish("one")
    finally:
        subprocesses.stop()
    assert reference.returncode == 0, reference.stdout[-3000:]
    assert resumed.returncode == 0, resumed.stdout[-4000:]
    print(f"distributed runs: {time.time() - tic:.0f} s")
    return {"one": root / "one", "two": root / "two", "crashed": crashed, "after_crash": after_crash,
            "resumed": resumed, "split_csv": root / "splits" / "utkface.csv"}


def read_jsonl(path: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING_KEYS}
            for line in path.read_text().splitlines()]


def test_killed_two_process_run_resumes_from_its_checkpoint(runs):
    crashed = runs["crashed"]
    # Process 1 died by SIGKILL; the launcher stopped process 0 (blocked in the next step's psum).
    assert crashed.returncode == 128 + 9, crashed.stdout[-3000:]
    # Killed after epoch 1: one metrics line, its checkpoint, no summary.
    assert runs["after_crash"] == {"metrics": 1, "summary": False, "last_step": 0}
    out = runs["resumed"].stdout
    assert "[p0] resuming cnn_baseline after epoch 1" in out
    assert "[p1] resuming" not in out  # only process 0 prints and writes
    assert checkpoints.latest_step(runs["two"] / "checkpoints" / "last") == 1


def test_two_processes_log_the_losses_of_one_process_with_two_devices(runs):
    one, two = read_jsonl(runs["one"] / "metrics.jsonl"), read_jsonl(runs["two"] / "metrics.jsonl")
    assert [r["epoch"] for r in two] == [1, 2]  # one line per epoch: written by process 0 alone
    for a, b in zip(one, two, strict=True):
        assert b == pytest.approx(a, rel=1e-5, abs=1e-6)
    summaries = [json.loads((runs[k] / "summary.json").read_text()) for k in ("one", "two")]
    assert [s["num_devices"] for s in summaries] == [2, 2]
    assert summaries[1]["num_processes"] == 2 and "num_processes" not in summaries[0]
    assert summaries[1]["final_val"] == pytest.approx(summaries[0]["final_val"], rel=1e-5, abs=1e-6)
    assert pd.read_csv(runs["two"] / "history.csv").shape[0] == 2


def saved_state(run: Path) -> dict:
    """The last checkpoint's train state as saved (numpy arrays), with no model to build."""
    last = run / "checkpoints" / "last"
    return ocp.StandardCheckpointer().restore(last / str(checkpoints.latest_step(last)) / "state")


def test_two_processes_reach_the_parameters_of_one_process(runs):
    one, two = saved_state(runs["one"]), saved_state(runs["two"])
    assert int(one["step"]) == int(two["step"]) == 4
    adam_first_moments = jax.tree_util.tree_leaves(one["opt_state"][1][0]["mu"])
    assert max(float(np.abs(m).max()) for m in adam_first_moments) > 1e-4  # trained, not initial
    assert jax.tree_util.tree_structure(one) == jax.tree_util.tree_structure(two)
    for part in ("params", "batch_stats", "opt_state"):
        jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6),
                               one[part], two[part])


@pytest.mark.parametrize("split", ["val", "test"])
def test_sharded_evaluation_writes_the_predictions_file_of_one_process(runs, split):
    one = pd.read_csv(runs["one"] / f"predictions_{split}.csv")
    two = pd.read_csv(runs["two"] / f"predictions_{split}.csv")
    table = pd.read_csv(runs["split_csv"])
    assert two["file"].tolist() == table.loc[table["split"] == split, "file"].tolist()  # file order
    assert len(two) == 8
    # Float tolerance: one unit in the last written digit (%.4f).
    pd.testing.assert_frame_equal(two, one, check_exact=False, rtol=0, atol=1.5e-4)
    assert (runs["two"] / "metrics_test.json").is_file()


def test_launcher_stops_the_others_and_returns_the_first_failure(tmp_path):
    # Process 1 fails at once; process 0 would write its file after 30 s unless it is stopped.
    script = ("import os, sys, time; pid = int(os.environ['JAX_PROCESS_ID']); "
              "print(os.environ['JAX_NUM_PROCESSES'], os.environ['JAX_COORDINATOR_ADDRESS'], flush=True); "
              f"time.sleep(30 if pid == 0 else 0.5); open(r'{tmp_path}/p%d' % pid, 'w'); sys.exit(3 * pid)")
    tic = time.time()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "scripts/launch_local.py", "-n", "2", "--", sys.executable, "-c",
                           script], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done.stdout + done.stderr
    assert time.time() - tic < 20
    assert (tmp_path / "p1").exists() and not (tmp_path / "p0").exists()
    lines = done.stdout.splitlines()
    addresses = {line.split()[2] for line in lines}
    assert sorted(line.split()[0] for line in lines) == ["[p0]", "[p1]"]
    assert {line.split()[1] for line in lines} == {"2"} and len(addresses) == 1
    assert addresses.pop().startswith("127.0.0.1:")
    ok = subprocess.run([sys.executable, "scripts/launch_local.py", "-n", "2", "--", sys.executable, "-c",
                         "pass"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0


def test_global_batches_are_the_same_whatever_the_process_count():
    images = np.arange(40, dtype=np.uint8).reshape(40, 1, 1, 1) * np.ones((1, 2, 2, 3), np.uint8)
    rows = np.arange(3, 43) % 40
    labels = {"age": np.arange(40, dtype=np.int32), "gender": np.zeros(40, np.int32),
              "race": np.ones(40, np.int32)}

    def batches(processes: int, devices: int) -> list[list[dict]]:
        per_process = [list(pipeline.train_batches(images, rows, labels, 8, 5, 2, devices, p, processes))
                       for p in range(processes)]
        return list(zip(*per_process, strict=True))

    one = batches(1, 4)
    assert len(one) == 5
    for processes, devices in ((2, 2), (4, 1)):
        for single, parts in zip(one, batches(processes, devices), strict=True):
            for key in single[0]:
                # Process p's devices are global devices p*devices ... (p+1)*devices-1.
                np.testing.assert_array_equal(np.concatenate([part[key] for part in parts]), single[0][key])
    with pytest.raises(ValueError, match="batch size 8 does not divide evenly over 3 processes"):
        next(pipeline.train_batches(images, rows, labels, 8, 5, 2, 1, 0, 3))


def test_global_batch_must_divide_over_every_device_of_every_process():
    check_global_batch(16, 2, 4)
    with pytest.raises(ValueError, match=r"batch_size 16 \(global\) does not divide evenly over 3 processes "
                                         r"x 2 devices = 6 devices"):
        check_global_batch(16, 2, 3)
    with pytest.raises(ValueError, match="batch_size 15 does not divide evenly over 2 devices$"):
        check_global_batch(15, 2, 1)
