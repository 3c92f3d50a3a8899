"""The funnel plot: effect against standard error, optionally contour-enhanced.

References
----------
Light, R. J., & Pillemer, D. B. (1984). *Summing up: the science of reviewing
research*. Harvard University Press.

Sterne, J. A. C., & Egger, M. (2001). Funnel plots for detecting bias in
meta-analysis: guidelines on choice of axis. *Journal of Clinical
Epidemiology*, 54, 1046-1055.

Peters, J. L., Sutton, A. J., Jones, D. R., Abrams, K. R., & Rushton, L.
(2008). Contour-enhanced meta-analysis funnel plots help distinguish
publication bias from other causes of asymmetry. *Journal of Clinical
Epidemiology*, 61, 991-996.

Duval, S., & Tweedie, R. (2000). Trim and fill: a simple funnel-plot-based
method of testing and adjusting for publication bias in meta-analysis.
*Biometrics*, 56, 455-463.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Polygon
from matplotlib.ticker import MaxNLocator

from metaan._dist import norm_isf
from metaan.bias import RegressionTest, TrimAndFill
from metaan.errors import InputError
from metaan.estimators import FloatArray
from metaan.plots import _theme as th
from metaan.plots._axes import (
    add_footnotes,
    axes_figure,
    figure_legend,
    fixed_ticks,
    legend_rows,
)
from metaan.plots._table import nice_limits
from metaan.plots._text import drawable, excluded_notes
from metaan.plots.forest import scale_of
from metaan.results import MetaResult

__all__ = ["FunnelLayout", "funnel", "funnel_layout"]

#: Greys of the contour regions, lightest (least significant) first; white is p >= the
#: largest level.
_CONTOUR_GREYS = ("#E8E8E8", "#C6C6C6", "#A3A3A3", "#808080")
WIDTH, HEIGHT = 4.6, 3.8


@dataclass(frozen=True)
class FunnelLayout:
    """A funnel plot before it is drawn (the layout step of :func:`funnel`).

    Horizontal positions are in the units the axis shows (ratios for OR and
    RR), vertical ones are standard errors.
    """

    #: The effect axis: log-scaled for ratios, its label, limits and ticks.
    log: bool
    xlabel: str
    xlim: tuple[float, float]
    x_ticks: tuple[float, ...]
    #: The standard-error axis runs from ``se_max`` (bottom) to 0 (top).
    se_max: float
    y_ticks: tuple[float, ...]
    #: Significance levels of the contours, largest first, and for each its
    #: region (the wedge of p below it) as polygon corners.
    levels: tuple[float, ...]
    wedges: tuple[tuple[tuple[float, float], ...], ...]
    #: The pooled estimate, and before filling (trim-and-fill only).
    estimate: float
    estimate_observed: float | None
    #: The pseudo-confidence lines (x, se), left then right; empty if not drawn.
    pseudo_ci: tuple[tuple[FloatArray, FloatArray], ...]
    #: Egger's line or the PEESE curve (x, se).
    egger: tuple[FloatArray, FloatArray] | None
    #: The observed studies and those trim-and-fill adds (x, se).
    observed: tuple[FloatArray, FloatArray]
    filled: tuple[FloatArray, FloatArray]
    legend: tuple[str, ...]
    footnotes: tuple[str, ...]


def funnel(
    result: MetaResult | TrimAndFill,
    *,
    contours: bool | Sequence[float] = False,
    egger: RegressionTest | None = None,
    pseudo_ci: bool = True,
    xlim: tuple[float, float] | None = None,
    xlabel: str | None = None,
    title: str | None = None,
) -> Figure:
    """Draw a funnel plot: each study's effect against its standard error.

    The vertical axis is the standard error, 0 at the top (Sterne & Egger 2001).
    A line marks the pooled estimate and, with ``pseudo_ci``, dashed lines the
    pseudo-confidence region ``estimate ± z·SE`` at the result's level. With
    ``contours`` the background is shaded by the two-sided p-value a study at
    that point would have against no effect (Peters et al. 2008): white for
    p ≥ .10, then darker greys for p < .10, < .05 and < .01. Given a
    :class:`~metaan.bias.TrimAndFill`, the studies it filled in are drawn as
    open circles (observed studies are filled), and the estimates before and
    after filling are both marked. ``egger`` draws the fitted line of Egger's
    regression (or the PEESE curve), from its ``limit_estimate`` and ``slope``.
    OR and RR are drawn on a log axis labelled in ratios. The positions are
    those of :func:`funnel_layout`.

    Parameters
    ----------
    result
        A fitted :class:`~metaan.results.MetaResult`, or the
        :class:`~metaan.bias.TrimAndFill` of one.
    contours
        ``True`` for the contours at p = .10, .05 and .01, or the significance
        levels to draw (each in (0, 1)).
    egger
        A :class:`~metaan.bias.RegressionTest` of the same studies.
    pseudo_ci
        Draw the pseudo-confidence region around the pooled estimate.
    xlim
        Limits of the effect axis in the units shown (ratios for OR and RR).
    xlabel, title
        Texts of the effect axis and above the plot.

    Returns
    -------
    matplotlib.figure.Figure
        Observed studies have ``gid="observed"``, filled studies ``gid="filled"``.
    """
    layout = funnel_layout(
        result, contours=contours, egger=egger, pseudo_ci=pseudo_ci, xlim=xlim, xlabel=xlabel
    )
    rows, ncol = legend_rows(layout.legend, WIDTH)
    fig, ax = axes_figure(WIDTH, HEIGHT, title=title, legend_rows=rows)
    if layout.log:
        ax.set_xscale("log")
    ax.set_xlim(*layout.xlim)
    ax.set_ylim(layout.se_max, 0.0)
    _draw_contours(ax, layout)
    _draw_lines(ax, layout)
    _draw_studies(ax, layout)
    fixed_ticks(ax.xaxis, layout.x_ticks)
    fixed_ticks(ax.yaxis, layout.y_ticks)
    ax.set_xlabel(layout.xlabel, fontfamily=th.FONT_FAMILY)
    ax.set_ylabel("Standard error", fontfamily=th.FONT_FAMILY)
    figure_legend(fig, _legend_handles(layout), layout.legend, ncol)
    add_footnotes(fig, layout.footnotes)
    return fig


def funnel_layout(
    result: MetaResult | TrimAndFill,
    *,
    contours: bool | Sequence[float] = False,
    egger: RegressionTest | None = None,
    pseudo_ci: bool = True,
    xlim: tuple[float, float] | None = None,
    xlabel: str | None = None,
) -> FunnelLayout:
    """Where everything of a funnel plot goes (see :func:`funnel`); draws nothing.

    The standard-error axis ends on a round tick at or past 1.04 times the
    largest standard error; the effect axis covers the studies and the
    pseudo-confidence region at that standard error and ends on round numbers,
    unless ``xlim`` is given. The contours are wedges from no effect at SE 0.
    A study without a finite effect and a positive variance (a double-zero
    table under Peto) has no place on the plot: it is named in a footnote.
    """
    if isinstance(result, TrimAndFill):
        fit, observed = result.fit, result.original
        filled_yi, filled_vi = result.filled_yi, result.filled_vi
    elif isinstance(result, MetaResult):
        fit = observed = result
        filled_yi = filled_vi = np.empty(0)
    else:
        raise InputError(
            f"funnel draws a MetaResult or a TrimAndFill, not a {type(result).__name__}"
        )
    levels = _contour_levels(contours)
    scale = scale_of(fit, xlabel)
    show = np.exp if scale.log else (lambda a: a)
    placed = drawable(observed)
    obs_yi = np.asarray(observed.yi, dtype=float)[placed]
    se_obs = np.sqrt(np.asarray(observed.vi, dtype=float)[placed])
    se_fill = np.sqrt(filled_vi)
    se_max, y_ticks = _se_axis(np.concatenate([se_obs, se_fill]))
    crit = norm_isf((1.0 - fit.level / 100.0) / 2.0)
    est = fit.estimate
    # The effect axis covers the studies and the pseudo-confidence region.
    xs = np.concatenate([obs_yi, filled_yi, [est - crit * se_max, est + crit * se_max]])
    if xlim is None:
        (lo, hi), x_ticks = nice_limits(float(show(xs.min())), float(show(xs.max())), scale.log)
    else:
        lo, hi = float(xlim[0]), float(xlim[1])
        if not lo < hi or (scale.log and lo <= 0):
            raise InputError(f"xlim is {xlim}; give increasing limits (> 0 for ratios)")
        x_ticks = [t for t in nice_limits(lo, hi, scale.log)[1] if lo <= t <= hi]

    def wedge(z: float) -> tuple[tuple[float, float], ...]:
        return (
            (float(show(0.0 - z * se_max)), se_max),
            (float(show(0.0)), 0.0),
            (float(show(0.0 + z * se_max)), se_max),
        )

    se_grid = np.array([0.0, se_max])
    curve = None
    if egger is not None:
        se_line = np.linspace(0.0, se_max, 101)
        precision = se_line if egger.predictor == "sei" else se_line**2
        curve = (show(egger.limit_estimate + egger.slope * precision), se_line)
    filled = filled_yi.size > 0
    return FunnelLayout(
        log=scale.log,
        xlabel=scale.xlabel,
        xlim=(lo, hi),
        x_ticks=tuple(x_ticks),
        se_max=se_max,
        y_ticks=tuple(y_ticks),
        levels=tuple(levels),
        wedges=tuple(wedge(norm_isf(alpha / 2.0)) for alpha in levels),
        estimate=float(show(est)),
        estimate_observed=float(show(observed.estimate)) if filled else None,
        pseudo_ci=tuple(
            (show(est + side * crit * se_grid), se_grid)
            for side in ((-1.0, 1.0) if pseudo_ci else ())
        ),
        egger=curve,
        observed=(show(obs_yi), se_obs),
        filled=(show(filled_yi), se_fill),
        legend=tuple(_legend_names(fit, levels, pseudo_ci, filled, egger)),
        footnotes=tuple(excluded_notes(observed.excluded, observed)),
    )


def _se_axis(se: FloatArray) -> tuple[float, list[float]]:
    """The bottom of the standard-error axis and its ticks, 0 included."""
    se_top = float(np.max(se)) if se.size else 1.0
    y_ticks = [float(t) for t in MaxNLocator(nbins=5).tick_values(0.0, se_top * 1.04)]
    se_max = max(t for t in y_ticks if t >= se_top * 1.04 - 1e-12) if y_ticks else se_top
    return se_max, [t for t in y_ticks if 0.0 <= t <= se_max]


def _draw_contours(ax: Axes, layout: FunnelLayout) -> None:
    """The significance regions, darkest (smallest p) on the background."""
    if not layout.levels:
        return
    ax.set_facecolor(_CONTOUR_GREYS[len(layout.levels) - 1])
    ax.patch.set_gid("contour-background")
    shades = ["white", *_CONTOUR_GREYS]
    for j in range(len(layout.levels) - 1, -1, -1):
        ax.add_patch(
            Polygon(
                layout.wedges[j],
                closed=True,
                facecolor=shades[j],
                edgecolor="none",
                gid=f"contour-{j}",
                zorder=0,
            )
        )


def _draw_lines(ax: Axes, layout: FunnelLayout) -> None:
    """The pseudo-confidence region, the estimates and Egger's line."""
    for x, se in layout.pseudo_ci:
        ax.plot(
            x, se, color=th.BLACK, linestyle=(0, (4, 3)), linewidth=0.8, gid="pseudo-ci", zorder=2
        )
    ax.axvline(layout.estimate, color=th.BLACK, linewidth=0.9, gid="estimate", zorder=2)
    if layout.estimate_observed is not None:
        ax.axvline(
            layout.estimate_observed,
            color=th.GREY,
            linewidth=0.9,
            linestyle=(0, (1, 2)),
            gid="estimate-observed",
            zorder=2,
        )
    if layout.egger is not None:
        x, se = layout.egger
        ax.plot(x, se, color=th.VERMILLION, linestyle="-.", linewidth=1.2, gid="egger", zorder=3)


