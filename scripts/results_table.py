"""Write the headline results table (results/summary/headline.csv) and put it in README.md.

    python scripts/results_table.py

The README block between the RESULTS markers is replaced; nothing in it is typed by hand.
"""

import re
from pathlib import Path

from research.errors import cli
from research.outputs import atomic_path, write_csv
from research.report.tables import (
    ablations_markdown_table,
    comparison_table,
    headline_table,
    pretraining_table,
    seed_table,
    timings_table,
    to_markdown,
)

BLOCKS = ("RESULTS", "SEEDS", "PRETRAINING", "COMPARISON", "ABLATIONS", "ABLATIONS_PRETRAINED", "TIMINGS")


def replace_block(text: str, name: str, content: str) -> str:
    start, end = f"<!-- {name}:START (scripts/results_table.py) -->", f"<!-- {name}:END -->"
    new, count = re.subn(re.escape(start) + ".*?" + re.escape(end), lambda _: f"{start}\n{content}\n{end}",
                         text, flags=re.S)
    if count != 1:
        raise SystemExit(f"README.md must contain exactly one {start} ... {end} block")
    return new


def main() -> None:
    results = Path("results")
    tables = {"RESULTS": headline_table(results / "runs"), "SEEDS": seed_table(results / "runs"),
              "PRETRAINING": pretraining_table(results), "COMPARISON": comparison_table(results),
              "ABLATIONS": ablations_markdown_table(results),
              "ABLATIONS_PRETRAINED": ablations_markdown_table(results, "pretrained"),
              "TIMINGS": timings_table(results)}
    write_csv(Path("results/summary/headline.csv"), tables["RESULTS"])
    write_csv(Path("results/summary/timings.csv"), tables["TIMINGS"])
    write_csv(Path("results/summary/seeds.csv"), tables["SEEDS"])
    write_csv(Path("results/summary/pretraining.csv"), tables["PRETRAINING"])
    readme = Path("README.md")
    text = readme.read_text()
    for name in BLOCKS:
        text = replace_block(text, name, to_markdown(tables[name]))
    with atomic_path(readme) as tmp:
        tmp.write_text(text)
    print(to_markdown(tables["RESULTS"]))


if __name__ == "__main__":
    cli(main)()
