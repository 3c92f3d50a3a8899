"""Forest plots of a sequence of refits: leave-one-out and cumulative."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure

from metaan._format import fmt_typeset
from metaan.plots._inputs import (
    StudyColumns,
    as_columns,
    cell_text,
    extra_columns,
    favours_text,
)
from metaan.plots._table import Column, Row
from metaan.plots._text import effect_header, excluded_notes, fmt_ci, short_model_label
from metaan.plots.forest import (
    ForestTable,
    draw_forest_table,
    measure_scale,
    pooled_rows,
    scale_of,
)
from metaan.results import MetaResult
from metaan.sensitivity import Cumulative, LeaveOneOut

__all__ = ["refit_forest"]


def refit_forest(
    result: LeaveOneOut | Cumulative,
    *,
    labels: Sequence[str],
    label_header: str,
    footnotes: Sequence[str],
    full: MetaResult | None,
    measure: str | None,
    xlabel: str | None,
    columns: StudyColumns | None,
    favours: tuple[str, str] | None,
    groups: tuple[str, str],
    lower_is_better: bool | None,
    xlim: tuple[float, float] | None,
    label_width: int,
    plot_width: float,
    digits: int,
    title: str | None,
) -> Figure:
    """One row per refit of ``result`` (labelled ``labels``): its estimate and CI as a
    point with a line, τ² and I²; with ``full``, the fit to all studies under them.

    The measure and the effect axis are those of ``full``, or of ``measure`` without it.
    """
    scale = scale_of(full, xlabel) if full is not None else measure_scale(measure, xlabel)
    if full is not None:
        measure = full.measure
    level = result.level
    estimate = result.estimate.tolist()
    ci_lb = result.ci_lb.tolist()
    ci_ub = result.ci_ub.tolist()
    tau2 = result.tau2.tolist()
    i2 = result.I2.tolist()
    k = len(labels)
    extra = as_columns(columns, k, "columns") if columns is not None else {}
    show = scale.show
    rows = []
    for i in range(k):
        cells = {f"x:{name}": cell_text(values[i]) for name, values in extra.items()}
        cells["est"] = fmt_ci(show(estimate[i]), show(ci_lb[i]), show(ci_ub[i]), digits)
        cells["tau2"] = fmt_typeset(tau2[i], max(digits, 3))
        cells["I2"] = f"{i2[i]:.0f}%" if i2[i] == i2[i] else "\u2013"
        rows.append(
            Row(
                kind="study",
                label=labels[i],
                cells=cells,
                est=float(estimate[i]),
                lb=float(ci_lb[i]),
                ub=float(ci_ub[i]),
                marker="o",
                gid=str(i),
            )
        )
    if full is not None:
        rows.append(Row(kind="space"))
        pooled = pooled_rows(
            full,
            label=f"All studies ({short_model_label(full)})",
            prediction=False,
            digits=digits,
            weight=None,
            notes=False,
        )
        tau2_full = full.tau2 if full.model == "random" and full.tau2 is not None else 0.0
        cells = dict(pooled[0].cells)
        cells["tau2"] = fmt_typeset(tau2_full, max(digits, 3))
        cells["I2"] = f"{full.I2:.0f}%" if full.I2 is not None else "\u2013"
        rows.append(
            Row(
                kind="pooled",
                label=pooled[0].label,
                cells=cells,
                est=full.estimate,
                lb=full.ci_lb,
                ub=full.ci_ub,
                gid="overall",
                bold=True,
            )
        )
    cols = extra_columns(extra)
    cols += [
        Column("est", effect_header(measure, level), "right", "right"),
        Column("tau2", "\u03c4\u00b2", "right", "right"),
        Column("I2", "I\u00b2", "right", "right"),
    ]
    table = ForestTable(
        rows=tuple(rows),
        columns=tuple(cols),
        scale=scale,
        rob_domains=(),
        rob_legend=(),
        favours=favours_text(favours, groups, lower_is_better),
        footnotes=(*footnotes, *(excluded_notes(full.excluded) if full is not None else [])),
        reference=full.estimate if full is not None else None,
    )
    return draw_forest_table(table, xlim, label_header, label_width, plot_width, title)