def _draw_studies(ax: Axes, layout: FunnelLayout) -> None:
    """The observed studies as filled circles, those filled in as open ones."""
    groups = [(layout.observed, th.BLACK, 0.6, "observed")]
    if layout.filled[0].size:
        groups.append((layout.filled, "white", 0.9, "filled"))
    for (x, se), face, edge, gid in groups:
        ax.add_line(
            Line2D(
                x,
                se,
                marker="o",
                markersize=5,
                markerfacecolor=face,
                markeredgecolor=th.BLACK,
                markeredgewidth=edge,
                linestyle="none",
                gid=gid,
                zorder=4,
            )
        )


def _legend_names(
    fit: MetaResult,
    levels: Sequence[float],
    pseudo_ci: bool,
    filled: bool,
    egger: RegressionTest | None,
) -> list[str]:
    """The legend entries, in the order they are listed."""
    names = ["Pooled estimate" + (" after filling" if filled else "")]
    if filled:
        names.append("Pooled estimate before filling")
    if pseudo_ci:
        names.append(f"{fit.level:g}% pseudo-confidence region")
    names.append("Studies")
    if filled:
        names.append("Filled in by trim-and-fill")
    if egger is not None:
        names.append("Egger's regression line" if egger.predictor == "sei" else "PEESE curve")
    if levels:
        names.append(f"p \u2265 {_p_text(levels[0])}")
        for j, alpha in enumerate(levels):
            lower = f"{_p_text(levels[j + 1])} \u2264 " if j + 1 < len(levels) else ""
            names.append(f"{lower}p < {_p_text(alpha)}")
    return names


