"""``metaan sensitivity``: leave-one-out, influence diagnostics, Baujat coordinates and
cumulative meta-analysis."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
import pandas as pd

from metaan._format import fmt, format_excluded
from metaan.cli._app import main
from metaan.cli._common import (
    chosen_format,
    effect_options,
    fit_effects,
    frame_as_csv,
    json_text,
    model_options,
    naming_file,
    note_on_stderr,
    output_options,
    with_excluded_rows,
    write_output,
)
from metaan.errors import InputError
from metaan.models import METHODS
from metaan.results import MetaResult

if TYPE_CHECKING:
    from typing import TypeAlias

    from metaan.sensitivity import Baujat, Cumulative, Influence, LeaveOneOut

    Analysis: TypeAlias = LeaveOneOut | Influence | Baujat | Cumulative

ANALYSES = ("all", "leave1out", "influence", "baujat", "cumulative")

_TITLES = {
    "leave_one_out": "Leave-one-out (each row: the fit without that study)",
    "influence": "Influence diagnostics (Viechtbauer & Cheung 2010; * = influential)",
    "baujat": "Baujat coordinates (x: contribution to heterogeneity; y: influence on the estimate)",
    "cumulative": "Cumulative meta-analysis (each row: the fit to the studies so far)",
}


def _run(
    effects: pd.DataFrame, res: MetaResult, which: str, order: str | None, file: str
) -> list[Analysis]:
    from metaan.sensitivity import baujat, cumulative, influence, leave_one_out

    out: list[Analysis] = []
    if which in ("all", "leave1out"):
        out.append(leave_one_out(res))
    if which in ("all", "influence"):
        out.append(influence(res))
    if which in ("all", "baujat"):
        out.append(baujat(res))
    if which in ("all", "cumulative"):
        if order is None:
            out.append(cumulative(res))
        else:
            try:
                out.append(
                    cumulative(
                        effects, order=order, method=res.method, test=res.test, level=res.level
                    )
                )
            except InputError as exc:
                raise exc.located(file=file) from None
    return out


def _frame_as_text(frame: pd.DataFrame) -> str:
    """A table for people: 4 decimals, ``-`` for missing values."""
    return frame.to_string(index=False, na_rep="-", float_format=lambda x: f"{x:.4f}")


def _as_text(res: MetaResult, analyses: list[Analysis], order: str | None) -> str:
    from metaan.sensitivity import Cumulative, Influence

    lines = [
        f"Sensitivity analyses: k = {res.k}; model {res.method}, test {res.test}, "
        f"{res.level:g}% intervals",
        f"Pooled estimate: {fmt(res.estimate)} [{fmt(res.ci_lb)}, {fmt(res.ci_ub)}]"
        + (f", tau^2 = {fmt(res.tau2)}" if res.model == "random" else ""),
    ]
    for analysis in analyses:
        name = str(analysis.to_dict()["analysis"])
        frame = analysis.to_frame()
        title = _TITLES[name]
        if isinstance(analysis, Cumulative):
            title += f", ordered by {order}" if order else ", in data order"
        if isinstance(analysis, Influence):
            frame = frame.drop(columns=["influential"])
            frame.insert(0, " ", ["*" if flag else "" for flag in analysis.influential])
        lines += ["", title + ":", _frame_as_text(frame)]
    lines += format_excluded(res.excluded)
    return "\n".join(lines) + "\n"


def _as_csv(res: MetaResult, analyses: list[Analysis]) -> str:
    """One long table: an ``analysis`` column, then the columns of every analysis,
    then the excluded studies."""
    frames = []
    for analysis in analyses:
        frame = analysis.to_frame()
        frame.insert(0, "analysis", str(analysis.to_dict()["analysis"]))
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True, sort=False)
    return frame_as_csv(with_excluded_rows(table, res.excluded))


def render(
    res: MetaResult, analyses: list[Analysis], output_format: str, source: str, order: str | None
) -> str:
    """The analyses as text in one of :data:`FORMATS`."""
    from metaan.sensitivity import Cumulative

    if output_format == "json":
        document: dict[str, Any] = {"source": source, "fit": res.to_dict()}
        for analysis in analyses:
            document[str(analysis.to_dict()["analysis"])] = analysis.to_dict()
        if any(isinstance(a, Cumulative) for a in analyses):
            document["cumulative"]["order_by"] = order
        return json_text(document)
    if output_format == "csv":
        return _as_csv(res, analyses)
    return _as_text(res, analyses, order)


@main.command("sensitivity")
@click.argument("file", metavar="FILE")
@effect_options
@model_options(
    METHODS,
    method_help="EE (common effect) or a tau^2 estimator for random effects.",
    test_help="z, or knha (Hartung-Knapp-Sidik-Jonkman: t with k-1 df).",
)
@click.option(
    "--order",
    metavar="COL",
    default=None,
    help="Column to sort the studies by for the cumulative meta-analysis (e.g. year); "
    "ties keep the file order. Default: the file order.",
)
@click.option(
    "--analysis",
    "which",
    type=click.Choice(ANALYSES),
    default="all",
    show_default=True,
    help="Which analysis to show.",
)
@output_options("Output format. CSV is one long table with an 'analysis' column.")
def sensitivity_command(
    file: str,
    method: str,
    test: str,
    level: float,
    order: str | None,
    which: str,
    output_format: str | None,
    output: str | None,
    **options: Any,
) -> None:
    """Check how the pooled estimate of the studies in FILE (CSV) depends on single studies.

    Leave-one-out refits, influence diagnostics (studentised residuals, DFFITS,
    Cook's distance, covariance ratio, tau^2 and Q without each study, hat
    values, weights), Baujat coordinates, and a cumulative meta-analysis in file
    order or sorted by --order. The effect-size flags are those of `metaan fit`.
    """
    shape = chosen_format(output_format, output)
    with naming_file(file):
        effects, res = fit_effects(file, method, test, level, options)
        analyses = _run(effects, res, which, order, file)
    note_on_stderr((), res.excluded, file)
    write_output(render(res, analyses, shape, file, order), output, [file])
