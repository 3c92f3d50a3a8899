"""The table-and-axis layout shared by every forest-style plot.

A forest-style figure is a table: text columns on the left (the label and any
extra columns), the effect axis, text columns on the right (estimate with CI,
weight) and optional risk-of-bias columns. The layout is computed in inches
from measured text, so a label of any length fits (it is wrapped, never cut)
and the figure grows with the number of rows.

The rows area is one matplotlib Axes whose y unit is one inch, counted down
from the first row; text columns use a transform whose x is inches from the
figure's left edge and whose y is that of the Axes.

Artists carry a ``gid`` so the structure of a figure can be checked (and is
kept as ``id`` attributes in SVG): ``study-<i>`` (the marker of row ``i``),
``ci-<i>`` (its interval), ``excluded-<i>``, ``diamond-<name>``, ``pi-<name>``,
``label-<i>``, ``rob-<i>-<domain>``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Polygon, Rectangle
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator
from matplotlib.transforms import Transform, blended_transform_factory, offset_copy

from metaan._format import MINUS
from metaan.errors import InputError
from metaan.plots import _theme as th
from metaan.rob import LEVEL_NAMES, rob_level

__all__ = [
    "ROB_LEVELS",
    "Column",
    "Row",
    "Scale",
    "TableLayout",
    "draw_layout",
    "draw_table",
    "draw_table_pages",
    "layout_table",
    "nice_limits",
    "paginate",
    "rob_level",
]

RowKind = Literal["study", "excluded", "pooled", "pi", "heading", "note", "space"]

# Layout constants, in inches.
MARGIN = 0.15
GAP = 0.2
LINE = 0.2
LEADING = th.FONT_SIZE * 1.25 / 72.0
NOTE_LEADING = th.SMALL_SIZE * 1.3 / 72.0
HEADER = 0.3
ROB_WIDTH = 0.24
MIN_LEFT_BLOCK = 3.8
# Markers, in points.
MAX_SQUARE = 0.62 * LINE * 72.0
MIN_SQUARE = 3.0
ROB_MARKER = 0.7 * LINE * 72.0
DIAMOND_HALF = 0.34 * LINE
PI_HALF = 0.12 * LINE


@dataclass(frozen=True)
class Column:
    """A text column: ``key`` indexes :attr:`Row.cells`."""

    key: str
    header: str
    side: Literal["left", "right"] = "left"
    align: Literal["left", "right", "center"] = "left"


@dataclass(frozen=True)
class Row:
    """One row of a forest-style table; values are on the analysis scale."""

    kind: RowKind
    label: str = ""
    cells: Mapping[str, str] = field(default_factory=dict)
    est: float | None = None
    lb: float | None = None
    ub: float | None = None
    #: Marker scale in [0, 1]: the square's area is proportional to it.
    size: float = 1.0
    rob: Mapping[str, str | None] | None = None
    gid: str = ""
    bold: bool = False
    #: Marker of a study-like row: ``"s"`` (a square sized by weight) or ``"o"``
    #: (a point of fixed size, for estimates that are not single studies).
    marker: str = "s"
    #: A prediction interval drawn as a whisker through a pooled row's diamond.
    pi_lb: float | None = None
    pi_ub: float | None = None


@dataclass(frozen=True)
class Scale:
    """How the effect axis is drawn."""

    #: Values are logs of ratios, drawn back-transformed on a log axis.
    log: bool
    xlabel: str
    #: The value of no effect on the analysis scale (0), or None for no line.
    null: float | None = 0.0

    def show(self, x: float) -> float:
        """A value on the analysis scale as the axis shows it."""
        if not self.log:
            return x
        with np.errstate(over="ignore"):
            return float(np.exp(x))


#: RoB 2 judgements: colour (Okabe-Ito), symbol, name. Colour and symbol both
#: carry the judgement, so it reads in greyscale and for colour-blind readers.
ROB_LEVELS: dict[str, tuple[str, str, str]] = {
    "low": (th.GREEN, "+", LEVEL_NAMES["low"]),
    "some": (th.YELLOW, MINUS, LEVEL_NAMES["some"]),
    "high": (th.VERMILLION, "\u00d7", LEVEL_NAMES["high"]),
    "none": (th.LIGHT_GREY, "?", LEVEL_NAMES["none"]),
}


def nice_limits(lo: float, hi: float, log: bool) -> tuple[tuple[float, float], list[float]]:
    """Axis limits that end on round numbers, and the ticks between them."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise InputError("the axis limits of the plot are not finite numbers")
    if log:
        if lo <= 0 or hi <= 0:
            raise InputError("limits of a log axis must be > 0", fix="give positive limits")
        if hi / lo < 1.05:
            lo, hi = lo / 1.05, hi * 1.05
        ticks: list[float] = []
        # Coarse sets first; a narrow range takes a finer set so it has >= 4 ticks.
        coarse: tuple[tuple[float, ...], ...] = ((1.0, 2.0, 5.0), (1.0, 3.0), (1.0,))
        fine: tuple[tuple[float, ...], ...] = (
            (1.0, 1.5, 2.0, 3.0, 5.0, 7.0),
            (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0),
        )
        for mantissas in coarse:
            ticks = _log_ticks(lo, hi, mantissas)
            if len(ticks) <= 9:
                break
        if len(ticks) < 4:
            for mantissas in fine:
                finer = _log_ticks(lo, hi, mantissas)
                if len(finer) <= 9:
                    ticks = finer
                if len(finer) >= 4:
                    break
        return (ticks[0], ticks[-1]), ticks
    if hi - lo < 1e-12 * max(1.0, abs(lo), abs(hi)):
        pad = max(abs(lo) * 0.1, 0.1)
        lo, hi = lo - pad, hi + pad
    values = MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
    ticks = [float(f"{v:.12g}") + 0.0 for v in values]
    eps = 1e-9 * (hi - lo)
    t_lo = max(t for t in ticks if t <= lo + eps)
    t_hi = min(t for t in ticks if t >= hi - eps)
    ticks = [t for t in ticks if t_lo <= t <= t_hi]
    return (t_lo, t_hi), ticks


