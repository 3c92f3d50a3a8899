"""``metaan plot``: draw a forest, funnel or diagnostic plot of the studies in a file.

The command is four steps, each a function: check the output and the drawing
options (:func:`_request`), fit what the plot draws (:func:`_grouped_figure` for
the subgroup and moderator plots, :func:`_study_figure` for the rest), and
save the figure with a note on stderr for every study it left out
(:func:`_save`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, cast

import click
import numpy as np
import pandas as pd

from metaan._output import refuse_input, writable_target
from metaan.cli._app import main
from metaan.cli._common import (
    compute_effects_from_options,
    effect_options,
    model_options,
    naming_file,
    note_on_stderr,
    read_input,
)
from metaan.cli._fit import TABLE_METHODS, count_arrays, fit_from_options
from metaan.cli._network import PLOT_KINDS as NETWORK_KINDS
from metaan.cli._network import network_plot, network_plot_options
from metaan.errors import InputError
from metaan.models import METHODS
from metaan.results import Exclusion, MetaResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from metaan.subgroups import SubgroupResult

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
    "rob",
    *NETWORK_KINDS,
)

#: Above this many study rows a forest plot is large and slow; the command says so.
LARGE_FOREST = 2000


@dataclass(frozen=True)
class _Request:
    """What the command line asked to draw, checked."""

    kind: str
    file: str
    method: str
    test: str
    level: float
    output: str
    dpi: float
    title: str | None
    subgroup: str | None
    mods: str | None
    order: str | None
    columns: list[str]
    rob: bool
    sort: str | None
    year: str | None
    contours: bool
    trimfill: bool
    egger: bool
    favour: dict[str, Any]
    xlim: tuple[float, float] | None
    max_rows: int | None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def groups(self) -> tuple[str, str]:
        return cast(tuple[str, str], self.favour["groups"])


def _column(table: pd.DataFrame, name: str, flag: str, file: str) -> pd.Series:
    if name not in table.columns:
        raise InputError(
            f"{flag}: there is no column '{name}'",
            file=file,
            column=name or None,
            fix=f"use one of {', '.join(map(str, table.columns))}",
        )
    return table[name]


def _names(text: str | None) -> list[str]:
    return [] if not text else [n.strip() for n in text.split(",") if n.strip()]


def _positions(rows: tuple[int | None, ...], table: pd.DataFrame) -> list[int]:
    """Positions in the file's table of the studies of a fit (rows are spreadsheet rows)."""
    from metaan.io import spreadsheet_rows

    where = {int(r): i for i, r in enumerate(spreadsheet_rows(table))}
    out = []
    for row in rows:
        if row is None or row not in where:
            raise InputError("cannot match the fitted studies to the rows of the file")
        out.append(where[row])
    return out


def _study_columns(
    table: pd.DataFrame, names: list[str], positions: list[int], flag: str, file: str
) -> dict[str, list[Any]]:
    return {name: _column(table, name, flag, file).iloc[positions].tolist() for name in names}


def _rob_table(table: pd.DataFrame, positions: list[int]) -> dict[str, list[Any]] | None:
    """The RoB 2 columns of the file (``rob_d1`` ... or ``D1`` ...), if it has them."""
    from metaan.plots._inputs import ROB_DOMAINS

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
            f"--xlim is {text}", fix="give two numbers separated by a comma, e.g. 0.1,10"
        ) from None
    return lo, hi


