"""Content-based freshness for the Makefile's stages (the light alternative to DVC's dvc.lock).

make decides by file times, and git writes files in an arbitrary order, so in a fresh clone make
would take committed results for stale. Instead, every rule records, after it succeeds, the sha256
of its target and of every input it read (``record``) in ``results/stages.lock.json``
(committed). Before make compares times, ``sync`` sets each recorded target's time from content:
a target whose own bytes and every input (files and registry entries) still match the lock, with
all its recorded upstream targets fresh too, is made newer than its inputs (now, in dependency
order); a recorded target that no longer matches is made older than anything, so make reruns it
and, through the ordinary rules, everything downstream. Unrecorded targets keep make's own rule.

Inputs may also be registry entries (``registry:RUNS.cnn_baseline``, ``registry:EVALUATION``):
the repr of that entry of research/configs/experiments.py, so that adding a run to the registry
does not make every other run stale.

``makevars`` prints the Makefile variables: the registry's (experiments.make_variables) and, per
script and per run config, the research/ modules it imports (its code inputs), found by walking
imports, so that no rule has to list code by hand. Standard library only: make runs this before
the virtual environment exists.

    python3 -m research.stages sync | makevars | stale | help
    python3 -m research.stages invalidate TARGET ...
    python3 -m research.stages record TARGET [--key KEY ...] -- INPUT ...
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

LOCK = Path("results/stages.lock.json")
OLD = 315_532_800  # 1980-01-01: older than any checkout
REGISTRY = "research/configs/experiments.py"  # an input through registry: keys, not as a file


def file_sha256(path: str | Path) -> str | None:
    """sha256 of a file's bytes; None when it does not exist."""
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except (FileNotFoundError, IsADirectoryError):
        return None


def registry_value(key: str) -> str:
    """sha256 of the repr of ``registry:NAME[.ENTRY]`` in research/configs/experiments.py."""
    from research.configs import experiments

    name, _, entry = key.removeprefix("registry:").partition(".")
    value = getattr(experiments, name)
    if entry:
        value = value[entry]
    return hashlib.sha256(repr(value).encode()).hexdigest()


def input_sha256(name: str) -> str | None:
    return registry_value(name) if name.startswith("registry:") else file_sha256(name)


def load_lock(path: Path = LOCK) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


@contextlib.contextmanager
def locked(path: Path = LOCK) -> Iterator[dict]:
    """The lock's entries, written back on exit; one writer at a time (make -j runs rules at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".flock"), "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        entries = load_lock(path)
        yield entries
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(dict(sorted(entries.items())), indent=1) + "\n")
        os.replace(tmp, path)


def record(target: str, inputs: list[str], path: Path = LOCK) -> None:
    """Record the target's and its inputs' content after a rule succeeded."""
    sha = file_sha256(target)
    if sha is None:
        raise SystemExit(f"stages: the rule for {target} did not write it")
    entry = {"sha256": sha, "inputs": {name: input_sha256(name) for name in sorted(set(inputs))}}
    with locked(path) as entries:
        entries[target] = entry


def freshness(entries: dict) -> dict[str, bool]:
    """target -> whether its bytes and all its inputs match the lock (upstream targets included)."""
    fresh: dict[str, bool] = {}

    def visit(target: str, seen: tuple[str, ...] = ()) -> bool:
        if target not in fresh:
            entry = entries[target]
            ok = file_sha256(target) == entry["sha256"]
            for name, sha in entry["inputs"].items():
                ok = ok and input_sha256(name) == sha
                if ok and name in entries and name not in seen:
                    ok = visit(name, (*seen, target))
            fresh[target] = ok
        return fresh[target]

    for target in entries:
        visit(target)
    return fresh


def depth(entries: dict, target: str) -> int:
    ups = [depth(entries, name) for name in entries[target]["inputs"] if name in entries and name != target]
    return 1 + max(ups, default=0)


def sync(path: Path = LOCK) -> tuple[list[str], list[str]]:
    """Set recorded targets' times from their content; returns (fresh, stale)."""
    entries = load_lock(path)
    fresh = freshness(entries)
    now = time.time_ns()
    ordered = sorted(entries, key=lambda t: depth(entries, t))
    for i, target in enumerate(ordered):
        if not os.path.exists(target):
            continue
        stamp = now + 1000 * i if fresh[target] else OLD * 10**9
        os.utime(target, ns=(stamp, stamp))
    return [t for t in ordered if fresh[t]], [t for t in ordered if not fresh[t]]


def invalidate(targets: list[str], path: Path = LOCK) -> None:
    """Forget the recorded content of ``targets`` and make them older than anything, so that the
    next make reruns them (and what depends on them) even though nothing they read changed."""
    with locked(path) as entries:
        for target in targets:
            entries.pop(target, None)
            if os.path.exists(target):
                os.utime(target, ns=(OLD * 10**9, OLD * 10**9))


