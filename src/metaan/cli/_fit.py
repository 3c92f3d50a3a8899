"""``metaan fit``: fit a meta-analytic model to a table of studies."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import numpy as np

from metaan._args import study_labels
from metaan._format import format_excluded
from metaan._json import jsonable
from metaan.cli._app import main
from metaan.cli._common import (
    EXCLUDED_COLUMNS,
    chosen_format,
    compute_effects_from_options,
    effect_options,
    fit_effects,
    frame_as_csv,
    json_text,
    model_options,
    naming_file,
    note_on_stderr,
    output_options,
    read_input,
    records_as_csv,
    showing_exclusions,
    with_excluded_rows,
    write_output,
)
from metaan.cli._multilevel import multilevel_options, run_multilevel
from metaan.errors import InputError
from metaan.io import spreadsheet_rows
from metaan.models import METHODS, PREDICTIONS
from metaan.results import Exclusion, MetaResult

if TYPE_CHECKING:
    import pandas as pd

    from metaan.regression import MetaRegressionResult
    from metaan.subgroups import SubgroupResult

TABLE_METHODS = ("MH", "PETO")


def count_arrays(
    table: pd.DataFrame, effects: pd.DataFrame, options: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Events and totals per arm for Mantel-Haenszel and Peto, from the columns the
    effect options name (or metafor's names), for the rows escalc accepted."""

    import pandas as pd

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
    *,
    prediction: str = "metafor",
) -> MetaResult:
    """Read ``file``, compute effect sizes from the options and fit the model
    (inverse variance, Mantel-Haenszel or Peto)."""
    method_upper = method.upper()
    if method_upper not in TABLE_METHODS:  # read and fitted without pandas
        return fit_effects(file, method, test, level, options, prediction=prediction, frame=False)[
            1
        ]
    import pandas as pd

    from metaan.tables import fit_mh, fit_peto

    measure = "OR" if method_upper == "PETO" else (options.get("measure") or "OR").upper()
    options = {**options, "measure": measure}
    table = read_input(file, options)
    effects = compute_effects_from_options(file, table, **options)
    if test != "z":
        raise InputError(
            f"test {test} does not apply to {method_upper}", fix="use --test z (the default)"
        )
    a, n1, c, n2 = count_arrays(table, effects, options)
    counts = pd.DataFrame({"ai": a, "n1i": n1, "ci": c, "n2i": n2}, index=table.index)
    labels = study_labels(table, options.get("label"), source=file)
    rows = [int(r) for r in spreadsheet_rows(table)]
    common: dict[str, Any] = {"labels": labels, "level": level, "source": file}
    with showing_exclusions(effects, file, options.get("label")):
        if method_upper == "PETO":
            res = fit_peto(counts, **common)
        else:
            res = fit_mh(counts, measure=str(options["measure"]), **common)
    # Keep escalc's reason (e.g. "n2i is missing") for the rows it could not use.
    reasons = dict(zip(rows, effects["exclusion_reason"].tolist(), strict=True))
    excluded = tuple(
        replace(e, reason=reasons.get(e.row) or e.reason) if e.row is not None else e
        for e in res.excluded
    )
    return replace(res, excluded=excluded)


def render(res: MetaResult, output_format: str) -> str:
    """The fit as text in one of :data:`~metaan.cli._common.FORMATS`; CSV is one row,
    followed by one row per excluded study (see
    :func:`~metaan.cli._common.with_excluded_rows`)."""
    if output_format == "json":
        return json_text(res.to_dict())
    if output_format == "csv":
        flat: dict[str, Any] = {}
        for key, value in res.to_dict().items():
            if key == "excluded":
                flat["excluded"] = len(value)
            elif isinstance(value, list):
                flat[f"{key}_lb"], flat[f"{key}_ub"] = value
            else:
                flat[key] = value
        # One row, and the excluded rows as with_excluded_rows lists them (no pandas).
        records = [[*flat.values(), *([None] * len(EXCLUDED_COLUMNS) if res.excluded else [])]]
        records += [[*([None] * len(flat)), e.row, e.study, e.reason] for e in res.excluded]
        columns = [*flat, *(EXCLUDED_COLUMNS if res.excluded else ())]
        return records_as_csv(columns, records)
    return res.summary() + "\n"


