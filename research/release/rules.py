"""The release carries the prediction command's rules: results/rules/rules.json (written by
research.evaluation.rules from validation, scored on test) copied into the release folder, its
sha256 recorded in metadata.json (``rules``), so that ``research.predict.release.load_release``
refuses a rules file that does not match. Needs no checkpoint.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from research.outputs import atomic_path, write_json
from research.predict.release import load_release
from research.predict.rules import RULES_FILE

DEFAULT_RULES = Path("results/rules/rules.json")


def attach_rules(release: Path, rules: Path) -> dict:
    """Copy ``rules`` into ``release`` as rules.json and name it (file, sha256, source) in its
    metadata.json; returns the metadata entry. The release must load afterwards."""
    release, rules = Path(release), Path(rules)
    if not rules.is_file():
        raise FileNotFoundError(f"{rules} is missing: run scripts/release_rules.py first")
    blob = rules.read_bytes()
    json.loads(blob)  # a rules file that does not parse is not copied
    with atomic_path(release / RULES_FILE) as tmp:
        tmp.write_bytes(blob)
    metadata = json.loads((release / "metadata.json").read_text())
    entry = {"file": RULES_FILE, "sha256": hashlib.sha256(blob).hexdigest(), "source": str(rules)}
    write_json(release / "metadata.json", {**metadata, "rules": entry})
    load_release(release)
    return entry
