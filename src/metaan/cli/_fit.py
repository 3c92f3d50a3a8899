"""``metaan fit``: fit a meta-analytic model to a table of studies."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from typing import Any

import click
import numpy as np
import pandas as pd

from metaan.cli._app import main
from metaan.cli._common import compute_effects_from_options, effect_options, write_output
from metaan.errors import InputError
from metaan.io import read_table
from metaan.models import METHODS, fit
from metaan.results import MetaResult
from metaan.tables import fit_mh, fit_peto

FORMATS = ("table", "json", "csv")
TABLE_METHODS = ("MH", "PETO")


def count_arrays(
    table: pd.DataFrame, effects: pd.DataFrame, options: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Events and totals per arm for Mantel-Haenszel and Peto, from the columns the
    effect options name (or metafor's names), for the rows escalc accepted."""

    def column(name: str) -> np.ndarray | None:
        chosen = options.get(name) or (name if name in table.columns else None)
        if chosen is None:
            return None
        return np.array(pd.to_numeric(table[chosen], errors="coerce"), dtype=float)

    def arm(events: str, total: str, non_events: str) -> tuple[np.ndarray, np.ndarray]:
        e = column(events)
        n = column(total)
        if e is None:
            raise InputError(
                f"Mantel-Haenszel and Peto need the event counts ({events})",
                column=events,
                fix=f"name the column with --{events}",
            )
        if n is None:
            other = column(non_events)
            if other is None:
                raise InputError(
                    f"Mantel-Haenszel and Peto need the group size ({total})",
                    column=total,
                    fix=f"name the column with --{total} or --{non_events}",
                )
            n = e + other
        return e, n

    a, n1 = arm("ai", "n1i", "bi")
    c, n2 = arm("ci", "n2i", "di")
    # Rows escalc could not use (missing counts, or dropped double-zero tables)
    # are excluded here too, so both routes report the same exclusions.
    unusable = effects["yi"].isna().to_numpy()
    for arr in (a, n1, c, n2):
        arr[unusable] = np.nan
    return a, n1, c, n2


def fit_from_options(
    file: str,
    method: str,
    test: str,
    level: float,
    options: dict[str, Any],
) -> MetaResult:
    """Read ``file``, compute effect sizes from the options and fit the model."""
    table = read_table(file)
    method_upper = method.upper()
    if method_upper in TABLE_METHODS:
        measure = (options.get("measure") or "OR").upper()
        if method_upper == "PETO":
            measure = "OR"
        options = {**options, "measure": measure}
    effects = compute_effects_from_options(file, table, **options)
    if method_upper not in TABLE_METHODS:
        return fit(effects, method=method, test=test, level=level, source=file)
    if test != "z":
        raise InputError(
            f"test {test} does not apply to {method_upper}", fix="use --test z (the default)"
        )
    a, n1, c, n2 = count_arrays(table, effects, options)
    labels = _labels(effects)
    rows = list(range(2, len(table) + 2))
    if method_upper == "PETO":
        res = fit_peto(a, n1, c, n2, level=level, labels=labels, rows=rows)
    else:
        res = fit_mh(
            a, n1, c, n2, measure=str(options["measure"]), level=level, labels=labels, rows=rows
        )
    # Keep escalc's reason (e.g. "n2i is missing") for the rows it could not use.
    reasons = effects["exclusion_reason"].tolist()
    excluded = tuple(
        replace(e, reason=reasons[e.row - 2] or e.reason) if e.row is not None else e
        for e in res.excluded
    )
    return replace(res, excluded=excluded)


def _labels(effects: pd.DataFrame) -> list[str]:
    label = effects.attrs.get("label")
    for name in (label, "study", "study_id", "label", "author", "trial"):
        if name and name in effects.columns:
            return [str(v) for v in effects[name]]
    return [f"Study {i + 1}" for i in range(len(effects))]


def render(res: MetaResult, fmt: str) -> str:
    """The fit as text in one of :data:`FORMATS`."""
    if fmt == "json":
        return json.dumps(res.to_dict(), indent=2) + "\n"
    if fmt == "csv":
        flat: dict[str, Any] = {}
        for key, value in res.to_dict().items():
            if key == "excluded":
                flat["excluded"] = len(value)
            elif isinstance(value, list):
                flat[f"{key}_lb"], flat[f"{key}_ub"] = value
            else:
                flat[key] = value
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(flat), lineterminator="\n")
        writer.writeheader()
        writer.writerow(
            {
                k: ("" if v is None else repr(v) if isinstance(v, float) else v)
                for k, v in flat.items()
            }
        )
        return buffer.getvalue()
    return res.summary() + "\n"


@main.command("fit")
@click.argument("file", metavar="FILE")
@effect_options
@click.option(
    "--method",
    type=click.Choice([*METHODS, *TABLE_METHODS], case_sensitive=False),
    default="REML",
    show_default=True,
    help="EE (common effect), a tau^2 estimator for random effects, or MH / PETO for 2x2 tables.",
)
@click.option(
    "--test",
    type=click.Choice(["z", "knha"], case_sensitive=False),
    default="z",
    show_default=True,
    help="z, or knha (Hartung-Knapp-Sidik-Jonkman: t with k-1 df).",
)
@click.option("--level", type=float, default=95.0, show_default=True, help="Confidence level.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("-o", "--output", metavar="FILE", default=None, help="Write here, not to stdout.")
def fit_command(
    file: str, method: str, test: str, level: float, fmt: str, output: str | None, **options: Any
) -> None:
    """Fit a common-effect or random-effects model to the studies in FILE (CSV).

    Give precomputed effects with --yi and --vi (or --sei), or a --measure with
    its raw columns, as for `metaan effects`.
    """
    res = fit_from_options(file, method, test.lower(), level, options)
    write_output(render(res, fmt), output)
