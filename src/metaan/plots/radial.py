"""The radial (Galbraith) plot.

References
----------
Galbraith, R. F. (1988). A note on graphical presentation of estimated odds
ratios from several clinical trials. *Statistics in Medicine*, 7, 889-894.

Galbraith, R. F. (1994). Some applications of radial plots. *Journal of the
American Statistical Association*, 89, 1232-1242.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator
from matplotlib.transforms import blended_transform_factory

from metaan._dist import norm_isf
from metaan.errors import InputError
from metaan.estimators import FloatArray
from metaan.plots import _theme as th
from metaan.plots._axes import (
    add_footnotes,
    axes_figure,
    figure_legend,
    legend_rows,
    study_points,
    tick_text,
)
from metaan.plots._table import nice_limits
from metaan.plots._text import drawable, excluded_notes
from metaan.plots.forest import scale_of
from metaan.results import MetaResult

__all__ = ["RadialLayout", "radial", "radial_layout"]

WIDTH, HEIGHT = 4.6, 3.8


@dataclass(frozen=True)
class RadialLayout:
    """A radial plot before it is drawn (the layout step of :func:`radial`)."""

    #: The studies: precision ``1/s_i`` and standardised effect ``y_i/s_i``.
    x: FloatArray
    z: FloatArray
    #: The pooled estimate (the slope of the line through the origin) and the
    #: half-width of the band around it, in standardised units.
    estimate: float
    crit: float
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    #: The effect scale on the right: each tick's height and text, the label
    #: (with the units shown) and its distance from the left of the axes, as a
    #: fraction of their width.
    effect_ticks: tuple[tuple[float, str], ...]
    effect_label: str
    effect_label_x: float
    legend: tuple[str, ...]
    footnotes: tuple[str, ...]


def radial(result: MetaResult, *, title: str | None = None) -> Figure:
    """Draw a radial (Galbraith) plot of a fitted meta-analysis.

    Each study is the point ``(1/s_i, y_i/s_i)`` with ``s_i = sqrt(v_i + tau^2)``
    (the total standard error under the model: tau^2 = 0 for a common-effect
    model, as metafor's ``radial`` has it), so the slope of the line from the
    origin to a study is its effect. The solid line through the origin has the
    pooled estimate as slope; the dashed lines ``±z`` around it (z at the
    result's level) contain about that share of the studies when the model
    holds (Galbraith 1988). The scale on the right reads slopes as effects (as
    ratios for OR and RR). The positions are those of :func:`radial_layout`.

    Parameters
    ----------
    result
        A fitted :class:`~metaan.results.MetaResult`.
    title
        Text above the plot.

    Returns
    -------
    matplotlib.figure.Figure
        The points carry ``gid="studies"``.
    """
    layout = radial_layout(result)
    rows, ncol = legend_rows(layout.legend, WIDTH)
    fig, ax = axes_figure(WIDTH, HEIGHT, title=title, legend_rows=rows, right=0.75)
    x_line = np.array(layout.xlim)
    est, crit = layout.estimate, layout.crit
    ax.set_xlim(*layout.xlim)
    ax.set_ylim(*layout.ylim)
    ax.axhline(0.0, color=th.GREY, linewidth=0.6, zorder=1)
    ax.plot(x_line, est * x_line, color=th.BLACK, linewidth=1.0, gid="estimate")
    for side in (-1.0, 1.0):
        ax.plot(
            x_line,
            est * x_line + side * crit,
            color=th.BLACK,
            linewidth=0.8,
            linestyle=(0, (4, 3)),
            gid="band",
        )
    ax.add_line(study_points(layout.x, layout.z))
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MaxNLocator(nbins=6))
        axis.set_major_formatter(FuncFormatter(lambda v, _p: tick_text(v)))
    ax.set_xlabel("Precision, 1/SE (SE including \u03c4\u00b2)", fontfamily=th.FONT_FAMILY)
    ax.set_ylabel("Standardised effect, y/SE", fontfamily=th.FONT_FAMILY)
    _draw_effect_scale(ax, layout)
    handles = [
        Line2D(
            [],
            [],
            marker="o",
            markerfacecolor=th.BLUE,
            markeredgecolor=th.BLACK,
            linestyle="none",
            markersize=5,
        ),
        Line2D([], [], color=th.BLACK, linewidth=1.0),
        Line2D([], [], color=th.BLACK, linewidth=0.8, linestyle=(0, (4, 3))),
    ]
    figure_legend(fig, handles, layout.legend, ncol)
    add_footnotes(fig, layout.footnotes)
    return fig


def radial_layout(result: MetaResult) -> RadialLayout:
    """Where everything of a radial plot goes (see :func:`radial`); draws nothing.

    The precision axis runs from 0 to 1.08 times the largest precision; the
    standardised axis covers the studies and the band, padded by 5% of its
    range. The effect scale on the right reads a point on the right edge at
    height ``h`` as the effect ``h / x_max``, with round ticks (ratios for OR
    and RR) inside that range. Studies without a finite effect and a positive
    variance are left out and named in a footnote.
    """
    if not isinstance(result, MetaResult):
        raise InputError(f"radial draws a MetaResult, not a {type(result).__name__}")
    tau2 = result.tau2 if (result.model == "random" and result.tau2 is not None) else 0.0
    placed = drawable(result)
    s = np.sqrt(np.asarray(result.vi, dtype=float)[placed] + tau2)
    xs, zs = 1.0 / s, np.asarray(result.yi, dtype=float)[placed] / s
    crit = norm_isf((1.0 - result.level / 100.0) / 2.0)
    est = result.estimate
    x_max = float(np.max(xs)) * 1.08
    x_line = np.array([0.0, x_max])
    y_vals = np.concatenate([zs, est * x_line + crit, est * x_line - crit])
    y_lo, y_hi = float(np.min(y_vals)), float(np.max(y_vals))
    pad = 0.05 * (y_hi - y_lo if y_hi > y_lo else 1.0)
    ylo, yhi = y_lo - pad, y_hi + pad
    scale = scale_of(result)
    lo_eff, hi_eff = ylo / x_max, yhi / x_max
    shown = (math.exp(lo_eff), math.exp(hi_eff)) if scale.log else (lo_eff, hi_eff)
    _, ticks = nice_limits(shown[0], shown[1], scale.log)
    ticks = [t for t in ticks if shown[0] <= t <= shown[1]]
    widest = max((th.text_width(tick_text(t), th.SMALL_SIZE) for t in ticks), default=0.0)
    return RadialLayout(
        x=xs,
        z=zs,
        estimate=est,
        crit=crit,
        xlim=(0.0, x_max),
        ylim=(ylo, yhi),
        effect_ticks=tuple(
            ((math.log(t) if scale.log else t) * x_max, tick_text(t)) for t in ticks
        ),
        effect_label=scale.xlabel,
        effect_label_x=1.0 + (0.1 + widest + 0.08) / WIDTH,
        legend=("Studies", "Pooled estimate", f"\u00b1{crit:.2f} around it ({result.level:g}%)"),
        footnotes=tuple(excluded_notes(result.excluded, result)),
    )


def _draw_effect_scale(ax: Axes, layout: RadialLayout) -> None:
    """The effect scale on the right edge of the axes: ticks, their texts, its label."""
    ax.spines["right"].set_visible(True)
    edge = blended_transform_factory(ax.transAxes, ax.transData)
    for h, text in layout.effect_ticks:
        ax.add_line(
            Line2D(
                [1.0, 1.018],
                [h, h],
                transform=edge,
                color=th.BLACK,
                linewidth=0.8,
                clip_on=False,
                gid="effect-tick",
            )
        )
        ax.text(
            1.03,
            h,
            text,
            transform=edge,
            ha="left",
            va="center",
            fontsize=th.SMALL_SIZE,
            fontfamily=th.FONT_FAMILY,
            parse_math=False,
            clip_on=False,
            gid="effect-tick-label",
        )
    ax.text(
        layout.effect_label_x,
        0.5,
        layout.effect_label,
        transform=ax.transAxes,
        rotation=90,
        ha="center",
        va="top",
        rotation_mode="anchor",
        fontsize=th.FONT_SIZE,
        fontfamily=th.FONT_FAMILY,
        parse_math=False,
        gid="effect-scale-label",
    )