def _log_ticks(lo: float, hi: float, mantissas: tuple[float, ...]) -> list[float]:
    """Round ticks from a 1-2-5 style set, from the last below ``lo`` to the first above ``hi``."""
    cands = [float(f"{m * 10.0**e:.12g}") for e in range(-8, 9) for m in mantissas]
    below = [c for c in cands if c <= lo * (1 + 1e-12)]
    above = [c for c in cands if c >= hi * (1 - 1e-12)]
    t_lo = max(below) if below else min(cands)
    t_hi = min(above) if above else max(cands)
    return [c for c in cands if t_lo <= c <= t_hi]


def _tick_text(value: float) -> str:
    text = f"{value:.6g}"
    if "e" in text:
        text = f"{value:g}"
    return text.replace("-", MINUS)


def _avg_char_width(size: float) -> float:
    sample = "The quick brown fox jumps over the lazy dog 1984"
    return th.text_width(sample, size) / len(sample)


@dataclass(frozen=True)
class _Placed:
    row: Row
    top: float
    height: float
    lines: dict[str, list[str]]

    @property
    def mid(self) -> float:
        return self.top + self.height / 2.0


@dataclass(frozen=True)
class TableLayout:
    """Where everything of a forest-style table goes, in inches: the pure layout step.

    :func:`layout_table` computes it from measured text; :func:`draw_layout`
    draws all of it, or a run of its rows as one page of a table that continues
    over several pages (:func:`paginate`).
    """

    placed: tuple[_Placed, ...]
    label_header: str
    columns: tuple[Column, ...]
    scale: Scale
    rob_domains: tuple[str, ...]
    rob_legend: tuple[str, ...]
    title: str | None
    reference: float | None
    widths: dict[str, float]
    col_x: dict[str, float]
    rob_x: dict[str, float]
    plot_x0: float
    plot_width: float
    fig_width: float
    lo: float
    hi: float
    ticks: tuple[float, ...]
    fav_lines: tuple[list[str], list[str]]
    foot_lines: tuple[list[str], ...]

    @property
    def null_shown(self) -> float | None:
        return self.scale.show(self.scale.null) if self.scale.null is not None else None

    @property
    def axis_height(self) -> float:
        n_fav = max(len(self.fav_lines[0]), len(self.fav_lines[1]))
        if n_fav == 0:
            return (_XLABEL_OFF + 16.0) / 72.0
        return (_FAV_OFF + n_fav * th.SMALL_SIZE * 1.25 + 6.0) / 72.0

    @property
    def foot_height(self) -> float:
        legend = LINE + 0.05 if self.rob_legend else 0.0
        return sum(len(f) for f in self.foot_lines) * NOTE_LEADING + legend

    @property
    def title_height(self) -> float:
        return 0.3 if self.title else 0.0

    def height(self, rows: slice, *, last: bool) -> float:
        """The height of a figure of ``rows``, with the footnotes if it is the last page."""
        part = self.placed[rows]
        rows_height = max(sum(p.height for p in part), LINE)
        foot = self.foot_height if last else 0.0
        return 2 * MARGIN + self.title_height + HEADER + rows_height + self.axis_height + foot