def _request(kind: str, file: str, params: dict[str, Any], options: dict[str, Any]) -> _Request:
    """Check everything that can be checked before any work: the output path and
    format, the resolution, the group names and the axis limits."""
    from metaan.plots._save import format_of

    output = str(params["output"])
    format_of(output)  # an unknown extension fails before any work
    writable_target(output)
    refuse_input(output, [file])
    dpi = float(params["dpi"])
    if not 0 < dpi <= 2400:
        raise click.BadParameter(
            f"{dpi:g} dpi; give a resolution from 1 to 2400 (300 is print quality)",
            param_hint="--dpi",
        )
    group_names = tuple(_names(params["groups"]))
    if len(group_names) != 2:
        raise InputError(f"--groups is {params['groups']}", fix="give two names, e.g. drug,placebo")
    favour = {
        "groups": (group_names[0], group_names[1]),
        "lower_is_better": not params["higher_is_better"],
    }
    if params["sort"] == "year" and params["year"] is None:
        raise InputError(
            "--sort year needs the studies' years", fix="name the column with --year COL"
        )
    return _Request(
        kind=kind,
        file=file,
        method=str(params["method"]),
        test=str(params["test"]).lower(),
        level=float(params["level"]),
        output=output,
        dpi=dpi,
        title=params["title"],
        subgroup=params["subgroup"],
        mods=params["mods"],
        order=params["order"],
        columns=_names(params["columns"]),
        rob=bool(params["rob"]),
        sort=params["sort"],
        year=params["year"],
        contours=bool(params["contours"]),
        trimfill=bool(params["trimfill"]),
        egger=bool(params["egger"]),
        favour=favour,
        xlim=_xlim(params["xlim"]),
        max_rows=params["max_rows"],
        options=options,
    )


def _grouped_figure(req: _Request, table: pd.DataFrame) -> tuple[Figure, tuple[Exclusion, ...]]:
    """The plots of a subgroup analysis or a meta-regression: bubble, compare and
    the subgroup forest."""
    from metaan import plots
    from metaan.regression import fit_regression
    from metaan.subgroups import fit_subgroups

    if req.method.upper() in TABLE_METHODS:
        raise InputError(
            f"{req.kind} with --subgroup or --mods needs an inverse-variance model",
            fix="use --method EE or a tau^2 estimator",
        )
    effects = compute_effects_from_options(req.file, table, **req.options)
    model: dict[str, Any] = {
        "labels": req.options.get("label"),
        "method": req.method,
        "test": req.test,
        "level": req.level,
        "source": req.file,
    }
    if req.kind == "bubble":
        if req.mods is None:
            raise InputError("bubble needs the moderator", fix="name it with --mods COL")
        _column(table, req.mods, "--mods", req.file)
        reg = fit_regression(effects, mods=[req.mods], **model)
        return plots.bubble(reg, xlabel=req.mods, title=req.title), reg.excluded
    if req.subgroup is None:
        raise InputError(
            "compare draws one row per subgroup", fix="name the column with --subgroup COL"
        )
    _column(table, req.subgroup, "--subgroup", req.file)
    sg = fit_subgroups(effects, by=req.subgroup, **model)
    if req.kind == "compare":
        fig = plots.compare(sg, xlim=req.xlim, title=req.title, **req.favour)
        return fig, sg.excluded
    return _subgroup_forest(req, sg, table, effects), sg.excluded


def _subgroup_forest(
    req: _Request, sg: SubgroupResult, table: pd.DataFrame, effects: pd.DataFrame
) -> Figure:
    """The subgroup forest, with the columns of the file in the order of the blocks."""
    from metaan import plots
    from metaan.models import fit

    rows = tuple(r for lev in sg.levels for r in lev.fit.rows)
    _warn_if_large(len(rows), req)
    positions = _positions(rows, table)
    extra = _study_columns(table, req.columns, positions, "--columns", req.file)
    overall: MetaResult = fit(
        effects,
        labels=req.options.get("label"),
        method=req.method,
        test=req.test,
        level=req.level,
        source=req.file,
    )
    return plots.forest(
        sg,
        overall=overall,
        columns=extra or None,
        rob=_rob_table(table, positions) if req.rob else None,
        sort=cast(Any, req.sort),
        year=_years(req, table, positions),
        xlim=req.xlim,
        title=req.title,
        **req.favour,
    )


def _years(req: _Request, table: pd.DataFrame, positions: list[int]) -> list[Any] | None:
    if req.year is None:
        return None
    return _column(table, req.year, "--year", req.file).iloc[positions].tolist()


