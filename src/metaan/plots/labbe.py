"""The L'Abbé plot of event data.

References
----------
L'Abbé, K. A., Detsky, A. S., & O'Rourke, K. (1987). Meta-analysis in
clinical research. *Annals of Internal Medicine*, 107, 224-233.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MultipleLocator

from metaan.errors import InputError
from metaan.estimators import FloatArray
from metaan.plots import _theme as th
from metaan.plots._axes import (
    add_footnotes,
    axes_figure,
    circle_key,
    figure_legend,
    legend_rows,
    study_circles,
    tick_text,
)
from metaan.plots._inputs import StudyColumns, as_columns, study_numbers
from metaan.plots._text import excluded_notes
from metaan.results import MetaResult

__all__ = ["labbe"]

SIDE = 3.8
#: The column names that mean events and totals of each arm.
_ALIASES = {
    "ai": ("ai", "events1", "event1", "e1"),
    "n1i": ("n1i", "n1", "total1"),
    "ci": ("ci", "events2", "event2", "e2"),
    "n2i": ("n2i", "n2", "total2"),
}


def _counts(events: StudyColumns, result: MetaResult) -> dict[str, FloatArray]:
    table = as_columns(events, result.k, "events")
    lookup = {name.strip().lower(): name for name in table}
    out: dict[str, FloatArray] = {}
    for key, aliases in _ALIASES.items():
        name = next((lookup[a] for a in aliases if a in lookup), None)
        if name is None:
            raise InputError(
                f"events has no {key} column",
                column=key,
                fix="give ai, n1i, ci and n2i (events and totals of group 1 and group 2)",
            )
        out[key] = study_numbers(table[name], result.k, key)
    for arm_events, arm_total in (("ai", "n1i"), ("ci", "n2i")):
        e, n = out[arm_events], out[arm_total]
        bad = ~((n > 0) & (e >= 0) & (e <= n))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"{arm_events} = {e[i]:g} and {arm_total} = {n[i]:g}: events must be "
                "between 0 and a group size > 0",
                study=result.labels[i],
                column=arm_events,
            )
    return out


def _effect_curve(measure: str, effect: float, p0: FloatArray) -> FloatArray:
    """The group-1 risk that the pooled effect implies for each group-2 risk."""
    if measure == "RD":
        return p0 + effect
    ratio = math.exp(effect)
    if measure == "RR":
        return ratio * p0
    return ratio * p0 / (1.0 - p0 + ratio * p0)


def labbe(
    result: MetaResult,
    events: StudyColumns,
    *,
    groups: tuple[str, str] = ("treatment", "control"),
    title: str | None = None,
) -> Figure:
    """Draw a L'Abbé plot: the event risk in group 1 against that in group 2.

    Each study is a circle whose area is proportional to its weight in the
    model; the diagonal is no effect, and the dashed curve is the pooled effect
    of the result (an OR, RR or RD held constant across control risks).

    Parameters
    ----------
    result
        A fitted :class:`~metaan.results.MetaResult` of event data (measure OR,
        RR, RD, or a Peto or Mantel-Haenszel fit).
    events
        The counts of each study, in the order of ``result.labels``: columns
        ``ai`` (events in group 1), ``n1i`` (its size), ``ci`` and ``n2i`` (the
        same for group 2); a DataFrame or a mapping of column to values.
    groups
        Names of group 1 and group 2, for the axis labels.
    title
        Text above the plot.

    Returns
    -------
    matplotlib.figure.Figure
        The circles carry ``gid="studies"``.

    Raises
    ------
    InputError
        The result is not of event data, or the counts are missing or invalid.
    """
    if not isinstance(result, MetaResult):
        raise InputError(f"labbe draws a MetaResult, not a {type(result).__name__}")
    measure = "OR" if result.method == "PETO" else (result.measure or "")
    if measure not in ("OR", "RR", "RD"):
        raise InputError(
            f"a L'Abbé plot needs event data; the measure is {result.measure or 'not given'}",
            fix="fit the counts with measure OR, RR or RD",
        )
    counts = _counts(events, result)
    p1 = counts["ai"] / counts["n1i"]
    p2 = counts["ci"] / counts["n2i"]
    names = ["Studies (area \u221d weight)", "No effect", f"Pooled {measure}"]
    rows, ncol = legend_rows(names, SIDE)
    fig, ax = axes_figure(SIDE, SIDE, title=title, legend_rows=rows)
    top = float(max(np.max(p1), np.max(p2)))
    limit = 1.0 if top > 0.5 else max(0.05, math.ceil(top * 1.1 / 0.05) * 0.05)
    ax.set_xlim(0.0, limit)
    ax.set_ylim(0.0, limit)
    ax.set_aspect("equal")
    ax.plot([0.0, limit], [0.0, limit], color=th.BLACK, linewidth=0.8, gid="no-effect")
    grid = np.linspace(0.0, limit, 201)
    curve = _effect_curve(measure, result.estimate, grid)
    inside = (curve >= 0.0) & (curve <= 1.0)
    ax.plot(
        grid[inside],
        curve[inside],
        color=th.VERMILLION,
        linewidth=1.2,
        linestyle=(0, (5, 3)),
        gid="pooled",
    )
    weights = np.asarray(result.weights, dtype=float)
    w_max = float(np.max(weights)) if weights.size and np.max(weights) > 0 else 1.0
    area = np.maximum(12.0, 380.0 * weights / w_max)
    study_circles(ax, p2, p1, area)
    step = 0.2 if limit == 1.0 else (0.1 if limit > 0.4 else 0.05 if limit > 0.15 else 0.01)
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MultipleLocator(step))
        axis.set_major_formatter(FuncFormatter(lambda v, _p: tick_text(round(v, 6))))
    ax.set_xlabel(f"Event risk, {groups[1]}", fontfamily=th.FONT_FAMILY)
    ax.set_ylabel(f"Event risk, {groups[0]}", fontfamily=th.FONT_FAMILY)
    handles = [
        circle_key(),
        Line2D([], [], color=th.BLACK, linewidth=0.8),
        Line2D([], [], color=th.VERMILLION, linewidth=1.2, linestyle=(0, (5, 3))),
    ]
    figure_legend(fig, handles, names, ncol)
    add_footnotes(fig, excluded_notes(result.excluded))
    return fig
