"""The bubble plot of a meta-regression on one continuous moderator.

References
----------
Thompson, S. G., & Higgins, J. P. T. (2002). How should meta-regression analyses
be undertaken and interpreted? *Statistics in Medicine*, 21, 1559-1573.

Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package.
*Journal of Statistical Software*, 36(3), 1-48 (``predict.rma``, ``regplot``).
"""

from __future__ import annotations

import numpy as np
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator

from metaan._format import fmt_typeset
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
from metaan.plots._table import nice_limits
from metaan.plots._text import EQ, MEASURE_NAMES, excluded_notes, fmt_p
from metaan.regression import MetaRegressionResult

__all__ = ["bubble"]

WIDTH, HEIGHT = 4.8, 3.6


def _fitted_band(
    result: MetaRegressionResult, column: int, x: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The fitted line and its confidence band along one moderator, from the
    model's own predictions (:meth:`MetaRegressionResult.predict`), with the
    other columns of the design held at their means, as metafor's ``regplot``
    does."""
    grid = np.tile(result.X.mean(axis=0), (x.size, 1))
    grid[:, column] = x
    fitted = result.predict(grid)
    return fitted.pred, fitted.ci_lb, fitted.ci_ub


def bubble(
    result: MetaRegressionResult,
    moderator: str | None = None,
    *,
    band: bool = True,
    xlabel: str | None = None,
    ylabel: str | None = None,
    title: str | None = None,
) -> Figure:
    """Draw a bubble plot: effect sizes against a moderator, with the fitted line.

    Each study is a circle whose area is proportional to its weight in the
    meta-regression, ``1 / (v_i + tau^2)`` with the residual tau^2; the
    fitted line and its confidence band come from the model's coefficients
    (other moderators held at their means). OR and RR are drawn on a log axis
    labelled in ratios. The heterogeneity accounted for (R²) and the test of the
    moderators (QM) are printed in the corner.

    Parameters
    ----------
    result
        A :class:`~metaan.regression.MetaRegressionResult`.
    moderator
        The coefficient to put on the horizontal axis (one of ``result.names``);
        optional when the model has a single moderator column.
    band
        Draw the confidence band of the fitted line.
    xlabel, ylabel, title
        Texts of the axes and above the plot.

    Returns
    -------
    matplotlib.figure.Figure
        The circles carry ``gid="studies"``, the line ``gid="fit"`` and the band
        ``gid="band"``.
    """
    if not isinstance(result, MetaRegressionResult):
        raise InputError(f"bubble draws a MetaRegressionResult, not a {type(result).__name__}")
    slopes = [n for j, n in enumerate(result.names) if not (result.intercept and j == 0)]
    if moderator is None:
        if len(slopes) != 1:
            raise InputError(
                "the model has several moderator columns; say which to draw",
                fix=f"pass moderator= one of {', '.join(slopes) or '(none)'}",
            )
        moderator = slopes[0]
    if moderator not in slopes:
        raise InputError(
            f"the model has no moderator {moderator!r}",
            fix=f"use one of {', '.join(slopes) or '(none: the model has only an intercept)'}",
        )
    j = result.names.index(moderator)
    x = result.X[:, j]
    ratio = result.measure in ("OR", "RR", "PETO")
    weights = result.weights
    area = np.maximum(10.0, 420.0 * weights / float(np.max(weights)))

    names = ["Studies (area \u221d weight)", "Fitted line"]
    if band:
        names.append(f"{result.level:g}% confidence band")
    rows, ncol = legend_rows(names, WIDTH)
    fig, ax = axes_figure(WIDTH, HEIGHT, title=title, legend_rows=rows, top_extra=0.15)
    x_grid = np.linspace(float(np.min(x)), float(np.max(x)), 201)
    pred, lo, hi = _fitted_band(result, j, x_grid)
    show = np.exp if ratio else (lambda a: a)
    if band:
        ax.fill_between(
            x_grid,
            show(lo),
            show(hi),
            facecolor=th.LIGHT_GREY,
            edgecolor=th.GREY,
            linewidth=0.5,
            gid="band",
            zorder=1,
        )
    ax.plot(x_grid, show(pred), color=th.BLACK, linewidth=1.2, gid="fit", zorder=2)
    study_circles(ax, x, show(result.yi), area)
    # The axes cover every point and the band, ending on round numbers.
    ys = np.concatenate([show(result.yi), show(lo) if band else show(pred)])
    ys = np.concatenate([ys, show(hi) if band else show(pred)])
    if ratio:
        ax.set_yscale("log")
    y_lo, y_hi = float(np.min(ys)), float(np.max(ys))
    if ratio:
        pad = (y_hi / y_lo) ** 0.04
        (y0, y1), ticks = nice_limits(y_lo / pad, y_hi * pad, True)
    else:
        pad = 0.04 * (y_hi - y_lo if y_hi > y_lo else 1.0)
        (y0, y1), ticks = nice_limits(y_lo - pad, y_hi + pad, False)
    ax.set_ylim(y0, y1)
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_minor_locator(NullLocator())
    x_lo, x_hi = float(np.min(x)), float(np.max(x))
    x_pad = 0.05 * (x_hi - x_lo if x_hi > x_lo else 1.0)
    ax.set_xlim(x_lo - x_pad, x_hi + x_pad)
    ax.axhline(1.0 if ratio else 0.0, color=th.GREY, linewidth=0.6, zorder=0)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6))
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(FuncFormatter(lambda v, _p: tick_text(v)))
    measure_name = MEASURE_NAMES.get(result.measure or "GEN", (result.measure or "Effect",))[0]
    ax.set_xlabel(xlabel or moderator, fontfamily=th.FONT_FAMILY)
    ax.set_ylabel(
        ylabel or (f"{measure_name} (log scale)" if ratio else measure_name),
        fontfamily=th.FONT_FAMILY,
    )
    stat = (
        f"F({result.QM_df}, {result.QM_df2}){EQ}{fmt_typeset(result.QM, 2)}"
        if result.QM_df2 is not None
        else f"QM({result.QM_df}){EQ}{fmt_typeset(result.QM, 2)}"
    )
    text = f"{stat}, {fmt_p(result.QMp)}"
    if result.R2 is not None:
        text += f"; R\u00b2{EQ}{result.R2:.0f}%"
    ax.text(
        0.0,
        1.03,
        text,
        transform=ax.transAxes,
        ha="left",
        va="bottom",
        fontsize=th.SMALL_SIZE,
        fontfamily=th.FONT_FAMILY,
        parse_math=False,
        gid="tests",
    )
    handles: list[Artist] = [circle_key(), Line2D([], [], color=th.BLACK, linewidth=1.2)]
    if band:
        handles.append(Patch(facecolor=th.LIGHT_GREY, edgecolor=th.GREY, linewidth=0.5))
    figure_legend(fig, handles, names, ncol)
    add_footnotes(fig, excluded_notes(result.excluded))
    return fig