_XLABEL_OFF = 21.0  # points below the axis
_FAV_OFF = _XLABEL_OFF + 14.0


def _weight_of(row: Row) -> str:
    return "bold" if row.bold or row.kind == "heading" else "normal"


def draw_table(rows: Sequence[Row], **options: Any) -> Figure:
    """Lay out and draw a forest-style table (see the module docstring and :func:`layout_table`)."""
    with th.theme():
        return draw_layout(layout_table(rows, **options))


def draw_table_pages(
    rows: Sequence[Row],
    *,
    page_size: tuple[float, float],
    min_scale: float = 0.75,
    **options: Any,
) -> list[Figure]:
    """A forest-style table as pages: each fits ``page_size`` (inches) once scaled to its width.

    A figure wider than the page is shrunk to the page's width when printed, so
    its pages may be taller by the same factor. A table that would be shrunk
    below ``min_scale`` (8 pt notes would print under 6 pt at 0.75) is laid out
    narrower first: labels and notes wrap sooner and the axis narrows, down to
    16 characters, 2.4 inches of notes and a 2-inch axis. Every page repeats the
    title (as "continued"), the column headers and the axis; the footnotes close
    the last.
    """
    with th.theme():
        layout = layout_table(rows, **options)
        label_width = int(options.get("label_width", 40))
        plot_width = float(options.get("plot_width", 3.0))
        left = MIN_LEFT_BLOCK
        while page_size[0] / layout.fig_width < min_scale and (
            label_width > 16 or plot_width > 2 or left > 2.4
        ):
            label_width, plot_width = max(16, label_width - 4), max(2.0, plot_width - 0.25)
            left = max(2.4, left - 0.2)
            narrower = {
                **options,
                "label_width": label_width,
                "plot_width": plot_width,
                "min_left_block": left,
            }
            layout = layout_table(rows, **narrower)
        shrink = min(1.0, page_size[0] / layout.fig_width)
        pages = paginate(layout, page_size[1] / shrink)
        return [
            draw_layout(layout, part, first=i == 0, last=i == len(pages) - 1)
            for i, part in enumerate(pages)
        ]


def paginate(layout: TableLayout, max_height: float) -> list[slice]:
    """Runs of rows that each fit a figure of ``max_height`` inches.

    A page never starts with a prediction-interval row or a note, which stay
    with the row they belong to.
    """
    pages: list[slice] = []
    start = 0
    n = len(layout.placed)
    while start < n:
        end = start + 1
        while end < n and layout.height(slice(start, end + 1), last=end + 1 == n) <= max_height:
            end += 1
        while start + 1 < end < n and layout.placed[end].row.kind in ("pi", "note", "space"):
            end -= 1
        pages.append(slice(start, end))
        start = end
    return pages


def layout_table(
    rows: Sequence[Row],
    *,
    label_header: str,
    columns: Sequence[Column],
    scale: Scale,
    rob_domains: Sequence[str] = (),
    rob_legend: Sequence[str] = (),
    favours: tuple[str, str] | None = None,
    xlim: tuple[float, float] | None = None,
    label_width: int = 40,
    plot_width: float = 3.0,
    title: str | None = None,
    footnotes: Sequence[str] = (),
    reference: float | None = None,
    min_left_block: float = MIN_LEFT_BLOCK,
) -> TableLayout:
    """The layout of a forest-style table: text measured, columns and rows placed.

    ``xlim`` is in the units the axis shows (ratios for a log axis).
    ``favours`` is the pair of texts for the left and right of the null line.
    """
    if label_width < 10:
        raise InputError(f"label_width is {label_width}; give at least 10 characters")
    if plot_width <= 0.5:
        raise InputError(f"plot_width is {plot_width:g} inches; give more than 0.5")
    with th.theme():
        # A little over the average width, so that a label of label_width characters
        # with wide letters still fits on one line.
        cap = 1.2 * label_width * _avg_char_width(th.FONT_SIZE)
        label_lines, cell_lines, widths, left_block = _measure(
            rows, label_header, columns, cap, min_left_block
        )
        col_x, rob_x, plot_x0, fig_width = _x_positions(columns, widths, rob_domains, plot_width)
        placed = _y_positions(rows, label_lines, cell_lines, left_block)
        lo, hi, ticks = _axis(rows, scale, xlim, favours)
        fav_lines = _favours(favours, scale, lo, hi, plot_x0, plot_width, fig_width)
        foot_lines = tuple(
            th.wrap_to_width(f, fig_width - 2 * MARGIN, th.SMALL_SIZE) for f in footnotes
        )
    return TableLayout(
        placed=tuple(placed),
        label_header=label_header,
        columns=tuple(columns),
        scale=scale,
        rob_domains=tuple(rob_domains),
        rob_legend=tuple(rob_legend),
        title=title,
        reference=reference,
        widths=widths,
        col_x=col_x,
        rob_x=rob_x,
        plot_x0=plot_x0,
        plot_width=plot_width,
        fig_width=fig_width,
        lo=lo,
        hi=hi,
        ticks=tuple(ticks),
        fav_lines=fav_lines,
        foot_lines=foot_lines,
    )


