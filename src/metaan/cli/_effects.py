"""``metaan effects``: effect sizes and sampling variances for a table of studies."""

from __future__ import annotations

import json
from typing import Any, Literal

import click
import numpy as np
import pandas as pd

from metaan._json import jsonable
from metaan.cli._app import main
from metaan.cli._common import (
    chosen_format,
    compute_effects_from_options,
    effect_exclusions,
    effect_options,
    naming_file,
    note_on_stderr,
    output_options,
    read_input,
    write_output,
)
from metaan.effects import MEASURE_COLUMN, measure_name, table_measure
from metaan.results import Exclusion

OutputFormat = Literal["csv", "json", "table"]


@main.command("effects")
@click.argument("file", metavar="FILE", type=click.Path(path_type=str))
@effect_options
@output_options()
def effects(
    file: str, output_format: OutputFormat | None, output: str | None, **options: Any
) -> None:
    """Compute effect sizes (yi) and sampling variances (vi) from a CSV of studies.

    Name the columns that hold each value with the flags below, named as R's
    metafor names them. For example, events and totals per arm:

        metaan effects trials.csv --measure OR --ai tpos --n1i n1 --ci cpos --n2i n2

    or means, SDs and sizes (endpoint values or changes from baseline):

        metaan effects trials.csv --measure SMD --m1i m1 --sd1i sd1 --n1i n1
        --m2i m2 --sd2i sd2 --n2i n2

    Columns already named ai, n1i, m1i, ... (or yi with vi or sei) need no flag.
    The output is the table with yi and vi added; studies that cannot be used
    are listed with the reason and their spreadsheet row.
    """
    shape = chosen_format(output_format, output)
    with naming_file(file):
        table = read_input(file, options)
        result = compute_effects_from_options(file, table, **options)
        excluded = effect_exclusions(result, options.get("label"))
    shown = _whole_numbers_as_integers(result)
    if shape == "csv":
        text = shown.to_csv(index=False, lineterminator="\n")
    elif shape == "json":
        text = _as_json(shown, excluded, file)
    else:
        text = _as_text(shown, excluded)
    note_on_stderr((), excluded, file)
    write_output(text, output, [file])


def _whole_numbers_as_integers(result: pd.DataFrame) -> pd.DataFrame:
    """Show input columns of whole numbers with blanks (read as float) as integers."""
    shown = result.copy()
    for name in shown.columns:
        column = shown[name]
        if name in ("yi", "vi") or not pd.api.types.is_float_dtype(column.dtype):
            continue
        values = column.to_numpy(dtype=float, na_value=np.nan)
        present = values[~np.isnan(values)]
        if np.all(np.isfinite(present) & (present == np.round(present))) and np.all(
            np.abs(present) < 2.0**53
        ):
            shown[name] = column.astype("Int64")
    return shown


def _measure(result: pd.DataFrame) -> str:
    """The measure escalc recorded (the same in every row)."""
    return str(table_measure(result) or "GEN")


def _as_json(result: pd.DataFrame, exclusions: list[Exclusion], source: str) -> str:
    columns = [str(c) for c in result.columns]
    excluded = [e.to_dict() for e in exclusions]
    records = [
        {name: jsonable(value) for name, value in zip(columns, row, strict=True)}
        for row in result.itertuples(index=False, name=None)
    ]
    document = {
        "source": source,
        "measure": _measure(result),
        "yi": measure_name(_measure(result)),
        "k": len(records),
        "k_excluded": len(excluded),
        "columns": columns,
        "rows": records,
        "excluded": excluded,
    }
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _as_text(result: pd.DataFrame, excluded: list[Exclusion]) -> str:
    shown = result.drop(columns=["exclusion_reason", MEASURE_COLUMN])
    body = shown.to_string(index=False, na_rep="NA", float_format=lambda x: f"{x:.6g}")
    measure = _measure(result)
    lines = [body, "", f"yi: {measure_name(measure)} ({measure}); vi: its sampling variance"]
    if excluded:
        lines.append(f"Excluded: {len(excluded)} of {len(result)} studies")
        for entry in excluded:
            study = f" ({entry.study})" if entry.study else ""
            lines.append(f"  row {entry.row}{study}: {entry.reason}")
    return "\n".join(lines) + "\n"
