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

__all__ = [
    "ROB_LEVELS",
    "Column",
    "Row",
    "Scale",
    "draw_table",
    "nice_limits",
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
    "low": (th.GREEN, "+", "Low risk"),
    "some": (th.YELLOW, MINUS, "Some concerns"),
    "high": (th.VERMILLION, "\u00d7", "High risk"),
    "none": (th.LIGHT_GREY, "?", "No information"),
}

_ROB_ALIASES = {
    "low": "low",
    "low risk": "low",
    "+": "low",
    "some concerns": "some",
    "some_concerns": "some",
    "some": "some",
    "unclear": "some",
    "moderate": "some",
    "-": "some",
    MINUS: "some",
    "high": "high",
    "high risk": "high",
    "x": "high",
    "no information": "none",
    "no_information": "none",
    "ni": "none",
    "?": "none",
}


def rob_level(value: Any, *, domain: str, study: str) -> str | None:
    """The RoB level key of a judgement (``None`` for a blank cell)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip().lower()
    if text == "" or text == "nan":
        return None
    if text in _ROB_ALIASES:
        return _ROB_ALIASES[text]
    raise InputError(
        f"risk-of-bias judgement {value!r} in {domain} is not a RoB 2 judgement",
        study=study,
        column=domain,
        fix="use Low, Some concerns, High or No information",
    )


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


@dataclass
class _Placed:
    row: Row
    top: float
    height: float
    lines: dict[str, list[str]]

    @property
    def mid(self) -> float:
        return self.top + self.height / 2.0


def draw_table(
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
) -> Figure:
    """Lay out and draw a forest-style table (see the module docstring).

    ``xlim`` is in the units the axis shows (ratios for a log axis).
    ``favours`` is the pair of texts for the left and right of the null line.
    """
    if label_width < 10:
        raise InputError(f"label_width is {label_width}; give at least 10 characters")
    if plot_width <= 0.5:
        raise InputError(f"plot_width is {plot_width:g} inches; give more than 0.5")
    with th.theme():
        return _draw(
            rows,
            label_header=label_header,
            columns=columns,
            scale=scale,
            rob_domains=rob_domains,
            rob_legend=rob_legend,
            favours=favours,
            xlim=xlim,
            label_width=label_width,
            plot_width=plot_width,
            title=title,
            footnotes=footnotes,
            reference=reference,
        )


def _draw(
    rows: Sequence[Row],
    *,
    label_header: str,
    columns: Sequence[Column],
    scale: Scale,
    rob_domains: Sequence[str],
    rob_legend: Sequence[str],
    favours: tuple[str, str] | None,
    xlim: tuple[float, float] | None,
    label_width: int,
    plot_width: float,
    title: str | None,
    footnotes: Sequence[str],
    reference: float | None,
) -> Figure:
    size, small = th.FONT_SIZE, th.SMALL_SIZE
    # A little over the average width, so that a label of label_width characters
    # with wide letters still fits on one line.
    cap = 1.2 * label_width * _avg_char_width(size)
    left_cols = [c for c in columns if c.side == "left"]
    right_cols = [c for c in columns if c.side == "right"]

    # --- measure the text columns ---------------------------------------------
    def weight_of(row: Row) -> str:
        return "bold" if row.bold or row.kind == "heading" else "normal"

    label_lines: list[list[str]] = []
    for row in rows:
        if row.kind in ("note", "space") or not row.label:
            label_lines.append([])
        else:
            label_lines.append(th.wrap_to_width(row.label, cap, size, weight=weight_of(row)))
    widths: dict[str, float] = {}
    widths["label"] = max(
        [th.text_width(label_header, size, weight="bold")]
        + [
            th.text_width(line, size, weight=weight_of(row))
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
                th.text_width(line, size, weight=weight_of(row))
                for row, cells in zip(rows, cell_lines, strict=True)
                for line in cells[col.key]
            ]
        )
    # The left block (label and left columns) also holds the notes; give it room.
    left_block = widths["label"] + sum(GAP + widths[c.key] for c in left_cols)
    if left_block < MIN_LEFT_BLOCK and any(row.kind == "note" for row in rows):
        widths["label"] += MIN_LEFT_BLOCK - left_block
        left_block = MIN_LEFT_BLOCK

    # --- x positions (inches from the figure's left edge) --------------------
    x = MARGIN
    col_x: dict[str, float] = {"label": x}
    x += widths["label"]
    for col in left_cols:
        x += GAP
        col_x[col.key] = x
        x += widths[col.key]
    x += GAP
    plot_x0 = x
    x += plot_width
    for col in right_cols:
        x += GAP
        col_x[col.key] = x
        x += widths[col.key]
    rob_x: dict[str, float] = {}
    if rob_domains:
        x += GAP / 2
        for dom in rob_domains:
            width = max(ROB_WIDTH, th.text_width(dom, small, weight="bold") + 0.06)
            rob_x[dom] = x + width / 2
            x += width
    fig_width = x + MARGIN

    # --- y positions (inches down from the top of the rows area) ------------
    placed: list[_Placed] = []
    y = 0.0
    for row, lab, cells in zip(rows, label_lines, cell_lines, strict=True):
        lines = {"label": lab, **cells}
        if row.kind == "space":
            h = LINE / 2
        elif row.kind == "note":
            note = th.wrap_to_width(row.label, left_block, small)
            lines = {"label": note}
            h = len(note) * NOTE_LEADING + 0.05
        else:
            n = max([1] + [len(v) for v in lines.values()])
            h = LINE + (n - 1) * LEADING
        placed.append(_Placed(row, y, h, lines))
        y += h
    rows_height = max(y, LINE)

    # --- the effect axis ---------------------------------------------------------
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
    if xlim is not None:
        lo, hi = float(xlim[0]), float(xlim[1])
        if not lo < hi:
            raise InputError(f"xlim is {xlim}; the lower limit must be below the upper")
        if scale.log and lo <= 0:
            raise InputError(f"xlim is {xlim}; a ratio axis needs limits > 0")
        _, ticks = nice_limits(lo, hi, scale.log)
        ticks = [t for t in ticks if lo <= t <= hi]
    else:
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

    # --- footer: axis labels, favours, footnotes -----------------------------------
    fav_lines: tuple[list[str], list[str]] = ([], [])
    null_shown = scale.show(scale.null) if scale.null is not None else None
    if favours is not None and null_shown is not None and lo < null_shown < hi:
        frac = (
            (math.log(null_shown) - math.log(lo)) / (math.log(hi) - math.log(lo))
            if scale.log
            else (null_shown - lo) / (hi - lo)
        )
        room_left = plot_x0 + frac * plot_width - MARGIN - 0.05
        room_right = fig_width - MARGIN - (plot_x0 + frac * plot_width) - 0.05
        fav_lines = (
            th.wrap_to_width(f"\u2190 {favours[0]}", room_left, small),
            th.wrap_to_width(f"{favours[1]} \u2192", room_right, small),
        )
    n_fav = max(len(fav_lines[0]), len(fav_lines[1]))
    xlabel_off = 21.0  # points below the axis
    fav_off = xlabel_off + 14.0
    axis_height = (fav_off + n_fav * th.SMALL_SIZE * 1.25 + 6.0) / 72.0
    if n_fav == 0:
        axis_height = (xlabel_off + 16.0) / 72.0
    foot_lines = [th.wrap_to_width(f, fig_width - 2 * MARGIN, small) for f in footnotes]
    foot_height = sum(len(f) for f in foot_lines) * NOTE_LEADING
    legend_height = LINE + 0.05 if rob_legend else 0.0
    bottom_block = axis_height + foot_height + legend_height + MARGIN
    title_height = 0.3 if title else 0.0
    fig_height = MARGIN + title_height + HEADER + rows_height + bottom_block

    fig = th.new_figure(fig_width, fig_height)
    ax = fig.add_axes(
        (
            plot_x0 / fig_width,
            bottom_block / fig_height,
            plot_width / fig_width,
            rows_height / fig_height,
        )
    )
    ax.set_ylim(rows_height, 0.0)
    if scale.log:
        ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _tick_text(v)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_locator(NullLocator())
    ax.yaxis.set_minor_locator(NullLocator())
    ax.tick_params(axis="x", labelsize=small, labelfontfamily=th.FONT_FAMILY, length=3.5)
    ax.spines["left"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.spines["top"].set_visible(False)
    ax.patch.set_visible(False)

    text_tr = blended_transform_factory(fig.dpi_scale_trans, ax.transData)

    def put(
        xpos: float,
        ypos: float,
        text: str,
        *,
        ha: str = "left",
        weight: str = "normal",
        style: str = "normal",
        fontsize: float = size,
        color: str = th.BLACK,
        gid: str | None = None,
        transform: Transform = text_tr,
        va: str = "center",
    ) -> None:
        ax.text(
            xpos,
            ypos,
            text,
            transform=transform,
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

    def col_anchor(key: str, align: str) -> tuple[float, str]:
        if align == "right":
            return col_x[key] + widths[key], "right"
        if align == "center":
            return col_x[key] + widths[key] / 2, "center"
        return col_x[key], "left"

    # Headers, and a rule under them.
    head_y = -HEADER / 2
    put(col_x["label"], head_y, label_header, weight="bold")
    for col in columns:
        xpos, ha = col_anchor(col.key, col.align)
        put(xpos, head_y, col.header, ha=ha, weight="bold")
    for dom in rob_domains:
        put(rob_x[dom], head_y, dom, ha="center", weight="bold", fontsize=small)
    rule_tr = blended_transform_factory(fig.transFigure, ax.transData)
    ax.add_line(
        Line2D(
            [MARGIN / fig_width, 1 - MARGIN / fig_width],
            [0.0, 0.0],
            transform=rule_tr,
            color=th.BLACK,
            linewidth=0.6,
            clip_on=False,
        )
    )
    if title:
        fig.text(
            MARGIN / fig_width,
            1 - (MARGIN + title_height / 2) / fig_height,
            title,
            ha="left",
            va="center",
            fontsize=size + 1,
            fontweight="bold",
            fontfamily=th.FONT_FAMILY,
            parse_math=False,
        )

    # Reference lines: no effect, and the pooled estimate.
    if null_shown is not None and lo <= null_shown <= hi:
        ax.axvline(null_shown, color=th.BLACK, linewidth=0.8, zorder=1, gid="null-line")
    if reference is not None:
        ref = scale.show(reference)
        if lo <= ref <= hi:
            ax.axvline(
                ref, color=th.GREY, linewidth=0.7, linestyle=(0, (3, 3)), zorder=1, gid="ref-line"
            )

    # The rows.
    max_size = max([p.row.size for p in placed if p.row.kind == "study"] + [1e-300])
    for i, p in enumerate(placed):
        row = p.row
        gid = row.gid or str(i)
        # Texts of study rows are "label-<gid>"; other kinds name their kind, so that
        # every id in an SVG is unique (a pooled row and its PI row share a gid).
        tid = gid if row.kind in ("study", "excluded") else f"{row.kind}-{gid}"
        if row.kind == "note":
            put(
                col_x["label"],
                p.mid,
                "\n".join(p.lines["label"]),
                fontsize=small,
                color=th.BLACK,
                gid=f"note-{gid}",
            )
            continue
        if row.kind == "space":
            continue
        weight = weight_of(row)
        style = "italic" if row.kind in ("excluded", "pi") else "normal"
        color = th.GREY if row.kind == "excluded" else th.BLACK
        if p.lines["label"]:
            put(
                col_x["label"],
                p.mid,
                "\n".join(p.lines["label"]),
                weight=weight,
                style=style,
                color=color,
                gid=f"label-{tid}",
            )
        for col in columns:
            if p.lines[col.key]:
                xpos, ha = col_anchor(col.key, col.align)
                put(
                    xpos,
                    p.mid,
                    "\n".join(p.lines[col.key]),
                    ha=ha,
                    weight=weight,
                    color=color,
                    gid=f"cell-{col.key}-{tid}",
                )
        if row.rob is not None:
            for dom in rob_domains:
                level = row.rob.get(dom)
                if level is not None:
                    _rob_marker(ax, text_tr, rob_x[dom], p.mid, level, f"rob-{gid}-{dom}")
        if row.est is None or row.lb is None or row.ub is None:
            continue
        box = _Box(ax, scale, lo, hi, p.mid, gid)
        if row.kind == "study":
            box.study(row.est, row.lb, row.ub, row.size / max_size, row.marker)
        elif row.kind == "pooled":
            if row.pi_lb is not None and row.pi_ub is not None:
                box.whisker(row.pi_lb, row.pi_ub)
            box.diamond(row.est, row.lb, row.ub, row.bold)
        elif row.kind == "pi":
            box.bar(row.lb, row.ub)

    # Axis label and favours labels under the axis.
    below = blended_transform_factory(ax.transAxes, ax.transAxes)
    put(
        0.5,
        0.0,
        scale.xlabel,
        ha="center",
        va="top",
        fontsize=size,
        transform=offset_copy(below, fig, y=-xlabel_off, units="points"),
        gid="xlabel",
    )
    if n_fav and null_shown is not None:
        fav_tr = offset_copy(
            blended_transform_factory(ax.transData, ax.transAxes), fig, y=-fav_off, units="points"
        )
        for side, fav in enumerate(fav_lines):
            if not fav:
                continue
            put(
                null_shown,
                0.0,
                "\n".join(fav),
                ha="right" if side == 0 else "left",
                va="top",
                fontsize=small,
                transform=offset_copy(fav_tr, fig, x=-4 if side == 0 else 4, units="points"),
                gid=f"favours-{'left' if side == 0 else 'right'}",
            )

    # Footnotes and the risk-of-bias key at the bottom of the figure.
    y_in = bottom_block - axis_height
    if rob_legend:
        y_mid = y_in - LINE / 2 - 0.02
        xk = MARGIN + 0.08
        for key in rob_legend:
            name = ROB_LEVELS[key][2]
            _rob_marker_fig(fig, xk, y_mid, key)
            fig.text(
                (xk + 0.14) / fig_width,
                y_mid / fig_height,
                name,
                ha="left",
                va="center",
                fontsize=small,
                fontfamily=th.FONT_FAMILY,
                parse_math=False,
            )
            xk += 0.14 + th.text_width(name, small) + 0.3
        y_in -= legend_height
    for foot in foot_lines:
        fig.text(
            MARGIN / fig_width,
            y_in / fig_height,
            "\n".join(foot),
            ha="left",
            va="top",
            fontsize=small,
            fontfamily=th.FONT_FAMILY,
            linespacing=1.3,
            parse_math=False,
            gid="footnote",
        )
        y_in -= len(foot) * NOTE_LEADING
    return fig


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
