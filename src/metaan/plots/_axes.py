"""A single-axes figure with a fixed layout, for the scatter-type plots."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from metaan._format import MINUS
from metaan.plots import _theme as th

__all__ = [
    "add_footnotes",
    "axes_figure",
    "circle_key",
    "figure_legend",
    "fixed_ticks",
    "legend_rows",
    "place_labels",
    "study_circles",
    "study_points",
    "tick_text",
]

LEFT = 0.75
RIGHT = 0.3
BOTTOM = 0.6
TOP = 0.2
TITLE = 0.3
LEGEND_ROW = 0.22


def axes_figure(
    width: float = 4.6,
    height: float = 3.8,
    *,
    title: str | None = None,
    legend_rows: int = 0,
    right: float = RIGHT,
    top_extra: float = 0.0,
) -> tuple[Figure, Axes]:
    """A figure whose axes are ``width`` x ``height`` inches, margins fixed in inches.

    The layout does not depend on the data or on a layout engine, so the same
    data give the same figure, and several plots of one kind line up.
    """
    bottom = BOTTOM + (legend_rows * LEGEND_ROW + 0.1 if legend_rows else 0.0)
    top = TOP + (TITLE if title else 0.0) + top_extra
    fig_w = LEFT + width + right
    fig_h = bottom + height + top
    fig = th.new_figure(fig_w, fig_h)
    ax = fig.add_axes((LEFT / fig_w, bottom / fig_h, width / fig_w, height / fig_h))
    ax.tick_params(labelsize=th.SMALL_SIZE, labelfontfamily=th.FONT_FAMILY)
    ax.xaxis.label.set_fontfamily(th.FONT_FAMILY)
    ax.yaxis.label.set_fontfamily(th.FONT_FAMILY)
    if title:
        th.figure_title(fig, LEFT / fig_w, 1.0 - (TOP / 2 + TITLE / 2) / fig_h, title)
    return fig, ax


#: Height of one footnote line, in inches.
FOOT_ROW = 0.15


def add_footnotes(fig: Figure, notes: Sequence[str]) -> None:
    """Add ``notes`` under everything in ``fig``, growing the figure downwards.

    The figure's axes, texts and legends keep their sizes and their places
    relative to its top; the notes are wrapped to the figure's width. Used for
    the rows a plot leaves out, so no plot drops a study without a word.
    """
    if not notes:
        return
    width, height = (float(v) for v in fig.get_size_inches())
    room = max(1.0, width - LEFT / 2 - 0.15)
    lines = [line for note in notes for line in th.wrap_to_width(note, room, th.SMALL_SIZE)]
    extra = len(lines) * FOOT_ROW + 0.15
    total = height + extra

    def lift(y: float) -> float:  # a figure fraction, kept at the same inches from the top
        return (y * height + extra) / total

    for ax in fig.axes:
        box = ax.get_position()
        ax.set_position((box.x0, lift(box.y0), box.width, box.height * height / total))
    for text in fig.texts:
        x, y = text.get_position()
        text.set_position((x, lift(float(y))))
    for legend in fig.legends:
        anchor = legend.get_bbox_to_anchor().transformed(fig.transFigure.inverted())
        legend.set_bbox_to_anchor((anchor.x0, lift(anchor.y0)), transform=fig.transFigure)
    fig.set_size_inches(width, total)
    fig.text(
        LEFT / 2 / width,
        (extra - 0.1) / total,
        "\n".join(lines),
        ha="left",
        va="top",
        fontsize=th.SMALL_SIZE,
        fontfamily=th.FONT_FAMILY,
        linespacing=1.35,
        parse_math=False,
        gid="footnotes",
    )


def legend_rows(labels: Sequence[str], width: float) -> tuple[int, int]:
    """Rows and columns of a legend of these labels under axes ``width`` inches wide."""
    widest = max((th.text_width(name, th.SMALL_SIZE) for name in labels), default=0.0)
    entry = widest + 0.55  # handle, padding and column spacing
    ncol = max(1, min(len(labels), int((width + RIGHT) // entry)))
    return -(-len(labels) // ncol), ncol


def figure_legend(fig: Figure, handles: Sequence[Artist], labels: Sequence[str], ncol: int) -> None:
    """A legend under the axes of a figure made by :func:`axes_figure`."""
    if not handles:
        return
    ax = fig.axes[0]
    bottom_of_axes = ax.get_position().y0 * fig.get_figheight()
    fig.legend(
        handles,
        labels,
        loc="upper left",
        bbox_to_anchor=(
            (LEFT - 0.1) / fig.get_figwidth(),
            (bottom_of_axes - BOTTOM) / fig.get_figheight(),
        ),
        ncol=ncol,
        frameon=False,
        handlelength=1.8,
        columnspacing=1.0,
        borderaxespad=0.0,
        borderpad=0.0,
        prop={"family": th.FONT_FAMILY, "size": th.SMALL_SIZE},
    )


def study_circles(ax: Axes, x: npt.ArrayLike, y: npt.ArrayLike, area: npt.ArrayLike) -> None:
    """The studies as circles of the given areas (points squared), ``gid="studies"``.

    Small circles are drawn over large ones, and a circle at the edge of the axes
    is drawn whole. :func:`circle_key` is their legend entry.
    """
    x, y, area = np.asarray(x), np.asarray(y), np.asarray(area)
    order = np.argsort(-area, kind="stable")
    ax.scatter(
        x[order],
        y[order],
        s=area[order],
        facecolors=th.SKY,
        edgecolors=th.BLACK,
        linewidths=0.6,
        alpha=0.85,
        gid="studies",
        zorder=3,
        clip_on=False,
    )


def circle_key() -> Line2D:
    """The legend entry of :func:`study_circles`."""
    return Line2D(
        [],
        [],
        marker="o",
        markerfacecolor=th.SKY,
        markeredgecolor=th.BLACK,
        linestyle="none",
        markersize=7,
    )


def study_points(x: npt.ArrayLike, y: npt.ArrayLike) -> Line2D:
    """The studies as equal points, ``gid="studies"``, to add to the axes."""
    return Line2D(
        x,
        y,
        marker="o",
        markersize=5,
        markerfacecolor=th.BLUE,
        markeredgecolor=th.BLACK,
        markeredgewidth=0.5,
        linestyle="none",
        gid="studies",
    )


def place_labels(
    fig: Figure,
    ax: Axes,
    xs: Sequence[float],
    ys: Sequence[float],
    texts: Sequence[str],
    gids: Sequence[str],
    *,
    size: float = th.SMALL_SIZE - 0.5,
) -> None:
    """Label points without the labels overlapping each other, points or the frame.

    Each label tries, in turn, the four corners around its point (right-up,
    right-down, left-up, left-down) and takes the first that stays inside the
    axes and clear of the labels already placed and of the points; if none is
    clear it takes the least crowded. Labels are placed in the order given, so
    pass the most important first. Works on linear axes; positions are
    computed in inches, so the result does not depend on the output format.
    """
    pos = ax.get_position()
    w_in = pos.width * fig.get_figwidth()
    h_in = pos.height * fig.get_figheight()
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()

    def inches(x: float, y: float) -> tuple[float, float]:
        return (x - x0) / (x1 - x0) * w_in, (y - y0) / (y1 - y0) * h_in

    radius = 0.04
    points = [inches(float(x), float(y)) for x, y in zip(xs, ys, strict=True)]
    taken: list[tuple[float, float, float, float]] = [
        (px - radius, py - radius, px + radius, py + radius) for px, py in points
    ]
    height = size * 1.25 / 72.0
    gap = 0.05

    def overlap(
        a: tuple[float, float, float, float], b: tuple[float, float, float, float]
    ) -> float:
        w = min(a[2], b[2]) - max(a[0], b[0])
        h = min(a[3], b[3]) - max(a[1], b[1])
        return w * h if w > 0 and h > 0 else 0.0

    for (px, py), text, gid in zip(points, texts, gids, strict=True):
        width = th.text_width(text, size)
        options: list[tuple[float, tuple[float, float, float, float], int, int]] = []
        own = (px - radius, py - radius, px + radius, py + radius)
        for shift in (0, 1, 2, 3):
            for sx, sy in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                left = px + gap if sx > 0 else px - gap - width
                lift = gap * 0.4 + shift * height
                bottom = py + lift if sy > 0 else py - lift - height
                box = (left, bottom, left + width, bottom + height)
                outside = (
                    max(0.0, -box[0])
                    + max(0.0, box[2] - w_in)
                    + max(0.0, -box[1])
                    + max(0.0, box[3] - h_in)
                )
                crowd = sum(overlap(box, other) for other in taken if other != own)
                # Farther positions cost a little, so a clear near one wins.
                options.append((crowd + 10.0 * outside * height + 1e-4 * shift, box, sx, sy))
            if min(option[0] for option in options) < 1e-3:
                break
        best = min(options, key=lambda option: option[0])  # the first of the cheapest
        _, box, sx, sy = best
        taken.append(box)
        anchor_x = box[0] if sx > 0 else box[2]
        anchor_y = box[1] if sy > 0 else box[3]
        data_x = x0 + anchor_x / w_in * (x1 - x0)
        data_y = y0 + anchor_y / h_in * (y1 - y0)
        if abs(anchor_y - py) > gap + height * 0.5:
            # A label moved away from its point gets a leader line.
            ax.plot(
                [x0 + px / w_in * (x1 - x0), data_x],
                [y0 + py / h_in * (y1 - y0), data_y],
                color=th.GREY,
                linewidth=0.4,
                zorder=1,
                gid=f"{gid}-leader",
            )
        ax.text(
            data_x,
            data_y,
            text,
            ha="left" if sx > 0 else "right",
            va="bottom" if sy > 0 else "top",
            fontsize=size,
            fontfamily=th.FONT_FAMILY,
            parse_math=False,
            gid=gid,
            clip_on=False,
        )


def fixed_ticks(axis: Axis, ticks: Sequence[float]) -> None:
    """Put major ticks at exactly ``ticks``, labelled by :func:`tick_text`, and no minor ones."""
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda v, _p: tick_text(v)))
    axis.set_minor_locator(NullLocator())


def tick_text(value: float) -> str:
    """A tick label: up to 6 significant digits, typographic minus."""
    text = f"{value:.6g}"
    return text.replace("-", MINUS)