def _measure(
    rows: Sequence[Row],
    label_header: str,
    columns: Sequence[Column],
    cap: float,
    min_left_block: float,
) -> tuple[list[list[str]], list[dict[str, list[str]]], dict[str, float], float]:
    """Wrapped lines of every label and cell, and the width of each column."""
    size = th.FONT_SIZE
    label_lines: list[list[str]] = []
    for row in rows:
        if row.kind in ("note", "space") or not row.label:
            label_lines.append([])
        else:
            label_lines.append(th.wrap_to_width(row.label, cap, size, weight=_weight_of(row)))
    widths: dict[str, float] = {}
    widths["label"] = max(
        [th.text_width(label_header, size, weight="bold")]
        + [
            th.text_width(line, size, weight=_weight_of(row))
            for row, lines in zip(rows, label_lines, strict=True)
            for line in lines
        ]
    )
    cell_lines: list[dict[str, list[str]]] = []
    for row in rows:
        cells = {}
        for col in columns:
            text = row.cells.get(col.key, "")
            # Extra columns are narrower than the label: a long note wraps sooner.
            width = cap if col.side == "right" else 0.6 * cap
            cells[col.key] = th.wrap_to_width(text, width, size) if text else []
        cell_lines.append(cells)
    for col in columns:
        widths[col.key] = max(
            [th.text_width(col.header, size, weight="bold")]
            + [
                th.text_width(line, size, weight=_weight_of(row))
                for row, cells in zip(rows, cell_lines, strict=True)
                for line in cells[col.key]
            ]
        )
    # The left block (label and left columns) also holds the notes; give it room.
    left_block = widths["label"] + sum(GAP + widths[c.key] for c in columns if c.side == "left")
    if left_block < min_left_block and any(row.kind == "note" for row in rows):
        widths["label"] += min_left_block - left_block
        left_block = min_left_block
    return label_lines, cell_lines, widths, left_block


def _x_positions(
    columns: Sequence[Column],
    widths: dict[str, float],
    rob_domains: Sequence[str],
    plot_width: float,
) -> tuple[dict[str, float], dict[str, float], float, float]:
    """Column starts (inches from the figure's left edge), the plot's start, the width."""
    x = MARGIN
    col_x: dict[str, float] = {"label": x}
    x += widths["label"]
    for col in (c for c in columns if c.side == "left"):
        x += GAP
        col_x[col.key] = x
        x += widths[col.key]
    x += GAP
    plot_x0 = x
    x += plot_width
    for col in (c for c in columns if c.side == "right"):
        x += GAP
        col_x[col.key] = x
        x += widths[col.key]
    rob_x: dict[str, float] = {}
    if rob_domains:
        x += GAP / 2
        for dom in rob_domains:
            width = max(ROB_WIDTH, th.text_width(dom, th.SMALL_SIZE, weight="bold") + 0.06)
            rob_x[dom] = x + width / 2
            x += width
    return col_x, rob_x, plot_x0, x + MARGIN


def _y_positions(
    rows: Sequence[Row],
    label_lines: list[list[str]],
    cell_lines: list[dict[str, list[str]]],
    left_block: float,
) -> list[_Placed]:
    """Row tops and heights (inches down from the top of the rows area)."""
    placed: list[_Placed] = []
    y = 0.0
    for row, lab, cells in zip(rows, label_lines, cell_lines, strict=True):
        lines = {"label": lab, **cells}
        if row.kind == "space":
            h = LINE / 2
        elif row.kind == "note":
            note = th.wrap_to_width(row.label, left_block, th.SMALL_SIZE)
            lines = {"label": note}
            h = len(note) * NOTE_LEADING + 0.05
        else:
            n = max([1] + [len(v) for v in lines.values()])
            h = LINE + (n - 1) * LEADING
        placed.append(_Placed(row, y, h, lines))
        y += h
    return placed


