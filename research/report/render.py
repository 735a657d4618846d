"""Render a .qmd without Quarto, with the engines Quarto itself drives.

Python cells (and inline `{python} expr` code) run in a Jupyter kernel through nbclient, with
the working directory at the .qmd's folder as under Quarto; their markdown outputs are spliced
into the text; pandoc writes a self-contained HTML file and Typst markup, which the typst
package compiles to PDF. Only the features the report uses are handled: ```{python} cells with
``#| key: value`` options (echo, eval, include, output), inline expressions, and everything
pandoc's markdown reads (headings, pipe tables with `: caption {#tbl-x}`, images with
`{#fig-x width=..}`).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pypandoc
import typst
from nbclient import NotebookClient

from research.outputs import atomic_path

CELL = re.compile(r"^```\{python\}[^\n]*\n(.*?)^```[ \t]*$\n?", re.M | re.S)
INLINE = re.compile(r"(^|[^`])`\{python\}[ \t]([^`]+)`")  # Quarto's own pattern
OPTION = re.compile(r"^#\|\s*([\w-]+)\s*:\s*(.*?)\s*$")
PANDOC_ARGS = ("--standalone", "--toc", "--toc-depth=2")


@dataclass
class Chunk:
    """A run of markdown, or one code cell with its ``#|`` options."""

    kind: str  # "markdown" or "code"
    source: str
    options: dict[str, object] = field(default_factory=dict)


def _option_value(text: str) -> object:
    text = text.strip().strip("\"'")
    return {"true": True, "false": False}.get(text.lower(), text)


def parse_qmd(text: str) -> list[Chunk]:
    """Split a .qmd into markdown and python-cell chunks (the front matter stays in the first)."""
    chunks, start = [], 0
    for match in CELL.finditer(text):
        if match.start() > start:
            chunks.append(Chunk("markdown", text[start:match.start()]))
        lines = match.group(1).splitlines()
        options = {m.group(1): _option_value(m.group(2)) for m in map(OPTION.match, lines) if m}
        code = "\n".join(line for line in lines if not OPTION.match(line))
        chunks.append(Chunk("code", code.strip("\n"), options))
        start = match.end()
    if start < len(text):
        chunks.append(Chunk("markdown", text[start:]))
    return chunks


def inline_cell(markdown: str) -> str | None:
    """A cell printing, as a JSON list, str() of each inline expression of a markdown chunk."""
    exprs = [m.group(2).strip() for m in INLINE.finditer(markdown)]
    if not exprs:
        return None
    return f"print(__import__('json').dumps([str(_x) for _x in ({', '.join(exprs)},)]))"


def build_notebook(chunks: list[Chunk]) -> tuple[nbformat.NotebookNode, list[int | None]]:
    """One notebook cell per code chunk and per markdown chunk with inline code; for each chunk,
    the index of its cell (None: nothing to run)."""
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                           "display_name": "Python 3"}})
    index: list[int | None] = []
    for chunk in chunks:
        source = (chunk.source if chunk.options.get("eval", True) else None) if chunk.kind == "code" \
            else inline_cell(chunk.source)
        index.append(None if source is None else len(nb.cells))
        if source is not None:
            nb.cells.append(nbformat.v4.new_code_cell(source))
    return nb, index


def _fenced(text: str) -> str:
    return f"```\n{text.rstrip()}\n```\n"


def output_markdown(cell: nbformat.NotebookNode, options: dict[str, object]) -> str:
    """A code cell's outputs as markdown: text/markdown as is, other text fenced (raw if asis)."""
    if options.get("include") is False or options.get("output") is False:
        return ""
    asis = options.get("output") == "asis"
    parts = [_fenced(cell.source) if options.get("echo") is True else ""]
    for out in cell.get("outputs", []):
        if out.output_type == "stream" and out.name == "stdout":
            parts.append(out.text if asis else _fenced(out.text))
        elif out.output_type in ("display_data", "execute_result"):
            if "text/markdown" in out.data:
                parts.append(out.data["text/markdown"])
            elif "text/plain" in out.data:
                parts.append(_fenced(out.data["text/plain"]))
    return "\n\n".join(p.strip("\n") for p in parts if p.strip()) + "\n"


def substitute_inline(markdown: str, cell: nbformat.NotebookNode) -> str:
    values = iter(json.loads("".join(o.text for o in cell.outputs if o.output_type == "stream")))
    return INLINE.sub(lambda m: m.group(1) + next(values), markdown)


def kernel_env(root: Path) -> dict[str, str]:
    """The kernel's environment: ``root`` first on PYTHONPATH, so that the report imports the
    ``research`` package of the checkout it belongs to, not whichever one is installed."""
    paths = [str(Path(root).resolve()), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def execute_qmd(qmd: Path, timeout: int = 600) -> str:
    """Run the .qmd's code in a fresh python3 kernel (cwd: the .qmd's folder, the checkout's
    package first on the path); return markdown."""
    chunks = parse_qmd(qmd.read_text())
    nb, index = build_notebook(chunks)
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(qmd.parent.resolve())}}).execute(
        env=kernel_env(qmd.resolve().parent.parent))
    parts = []
    for chunk, i in zip(chunks, index, strict=True):
        if chunk.kind == "markdown":
            parts.append(chunk.source if i is None else substitute_inline(chunk.source, nb.cells[i]))
        elif i is not None:
            parts.append("\n" + output_markdown(nb.cells[i], chunk.options))
    return "".join(parts)


def write_html(markdown: str, out: Path, resource_dir: Path, css: list[Path]) -> None:
    """Self-contained HTML: images and CSS are embedded, so the file can be mailed on its own."""
    args = [*PANDOC_ARGS, "--embed-resources", f"--resource-path={resource_dir}",
            *(f"--css={sheet.resolve()}" for sheet in css)]
    with atomic_path(out) as tmp:
        pypandoc.convert_text(markdown, "html5", format="markdown", outputfile=str(tmp), extra_args=args)


def write_pdf(markdown: str, out: Path, source_dir: Path, root: Path, header: Path | None) -> None:
    """pandoc -> Typst markup (next to the .qmd, so relative image paths hold) -> typst -> PDF."""
    args = [*PANDOC_ARGS] + ([f"--include-in-header={header}"] if header else [])
    markup = pypandoc.convert_text(markdown, "typst", format="markdown", extra_args=args)
    source = source_dir / f".{out.stem}.typ"
    try:
        source.write_text(markup)
        with atomic_path(out) as tmp:
            typst.compile(str(source), output=str(tmp), root=str(root))
    finally:
        source.unlink(missing_ok=True)


def render(qmd: Path, out_dir: Path, root: Path, css: tuple[Path, ...] | list[Path] = (),
           typst_header: Path | None = None) -> tuple[Path, Path]:
    """Execute ``qmd`` and write ``out_dir``/<name>.html and .pdf; return both paths."""
    markdown = execute_qmd(qmd)
    out_dir.mkdir(parents=True, exist_ok=True)
    html, pdf = out_dir / f"{qmd.stem}.html", out_dir / f"{qmd.stem}.pdf"
    write_html(markdown, html, qmd.parent, list(css))
    write_pdf(markdown, pdf, qmd.parent, root, typst_header)
    return html, pdf