@main.command("fit")
@click.argument("file", metavar="FILE")
@effect_options
@model_options(
    [*METHODS, *TABLE_METHODS],
    method_help="EE (common effect), a tau^2 estimator for random effects, or MH / PETO for "
    "2x2 tables.",
    test_help="z, or knha (Hartung-Knapp-Sidik-Jonkman: t with k-1 df); with --levels or "
    "--outcome, z or t (t with k-p df, as rma.mv).",
)
@click.option(
    "--subgroup",
    metavar="COL",
    default=None,
    help="Fit each level of COL separately and test for subgroup differences.",
)
@click.option(
    "--by",
    metavar="COL[,COL...]",
    default=None,
    help="Fit one model per group of these columns, all groups at once (one row each).",
)
@click.option(
    "--mods",
    metavar="COL[,COL...]",
    default=None,
    help="Meta-regression on these moderator columns (text columns become dummies).",
)
@click.option(
    "--tau2-mode",
    "tau2_mode",
    type=click.Choice(["separate", "pooled"]),  # metaan.subgroups.TAU2_MODES
    default="separate",
    show_default=True,
    help="With --subgroup: tau^2 estimated within each level (separate), or one residual "
    "tau^2 for every level (pooled).",
)
@click.option(
    "--prediction",
    type=click.Choice(PREDICTIONS),
    default="metafor",
    show_default=True,
    help="Prediction interval as metafor 3.8 computes it (the test's SE and critical "
    "value), or as R's meta package does (t(k-1) with the SE before Knapp-Hartung).",
)
@multilevel_options
@output_options(format_help=None)
def fit_command(
    file: str,
    method: str,
    test: str,
    level: float,
    subgroup: str | None,
    by: str | None,
    mods: str | None,
    tau2_mode: str,
    prediction: str,
    output_format: str,
    output: str | None,
    **options: Any,
) -> None:
    """Fit a common-effect or random-effects model to the studies in FILE (CSV).

    Give precomputed effects with --yi and --vi (or --sei), or a --measure with
    its raw columns, as for `metaan effects`. With --subgroup COL, fit each level
    of COL and test for differences; with --mods COL[,COL...], fit a
    meta-regression; with --by COL[,COL...], fit one model per group and print
    one row per group with every field of the JSON output. With --levels or
    --outcome, fit a multilevel or multivariate model (optionally with --rho,
    --cluster and --robust).
    """
    shape = chosen_format(output_format, output)
    with naming_file(file):
        if options.get("levels") or options.get("outcome"):
            text = run_multilevel(file, method, test, level, mods, shape, options)
            write_output(text, output, [file])
            return
        if by is not None:
            if subgroup is not None or mods is not None:
                raise InputError("give --by alone, without --subgroup or --mods")
            frame = _fit_by(file, by, method, test.lower(), level, prediction, options)
            write_output(_render_by(frame, shape, file), output, [file])
            return
        if subgroup is not None or mods is not None:
            grouped = _fit_grouped(
                file, method, test.lower(), level, subgroup, mods, tau2_mode, options
            )
            note_on_stderr((), grouped.excluded, file)
            write_output(_render_grouped(grouped, shape), output, [file])
            return
        res = fit_from_options(file, method, test.lower(), level, options, prediction=prediction)
    note_on_stderr((), res.excluded, file)
    write_output(render(res, shape), output, [file])


