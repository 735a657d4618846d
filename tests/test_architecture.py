"""The package's import structure follows the data flow (../shared/STYLE.md): walk every import of
research/ and fail on a cycle between subpackages or an import against the allowed directions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "research"
# Shared by every stage: the vocabulary, the configs and registry, user errors.
EVERYWHERE = {"vocabulary", "configs", "errors"}
# What each part of the package may import besides EVERYWHERE (research.<part> -> research.<other>).
ALLOWED = {
    "configs": set(), "vocabulary": set(), "errors": set(), "outputs": set(), "provenance": set(),
    "stages": set(),
    "data": {"outputs", "provenance"},
    "viz": {"data", "outputs", "provenance"},
    "models": set(),
    "inference": {"data", "models"},  # jitted prediction on image arrays, shared by three stages
    "runs": {"models", "outputs"},
    "training": {"models", "data", "runs", "inference", "outputs", "provenance"},
    "evaluation": {"runs", "models", "data", "inference", "outputs", "provenance"},
    "predict": {"models", "runs", "inference", "outputs"},
    "release": {"runs", "evaluation", "predict", "models", "data", "inference", "outputs", "provenance"},
    # The face scan of the cleaned crops: the command's detector (predict) over the data's crops.
    "screening": {"predict", "data", "outputs", "provenance"},
    "report": {"runs", "outputs"},  # results files only: the run folder's file names, no model
    "verify": {"evaluation", "report", "runs"},
}


def part_of(path: Path, package: Path = PACKAGE) -> str:
    return path.relative_to(package).with_suffix("").parts[0]


def imports_of(path: Path) -> set[str]:
    """research.<part> names a module imports (absolute imports, function-level ones included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        absolute = isinstance(node, ast.ImportFrom) and node.module and node.level == 0
        names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                 [node.module] if absolute else [])
        found |= {n.split(".")[1] for n in names if n.startswith("research.") and n.count(".") >= 1}
        if isinstance(node, ast.ImportFrom) and node.module == "research":
            found |= {a.name for a in node.names}
    return found


def graph(package: Path = PACKAGE) -> dict[str, dict[str, list[str]]]:
    """part -> imported part -> the files that import it."""
    edges: dict[str, dict[str, list[str]]] = {}
    for path in sorted(package.rglob("*.py")):
        source = part_of(path, package)
        for target in imports_of(path) - {source}:
            edges.setdefault(source, {}).setdefault(target, []).append(str(path.relative_to(package.parent)))
    return edges


def cycles(edges: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """Every elementary cycle's nodes, found by depth-first search from each node."""
    found = []

    def walk(node: str, path: list[str]) -> None:
        for nxt in edges.get(node, {}):
            if nxt == path[0]:
                found.append([*path, nxt])
            elif nxt not in path and nxt > path[0]:
                walk(nxt, [*path, nxt])

    for start in sorted(edges):
        walk(start, [start])
    return found


def test_every_part_of_the_package_is_declared():
    parts = {part_of(p) for p in PACKAGE.rglob("*.py")} - {"__init__"}
    assert parts <= set(ALLOWED), f"add {sorted(parts - set(ALLOWED))} to ALLOWED with its allowed imports"


def test_no_import_runs_against_the_data_flow():
    wrong = [f"{source} -> {target} ({', '.join(files)})" for source, targets in graph().items()
             for target, files in targets.items() if target not in ALLOWED[source] | EVERYWHERE]
    assert wrong == []


def test_no_cycle_between_parts_of_the_package():
    assert cycles(graph()) == []


@pytest.mark.parametrize("source, forbidden", [("evaluation", "training"), ("predict", "training"),
                                               ("predict", "evaluation"), ("release", "training"),
                                               ("screening", "training"), ("screening", "models"),
                                               ("runs", "training"), ("models", "data"), ("data", "models"),
                                               ("report", "models")])
def test_named_rules_hold(source, forbidden):
    assert forbidden not in graph().get(source, {}), graph()[source][forbidden]


def test_the_walk_sees_cycles_and_wrong_imports(tmp_path):
    """The checks above can fail: a made-up package with a cycle and an import against the flow."""
    package = tmp_path / "research"
    for name, text in {"evaluation/a.py": "from research.training.loop import x\n",
                       "training/loop.py": "from research.evaluation import a\n",
                       "models/m.py": "import research.data.cache\n"}.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    edges = graph(package)
    assert edges == {"evaluation": {"training": ["research/evaluation/a.py"]},
                     "training": {"evaluation": ["research/training/loop.py"]},
                     "models": {"data": ["research/models/m.py"]}}
    assert cycles(edges) == [["evaluation", "training", "evaluation"]]
    assert "data" not in ALLOWED["models"] | EVERYWHERE


def test_scripts_are_not_imported_by_the_package():
    offenders = [str(p) for p in PACKAGE.rglob("*.py") if "import scripts" in p.read_text()
                 or "from scripts" in p.read_text()]
    assert offenders == []