def _axis(
    rows: Sequence[Row],
    scale: Scale,
    xlim: tuple[float, float] | None,
    favours: tuple[str, str] | None,
) -> tuple[float, float, list[float]]:
    """The axis limits (in the units shown) and ticks: every interval fits unless xlim is given."""
    if xlim is not None:
        lo, hi = float(xlim[0]), float(xlim[1])
        if not lo < hi:
            raise InputError(f"xlim is {xlim}; the lower limit must be below the upper")
        if scale.log and lo <= 0:
            raise InputError(f"xlim is {xlim}; a ratio axis needs limits > 0")
        _, ticks = nice_limits(lo, hi, scale.log)
        return lo, hi, [t for t in ticks if lo <= t <= hi]
    shown_lo: list[float] = []
    shown_hi: list[float] = []
    for row in rows:
        if row.kind not in ("study", "pooled", "pi"):
            continue
        for a, b in ((row.lb, row.ub), (row.pi_lb, row.pi_ub)):
            if a is None or b is None:
                continue
            lo_v, hi_v = scale.show(a), scale.show(b)
            if math.isfinite(lo_v) and lo_v > (0 if scale.log else -math.inf):
                shown_lo.append(lo_v)
            if math.isfinite(hi_v):
                shown_hi.append(hi_v)
    if scale.null is not None:
        shown_lo.append(scale.show(scale.null))
        shown_hi.append(scale.show(scale.null))
    if not shown_lo:
        shown_lo, shown_hi = [scale.show(0.0)], [scale.show(0.0)]
    lo_d, hi_d = min(shown_lo), max(shown_hi)
    (lo, hi), ticks = nice_limits(lo_d, hi_d, scale.log)
    if favours is not None and scale.null is not None:
        # The "favours" labels need room on both sides of the null line.
        null_v = scale.show(scale.null)
        if null_v in (lo, hi):
            if scale.log:
                span = math.log(hi / lo) * 0.15
                lo_d = min(lo_d, null_v * math.exp(-span))
                hi_d = max(hi_d, null_v * math.exp(span))
            else:
                span = (hi - lo) * 0.15
                lo_d, hi_d = min(lo_d, null_v - span), max(hi_d, null_v + span)
            (lo, hi), ticks = nice_limits(lo_d, hi_d, scale.log)
    return lo, hi, ticks


def _favours(
    favours: tuple[str, str] | None,
    scale: Scale,
    lo: float,
    hi: float,
    plot_x0: float,
    plot_width: float,
    fig_width: float,
) -> tuple[list[str], list[str]]:
    """The "favours" labels, wrapped to the room on each side of the null line."""
    null_shown = scale.show(scale.null) if scale.null is not None else None
    if favours is None or null_shown is None or not lo < null_shown < hi:
        return [], []
    frac = (
        (math.log(null_shown) - math.log(lo)) / (math.log(hi) - math.log(lo))
        if scale.log
        else (null_shown - lo) / (hi - lo)
    )
    room_left = plot_x0 + frac * plot_width - MARGIN - 0.05
    room_right = fig_width - MARGIN - (plot_x0 + frac * plot_width) - 0.05
    return (
        th.wrap_to_width(f"\u2190 {favours[0]}", room_left, th.SMALL_SIZE),
        th.wrap_to_width(f"{favours[1]} \u2192", room_right, th.SMALL_SIZE),
    )


class _Canvas:
    """A page of a table being drawn: the figure, its rows Axes and text helpers."""

    def __init__(self, layout: TableLayout, rows: slice, *, first: bool, last: bool) -> None:
        self.layout = layout
        self.placed = layout.placed[rows]
        self.start = rows.indices(len(layout.placed))[0]
        self.offset = self.placed[0].top if self.placed else 0.0
        self.rows_height = max(sum(p.height for p in self.placed), LINE)
        self.bottom = layout.axis_height + (layout.foot_height if last else 0.0) + MARGIN
        self.fig_height = layout.height(rows, last=last)
        self.fig = th.new_figure(layout.fig_width, self.fig_height)
        self.ax = self._axes()
        self.text_tr = blended_transform_factory(self.fig.dpi_scale_trans, self.ax.transData)
        self.first, self.last = first, last

    def _axes(self) -> Axes:
        lay, fig = self.layout, self.fig
        ax = fig.add_axes(
            (
                lay.plot_x0 / lay.fig_width,
                self.bottom / self.fig_height,
                lay.plot_width / lay.fig_width,
                self.rows_height / self.fig_height,
            )
        )
        ax.set_ylim(self.offset + self.rows_height, self.offset)
        if lay.scale.log:
            ax.set_xscale("log")
        ax.set_xlim(lay.lo, lay.hi)
        ax.xaxis.set_major_locator(FixedLocator(list(lay.ticks)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _tick_text(v)))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_locator(NullLocator())
        ax.yaxis.set_minor_locator(NullLocator())
        ax.tick_params(
            axis="x", labelsize=th.SMALL_SIZE, labelfontfamily=th.FONT_FAMILY, length=3.5
        )
        for side in ("left", "right", "top"):
            ax.spines[side].set_visible(False)
        ax.patch.set_visible(False)
        return ax

    def put(
        self,
        xpos: float,
        ypos: float,
        text: str,
        *,
        ha: str = "left",
        weight: str = "normal",
        style: str = "normal",
        fontsize: float = th.FONT_SIZE,
        color: str = th.BLACK,
        gid: str | None = None,
        transform: Transform | None = None,
        va: str = "center",
    ) -> None:
        self.ax.text(
            xpos,
            ypos,
            text,
            transform=transform if transform is not None else self.text_tr,
            ha=ha,
            va=va,
            fontsize=fontsize,
            fontfamily=th.FONT_FAMILY,
            fontweight=weight,
            fontstyle=style,
            color=color,
            linespacing=1.25,
            parse_math=False,
            clip_on=False,
            gid=gid,
        )

    def anchor(self, key: str, align: str) -> tuple[float, str]:
        lay = self.layout
        if align == "right":
            return lay.col_x[key] + lay.widths[key], "right"
        if align == "center":
            return lay.col_x[key] + lay.widths[key] / 2, "center"
        return lay.col_x[key], "left"


