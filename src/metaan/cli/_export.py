"""``metaan export``: the analysis as a script for another program (R's metafor)."""

from __future__ import annotations

from typing import Any

import click

from metaan.cli._app import main
from metaan.cli._common import (
    COLUMN_FLAGS,
    PRECOMPUTED_COLUMNS,
    _columns_by_name,
    effect_options,
    model_options,
    naming_file,
    note_on_stderr,
    read_input,
    write_output,
)
from metaan.cli._fit import TABLE_METHODS, fit_from_options
from metaan.models import METHODS


@main.command("export")
@click.argument("file", metavar="FILE")
@click.option(
    "--r",
    "r_script",
    metavar="SCRIPT.R",
    required=True,
    help="Write an R script that refits the analysis with metafor and compares the numbers "
    "('-' for standard output).",
)
@effect_options
@model_options(
    [*METHODS, *TABLE_METHODS],
    method_help="EE, a tau^2 estimator, or MH / PETO for 2x2 tables.",
    test_help="z, or knha (Hartung-Knapp-Sidik-Jonkman).",
)
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0.0, min_open=True),
    default=1e-6,
    show_default=True,
    help="Largest relative difference the script accepts before it fails.",
)
def export_command(
    file: str, r_script: str, method: str, test: str, level: float, tolerance: float, **options: Any
) -> None:
    """Export the analysis of FILE as a self-contained R script for metafor.

    The script holds the studies inline, recomputes the effect sizes with
    escalc where they came from raw columns, fits rma, rma.mh or rma.peto with
    the same method, test and level, and prints metafor's numbers beside
    metaan's. Run it with `Rscript SCRIPT.R`: it exits with status 1 if any
    number differs by more than --tolerance.
    """
    from metaan.rexport import to_r

    with naming_file(file):
        res = fit_from_options(file, method, test.lower(), level, options)
        table = read_input(file, options)
        columns = _escalc_columns(file, table, options, res.measure)
        text = to_r(
            res,
            data=table,
            columns=columns,
            escalc_options={k: options[k] for k in ("add", "to", "drop00") if k in options},
            source=file,
            tolerance=tolerance,
        )
    note_on_stderr((), res.excluded, file)
    write_output(text, None if r_script == "-" else r_script, [file])


def _escalc_columns(
    file: str, table: Any, options: dict[str, Any], measure: str | None
) -> dict[str, str]:
    """The raw columns escalc used (argument -> column), or none for precomputed effects."""
    given = {name: options.get(name) for name, _, _ in COLUMN_FLAGS}
    given.update(_columns_by_name(table, measure, given))
    named = {name: str(column) for name, column in given.items() if column is not None}
    if named.keys() & set(PRECOMPUTED_COLUMNS):  # yi and vi go into the script as they are
        return {}
    return named
