"""``metaan plot``: draw a forest, funnel or diagnostic plot of the studies in a file."""

from __future__ import annotations

from typing import Any, cast

import click
import pandas as pd

from metaan import plots
from metaan.bias import egger_test, trim_and_fill
from metaan.cli._app import main
from metaan.cli._common import compute_effects_from_options, effect_options, model_options
from metaan.cli._fit import TABLE_METHODS, count_arrays, fit_from_options
from metaan.cli._network import PLOT_KINDS as NETWORK_KINDS
from metaan.cli._network import network_plot, network_plot_options
from metaan.errors import InputError
from metaan.io import read_table
from metaan.models import METHODS
from metaan.plots._inputs import ROB_DOMAINS
from metaan.plots._save import format_of
from metaan.plots.forest import SortKey
from metaan.regression import fit_regression
from metaan.results import MetaResult
from metaan.sensitivity import baujat, cumulative, leave_one_out
from metaan.subgroups import SubgroupResult, fit_subgroups

KINDS = (
    "forest",
    "funnel",
    "baujat",
    "bubble",
    "cumulative",
    "leave1out",
    "radial",
    "labbe",
    "compare",
    *NETWORK_KINDS,
)


def _column(table: pd.DataFrame, name: str, flag: str, file: str) -> pd.Series:
    if name not in table.columns:
        raise InputError(
            f"{flag}: there is no column {name!r}",
            file=file,
            column=name or None,
            fix=f"use one of {', '.join(map(str, table.columns))}",
        )
    return table[name]


def _names(text: str | None) -> list[str]:
    return [] if not text else [n.strip() for n in text.split(",") if n.strip()]


def _positions(rows: tuple[int | None, ...], n: int) -> list[int]:
    """Positions in the file's table of the studies of a fit (rows are spreadsheet rows)."""
    out = []
    for row in rows:
        if row is None or not 2 <= row <= n + 1:
            raise InputError("cannot match the fitted studies to the rows of the file")
        out.append(row - 2)
    return out


def _study_columns(
    table: pd.DataFrame, names: list[str], positions: list[int], flag: str, file: str
) -> dict[str, list[Any]]:
    return {name: _column(table, name, flag, file).iloc[positions].tolist() for name in names}


def _rob_table(table: pd.DataFrame, positions: list[int]) -> dict[str, list[Any]] | None:
    """The RoB 2 columns of the file (``rob_d1`` ... or ``D1`` ...), if it has them."""
    lookup = {str(c).strip().lower(): c for c in table.columns}
    found: dict[str, list[Any]] = {}
    for domain, aliases in ROB_DOMAINS:
        name = next((lookup[a] for a in aliases if a in lookup), None)
        if name is not None:
            found[domain] = table[name].iloc[positions].tolist()
    return found or None


