"""Render report/portfolio.qmd to report/_output/portfolio.html and .pdf without Quarto.

    python scripts/render_report.py [--qmd report/portfolio.qmd] [--out report/_output]

Used by `make report` when `quarto` is not on PATH: the same cells run in a Jupyter kernel
(cwd report/, as under Quarto), pandoc writes the self-contained HTML and Typst the PDF.
"""

import argparse
import time
from pathlib import Path

from research.errors import cli
from research.report.render import render


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--qmd", type=Path, default=Path("report/portfolio.qmd"))
    parser.add_argument("--out", type=Path, default=Path("report/_output"))
    args = parser.parse_args()
    start = time.perf_counter()
    folder = args.qmd.parent
    html, pdf = render(args.qmd, args.out, root=Path.cwd(),
                       css=[folder / "portfolio.css", folder / "_fallback.css"],
                       typst_header=folder / "portfolio-header.typ")
    print(f"wrote {html} and {pdf} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    cli(main)()
