"""``metaan studies``: check and summarise the study records in ``studies/``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import click

from metaan.cli._app import main

if TYPE_CHECKING:
    from metaan.studies import ClassSummary

_DEFAULT = Path("studies")


def _paths(paths: tuple[Path, ...]) -> list[Path]:
    return list(paths) if paths else [_DEFAULT]


@main.group("studies")
def studies() -> None:
    """Check and summarise study records (studies/*.csv)."""


@studies.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.pass_context
def validate(ctx: click.Context, paths: tuple[Path, ...]) -> None:
    """Check study files against the schema; list every problem.

    PATHS are CSV files or folders of them (default: ./studies). Each problem
    is printed as FILE:ROW:COLUMN: MESSAGE, with rows numbered as a
    spreadsheet shows them (the header is row 1). The exit status is 0 when
    the files are valid and 2 when there is any problem.
    """
    from metaan.studies import validate_studies

    problems = validate_studies(_paths(paths))
    for problem in problems:
        click.echo(str(problem))
    if problems:
        count = len(problems)
        click.echo(f"{count} problem{'s' if count != 1 else ''} found", err=True)
        ctx.exit(2)
    click.echo("no problems found", err=True)


@studies.command("list")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)
def list_studies(paths: tuple[Path, ...], output_format: Literal["table", "json"]) -> None:
    """Summarise study records per drug class.

    Shows, for each class, the trials, records and records that cannot be
    pooled, and the outcome types, scales and time points (in weeks) present.
    PATHS are CSV files or folders of them (default: ./studies). The files are
    validated first; any problem stops the command with exit status 2.
    """
    from metaan.studies import load_studies, summarise_studies

    summaries = summarise_studies(load_studies(_paths(paths)))
    if output_format == "json":
        text = json.dumps([s.to_dict() for s in summaries], indent=2, sort_keys=True)
        click.echo(text)
        return
    click.echo(_table(summaries))


def _table(summaries: list[ClassSummary]) -> str:
    header = ("class", "trials", "records", "not poolable", "outcomes", "scales", "time points")
    rows = [
        (
            s.drug_class,
            str(s.trials),
            str(s.records),
            str(s.not_poolable),
            str(len(s.outcomes)),
            str(len(s.scales)),
            str(len(s.time_points_weeks)),
        )
        for s in summaries
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in (header, *rows)
    ]
    for s in summaries:
        lines.append("")
        lines.append(f"{s.drug_class}:")
        lines.append("  outcomes:    " + _counted(s.outcomes))
        lines.append("  scales:      " + (_counted(s.scales) or "-"))
        weeks = ", ".join(f"{w:g}" for w in s.time_points_weeks)
        lines.append("  time points: " + (f"{weeks} (weeks)" if weeks else "-"))
    return "\n".join(lines)


def _counted(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} ({count})" for name, count in counts.items())
