"""``metaan report``: build a report from its specification."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from metaan.cli._app import main


def _pdf_in_its_own_process(out: Path) -> Callable[[], Path]:
    """Render report.pdf in a process of its own, overlapping the rest of the build.

    The build's two slowest steps are WeasyPrint and the 300 dpi PNG figures; on
    two cores they run side by side. The library builds in one process; running
    the PDF beside it is the command line's choice, made here.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from metaan.report.pdf import render_pdf

    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    future = pool.submit(render_pdf, out)

    def wait() -> Path:
        try:
            return future.result()
        finally:
            pool.shutdown()

    return wait


@main.command("report")
@click.argument("spec", metavar="SPEC")
@click.option(
    "-o",
    "--output",
    metavar="DIR",
    default=None,
    help="Output folder (default: the spec's output, next to the spec).",
)
@click.option("--no-pdf", is_flag=True, help="Skip report.pdf (an earlier one is removed).")
@click.option("--no-docx", is_flag=True, help="Skip report.docx (an earlier one is removed).")
@click.option("--quiet", is_flag=True, help="Print no progress.")
def report_command(spec: str, output: str | None, no_pdf: bool, no_docx: bool, quiet: bool) -> None:
    """Build the report SPEC (a reports/<name>.toml file): HTML, PDF, Word, JSON, CSV, figures."""
    from metaan.report.build import build_report

    def progress(message: str) -> None:
        if not quiet:
            click.echo(f"metaan report: {message}", err=True)

    build_report(
        spec,
        output,
        pdf=not no_pdf,
        docx=not no_docx,
        progress=progress,
        start_pdf=_pdf_in_its_own_process,
    )