def _xlim(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    parts = text.split(",")
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        raise InputError(
            f"--xlim is {text!r}", fix="give two numbers separated by a comma, e.g. 0.1,10"
        ) from None
    return lo, hi


@main.command("plot")
@click.argument("kind", type=click.Choice(KINDS), metavar="KIND")
@click.argument("file", metavar="FILE")
@effect_options
@model_options(
    [*METHODS, *TABLE_METHODS],
    method_help="EE, a tau^2 estimator, or MH / PETO for 2x2 tables (forest, funnel, radial, "
    "labbe).",
    test_help="z, or knha (Hartung-Knapp-Sidik-Jonkman).",
)
@click.option(
    "-o", "--output", metavar="FILE", required=True, help="The figure: .svg, .png or .pdf."
)
@click.option("--dpi", type=float, default=300.0, show_default=True, help="Resolution of PNG.")
@click.option("--title", default=None, help="Text above the plot.")
@click.option(
    "--subgroup",
    metavar="COL",
    default=None,
    help="forest: one block per level of COL; compare: one row per level.",
)
@click.option("--mods", metavar="COL", default=None, help="bubble: the moderator column.")
@click.option("--order", metavar="COL", default=None, help="cumulative: add studies in this order.")
@click.option(
    "--columns",
    metavar="COL[,COL...]",
    default=None,
    help="forest, leave1out, cumulative: extra columns to print beside the labels.",
)
@click.option(
    "--rob/--no-rob",
    default=False,
    show_default=True,
    help="forest: draw the RoB 2 columns of the file (rob_d1 ... rob_overall, or D1 ... Overall).",
)
@click.option(
    "--sort",
    type=click.Choice(["effect", "weight", "year"]),
    default=None,
    help="forest: order of the study rows.",
)
@click.option(
    "--year", metavar="COL", default=None, help="forest: the year column for --sort year."
)
@click.option("--contours/--no-contours", default=False, help="funnel: contour-enhanced.")
@click.option(
    "--trimfill/--no-trimfill", default=False, help="funnel: add trim-and-fill's studies."
)
@click.option("--egger/--no-egger", default=False, help="funnel: draw Egger's regression line.")
@click.option(
    "--higher-is-better",
    is_flag=True,
    default=False,
    help="More of the outcome is better (response): effects right of the null favour group 1.",
)
@click.option(
    "--groups",
    metavar="NAME1,NAME2",
    default="treatment,control",
    show_default=True,
    help="Names of group 1 and group 2 for the 'favours' labels.",
)
@click.option("--xlim", metavar="LO,HI", default=None, help="Limits of the effect axis.")
@network_plot_options
def plot_command(
    kind: str,
    file: str,
    method: str,
    test: str,
    level: float,
    output: str,
    dpi: float,
    title: str | None,
    subgroup: str | None,
    mods: str | None,
    order: str | None,
    columns: str | None,
    rob: bool,
    sort: str | None,
    year: str | None,
    contours: bool,
    trimfill: bool,
    egger: bool,
    higher_is_better: bool,
    groups: str,
    xlim: str | None,
    **options: Any,
) -> None:
    """Draw a KIND plot of the studies in FILE (CSV) and write it to --output.

    KIND is one of forest, funnel, baujat, bubble, cumulative, leave1out,
    radial, labbe or compare. The effect-size flags are those of `metaan fit`.
    The format comes from the extension of --output (.svg, .png, .pdf); SVG
    and PDF are byte-identical from run to run.
    """
    format_of(output)  # an unknown extension fails before any work
    if kind in NETWORK_KINDS:
        plots.save(network_plot(kind, file, method, level, title=title, **options), output, dpi=dpi)
        return
    group_names = tuple(_names(groups))
    if len(group_names) != 2:
        raise InputError(f"--groups is {groups!r}", fix="give two names, e.g. drug,placebo")
    favour: dict[str, Any] = {
        "groups": (group_names[0], group_names[1]),
        "lower_is_better": not higher_is_better,
    }
    test = test.lower()
    table = read_table(file)
    extra_names = _names(columns)
    limits = _xlim(xlim)
    fig: Any

    if kind in ("bubble", "compare") or (kind == "forest" and subgroup is not None):
        if method.upper() in TABLE_METHODS:
            raise InputError(
                f"{kind} with --subgroup or --mods needs an inverse-variance model",
                fix="use --method EE or a tau^2 estimator",
            )
        effects = compute_effects_from_options(file, table, **options)
        if kind == "bubble":
            if mods is None:
                raise InputError("bubble needs the moderator", fix="name it with --mods COL")
            _column(table, mods, "--mods", file)
            reg = fit_regression(
                effects, mods=[mods], method=method, test=test, level=level, source=file
            )
            fig = plots.bubble(reg, xlabel=mods, title=title)
        else:
            if subgroup is None:
                raise InputError(
                    "compare draws one row per subgroup", fix="name the column with --subgroup COL"
                )
            _column(table, subgroup, "--subgroup", file)
            sg = fit_subgroups(
                effects, subgroup, method=method, test=test, level=level, source=file
            )
            if kind == "compare":
                fig = plots.compare(sg, xlim=limits, title=title, **favour)
            else:
                fig = _subgroup_forest(
                    sg,
                    table,
                    effects,
                    extra_names,
                    rob,
                    sort,
                    year,
                    limits,
                    title,
                    file,
                    method,
                    test,
                    level,
                    favour,
                )
        plots.save(fig, output, dpi=dpi)
        return

    res = fit_from_options(file, method, test, level, options)
    positions = _positions(res.rows, len(table))
    extra = _study_columns(table, extra_names, positions, "--columns", file)
    if kind == "forest":
        fig = plots.forest(
            res,
            columns=extra or None,
            rob=_rob_table(table, positions) if rob else None,
            sort=cast(SortKey | None, sort),
            year=_column(table, year, "--year", file).iloc[positions].tolist() if year else None,
            xlim=limits,
            title=title,
            **favour,
        )
    elif kind == "funnel":
        fig = plots.funnel(
            trim_and_fill(res) if trimfill else res,
            contours=contours,
            egger=egger_test(res) if egger else None,
            xlim=limits,
            title=title,
        )
    elif kind == "radial":
        fig = plots.radial(res, title=title)
    elif kind == "labbe":
        effects = compute_effects_from_options(file, table, **options)
        a, n1, c, n2 = count_arrays(table, effects, options)
        counts = pd.DataFrame({"ai": a, "n1i": n1, "ci": c, "n2i": n2}).iloc[positions]
        fig = plots.labbe(res, counts, groups=(group_names[0], group_names[1]), title=title)
    elif kind == "baujat":
        fig = plots.baujat(baujat(res), title=title)
    elif kind == "leave1out":
        fig = plots.leave1out(
            leave_one_out(res),
            full=res,
            columns=extra or None,
            xlim=limits,
            title=title,
            **favour,
        )
    else:  # cumulative
        if order is not None:
            keys = _column(table, order, "--order", file).iloc[positions].tolist()
            cum = cumulative(res, order=keys)
        else:
            cum = cumulative(res)
        steps = [positions[i] for i in cum.order.tolist()]
        cols = _study_columns(table, extra_names, steps, "--columns", file)
        fig = plots.cumulative(
            cum, full=res, columns=cols or None, xlim=limits, title=title, **favour
        )
    plots.save(fig, output, dpi=dpi)


def _subgroup_forest(
    sg: SubgroupResult,
    table: pd.DataFrame,
    effects: pd.DataFrame,
    extra_names: list[str],
    rob: bool,
    sort: str | None,
    year: str | None,
    limits: tuple[float, float] | None,
    title: str | None,
    file: str,
    method: str,
    test: str,
    level: float,
    favour: dict[str, Any],
) -> Any:
    """The subgroup forest, with the columns of the file in the order of the blocks."""
    from metaan.models import fit

    positions = _positions(tuple(r for lev in sg.levels for r in lev.fit.rows), len(table))
    extra = _study_columns(table, extra_names, positions, "--columns", file)
    overall: MetaResult = fit(effects, method=method, test=test, level=level, source=file)
    return plots.forest(
        sg,
        overall=overall,
        columns=extra or None,
        rob=_rob_table(table, positions) if rob else None,
        sort=cast(SortKey | None, sort),
        year=_column(table, year, "--year", file).iloc[positions].tolist() if year else None,
        xlim=limits,
        title=title,
        **favour,
    )
