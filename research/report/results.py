"""What report/portfolio.qmd reads: results files, formatted numbers, markdown tables and figures.

Every number the report shows passes through here from a file under results/; a file that a
later stage has not yet written gives a visible "Not yet produced" line instead of an error.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
from IPython.display import Markdown


def find_root(start: Path | None = None) -> Path:
    """The repository root: the nearest folder holding results/ at or above ``start`` (cwd)."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "results").is_dir() and (folder / "report").is_dir():
            return folder
    raise FileNotFoundError(f"no repository root (with results/ and report/) at or above {here}")


class Results:
    """Files under ``root``/results, and links to them relative to the report's folder."""

    def __init__(self, root: Path | None = None):
        self.root = find_root(root)

    def path(self, rel: str) -> Path:
        return self.root / "results" / rel

    def exists(self, rel: str) -> bool:
        return self.path(rel).is_file()

    def json(self, rel: str) -> dict:
        return json.loads(self.path(rel).read_text())

    def csv(self, rel: str) -> pd.DataFrame:
        return pd.read_csv(self.path(rel))

    def figure(self, rel: str, caption: str, label: str, width: str = "100%",
               command: str | None = None) -> Markdown:
        """A captioned, labelled figure; the image path is relative to report/."""
        if not self.exists(rel):
            return not_yet(command or f"the stage that writes results/{rel}")
        return Markdown(f"![{_escape(caption)}](../results/{rel}){{#fig-{label} width={width}}}\n")


def not_yet(command: str) -> Markdown:
    """The line shown where a results file is missing: which command writes it."""
    return Markdown(f"**Not yet produced:** run `{command}`\n")


def paragraph(text: str) -> Markdown:
    """Generated prose as a markdown block."""
    return Markdown(text.strip() + "\n")


def blocks(*parts: Markdown | str | None) -> Markdown:
    """Several markdown blocks (paragraphs, tables, figures) as one cell output; None is skipped."""
    texts = [part.data if isinstance(part, Markdown) else part for part in parts if part is not None]
    return Markdown("\n\n".join(text.strip("\n") for text in texts if text.strip()) + "\n")


def table(frame: pd.DataFrame, caption: str, label: str) -> Markdown:
    """A pipe table with a caption and a label (both pandoc and Quarto read `: caption {#tbl-x}`)."""
    cells = [[_cell(v) for v in row] for row in frame.itertuples(index=False)]
    header = "| " + " | ".join(_header(c) for c in frame.columns) + " |"
    # Dashes in proportion to each column's widest entry: pandoc sizes wide tables' columns so.
    widths = [min(max(3, len(str(c)), *(len(row[i]) for row in cells)), 40) + 2  # + cell padding
              for i, c in enumerate(frame.columns)]
    rule = "|" + "|".join(("-" * w + ":") if pd.api.types.is_numeric_dtype(frame[c]) else (":" + "-" * w)
                          for w, c in zip(widths, frame.columns, strict=True)) + "|"
    body = ["| " + " | ".join(row) + " |" for row in cells]
    return Markdown("\n".join([header, rule, *body, "", f": {_escape(caption)} {{#tbl-{label}}}", ""]))


def _escape(text: str) -> str:
    """Captions are markdown: a literal '*' (as in results/runs/*/) must not open emphasis."""
    return text.replace("*", "\\*")


def _header(name: object) -> str:
    """A column name that may wrap after '_' (a zero-width space), never in the middle of a word."""
    return _cell(name).replace("_", "_\u200b")


def _cell(value: object) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    return str(value).replace("|", "\\|")


def num(value: float, digits: int = 0) -> str:
    """Thousands separators: 22022 -> '22,022'; 4.9638 (digits=2) -> '4.96'."""
    return f"{value:,.{digits}f}"


def pct(fraction: float, digits: int = 1) -> str:
    """A fraction as a percentage: 0.1788 -> '17.9%'; NaN (no such rows) -> 'n/a'."""
    return "n/a" if fraction != fraction else f"{100 * fraction:.{digits}f}%"


def interval(value: float, low: float, high: float, scale: float = 1.0, digits: int = 2) -> str:
    """'4.96 [4.81, 5.12]': the README's and results/summary's format for a value and its interval."""
    if value != value:
        return "n/a"
    return f"{value * scale:.{digits}f} [{low * scale:.{digits}f}, {high * scale:.{digits}f}]"


def intervals(frame: pd.DataFrame, column: str, scale: float = 1.0, digits: int = 2,
              low: str = "_low", high: str = "_high") -> list[str]:
    """``interval`` of each row of ``frame``: ``column`` with ``column + low`` and ``column + high``."""
    return [interval(value, lo, hi, scale, digits) for value, lo, hi in
            zip(frame[column], frame[column + low], frame[column + high], strict=True)]


def metric(metrics: dict, name: str, scale: float = 1.0, digits: int = 2) -> str:
    """A metric of metrics_test.json with its bootstrap interval, formatted by ``interval``."""
    low, high = metrics["bootstrap"]["intervals"].get(name, (math.nan, math.nan))
    return interval(metrics[name], low, high, scale, digits)
