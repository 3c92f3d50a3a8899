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

import numpy as np
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Polygon
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator

from metaan._dist import norm_isf
from metaan.bias import RegressionTest, TrimAndFill
from metaan.errors import InputError
from metaan.plots import _theme as th
from metaan.plots._axes import add_footnotes, axes_figure, figure_legend, legend_rows, tick_text
from metaan.plots._table import nice_limits
from metaan.plots._text import drawable, excluded_notes
from metaan.plots.forest import scale_of
from metaan.results import MetaResult

__all__ = ["funnel"]

#: Greys of the contour regions, lightest (least significant) first; white is p >= the
#: largest level.
_CONTOUR_GREYS = ("#E8E8E8", "#C6C6C6", "#A3A3A3", "#808080")
WIDTH, HEIGHT = 4.6, 3.8


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
    OR and RR are drawn on a log axis labelled in ratios.

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

    # A study without a finite effect and a positive variance (a double-zero
    # table under Peto) has no place on the plot: it is named in a footnote.
    placed = drawable(observed)
    obs_yi = np.asarray(observed.yi, dtype=float)[placed]
    se_obs = np.sqrt(np.asarray(observed.vi, dtype=float)[placed])
    se_fill = np.sqrt(filled_vi)
    se_all = np.concatenate([se_obs, se_fill])
    se_top = float(np.max(se_all)) if se_all.size else 1.0
    y_ticks = [float(t) for t in MaxNLocator(nbins=5).tick_values(0.0, se_top * 1.04)]
    se_max = max(t for t in y_ticks if t >= se_top * 1.04 - 1e-12) if y_ticks else se_top
    y_ticks = [t for t in y_ticks if 0.0 <= t <= se_max]

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

    handles, names = _legend(fit, levels, pseudo_ci, filled_yi.size > 0, egger)
    rows, ncol = legend_rows(names, WIDTH)
    fig, ax = axes_figure(WIDTH, HEIGHT, title=title, legend_rows=rows)

    if scale.log:
        ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(se_max, 0.0)
    se_grid = np.array([0.0, se_max])

    def wedge(centre: float, z: float) -> list[tuple[float, float]]:
        return [
            (float(show(centre - z * se_max)), se_max),
            (float(show(centre)), 0.0),
            (float(show(centre + z * se_max)), se_max),
        ]

    if levels:
        ax.set_facecolor(_CONTOUR_GREYS[len(levels) - 1])
        ax.patch.set_gid("contour-background")
        shades = ["white", *_CONTOUR_GREYS]
        for j in range(len(levels) - 1, -1, -1):
            z = norm_isf(levels[j] / 2.0)
            ax.add_patch(
                Polygon(
                    wedge(0.0, z),
                    closed=True,
                    facecolor=shades[j],
                    edgecolor="none",
                    gid=f"contour-{j}",
                    zorder=0,
                )
            )
    if pseudo_ci:
        for side in (-1.0, 1.0):
            ax.plot(
                show(est + side * crit * se_grid),
                se_grid,
                color=th.BLACK,
                linestyle=(0, (4, 3)),
                linewidth=0.8,
                gid="pseudo-ci",
                zorder=2,
            )
    ax.axvline(float(show(est)), color=th.BLACK, linewidth=0.9, gid="estimate", zorder=2)
    if filled_yi.size:
        ax.axvline(
            float(show(observed.estimate)),
            color=th.GREY,
            linewidth=0.9,
            linestyle=(0, (1, 2)),
            gid="estimate-observed",
            zorder=2,
        )
    if egger is not None:
        se_line = np.linspace(0.0, se_max, 101)
        precision = se_line if egger.predictor == "sei" else se_line**2
        ax.plot(
            show(egger.limit_estimate + egger.slope * precision),
            se_line,
            color=th.VERMILLION,
            linestyle="-.",
            linewidth=1.2,
            gid="egger",
            zorder=3,
        )
    ax.add_line(
        Line2D(
            show(obs_yi),
            se_obs,
            marker="o",
            markersize=5,
            markerfacecolor=th.BLACK,
            markeredgecolor=th.BLACK,
            markeredgewidth=0.6,
            linestyle="none",
            gid="observed",
            zorder=4,
        )
    )
    if filled_yi.size:
        ax.add_line(
            Line2D(
                show(filled_yi),
                se_fill,
                marker="o",
                markersize=5,
                markerfacecolor="white",
                markeredgecolor=th.BLACK,
                markeredgewidth=0.9,
                linestyle="none",
                gid="filled",
                zorder=4,
            )
        )
    ax.xaxis.set_major_locator(FixedLocator(x_ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: tick_text(v)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_locator(FixedLocator(y_ticks))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: tick_text(v)))
    ax.set_xlabel(scale.xlabel, fontfamily=th.FONT_FAMILY)
    ax.set_ylabel("Standard error", fontfamily=th.FONT_FAMILY)
    figure_legend(fig, handles, names, ncol)
    add_footnotes(fig, excluded_notes(observed.excluded, observed))
    return fig


def _legend(
    fit: MetaResult,
    levels: Sequence[float],
    pseudo_ci: bool,
    filled: bool,
    egger: RegressionTest | None,
) -> tuple[list[Artist], list[str]]:
    """The legend entries, in the order they are listed."""
    handles: list[Artist] = [Line2D([], [], color=th.BLACK, linewidth=0.9)]
    names = ["Pooled estimate" + (" after filling" if filled else "")]
    if filled:
        handles.append(Line2D([], [], color=th.GREY, linestyle=(0, (1, 2)), linewidth=0.9))
        names.append("Pooled estimate before filling")
    if pseudo_ci:
        handles.append(Line2D([], [], color=th.BLACK, linestyle=(0, (4, 3)), linewidth=0.8))
        names.append(f"{fit.level:g}% pseudo-confidence region")
    handles.append(Line2D([], [], marker="o", color=th.BLACK, linestyle="none", markersize=5))
    names.append("Studies")
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
        names.append("Filled in by trim-and-fill")
    if egger is not None:
        handles.append(Line2D([], [], color=th.VERMILLION, linestyle="-.", linewidth=1.2))
        names.append("Egger's regression line" if egger.predictor == "sei" else "PEESE curve")
    if levels:
        handles.append(Patch(facecolor="white", edgecolor=th.GREY, linewidth=0.5))
        names.append(f"p \u2265 {_p_text(levels[0])}")
        for j, alpha in enumerate(levels):
            lower = f"{_p_text(levels[j + 1])} \u2264 " if j + 1 < len(levels) else ""
            handles.append(Patch(facecolor=_CONTOUR_GREYS[j], edgecolor=th.GREY, linewidth=0.5))
            names.append(f"{lower}p < {_p_text(alpha)}")
    return handles, names


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
