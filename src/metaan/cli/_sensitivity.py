"""``metaan sensitivity``: leave-one-out, influence diagnostics, Baujat coordinates and
cumulative meta-analysis."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
import pandas as pd

from metaan._format import fit_header, format_excluded
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


def _run(
    effects: pd.DataFrame,
    res: MetaResult,
    which: str,
    order: str | None,
    file: str,
    labels: str | None,
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
                        effects,
                        labels=labels,
                        order=order,
                        method=res.method,
                        test=res.test,
                        level=res.level,
                    )
                )
            except InputError as exc:
                raise exc.located(file=file) from None
    return out


def _as_text(res: MetaResult, analyses: list[Analysis]) -> str:
    parts = ["\n".join(fit_header(res, "Sensitivity analyses"))]
    parts += [analysis.summary() for analysis in analyses]
    return "\n".join(["\n\n".join(parts), *format_excluded(res.excluded)]) + "\n"


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


def render(res: MetaResult, analyses: list[Analysis], output_format: str, source: str) -> str:
    """The analyses as text in one of :data:`FORMATS`."""
    if output_format == "json":
        document: dict[str, Any] = {"source": source, "fit": res.to_dict()}
        for analysis in analyses:
            document[str(analysis.to_dict()["analysis"])] = analysis.to_dict()
        return json_text(document)
    if output_format == "csv":
        return _as_csv(res, analyses)
    return _as_text(res, analyses)


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
        analyses = _run(effects, res, which, order, file, options.get("label"))
    note_on_stderr((), res.excluded, file)
    write_output(render(res, analyses, shape, file), output, [file])
