"""The release carries the prediction command's rules: results/rules/rules.json (written by
research.evaluation.rules from validation, scored on test) copied into the release folder with its
sha256 beside it (rules.sha256), so that ``research.predict.release.load_release`` refuses a rules
file that was changed, or that was made for other params. metadata.json is left as the export
wrote it. Needs no checkpoint.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from research.outputs import atomic_path
from research.predict.release import RULES_FILE, RULES_SHA256, load_release

DEFAULT_RULES = Path("results/rules/rules.json")


def attach_rules(release: Path, rules: Path) -> str:
    """Copy ``rules`` into ``release`` as rules.json and its sha256 as rules.sha256; returns the
    sha256. Refuses rules made for other params; the release must load afterwards."""
    release, rules = Path(release), Path(rules)
    if not rules.is_file():
        raise FileNotFoundError(f"{rules} is missing: run scripts/release_rules.py first")
    blob = rules.read_bytes()
    made_for = json.loads(blob).get("release", {}).get("params_sha256")
    params = json.loads((release / "metadata.json").read_text())["params_sha256"]
    if made_for != params:
        raise ValueError(f"{rules} was made for params {made_for}, not {release}'s {params}")
    digest = hashlib.sha256(blob).hexdigest()
    with atomic_path(release / RULES_FILE) as tmp:
        tmp.write_bytes(blob)
    with atomic_path(release / RULES_SHA256) as tmp:
        tmp.write_text(f"{digest}  {RULES_FILE}\n")
    load_release(release)
    return digest
