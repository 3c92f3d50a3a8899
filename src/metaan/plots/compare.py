"""The comparison plot: the pooled effects of several analyses on one axis."""

from __future__ import annotations

from collections.abc import Mapping

from matplotlib.figure import Figure

from metaan._format import fmt_typeset
from metaan.errors import InputError
from metaan.plots._inputs import favours_text
from metaan.plots._table import Column, Row, Scale
from metaan.plots._text import (
    effect_header,
    excluded_notes,
    fmt_ci,
    fmt_interval,
    short_model_label,
)
from metaan.plots.forest import ForestTable, draw_forest_table, scale_of
from metaan.results import MetaResult
from metaan.subgroups import SubgroupResult

__all__ = ["compare", "compare_table"]


def compare(
    results: Mapping[str, MetaResult] | SubgroupResult,
    *,
    prediction: bool = True,
    groups: tuple[str, str] = ("treatment", "control"),
    lower_is_better: bool | None = True,
    favours: tuple[str, str] | None = None,
    xlim: tuple[float, float] | None = None,
    xlabel: str | None = None,
    label_header: str = "Analysis",
    label_width: int = 40,
    plot_width: float = 3.0,
    digits: int = 2,
    title: str | None = None,
) -> Figure:
    """Draw the pooled effects of several analyses on one axis.

    One row per analysis (for example one per drug class): a diamond spanning
    the pooled estimate's confidence interval and, for random-effects models,
    a whisker spanning the prediction interval (IntHout et al. 2016); beside it
    the number of studies k, the estimate with its CI, the prediction interval,
    τ² and I². Every number is the analysis result's. The rows, columns and
    notes are those of :func:`compare_table`.

    Parameters
    ----------
    results
        A mapping of analysis name to :class:`~metaan.results.MetaResult`, in
        the order to draw them, or a :class:`~metaan.subgroups.SubgroupResult`
        (one row per level; a level with a single study is drawn as that study).
    prediction
        Draw and print the prediction intervals.
    groups, lower_is_better, favours, xlim, xlabel, label_header, label_width,
    plot_width, digits, title
        As for :func:`metaan.plots.forest`.

    Returns
    -------
    matplotlib.figure.Figure
        Each analysis has ``gid="diamond-<i>"`` and, with a prediction
        interval, ``gid="pi-<i>"``.

    Raises
    ------
    InputError
        No analyses, or analyses on different scales (ratio and difference
        measures cannot share an axis).
    """
    table = compare_table(
        results,
        prediction=prediction,
        groups=groups,
        lower_is_better=lower_is_better,
        favours=favours,
        xlabel=xlabel,
        digits=digits,
    )
    return draw_forest_table(table, xlim, label_header, label_width, plot_width, title)


def compare_table(
    results: Mapping[str, MetaResult] | SubgroupResult,
    *,
    prediction: bool = True,
    groups: tuple[str, str] = ("treatment", "control"),
    lower_is_better: bool | None = True,
    favours: tuple[str, str] | None = None,
    xlabel: str | None = None,
    digits: int = 2,
) -> ForestTable:
    """The rows, columns, axis and notes of a comparison plot (see :func:`compare`).

    Draws nothing. The footnotes name the models (and the measures, where the
    analyses differ), say what diamonds and whiskers span and list every study
    left out of an analysis.
    """
    named, footnotes = _analyses(results)
    fits = list(named.values())
    first = fits[0]
    if len({scale_of(f).log for f in fits}) > 1:
        raise InputError(
            "the analyses mix ratio measures (OR, RR) with difference measures",
            fix="compare analyses on the same effect measure",
        )
    scale = scale_of(first, xlabel)
    rows = [
        _analysis_row(str(i), name, res, scale, prediction, digits)
        for i, (name, res) in enumerate(named.items())
    ]
    cols = [
        Column("k", "k", "left", "right"),
        Column("est", effect_header(first.measure, first.level), "right", "right"),
    ]
    if prediction:
        cols.append(Column("pi", f"{first.level:g}% PI", "right", "right"))
    cols += [
        Column("tau2", "\u03c4\u00b2", "right", "right"),
        Column("I2", "I\u00b2", "right", "right"),
    ]
    spans = (
        " Diamonds span the confidence interval, whiskers the prediction interval."
        if prediction
        else " Diamonds span the confidence interval."
    )
    models = "; ".join(sorted({short_model_label(f) for f in fits}))
    footnotes.append(f"Models: {models}.{spans}")
    measures = {f.measure for f in fits}
    if len(measures) > 1:
        footnotes.append("Measures: " + ", ".join(sorted(str(m) for m in measures)) + ".")
    if isinstance(results, SubgroupResult):
        footnotes += excluded_notes(results.excluded)
    else:
        footnotes += excluded_notes(list(dict.fromkeys(e for f in fits for e in f.excluded)))
    return ForestTable(
        rows=tuple(rows),
        columns=tuple(cols),
        scale=scale,
        rob_domains=(),
        rob_legend=(),
        favours=favours_text(favours, groups, lower_is_better),
        footnotes=tuple(footnotes),
        reference=None,
    )


def _analyses(
    results: Mapping[str, MetaResult] | SubgroupResult,
) -> tuple[dict[str, MetaResult], list[str]]:
    """The analyses by name, and the footnote that says they are subgroups."""
    if isinstance(results, SubgroupResult):
        named = {lev.name: lev.fit for lev in results.levels}
        single = (
            ""
            if all(lev.pooled for lev in results.levels)
            else (" A level with one study shows that study.")
        )
        footnotes = [f"Subgroups of {results.by}.{single}"]
    elif isinstance(results, Mapping):
        named = dict(results)
        footnotes = []
    else:
        raise InputError(
            "compare draws a mapping of name to MetaResult, or a SubgroupResult, "
            f"not a {type(results).__name__}"
        )
    if not named:
        raise InputError("there are no analyses to compare")
    for name, res in named.items():
        if not isinstance(res, MetaResult):
            raise InputError(f"analysis {name!r} is a {type(res).__name__}, not a MetaResult")
    return named, footnotes


def _analysis_row(
    gid: str, name: str, res: MetaResult, scale: Scale, prediction: bool, digits: int
) -> Row:
    """One analysis: its diamond, its prediction-interval whisker and its numbers."""
    show = scale.show
    random = res.model == "random" and res.k >= 2
    pi = prediction and random
    cells = {
        "k": str(res.k),
        "est": fmt_ci(show(res.estimate), show(res.ci_lb), show(res.ci_ub), digits),
        "I2": f"{res.I2:.0f}%" if res.I2 is not None and res.k >= 2 else "\u2013",
        "tau2": fmt_typeset(res.tau2, max(digits, 3)) if random else "\u2013",
    }
    if prediction:
        cells["pi"] = fmt_interval(show(res.pi_lb), show(res.pi_ub), digits) if pi else "\u2013"
    return Row(
        kind="pooled",
        label=name,
        cells=cells,
        est=res.estimate,
        lb=res.ci_lb,
        ub=res.ci_ub,
        pi_lb=res.pi_lb if pi else None,
        pi_ub=res.pi_ub if pi else None,
        gid=gid,
    )
