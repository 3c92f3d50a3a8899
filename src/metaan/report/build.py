"""Building a report: specification in; HTML, PDF, Word, JSON, CSV and figures out.

The build is reproducible: the same specification, inputs and library
versions give byte-identical ``index.html``, ``results.json``, CSV tables, SVG
figures and ``report.docx`` (no timestamps, fixed SVG hash salt, sorted JSON
keys, fixed float formatting, fixed dates inside the Word file). Every file is
written inside the output folder, atomically, and listed in the folder's
manifest; a rebuild removes only files an earlier build listed there. The build
runs in the calling process: it starts no other process.
"""

from __future__ import annotations

import io
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from markupsafe import Markup

from metaan._output import OutputFolder
from metaan.report.analyses import ReportResults, run_report_analyses
from metaan.report.sections import SECTIONS
from metaan.report.serialize import (
    library_versions,
    licence_notice,
    relative,
    results_data,
    sha256,
    tables,
)
from metaan.report.spec import ReportSpec, load_spec
from metaan.report.text import (
    axis_label,
    effect_symbol,
    fmt,
    fmt_ci,
    fmt_effect,
    fmt_p,
    key_findings,
    measure_name,
    show,
)
from metaan.studies import load_studies

__all__ = ["BuildResult", "PdfStarter", "build_report", "render_html"]

Progress = Callable[[str], None]
#: Starts rendering ``report.pdf`` in an output folder; returns a call that waits for it.
#: The renderer writes the file atomically (:func:`metaan._output.atomic_write`).
PdfStarter = Callable[[Path], Callable[[], Path]]


def _render_now(out: Path) -> Callable[[], Path]:
    from metaan.report.pdf import render_pdf

    path = render_pdf(out)
    return lambda: path


@dataclass(frozen=True)
class BuildResult:
    """What a build wrote, what it removed, and how long it took."""

    output: Path
    files: tuple[Path, ...]
    seconds: float
    removed: tuple[Path, ...] = ()


def _quiet(_: str) -> None:
    return None


def _figure_bytes(fig: Any, fmt_name: str) -> bytes:
    from metaan.plots import save

    buffer = io.BytesIO()
    save(fig, buffer, format=fmt_name)
    return buffer.getvalue()


def figure_files(figures: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Figures by file stem, and each figure's stems: one, or one per printed page.

    A figure drawn as pages (a list of Figures) gives the files ``<name>_1``,
    ``<name>_2``, ...; a single figure gives ``<name>``.
    """
    files: dict[str, Any] = {}
    groups: dict[str, list[str]] = {}
    for name, fig in figures.items():
        pages = fig if isinstance(fig, list) else [fig]
        stems = [name] if len(pages) == 1 else [f"{name}_{i}" for i in range(1, len(pages) + 1)]
        files.update(zip(stems, pages, strict=True))
        groups[name] = stems
    return files, groups


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("metaan.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["fmt"] = lambda x, d=2: fmt(None if x is None else float(x), d)
    env.filters["pfmt"] = lambda p: (
        fmt_p(None if p is None else float(p)).replace("< ", "<\u2009")
        if p is not None and float(p) < 0.001
        else "= " + fmt_p(None if p is None else float(p))
    )
    env.filters["ratio"] = lambda x: fmt(math.exp(float(x)), 2)
    env.filters["sentence"] = lambda text: str(text)[:1].upper() + str(text)[1:]
    env.globals.update(
        fmt_ci=fmt_ci,
        fmt_effect=fmt_effect,
        show=show,
        symbol=effect_symbol,
        axis_label=axis_label,
        measure_name=measure_name,
    )
    return env


def _numbered(results: ReportResults) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The sections present, with their numbered headings, and anchor -> heading text."""
    parts, headings = [], {}
    number = 0
    for section in SECTIONS:
        if section.id not in results.sections:
            continue
        computed = results.sections[section.id]
        for anchor, title in section.headings(results, computed):
            number += 1
            headings[anchor] = f"{number}. {title}"
        parts.append(
            {
                "template": section.template,
                "S": computed,
                "X": section.context(results, computed),
            }
        )
    return parts, headings


def render_html(results: ReportResults, figures: dict[str, list[tuple[str, str]]]) -> str:
    """The report as one self-contained HTML page (figures inline as SVG).

    ``figures`` maps a figure's name to its pages: (file stem, SVG text) each.
    """
    spec = results.spec
    versions = library_versions()
    css = (Path(__file__).parent / "templates" / "style.css").read_text(encoding="utf-8")
    parts, headings = _numbered(results)
    context = {
        "R": results,
        "spec": spec,
        "outcome": spec.outcome,
        "spec_file": relative(spec.path, spec.path.parent),
        "spec_sha": sha256(spec.path),
        "versions": versions,
        "css": Markup(css),
        "level": f"{spec.model.level:g}",
        "findings": key_findings(results),
        "parts": parts,
        "headings": headings,
        "figures": {k: [(s, Markup(v)) for s, v in pages] for k, pages in figures.items()},
    }
    return _environment().get_template("report.html.j2").render(**context)


def _csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False, lineterminator="\n")