def draw_layout(
    layout: TableLayout, rows: slice = slice(None), *, first: bool = True, last: bool = True
) -> Figure:
    """Draw a laid-out table, or the run ``rows`` of it as one page.

    The first page carries the title, later pages the title marked as continued;
    every page has the column headers and the axis; the last has the footnotes.
    """
    with th.theme():
        cv = _Canvas(layout, rows, first=first, last=last)
        _draw_header(cv)
        _draw_references(cv)
        _draw_rows(cv)
        _draw_axis_labels(cv)
        if last:
            _draw_footer(cv)
        return cv.fig


def _draw_header(cv: _Canvas) -> None:
    lay, fig = cv.layout, cv.fig
    head_y = cv.offset - HEADER / 2
    cv.put(lay.col_x["label"], head_y, lay.label_header, weight="bold")
    for col in lay.columns:
        xpos, ha = cv.anchor(col.key, col.align)
        cv.put(xpos, head_y, col.header, ha=ha, weight="bold")
    for dom in lay.rob_domains:
        cv.put(lay.rob_x[dom], head_y, dom, ha="center", weight="bold", fontsize=th.SMALL_SIZE)
    rule_tr = blended_transform_factory(fig.transFigure, cv.ax.transData)
    cv.ax.add_line(
        Line2D(
            [MARGIN / lay.fig_width, 1 - MARGIN / lay.fig_width],
            [cv.offset, cv.offset],
            transform=rule_tr,
            color=th.BLACK,
            linewidth=0.6,
            clip_on=False,
        )
    )
    if lay.title:
        title = lay.title if cv.first else f"{lay.title} (continued)"
        th.figure_title(
            fig, MARGIN / lay.fig_width, 1 - (MARGIN + lay.title_height / 2) / cv.fig_height, title
        )


def _draw_references(cv: _Canvas) -> None:
    """Reference lines: no effect, and the pooled estimate."""
    lay = cv.layout
    null_shown = lay.null_shown
    if null_shown is not None and lay.lo <= null_shown <= lay.hi:
        cv.ax.axvline(null_shown, color=th.BLACK, linewidth=0.8, zorder=1, gid="null-line")
    if lay.reference is not None:
        ref = lay.scale.show(lay.reference)
        if lay.lo <= ref <= lay.hi:
            cv.ax.axvline(
                ref, color=th.GREY, linewidth=0.7, linestyle=(0, (3, 3)), zorder=1, gid="ref-line"
            )


def _draw_rows(cv: _Canvas) -> None:
    lay = cv.layout
    study_sizes = [p.row.size for p in lay.placed if p.row.kind == "study"]
    max_size = max([*study_sizes, 1e-300])
    for i, p in enumerate(cv.placed, start=cv.start):
        row = p.row
        gid = row.gid or str(i)
        # Texts of study rows are "label-<gid>"; other kinds name their kind, so that
        # every id in an SVG is unique (a pooled row and its PI row share a gid).
        tid = gid if row.kind in ("study", "excluded") else f"{row.kind}-{gid}"
        if row.kind == "note":
            text = "\n".join(p.lines["label"])
            cv.put(lay.col_x["label"], p.mid, text, fontsize=th.SMALL_SIZE, gid=f"note-{gid}")
            continue
        if row.kind == "space":
            continue
        _draw_texts(cv, p, tid)
        if row.rob is not None:
            for dom in lay.rob_domains:
                level = row.rob.get(dom)
                if level is not None:
                    _rob_marker(cv.ax, cv.text_tr, lay.rob_x[dom], p.mid, level, f"rob-{gid}-{dom}")
        if row.est is None or row.lb is None or row.ub is None:
            continue
        box = _Box(cv.ax, lay.scale, lay.lo, lay.hi, p.mid, gid)
        if row.kind == "study":
            box.study(row.est, row.lb, row.ub, row.size / max_size, row.marker)
        elif row.kind == "pooled":
            if row.pi_lb is not None and row.pi_ub is not None:
                box.whisker(row.pi_lb, row.pi_ub)
            box.diamond(row.est, row.lb, row.ub, row.bold)
        elif row.kind == "pi":
            box.bar(row.lb, row.ub)


