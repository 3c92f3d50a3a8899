"""``metaan report``: build a report from its specification."""

from __future__ import annotations

import click

from metaan.cli._app import main


@main.command("report")
@click.argument("spec", metavar="[SPEC]", required=False)
@click.option(
    "-o",
    "--output",
    metavar="DIR",
    default=None,
    help="Output folder (default: the spec's output, next to the spec).",
)
@click.option("--no-pdf", is_flag=True, help="Skip report.pdf.")
@click.option("--quiet", is_flag=True, help="Print no progress.")
def report_command(spec: str | None, output: str | None, no_pdf: bool, quiet: bool) -> None:
    """Build the report SPEC (a reports/<name>.toml file) as HTML, PDF, JSON, CSV and figures.

    Without SPEC, build the default report that metaan carries (psilocybin, SSRIs
    and cannabinoids for depression, from the bundled study records), written to
    the working folder unless --output says otherwise.
    """
    from pathlib import Path

    from metaan.report.build import build_report

    if spec is None:
        from metaan.report.spec import BUNDLED_SPEC, load_spec

        spec = str(BUNDLED_SPEC)
        if output is None:
            output = str(Path.cwd() / load_spec(BUNDLED_SPEC).output.name)

    def progress(message: str) -> None:
        if not quiet:
            click.echo(f"metaan report: {message}", err=True)

    build_report(spec, output, pdf=not no_pdf, progress=progress)
