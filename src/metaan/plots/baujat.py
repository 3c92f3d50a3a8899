"""The Baujat plot: each study's contribution to heterogeneity against its influence.

References
----------
Baujat, B., Mahé, C., Pignon, J.-P., & Hill, C. (2002). A graphical method for
exploring heterogeneity in meta-analyses: application to a meta-analysis of 65
trials. *Statistics in Medicine*, 21, 2641-2652.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter

from metaan.errors import InputError
from metaan.plots import _theme as th
from metaan.plots._axes import add_footnotes, axes_figure, place_labels, study_points, tick_text
from metaan.plots._table import nice_limits
from metaan.plots._text import excluded_notes
from metaan.results import Exclusion
from metaan.sensitivity import Baujat

__all__ = ["baujat"]


def baujat(
    result: Baujat,
    *,
    annotate: int | None = None,
    excluded: Sequence[Exclusion] = (),
    title: str | None = None,
) -> Figure:
    """Draw a Baujat plot from the coordinates of :func:`metaan.sensitivity.baujat`.

    The horizontal axis is each study's contribution to the overall
    heterogeneity (``result.x``), the vertical its influence on the pooled
    estimate (``result.y``); studies in the upper right both drive
    heterogeneity and move the result (Baujat et al. 2002).

    Parameters
    ----------
    result
        A :class:`~metaan.sensitivity.Baujat`.
    annotate
        How many studies to label, the most extreme first (by the larger of
        their two coordinates relative to the axis maxima). By default every
        study is labelled when there are at most 30, else the 10 most extreme.
    excluded
        The rows left out of the fit (``MetaResult.excluded``), listed in a
        footnote: a Baujat result holds only the studies that were fitted.
    title
        Text above the plot.

    Returns
    -------
    matplotlib.figure.Figure
        The points carry ``gid="studies"``; each label ``gid="label-<i>"``.
    """
    if not isinstance(result, Baujat):
        raise InputError(f"baujat draws a Baujat result, not a {type(result).__name__}")
    x, y = np.asarray(result.x, dtype=float), np.asarray(result.y, dtype=float)
    k = x.size
    if annotate is None:
        annotate = k if k <= 30 else 10
    if annotate < 0:
        raise InputError(f"annotate is {annotate}; give a number of studies >= 0")
    fig, ax = axes_figure(title=title)
    ax.add_line(study_points(x, y))
    x_top = float(np.max(x)) if k and np.max(x) > 0 else 1.0
    y_top = float(np.max(y)) if k and np.max(y) > 0 else 1.0
    # Axes from 0 to a round number, with room above the points for their labels.
    (_, x_end), x_ticks = nice_limits(0.0, x_top * 1.08, False)
    (_, y_end), y_ticks = nice_limits(0.0, y_top * 1.12, False)
    ax.set_xlim(0.0, x_end)
    ax.set_ylim(0.0, y_end)
    extremity = np.maximum(x / x_top, y / y_top)
    chosen = np.argsort(-extremity, kind="stable")[:annotate].tolist()
    place_labels(
        fig,
        ax,
        [float(x[i]) for i in chosen],
        [float(y[i]) for i in chosen],
        [result.labels[i] for i in chosen],
        [f"label-{i}" for i in chosen],
    )
    for axis, ticks in ((ax.xaxis, x_ticks), (ax.yaxis, y_ticks)):
        axis.set_major_locator(FixedLocator(ticks))
        axis.set_major_formatter(FuncFormatter(lambda v, _p: tick_text(v)))
    ax.set_xlabel("Contribution to overall heterogeneity", fontfamily=th.FONT_FAMILY)
    ax.set_ylabel("Influence on overall result", fontfamily=th.FONT_FAMILY)
    add_footnotes(fig, excluded_notes(excluded))
    return fig