def _draw_texts(cv: _Canvas, p: _Placed, tid: str) -> None:
    row = p.row
    weight = _weight_of(row)
    style = "italic" if row.kind in ("excluded", "pi") else "normal"
    color = th.GREY if row.kind == "excluded" else th.BLACK
    if p.lines["label"]:
        cv.put(
            cv.layout.col_x["label"],
            p.mid,
            "\n".join(p.lines["label"]),
            weight=weight,
            style=style,
            color=color,
            gid=f"label-{tid}",
        )
    for col in cv.layout.columns:
        if p.lines[col.key]:
            xpos, ha = cv.anchor(col.key, col.align)
            cv.put(
                xpos,
                p.mid,
                "\n".join(p.lines[col.key]),
                ha=ha,
                weight=weight,
                color=color,
                gid=f"cell-{col.key}-{tid}",
            )


def _draw_axis_labels(cv: _Canvas) -> None:
    """Axis label and favours labels under the axis."""
    lay, fig, ax = cv.layout, cv.fig, cv.ax
    below = blended_transform_factory(ax.transAxes, ax.transAxes)
    cv.put(
        0.5,
        0.0,
        lay.scale.xlabel,
        ha="center",
        va="top",
        transform=offset_copy(below, fig, y=-_XLABEL_OFF, units="points"),
        gid="xlabel",
    )
    null_shown = lay.null_shown
    if null_shown is None:
        return
    fav_tr = offset_copy(
        blended_transform_factory(ax.transData, ax.transAxes), fig, y=-_FAV_OFF, units="points"
    )
    for side, fav in enumerate(lay.fav_lines):
        if not fav:
            continue
        cv.put(
            null_shown,
            0.0,
            "\n".join(fav),
            ha="right" if side == 0 else "left",
            va="top",
            fontsize=th.SMALL_SIZE,
            transform=offset_copy(fav_tr, fig, x=-4 if side == 0 else 4, units="points"),
            gid=f"favours-{'left' if side == 0 else 'right'}",
        )


def _draw_footer(cv: _Canvas) -> None:
    """Footnotes and the risk-of-bias key at the bottom of the last page."""
    lay, fig = cv.layout, cv.fig
    y_in = cv.bottom - lay.axis_height
    if lay.rob_legend:
        rob_legend(fig, y_in - LINE / 2 - 0.02, lay.rob_legend)
        y_in -= LINE + 0.05
    for foot in lay.foot_lines:
        fig.text(
            MARGIN / lay.fig_width,
            y_in / cv.fig_height,
            "\n".join(foot),
            ha="left",
            va="top",
            fontsize=th.SMALL_SIZE,
            fontfamily=th.FONT_FAMILY,
            linespacing=1.3,
            parse_math=False,
            gid="footnote",
        )
        y_in -= len(foot) * NOTE_LEADING