def _legend_handles(layout: FunnelLayout) -> list[Artist]:
    """The legend keys, in the order of :attr:`FunnelLayout.legend`."""
    filled = layout.estimate_observed is not None
    handles: list[Artist] = [Line2D([], [], color=th.BLACK, linewidth=0.9)]
    if filled:
        handles.append(Line2D([], [], color=th.GREY, linestyle=(0, (1, 2)), linewidth=0.9))
    if layout.pseudo_ci:
        handles.append(Line2D([], [], color=th.BLACK, linestyle=(0, (4, 3)), linewidth=0.8))
    handles.append(Line2D([], [], marker="o", color=th.BLACK, linestyle="none", markersize=5))
    if filled:
        handles.append(
            Line2D(
                [],
                [],
                marker="o",
                markerfacecolor="white",
                markeredgecolor=th.BLACK,
                linestyle="none",
                markersize=5,
            )
        )
    if layout.egger is not None:
        handles.append(Line2D([], [], color=th.VERMILLION, linestyle="-.", linewidth=1.2))
    if layout.levels:
        handles.append(Patch(facecolor="white", edgecolor=th.GREY, linewidth=0.5))
        handles += [
            Patch(facecolor=_CONTOUR_GREYS[j], edgecolor=th.GREY, linewidth=0.5)
            for j in range(len(layout.levels))
        ]
    return handles


def _p_text(alpha: float) -> str:
    """``.10``, ``.05``, ``.001``: as journals print significance levels."""
    text = f"{alpha:.2f}" if round(alpha, 2) == alpha else f"{alpha:g}"
    return text.lstrip("0")


def _contour_levels(contours: bool | Sequence[float]) -> list[float]:
    """Significance levels of the contours, largest first."""
    if contours is False:
        return []
    if contours is True:
        return [0.10, 0.05, 0.01]
    levels = sorted({float(a) for a in contours}, reverse=True)
    if not levels or any(not 0.0 < a < 1.0 for a in levels):
        raise InputError(
            f"contours are {list(contours)}; give significance levels between 0 and 1",
            fix="e.g. contours=(0.10, 0.05, 0.01)",
        )
    if len(levels) > len(_CONTOUR_GREYS):
        raise InputError(f"at most {len(_CONTOUR_GREYS)} contour levels can be told apart")
    return levels