def _study_figure(req: _Request, table: pd.DataFrame) -> tuple[Figure, tuple[Exclusion, ...]]:
    """The plots drawn from one fit: forest, funnel, radial, labbe, baujat,
    leave1out and cumulative."""
    from metaan import plots
    from metaan.bias import egger_test, trim_and_fill
    from metaan.sensitivity import baujat, cumulative, leave_one_out

    res = fit_from_options(req.file, req.method, req.test, req.level, req.options)
    positions = _positions(tuple(res.rows), table)
    extra = _study_columns(table, req.columns, positions, "--columns", req.file)
    common: dict[str, Any] = {"xlim": req.xlim, "title": req.title}
    if req.kind == "forest":
        return _forest(req, res, table, positions, extra), res.excluded
    if req.kind == "funnel":
        fig = plots.funnel(
            trim_and_fill(res) if req.trimfill else res,
            contours=req.contours,
            egger=egger_test(res) if req.egger else None,
            **common,
        )
    elif req.kind == "radial":
        fig = plots.radial(res, title=req.title)
    elif req.kind == "labbe":
        effects = compute_effects_from_options(req.file, table, **req.options)
        a, n1, c, n2 = count_arrays(table, effects, req.options)
        counts = pd.DataFrame({"ai": a, "n1i": n1, "ci": c, "n2i": n2}).iloc[positions]
        fig = plots.labbe(res, counts, groups=req.groups, title=req.title)
    elif req.kind == "baujat":
        fig = plots.baujat(baujat(res), excluded=res.excluded, title=req.title)
    elif req.kind == "leave1out":
        loo = leave_one_out(res)
        fig = plots.leave1out(loo, full=res, columns=extra or None, **common, **req.favour)
    else:  # cumulative
        keys = None
        if req.order is not None:
            keys = _column(table, req.order, "--order", req.file).iloc[positions].tolist()
        cum = cumulative(res, order=keys) if keys is not None else cumulative(res)
        steps = [positions[i] for i in cum.order.tolist()]
        cols = _study_columns(table, req.columns, steps, "--columns", req.file)
        fig = plots.cumulative(cum, full=res, columns=cols or None, **common, **req.favour)
    return fig, res.excluded


def _forest(
    req: _Request,
    res: MetaResult,
    table: pd.DataFrame,
    positions: list[int],
    extra: dict[str, list[Any]],
) -> Figure:
    """The forest plot of one fit, cut to the ``--max-rows`` heaviest studies if asked."""
    from metaan import plots
    from metaan.plots._axes import add_footnotes

    shown = np.arange(res.k)
    if req.max_rows is not None and res.k > req.max_rows:
        # The heaviest studies, in their order in the file; the pooled rows stay those
        # of every study.
        shown = np.sort(np.argsort(-np.asarray(res.weights), kind="stable")[: req.max_rows])
    else:
        _warn_if_large(res.k, req)
    cut = res if len(shown) == res.k else _some_studies(res, shown)
    rows = [positions[i] for i in shown]
    fig = plots.forest(
        cut,
        columns={name: [values[i] for i in shown] for name, values in extra.items()} or None,
        rob=_rob_table(table, rows) if req.rob else None,
        sort=cast(Any, req.sort),
        year=_years(req, table, rows),
        xlim=req.xlim,
        title=req.title,
        **req.favour,
    )
    if len(shown) < res.k:
        add_footnotes(
            fig,
            [
                f"Shown: the {len(shown)} studies with the largest weights of the {res.k} "
                f"pooled (--max-rows {req.max_rows}); the pooled rows use all {res.k}."
            ],
        )
    return fig


def _some_studies(res: MetaResult, shown: np.ndarray) -> MetaResult:
    """``res`` with the study-level arrays cut to ``shown``; every pooled number kept
    (``k`` counts the rows to draw)."""
    return replace(
        res,
        k=len(shown),
        yi=np.asarray(res.yi)[shown],
        vi=np.asarray(res.vi)[shown],
        weights=np.asarray(res.weights)[shown],
        labels=tuple(res.labels[i] for i in shown),
        rows=tuple(res.rows[i] for i in shown),
    )