@dataclass(frozen=True)
class _Box:
    """Draws the graphical part of one row, clipping at the axis limits."""

    ax: Axes
    scale: Scale
    lo: float
    hi: float
    y: float
    gid: str

    def _clip(self, a: float, b: float) -> tuple[float, float]:
        """An interval on the shown scale, cut at the axis, with an arrow where cut."""
        sa, sb = self.scale.show(a), self.scale.show(b)
        cut_lo, cut_hi = not sa >= self.lo, not sb <= self.hi
        if cut_lo:
            self._arrow(self.lo, left=True)
        if cut_hi:
            self._arrow(self.hi, left=False)
        return (self.lo if cut_lo else sa), (self.hi if cut_hi else sb)

    def _arrow(self, xpos: float, *, left: bool) -> None:
        self.ax.add_line(
            Line2D(
                [xpos],
                [self.y],
                marker="<" if left else ">",
                markersize=5,
                color=th.BLACK,
                linestyle="none",
                clip_on=False,
                gid=f"arrow-{self.gid}-{'lo' if left else 'hi'}",
                zorder=4,
            )
        )

    def study(self, est: float, lb: float, ub: float, size: float, marker: str) -> None:
        a, b = self._clip(lb, ub)
        if a < b:
            self.ax.add_line(
                Line2D(
                    [a, b], [self.y, self.y], color=th.BLACK, linewidth=0.9, gid=f"ci-{self.gid}"
                )
            )
        shown = self.scale.show(est)
        if not self.lo <= shown <= self.hi:
            return
        if marker == "s":
            side = max(MIN_SQUARE, MAX_SQUARE * math.sqrt(max(size, 0.0)))
            face = th.BLUE
        else:
            side, face = 5.0, th.BLACK
        self.ax.add_line(
            Line2D(
                [shown],
                [self.y],
                marker=marker,
                markersize=side,
                markerfacecolor=face,
                markeredgecolor=th.BLACK,
                markeredgewidth=0.5,
                linestyle="none",
                gid=f"study-{self.gid}",
                zorder=3,
            )
        )

    def diamond(self, est: float, lb: float, ub: float, bold: bool) -> None:
        a, b = self._clip(lb, ub)
        mid = min(max(self.scale.show(est), self.lo), self.hi)
        y = self.y
        self.ax.add_patch(
            Polygon(
                [(a, y), (mid, y - DIAMOND_HALF), (b, y), (mid, y + DIAMOND_HALF)],
                closed=True,
                facecolor=th.BLACK if bold else th.GREY,
                edgecolor=th.BLACK,
                linewidth=0.6,
                gid=f"diamond-{self.gid}",
                zorder=3,
            )
        )

    def whisker(self, lb: float, ub: float) -> None:
        a, b = self._clip(lb, ub)
        y, cap = self.y, DIAMOND_HALF * 0.6
        self.ax.add_line(
            Line2D(
                [a, a, a, b, b, b],
                [y - cap, y + cap, y, y, y - cap, y + cap],
                color=th.BLACK,
                linewidth=0.8,
                gid=f"pi-{self.gid}",
                zorder=2,
            )
        )

    def bar(self, lb: float, ub: float) -> None:
        a, b = self._clip(lb, ub)
        self.ax.add_patch(
            Rectangle(
                (a, self.y - PI_HALF),
                b - a,
                2 * PI_HALF,
                facecolor=th.LIGHT_GREY,
                edgecolor=th.BLACK,
                linewidth=0.6,
                hatch="////",
                gid=f"pi-{self.gid}",
                zorder=3,
            )
        )


def _rob_marker(ax: Axes, tr: Transform, xpos: float, y: float, level: str, gid: str) -> None:
    colour, symbol, _ = ROB_LEVELS[level]
    ax.add_line(
        Line2D(
            [xpos],
            [y],
            transform=tr,
            marker="o",
            markersize=ROB_MARKER,
            markerfacecolor=colour,
            markeredgecolor=th.BLACK,
            markeredgewidth=0.5,
            linestyle="none",
            clip_on=False,
            gid=gid,
        )
    )
    ax.text(
        xpos,
        y,
        symbol,
        transform=tr,
        ha="center",
        va="center_baseline",
        fontsize=th.SMALL_SIZE,
        fontweight="bold",
        fontfamily=th.FONT_FAMILY,
        parse_math=False,
        clip_on=False,
    )


def _rob_marker_fig(fig: Figure, xpos: float, y: float, level: str) -> None:
    colour, symbol, _ = ROB_LEVELS[level]
    fig.add_artist(
        Line2D(
            [xpos],
            [y],
            transform=fig.dpi_scale_trans,
            marker="o",
            markersize=ROB_MARKER,
            markerfacecolor=colour,
            markeredgecolor=th.BLACK,
            markeredgewidth=0.5,
            linestyle="none",
        )
    )
    fig.text(
        xpos,
        y,
        symbol,
        transform=fig.dpi_scale_trans,
        ha="center",
        va="center_baseline",
        fontsize=th.SMALL_SIZE,
        fontweight="bold",
        fontfamily=th.FONT_FAMILY,
        parse_math=False,
    )


def rob_legend(fig: Figure, y: float, levels: Sequence[str]) -> None:
    """The key of the RoB levels in a row, ``y`` inches above the figure's bottom."""
    width, height = fig.get_figwidth(), fig.get_figheight()
    x = MARGIN + 0.08
    for key in levels:
        name = ROB_LEVELS[key][2]
        _rob_marker_fig(fig, x, y, key)
        fig.text(
            (x + 0.14) / width,
            y / height,
            name,
            ha="left",
            va="center",
            fontsize=th.SMALL_SIZE,
            fontfamily=th.FONT_FAMILY,
            parse_math=False,
        )
        x += 0.14 + th.text_width(name, th.SMALL_SIZE) + 0.3