def _fit_grouped(
    file: str,
    method: str,
    test: str,
    level: float,
    subgroup: str | None,
    mods: str | None,
    tau2_mode: str,
    options: dict[str, Any],
) -> SubgroupResult | MetaRegressionResult:
    """The subgroup analysis or meta-regression the options ask for."""
    from metaan.regression import fit_regression
    from metaan.subgroups import fit_subgroups

    if subgroup is not None and mods is not None:
        raise InputError("give --subgroup or --mods, not both")
    if method.upper() in TABLE_METHODS:
        raise InputError(
            f"--subgroup and --mods need an inverse-variance model, not {method.upper()}",
            fix="use --method EE or a tau^2 estimator",
        )
    table = read_input(file, options)
    names = [subgroup] if subgroup is not None else [n.strip() for n in str(mods).split(",")]
    for name in names:
        if name not in table.columns:
            flag = "--subgroup" if subgroup is not None else "--mods"
            raise InputError(
                f"{flag}: there is no column '{name}'",
                file=file,
                column=name or None,
                fix=f"use one of {', '.join(map(str, table.columns))}",
            )
    effects = compute_effects_from_options(file, table, **options)
    common: dict[str, Any] = {
        "labels": options.get("label"),
        "method": method,
        "test": test,
        "level": level,
        "source": file,
    }
    with showing_exclusions(effects, file, options.get("label")):
        if subgroup is not None:
            return fit_subgroups(effects, by=subgroup, tau2_mode=tau2_mode, **common)
        return fit_regression(effects, mods=names, **common)


def _render_grouped(res: SubgroupResult | MetaRegressionResult, output_format: str) -> str:
    """A subgroup analysis or meta-regression as text in one of
    :data:`~metaan.cli._common.FORMATS`; CSV is one row per level or coefficient."""
    if output_format == "json":
        return json_text(res.to_dict())
    if output_format == "table":
        return res.summary() + "\n"
    import pandas as pd

    frame = res.to_frame()
    # The subgroup table writes its ``pooled`` column as True/False.
    bools = [name for name in frame.columns if pd.api.types.is_bool_dtype(frame[name])]
    return frame_as_csv(with_excluded_rows(frame.astype(dict.fromkeys(bools, str)), res.excluded))


def _fit_by(
    file: str,
    by: str,
    method: str,
    test: str,
    level: float,
    prediction: str,
    options: dict[str, Any],
) -> pd.DataFrame:
    """One fit per group of the ``by`` columns (:func:`metaan.fit_many`)."""
    from metaan.many import fit_many

    if method.upper() in TABLE_METHODS:
        raise InputError(
            f"--by needs an inverse-variance model, not {method.upper()}",
            fix="use --method EE or a tau^2 estimator",
        )
    names = [n.strip() for n in by.split(",")]
    if Path(file).is_dir():  # a folder of Parquet files, fitted through Dask
        columns = {k: options.get(k) or None for k in ("yi", "vi", "sei")}
        return fit_many(
            file,
            by=names,
            yi=columns["yi"] or "yi",
            vi=None if columns["sei"] else columns["vi"] or "vi",
            sei=columns["sei"],
            measure=options.get("measure") or "GEN",
            method=method,
            test=test,
            level=level,
            prediction=prediction,
        )
    table = read_input(file, options)
    for name in names:
        if name not in table.columns:
            raise InputError(
                f"--by: there is no column '{name}'",
                file=file,
                column=name or None,
                fix=f"use one of {', '.join(map(str, table.columns))}",
            )
    effects = compute_effects_from_options(file, table, **options)
    effects[names] = table[names].to_numpy()
    with showing_exclusions(effects, file, options.get("label")):
        return fit_many(
            effects,
            by=names,
            labels=options.get("label"),
            method=method,
            test=test,
            level=level,
            prediction=prediction,
        )


def _render_by(frame: pd.DataFrame, output_format: str, source: str) -> str:
    """The table of :func:`metaan.fit_many` as JSON (a list of records), CSV or text;
    every excluded row is listed in each, and on stderr."""
    no_group = [Exclusion(**e) for e in frame.attrs.get("excluded", [])]
    excluded = [Exclusion(**e) for group in frame["excluded"] for e in group]
    note_on_stderr((), [*excluded, *no_group], source)
    if output_format == "json":
        return json_text({"groups": jsonable(frame), "excluded": jsonable(no_group)})
    flat = frame.assign(excluded=[len(group) for group in frame["excluded"]])
    if output_format == "csv":
        return frame_as_csv(with_excluded_rows(flat, [*excluded, *no_group]))
    shown = flat.drop(columns=["measure", "method", "test", "level", "prediction"])
    text = shown.to_string(index=False, na_rep="-", float_format=lambda x: f"{x:.4f}")
    return "\n".join([text, *format_excluded([*excluded, *no_group])]) + "\n"
