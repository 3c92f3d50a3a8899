"""The bubble plot of a meta-regression on one continuous moderator.

References
----------
Thompson, S. G., & Higgins, J. P. T. (2002). How should meta-regression analyses
be undertaken and interpreted? *Statistics in Medicine*, 21, 1559-1573.

Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package.
*Journal of Statistical Software*, 36(3), 1-48 (``predict.rma``, ``regplot``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from metaan._format import fmt_typeset
from metaan.errors import InputError
from metaan.estimators import FloatArray
from metaan.plots import _theme as th
from metaan.plots._axes import (
    add_footnotes,
    axes_figure,
    circle_key,
    figure_legend,
    fixed_ticks,
    legend_rows,
    study_circles,
    tick_text,
)
from metaan.plots._table import nice_limits
from metaan.plots._text import EQ, MEASURE_NAMES, excluded_notes, fmt_p
from metaan.regression import MetaRegressionResult

__all__ = ["BubbleLayout", "bubble", "bubble_layout"]

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


@dataclass(frozen=True)
class BubbleLayout:
    """A bubble plot before it is drawn (the layout step of :func:`bubble`).

    Effects are in the units the axis shows (ratios for OR and RR).
    """

    moderator: str
    #: The studies: moderator value, effect and circle area (points squared).
    x: FloatArray
    y: FloatArray
    area: FloatArray
    #: The fitted line along the moderator and its confidence band (lower,
    #: upper), or None without the band.
    grid: FloatArray
    fitted: FloatArray
    band: tuple[FloatArray, FloatArray] | None
    log: bool
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    y_ticks: tuple[float, ...]
    #: The value of no effect on the axis (1 for ratios, 0 otherwise).
    null: float
    xlabel: str
    ylabel: str
    #: The test of the moderators and R², printed above the axes.
    tests: str
    legend: tuple[str, ...]
    footnotes: tuple[str, ...]


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
    moderators (QM) are printed in the corner. The positions are those of
    :func:`bubble_layout`.

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
    layout = bubble_layout(result, moderator, band=band, xlabel=xlabel, ylabel=ylabel)
    rows, ncol = legend_rows(layout.legend, WIDTH)
    fig, ax = axes_figure(WIDTH, HEIGHT, title=title, legend_rows=rows, top_extra=0.15)
    if layout.band is not None:
        ax.fill_between(
            layout.grid,
            *layout.band,
            facecolor=th.LIGHT_GREY,
            edgecolor=th.GREY,
            linewidth=0.5,
            gid="band",
            zorder=1,
        )
    ax.plot(layout.grid, layout.fitted, color=th.BLACK, linewidth=1.2, gid="fit", zorder=2)
    study_circles(ax, layout.x, layout.y, layout.area)
    if layout.log:
        ax.set_yscale("log")
    ax.set_ylim(*layout.ylim)
    fixed_ticks(ax.yaxis, layout.y_ticks)
    ax.set_xlim(*layout.xlim)
    ax.axhline(layout.null, color=th.GREY, linewidth=0.6, zorder=0)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: tick_text(v)))
    ax.set_xlabel(layout.xlabel, fontfamily=th.FONT_FAMILY)
    ax.set_ylabel(layout.ylabel, fontfamily=th.FONT_FAMILY)
    ax.text(
        0.0,
        1.03,
        layout.tests,
        transform=ax.transAxes,
        ha="left",
        va="bottom",
        fontsize=th.SMALL_SIZE,
        fontfamily=th.FONT_FAMILY,
        parse_math=False,
        gid="tests",
    )
    handles: list[Artist] = [circle_key(), Line2D([], [], color=th.BLACK, linewidth=1.2)]
    if layout.band is not None:
        handles.append(Patch(facecolor=th.LIGHT_GREY, edgecolor=th.GREY, linewidth=0.5))
    figure_legend(fig, handles, layout.legend, ncol)
    add_footnotes(fig, layout.footnotes)
    return fig


def bubble_layout(
    result: MetaRegressionResult,
    moderator: str | None = None,
    *,
    band: bool = True,
    xlabel: str | None = None,
    ylabel: str | None = None,
) -> BubbleLayout:
    """Where everything of a bubble plot goes (see :func:`bubble`); draws nothing.

    The circles' areas run from 10 to 420 points squared in proportion to the
    weights. The effect axis covers the studies and the band (or the line)
    padded by 4% (of the range, or of the ratio on a log axis) and ends on
    round numbers; the moderator axis is padded by 5% of its range.
    """
    if not isinstance(result, MetaRegressionResult):
        raise InputError(f"bubble draws a MetaRegressionResult, not a {type(result).__name__}")
    moderator = _moderator(result, moderator)
    j = result.names.index(moderator)
    x = result.X[:, j]
    ratio = result.measure in ("OR", "RR", "PETO")
    weights = result.weights
    area = np.maximum(10.0, 420.0 * weights / float(np.max(weights)))
    x_grid = np.linspace(float(np.min(x)), float(np.max(x)), 201)
    pred, lo, hi = _fitted_band(result, j, x_grid)
    show = np.exp if ratio else (lambda a: a)
    # The axes cover every point and the band, ending on round numbers.
    ys = np.concatenate([show(result.yi), show(lo) if band else show(pred)])
    ys = np.concatenate([ys, show(hi) if band else show(pred)])
    y_lo, y_hi = float(np.min(ys)), float(np.max(ys))
    if ratio:
        pad = (y_hi / y_lo) ** 0.04
        ylim, ticks = nice_limits(y_lo / pad, y_hi * pad, True)
    else:
        pad = 0.04 * (y_hi - y_lo if y_hi > y_lo else 1.0)
        ylim, ticks = nice_limits(y_lo - pad, y_hi + pad, False)
    x_lo, x_hi = float(np.min(x)), float(np.max(x))
    x_pad = 0.05 * (x_hi - x_lo if x_hi > x_lo else 1.0)
    measure_name = MEASURE_NAMES.get(result.measure or "GEN", (result.measure or "Effect",))[0]
    names = ["Studies (area \u221d weight)", "Fitted line"]
    if band:
        names.append(f"{result.level:g}% confidence band")
    return BubbleLayout(
        moderator=moderator,
        x=x,
        y=show(result.yi),
        area=area,
        grid=x_grid,
        fitted=show(pred),
        band=(show(lo), show(hi)) if band else None,
        log=ratio,
        xlim=(x_lo - x_pad, x_hi + x_pad),
        ylim=ylim,
        y_ticks=tuple(ticks),
        null=1.0 if ratio else 0.0,
        xlabel=xlabel or moderator,
        ylabel=ylabel or (f"{measure_name} (log scale)" if ratio else measure_name),
        tests=_tests_text(result),
        legend=tuple(names),
        footnotes=tuple(excluded_notes(result.excluded)),
    )


def _moderator(result: MetaRegressionResult, moderator: str | None) -> str:
    """The moderator to draw: the one asked for, or the model's only one."""
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
    return moderator


def _tests_text(result: MetaRegressionResult) -> str:
    """The omnibus test of the moderators and, where there is one, R²."""
    stat = (
        f"F({result.QM_df}, {result.QM_df2}){EQ}{fmt_typeset(result.QM, 2)}"
        if result.QM_df2 is not None
        else f"QM({result.QM_df}){EQ}{fmt_typeset(result.QM, 2)}"
    )
    text = f"{stat}, {fmt_p(result.QMp)}"
    if result.R2 is not None:
        text += f"; R\u00b2{EQ}{result.R2:.0f}%"
    return text