def _all_figures(results: ReportResults, say: Progress) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for section in SECTIONS:
        if section.id in results.sections:
            say(f"figures: {section.id}")
            figures.update(section.figures(results, results.sections[section.id]))
    return figures


def _write_data(results: ReportResults, out: OutputFolder) -> list[Path]:
    written = []
    all_tables = tables(results)
    sections: dict[str, Any] = {}
    for section in SECTIONS:
        if section.id in results.sections:
            computed = results.sections[section.id]
            all_tables.update(section.tables(results, computed))
            data = section.data(results, computed)
            if data is not None:
                sections[section.id] = data
    for name, frame in all_tables.items():
        written.append(out.write(f"tables/{name}.csv", _csv(frame)))
    written.append(out.write("tables/LICENSE.md", licence_notice(results)))
    data = results_data(results, sections)
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
    written.append(out.write("results.json", text))
    return written


def build_report(
    spec_path: str | Path,
    output: str | Path | None = None,
    *,
    pdf: bool = True,
    docx: bool = True,
    progress: Progress | None = None,
    start_pdf: PdfStarter = _render_now,
) -> BuildResult:
    """Build the report a specification declares.

    Parameters
    ----------
    spec_path
        The ``reports/<name>.toml`` file.
    output
        The output folder (default: the spec's ``output``, next to the spec).
        Everything is written inside it, each file atomically. The folder's
        manifest (``.metaan-manifest``) lists what the build wrote; the files an
        earlier build listed there and this one no longer writes (a PDF after a
        build with ``pdf=False``, the pages of a shorter forest plot) are removed,
        and nothing else in the folder is touched.
    pdf
        Render ``report.pdf`` from the HTML with WeasyPrint.
    docx
        Write ``report.docx`` (Word) from the same HTML, figures as 300 dpi PNG.
    progress
        Called with a short message at each step (the CLI prints them on stderr).
    start_pdf
        How the PDF is rendered once ``index.html`` and the SVG figures are written:
        by default here and now. The CLI passes one that renders it in a process of
        its own, so that it overlaps with the PNG figures and the Word file; this
        function itself starts no process.
    """
    say = progress or _quiet
    start = time.perf_counter()
    spec: ReportSpec = load_spec(spec_path)
    out = OutputFolder(output if output is not None else spec.output, [spec.path, *spec.files])
    say(f"reading {len(spec.files)} study files")
    studies = load_studies(spec.files)
    say("running the analyses")
    results = run_report_analyses(spec, studies)
    say("drawing the figures")
    files, groups = figure_files(_all_figures(results, say))
    written: list[Path] = []
    svg_text: dict[str, str] = {}
    for name, fig in files.items():
        data_svg = _figure_bytes(fig, "svg")
        written.append(out.write(f"figures/{name}.svg", data_svg))
        text = data_svg.decode("utf-8")
        svg_text[name] = text[text.find("<svg") :]
    svg = {name: [(s, svg_text[s]) for s in stems] for name, stems in groups.items()}
    say("rendering index.html")
    html = render_html(results, svg)
    written.append(out.write("index.html", html))
    wait_pdf = None
    if pdf:
        # The PDF needs only index.html and the SVG figures: it starts as soon as they
        # are written, so a renderer in a process of its own overlaps all that follows.
        say("rendering report.pdf")
        wait_pdf = start_pdf(out.root)
    say("writing tables and results.json")
    written.extend(_write_data(results, out))
    png: dict[str, bytes] = {}
    if "png" in spec.figure_formats or docx:
        say("rendering the PNG figures")
        png = {name: _figure_bytes(fig, "png") for name, fig in files.items()}
    for fmt_name in (f for f in spec.figure_formats if f != "svg"):
        for name, fig in files.items():
            data = png[name] if fmt_name == "png" else _figure_bytes(fig, fmt_name)
            written.append(out.write(f"figures/{name}.{fmt_name}", data))
    if docx:
        say("writing report.docx")
        from metaan.report.docx import html_to_docx

        written.append(out.write("report.docx", html_to_docx(html, png)))
    if wait_pdf is not None:
        pdf_path = wait_pdf()
        out.track(pdf_path)
        written.append(pdf_path)
    removed = _finish(out, say)
    seconds = time.perf_counter() - start
    say(f"done in {seconds:.1f} s: {out.root}")
    return BuildResult(output=out.root, files=tuple(written), seconds=seconds, removed=removed)


def _finish(out: OutputFolder, say: Progress) -> tuple[Path, ...]:
    """Remove what an earlier build listed and this one did not write, saying so."""
    removed = out.finish()
    for stale in removed:
        name = stale.relative_to(out.root).as_posix()
        if name == "report.pdf":
            say("removed the earlier report.pdf: this build writes none (--no-pdf)")
        else:
            say(f"removed {name}, written by an earlier build")
    return removed
