"""Outputs of the prediction command written as records arrive, so that memory stays constant.

``JsonStream`` writes one JSON document ``{head..., "files": [record, ...], "summary": {...}}``
record by record; ``CsvStream`` appends one row per face. Files are written to a temporary
path and renamed when complete (an interrupted run leaves no half-written output).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import TextIO

from research.outputs import atomic_path
from research.predict.annotate import csv_table


def _indented(value: object, level: int) -> str:
    return json.dumps(value, indent=2).replace("\n", "\n" + "  " * level)


class JsonStream:
    """One JSON document to ``out``: ``head``'s keys, then ``files`` one record at a time, then
    ``summary`` at ``close``."""

    def __init__(self, out: TextIO, head: dict):
        self.out, self.count = out, 0
        body = ",\n".join(f"  {json.dumps(k)}: {_indented(v, 1)}" for k, v in head.items())
        out.write("{\n" + body + (",\n" if body else "") + '  "files": [')

    def add(self, record: dict) -> None:
        self.out.write(("," if self.count else "") + "\n    " + _indented(record, 2))
        self.count += 1

    def close(self, summary: dict) -> None:
        self.out.write(("\n  " if self.count else "") + '],\n  "summary": ' + _indented(summary, 1) + "\n}\n")
        self.out.flush()


class CsvStream:
    """One row per face (``annotate.csv_table``'s columns) appended per record."""

    def __init__(self, out: TextIO):
        self.out, self.header = out, True

    def add(self, record: dict) -> None:
        csv_table([record]).to_csv(self.out, index=False, header=self.header)
        self.header = False


@contextlib.contextmanager
def atomic_text(path: Path):
    """A text file open for writing at a temporary path, renamed to ``path`` if the block succeeds."""
    with atomic_path(path) as tmp, open(tmp, "w") as handle:
        yield handle