def _warn_if_large(k: int, req: _Request) -> None:
    if k > LARGE_FOREST:
        click.echo(
            f"metaan: warning: {req.file}: a forest plot of {k:,} studies is about "
            f"{k * 0.22:,.0f} inches tall and takes long to draw; draw a funnel plot "
            "(metaan plot funnel) or only the heaviest studies (--max-rows 200)",
            err=True,
        )


def _save(fig: Figure, req: _Request, excluded: tuple[Exclusion, ...]) -> None:
    """Write the figure; warnings of the drawing go to stderr as one line each."""
    import matplotlib.pyplot as plt

    from metaan import plots

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plots.save(fig, req.output, dpi=req.dpi)
    plt.close(fig)
    messages = list(dict.fromkeys(str(w.message) for w in caught))
    note_on_stderr(messages, excluded, req.file)


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
@click.option(
    "--dpi", type=float, default=300.0, show_default=True, help="Resolution of PNG (1 to 2400)."
)
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
@click.option(
    "--max-rows",
    type=click.IntRange(min=1),
    default=None,
    help="forest: draw only the N studies with the largest weights (the pooled rows still "
    "use every study); a footnote says so.",
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
@click.option(
    "--study",
    "study_column",
    metavar="COL",
    default=None,
    help="rob: the column naming the study (default: study_id, study or label); network "
    "plots: the study column (default: study).",
)
@click.option(
    "--weight",
    "weight_column",
    metavar="COL",
    default=None,
    help="rob: weigh each study's judgements by this column (robvis's weighted summary).",
)
@click.option(
    "--traffic-light", is_flag=True, default=False, help="rob: one row per study, not the summary."
)
@network_plot_options(study=False)
def plot_command(kind: str, file: str, **params: Any) -> None:
    """Draw a KIND plot of the studies in FILE and write it to --output.

    KIND is one of forest, funnel, baujat, bubble, cumulative, leave1out,
    radial, labbe, compare or rob, or a network plot: network, league, netsplit or
    netforest (with the flags of `metaan network`). The effect-size flags are those
    of `metaan fit`; rob reads the RoB 2 columns of FILE (D1 ... D5 and Overall, or
    rob_d1 ... rob_overall) and draws robvis's summary, or with --traffic-light its
    traffic-light plot.
    The format comes from the extension of --output (.svg, .png, .pdf); SVG
    and PDF are byte-identical from run to run. Studies left out of the fit
    are named in a footnote and on stderr.
    """
    from metaan.cli._common import EFFECT_OPTION_NAMES

    options = {name: params.pop(name) for name in EFFECT_OPTION_NAMES if name in params}
    req = _request(kind, file, params, options)
    if kind in NETWORK_KINDS:
        with naming_file(file):
            fig, excluded = network_plot(req, params, options)
        _save(fig, req, excluded)
        return
    with naming_file(file):
        table = read_input(file, options)
        if kind == "rob":
            rob_fig = _rob_figure(
                table,
                file,
                params["study_column"],
                params["weight_column"],
                params["traffic_light"],
                req.title,
            )
            _save(rob_fig, req, ())
            return
        grouped = kind in ("bubble", "compare") or (kind == "forest" and req.subgroup is not None)
        fig, excluded = (_grouped_figure if grouped else _study_figure)(req, table)
        _save(fig, req, excluded)


def _rob_figure(
    table: pd.DataFrame,
    file: str,
    study: str | None,
    weight: str | None,
    traffic_light: bool,
    title: str | None,
) -> Any:
    """robvis's summary or traffic-light plot of the RoB 2 columns of a file."""
    from metaan import plots
    from metaan.rob import rob_table, summarise_rob

    if study is None:
        study = next((c for c in ("study_id", "study", "label") if c in table.columns), None)
        if study is None:
            raise InputError(
                "rob needs a column naming the study", file=file, fix="name it with --study COL"
            )
    rob = rob_table(table, study=study, weight=weight)
    if traffic_light:
        return plots.rob_traffic_light(rob, title=title)
    return plots.rob_summary(summarise_rob(rob), title=title)