def module_file(module: str, root: Path) -> Path | None:
    base = root / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """research.* modules a file imports (absolute imports, as the package writes them)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.split(".")[0] == "research"}


def code_inputs(start: str | Path, root: Path = Path(".")) -> list[str]:
    """The file and every research/ module it imports, transitively (parent packages included);
    the registry is left out (its entries are inputs through registry: keys)."""
    todo, seen = [Path(start)], set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in imported_modules(root / path):
            parts = module.split(".")
            for i in range(1, len(parts) + 1):
                file = module_file(".".join(parts[:i]), root)
                if file is not None:
                    todo.append(file.relative_to(root))
    return sorted(str(p) for p in seen if str(p) != REGISTRY)


def make_variables(root: Path = Path(".")) -> str:
    """The registry's variables, then CODE_<script> and CONFIG_CODE_<run> (code inputs)."""
    from research.configs import experiments

    lines = [experiments.make_variables().rstrip("\n")]
    for script in sorted((root / "scripts").glob("*.py")):
        lines.append(f"CODE_{script.stem} := {' '.join(code_inputs(script.relative_to(root), root))}")
    for name, entry in experiments.RUNS.items():
        config = Path("research/configs") / f"{entry.config}.py"
        lines.append(f"CONFIG_CODE_{name} := {' '.join(code_inputs(config, root))}")
    return "\n".join(lines) + "\n"


def _minutes(path: str, key: str = "wall_time_s") -> float:
    """A stage's recorded minutes: ``key`` of a JSON file (0 when it is not there)."""
    file = Path(path)
    if not file.is_file():
        return 0.0
    data = json.loads(file.read_text())
    return max(float(data.get(key) or 0), float(data.get("train_seconds_all_epochs") or 0)) / 60


def measured_minutes() -> dict[str, float]:
    """Minutes each part of ``make all`` took here, read from the results files that recorded them."""
    import csv

    from research.configs import experiments

    runs = {name: _minutes(f"results/runs/{name}/summary.json") for name in experiments.RUNS}
    from research.configs.ablations import STUDIES

    files = [Path(study.out) / "runs.csv" for study in STUDIES.values()]
    ablation_minutes = sum(float(row["train_seconds"]) / 60 for file in files if file.is_file()
                           for row in csv.DictReader(file.open()))
    return {
        "cleaning + splits + visualization": _minutes("results/cleaning/summary.json")
        + _minutes("results/eda/summary.json"),
        "face scan of every crop": _minutes("results/cleaning/face_scan.json", "scan_wall_s"),
        **{f"train {n} ({experiments.RUNS[n].profile})": m for n, m in runs.items()},
        "ablations (both studies, all arms and seeds)": ablation_minutes,
        "peer comparison": _minutes("results/peer/summary.json", "predict_seconds"),
        "prediction consistency check": _minutes("results/predict/summary.json"),
    }


def help_text(makefile: Path) -> str:
    """The Makefile's documented targets (``target: ... ## text``) and the measured times."""
    lines = ["Targets (make TARGET; DATA=... and CORAL=... say where the data is):"]
    for line in makefile.read_text().splitlines():
        if "## " in line and ":" in line.split("## ")[0] and not line.startswith("\t"):
            target, text = line.split(":")[0], line.split("## ", 1)[1]
            lines.append(f"  {target:<10} {text}")
    minutes = measured_minutes()
    gpu = {k for k in minutes if k.endswith("(gpu)")}
    lines.append("Measured here (minutes, from results files; GPU runs on their own machine):")
    lines += [f"  {k:<44} {v:7.1f}" for k, v in minutes.items() if v]
    cpu_total = sum(v for k, v in minutes.items() if k not in gpu)
    lines.append(f"  {'make clean all on this CPU, about':<44} {cpu_total:7.1f}")
    lines.append("Need the dataset: cleaning, visualization, training, predictions, peer, ablations, cache "
                 "benchmark, consistency check, smoke. Not: verify, readme, report, test, help.")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    command, *rest = argv or ["help"]
    if command == "sync":
        sync()
    elif command == "stale":
        print("\n".join(sync()[1]))
    elif command == "invalidate":
        invalidate(rest)
    elif command == "help":
        print(help_text(Path(rest[0] if rest else "Makefile")))
    elif command == "makevars":
        sys.stdout.write(make_variables())
    elif command == "record" and "--" in rest:
        head, inputs = rest[: rest.index("--")], rest[rest.index("--") + 1:]
        target, keys = head[0], [head[i + 1] for i, a in enumerate(head) if a == "--key"]
        record(target, inputs + keys)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
