"""Plots of a network meta-analysis: the network graph, the forest of every treatment
against a reference, the league table as a heat map, and the netsplit forest.

Each draws a :class:`~metaan.network.NetworkResult` (or its
:class:`~metaan.network.NetSplit`) and computes nothing beyond placing what the result
holds.

References
----------
Salanti, G., Ades, A. E., & Ioannidis, J. P. A. (2011). Graphical methods and numerical
summaries for presenting results from multiple-treatment meta-analysis: an overview and
tutorial. *Journal of Clinical Epidemiology*, 64(2), 163-171.

Chaimani, A., Higgins, J. P. T., Mavridis, D., Spyridonos, P., & Salanti, G. (2013).
Graphical tools for network meta-analysis in STATA. *PLoS ONE*, 8(10), e76654.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LinearSegmentedColormap, to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, Polygon, Rectangle

from metaan._format import fmt_typeset
from metaan.errors import InputError
from metaan.network import NetSplit, NetworkEstimates, NetworkResult, SplitEstimates
from metaan.network._table import FloatArray
from metaan.plots import _theme as th
from metaan.plots._inputs import favours_text
from metaan.plots._table import Column, Row, draw_table
from metaan.plots._text import EQ, effect_header, fmt_ci, fmt_p
from metaan.plots.forest import measure_scale

__all__ = ["league_heatmap", "netsplit_forest", "network_forest", "network_graph"]

_MULTIARM_COLOURS = (th.ORANGE, th.SKY, th.GREEN, th.YELLOW, th.PURPLE, th.VERMILLION)


def _check(result: object, what: str) -> NetworkResult:
    if not isinstance(result, NetworkResult):
        raise InputError(f"{what} draws a NetworkResult, not a {type(result).__name__}")
    return result


def _model_name(result: NetworkResult, model: str) -> str:
    if model == "common":
        return "common effects"
    if result.tau2 is None:
        return "random effects (τ² not estimable)"
    how = "fixed" if result.tau2_fixed else result.method
    return f"random effects, τ²{EQ}{fmt_typeset(result.tau2, 3)} ({how})"


def network_graph(
    result: NetworkResult,
    *,
    radius: float = 1.7,
    title: str | None = None,
) -> Figure:
    """Draw the network: treatments on a circle, a line for every pair compared.

    A node's area is proportional to the participants randomised to the treatment
    (to its number of comparisons where arm sizes are not known); a line's width to
    the number of studies comparing the pair, which is printed on it. Every multi-arm
    design is shaded as a polygon over its treatments, so a three-arm trial shows as a
    triangle. The figure widens to fit the treatments' names beside the circle of
    ``radius`` inches.

    Returns
    -------
    matplotlib.figure.Figure
        Nodes carry ``gid="node-<treatment number>"``, lines ``gid="edge-<i>-<j>"``
        and shaded designs ``gid="multiarm-<i>"``.
    """
    res = _check(result, "network_graph")
    n = res.n
    angle = math.pi / 2 - 2 * math.pi * np.arange(n) / n
    x, y = np.cos(angle), np.sin(angle)
    size = res.participants
    sized_by = "participants"
    if size is None:
        size = res.direct_k.sum(axis=1).astype(float)
        sized_by = "comparisons"
    label_w = max(th.text_width(t, th.FONT_SIZE) for t in res.treatments)
    half_w = 1.25 + (label_w + 0.2) / radius  # axis units: the circle has radius 1
    half_h = 1.25 + 0.35 / radius
    width = 2 * half_w * radius
    notes = _graph_notes(res, sized_by)
    lines = [ln for note in notes for ln in th.wrap_to_width(note, width - 0.4, th.SMALL_SIZE)]
    foot = 0.15 + len(lines) * th.SMALL_SIZE * 1.3 / 72
    head = 0.45 if title else 0.1
    height = foot + 2 * half_h * radius + head
    fig = th.new_figure(width, height)
    ax = fig.add_axes((0.0, foot / height, 1.0, 2 * half_h * radius / height))
    ax.set_xlim(-half_w, half_w)
    ax.set_ylim(-half_h, half_h)
    ax.set_aspect("equal")
    ax.set_axis_off()
    _multiarm(ax, res, x, y)
    _edges(ax, res, x, y)
    # Node radius: area by size, at most 40% of the gap between neighbours.
    largest = min(0.2, 0.4 * math.sin(math.pi / n)) if n > 2 else 0.2
    nodes = largest * np.sqrt(np.maximum(size, 0.0) / max(float(size.max()), 1e-300))
    nodes = np.maximum(nodes, 0.25 * largest)
    for i in range(n):
        ax.add_patch(
            Circle(
                (x[i], y[i]),
                float(nodes[i]),
                facecolor=th.BLUE,
                edgecolor="white",
                linewidth=0.8,
                zorder=3,
                gid=f"node-{i}",
            )
        )
        off = 1 + float(nodes[i]) + 0.06
        ax.text(
            x[i] * off,
            y[i] * off,
            res.treatments[i],
            ha="center" if abs(x[i]) < 1e-9 else ("left" if x[i] > 0 else "right"),
            va="center" if abs(y[i]) < 0.9 else ("bottom" if y[i] > 0 else "top"),
            fontsize=th.FONT_SIZE,
            fontfamily=th.FONT_FAMILY,
            parse_math=False,
            gid=f"name-{i}",
        )
    _footnotes(fig, lines, title)
    return fig


def _multiarm(ax: Axes, res: NetworkResult, x: FloatArray, y: FloatArray) -> None:
    """Shade every multi-arm design as the polygon of its treatments."""
    for i, (design, _) in enumerate(d for d in res.designs if len(d[0]) > 2):
        idx = [res.index(t) for t in design]
        colour = _MULTIARM_COLOURS[i % len(_MULTIARM_COLOURS)]
        ax.add_patch(
            Polygon(
                np.column_stack([x[idx], y[idx]]),
                closed=True,
                facecolor=colour,
                alpha=0.18,
                edgecolor=colour,
                linewidth=0.8,
                gid=f"multiarm-{i}",
            )
        )


def _edges(ax: Axes, res: NetworkResult, x: FloatArray, y: FloatArray) -> None:
    """A line per pair compared, its width and label the number of studies."""
    k_max = max(int(res.direct_k.max()), 1)
    for i, j in zip(*np.nonzero(np.triu(res.direct_k, 1)), strict=True):
        k = int(res.direct_k[i, j])
        ax.add_line(
            Line2D(
                [x[i], x[j]],
                [y[i], y[j]],
                color=th.GREY,
                linewidth=0.8 + 5.2 * k / k_max,
                solid_capstyle="round",
                gid=f"edge-{i}-{j}",
                zorder=2,
            )
        )
        ax.text(
            (x[i] + x[j]) / 2,
            (y[i] + y[j]) / 2,
            str(k),
            ha="center",
            va="center",
            fontsize=th.SMALL_SIZE - 1,
            fontfamily=th.FONT_FAMILY,
            zorder=4,
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none"},
        )


def _graph_notes(res: NetworkResult, sized_by: str) -> list[str]:
    multi = [(d, k) for d, k in res.designs if len(d) > 2]
    notes = [
        f"{res.k} studies, {res.n} treatments. Node area: {sized_by}; line width and number: "
        "studies comparing the pair."
    ]
    if multi:
        shaded = "; ".join(f"{' / '.join(d)} ({k})" for d, k in multi)
        notes.append(f"Shaded: multi-arm studies by design (studies): {shaded}.")
    return notes


def _footnotes(fig: Figure, lines: list[str], title: str | None) -> None:
    height = fig.get_figheight()
    for r, line in enumerate(lines):
        fig.text(
            0.15 / fig.get_figwidth(),
            (0.1 + (len(lines) - r - 0.5) * th.SMALL_SIZE * 1.3 / 72) / height,
            line,
            ha="left",
            va="center",
            fontsize=th.SMALL_SIZE,
            fontfamily=th.FONT_FAMILY,
            color=th.GREY,
            parse_math=False,
        )
    if title:
        th.figure_title(fig, 0.15 / fig.get_figwidth(), 1 - 0.25 / height, title)


def network_forest(
    result: NetworkResult,
    *,
    model: str = "random",
    reference: str | None = None,
    groups: tuple[str, str] | None = None,
    xlim: tuple[float, float] | None = None,
    title: str | None = None,
) -> Figure:
    """Draw every treatment against a reference: estimate and CI, the number of
    studies comparing it with the reference directly, and its P-score.

    Parameters
    ----------
    result
        A fitted network.
    model
        ``random`` or ``common`` effects.
    reference
        The comparator (default: the result's reference treatment).
    groups
        Names for the "favours" labels (default: "treatment" and the reference).
    xlim, title
        Limits of the effect axis (ratios for OR and RR) and text above the plot.
    """
    res = _check(result, "network_forest")
    est = res.estimates(model)
    ref = res.index(reference or res.reference)
    scale = measure_scale(res.measure)
    show = scale.show
    rows = []
    for i, name in enumerate(res.treatments):
        if i == ref:
            continue
        te, lo, hi = est.TE[i, ref], est.lower[i, ref], est.upper[i, ref]
        rows.append(
            Row(
                kind="study",
                label=name,
                cells={
                    "k": str(int(res.direct_k[i, ref])),
                    "est": fmt_ci(show(te), show(lo), show(hi)),
                    "pscore": fmt_typeset(est.pscore[i], 2),
                },
                est=te,
                lb=lo,
                ub=hi,
                marker="o",
                gid=str(i),
            )
        )
    ref_name = res.treatments[ref]
    names = groups or ("treatment", ref_name)
    favours = favours_text(None, names, res.small_values == "good")
    columns = [
        Column("k", "Direct", "left", "right"),
        Column("est", effect_header(res.measure, res.level), "right", "right"),
        Column("pscore", "P-score", "right", "right"),
    ]
    notes = [
        f"Each treatment versus {ref_name}: network estimates, {_model_name(res, model)}. "
        f"Direct: studies comparing the two. {res.k} studies, {res.n} treatments."
    ]
    return draw_table(
        rows,
        label_header=f"Versus {ref_name}",
        columns=columns,
        scale=scale,
        favours=favours,
        xlim=xlim,
        title=title,
        footnotes=notes,
    )


def netsplit_forest(
    split: NetSplit,
    *,
    model: str = "random",
    only_both: bool = True,
    comparisons: Sequence[str] | None = None,
    xlim: tuple[float, float] | None = None,
    title: str | None = None,
) -> Figure:
    """Draw direct, indirect and network estimates of each comparison, with the test of
    direct against indirect evidence.

    Parameters
    ----------
    split
        :attr:`NetworkResult.netsplit` or :func:`metaan.network.netsplit`.
    model
        ``random`` or ``common`` effects.
    only_both
        Only the comparisons with both direct and indirect evidence (netmeta's
        ``show = "both"``); otherwise every comparison.
    comparisons
        Draw only these comparisons (``"A:B"``, either way round), in this order.
    """
    if not isinstance(split, NetSplit):
        raise InputError(f"netsplit_forest draws a NetSplit, not a {type(split).__name__}")
    e = split.estimates(model)
    scale = measure_scale(split.measure)
    rows: list[Row] = []
    for c, sign in _chosen(split, comparisons):
        both = math.isfinite(e.direct[c]) and math.isfinite(e.indirect[c])
        if both or not only_both:
            rows += _split_rows(split, e, c, sign, scale.show)
    if not rows:
        raise InputError(
            "no comparison has both direct and indirect evidence",
            fix="draw every comparison with only_both=False",
        )
    columns = [
        Column("k", "k", "left", "right"),
        Column("prop", "Share", "left", "right"),
        Column("est", effect_header(split.measure, split.level), "right", "right"),
        Column("test", "", "right", "right"),
    ]
    notes = [
        f"Direct and indirect evidence ({split.method}), {model} effects. k: studies "
        "comparing the pair; share: the proportion of the network estimate's information "
        "that is direct; p: the test of direct against indirect evidence."
    ]
    return draw_table(
        rows,
        label_header="Comparison",
        columns=columns,
        scale=scale,
        xlim=xlim,
        title=title,
        footnotes=notes,
    )


def _chosen(split: NetSplit, comparisons: Sequence[str] | None) -> list[tuple[int, float]]:
    """Positions of the comparisons to draw (all by default), each with the sign that
    turns it the way it was asked for (``B:A`` asked as ``A:B`` is drawn as ``A:B``)."""
    if comparisons is None:
        return [(c, 1.0) for c in range(len(split.comparisons))]
    out = []
    for name in comparisons:
        a, _, b = name.partition(":")
        for candidate, sign in ((f"{a}:{b}", 1.0), (f"{b}:{a}", -1.0)):
            if candidate in split.comparisons:
                out.append((split.comparisons.index(candidate), sign))
                break
        else:
            raise InputError(
                f"{name!r} is not a comparison of the network",
                fix="name two treatments of the network as 'A:B'",
            )
    return out


def _split_rows(
    split: NetSplit, e: SplitEstimates, c: int, sign: float, show: Callable[[float], float]
) -> list[Row]:
    """The rows of comparison ``c`` (turned round when ``sign`` is -1): a heading with the
    test, then its direct, indirect and network estimates."""
    both = math.isfinite(e.direct[c]) and math.isfinite(e.indirect[c])
    test = fmt_p(float(e.pval[c])) if both else ""
    first, second = split.treat1[c], split.treat2[c]
    name = f"{first} vs {second}" if sign > 0 else f"{second} vs {first}"
    rows = [Row(kind="heading", label=name, cells={"test": test}, gid=f"comparison-{c}")]
    z = _z(split.level)
    parts = (
        ("Direct", e.direct, e.direct_se),
        ("Indirect", e.indirect, e.indirect_se),
        ("Network", e.network, e.network_se),
    )
    for kind, est, se in parts:
        if not math.isfinite(est[c]):
            continue
        mid = float(sign * est[c])
        lo, hi = mid - z * float(se[c]), mid + z * float(se[c])
        cells = {"est": fmt_ci(show(mid), show(lo), show(hi))}
        if kind == "Direct":
            cells |= {"k": str(int(split.k[c])), "prop": f"{e.proportion[c]:.2f}"}
        if kind == "Network":
            rows.append(
                Row(
                    kind="pooled",
                    label="  Network",
                    gid=f"network-{c}",
                    cells=cells,
                    est=mid,
                    lb=lo,
                    ub=hi,
                )
            )
        else:
            rows.append(
                Row(
                    kind="study",
                    label=f"  {kind}",
                    cells=cells,
                    est=mid,
                    lb=lo,
                    ub=hi,
                    marker="o",
                    gid=f"{kind.lower()}-{c}",
                )
            )
    return rows


def _z(level: float) -> float:
    from metaan._dist import norm_isf

    return norm_isf((1.0 - level / 100.0) / 2.0)


# The widest a league table is drawn when it can be helped: 8-pt text in a figure
# this wide still prints at 6 pt or more on a page 7.09 inches wide.
_LEAGUE_WIDTH = 9.3
_LEAGUE_NAMES = 1.5  # the widest a treatment's name may be, in inches, before it wraps


def league_heatmap(
    result: NetworkResult,
    *,
    model: str = "random",
    digits: int = 2,
    title: str | None = None,
) -> Figure:
    """Draw the league table as a heat map: row treatment versus column treatment.

    Each cell holds the estimate and CI (ratios for OR and RR); its colour shows the
    size and direction of the effect, blue where the row treatment is better, vermilion
    where it is worse, white near no difference; a bold border marks a CI that
    excludes no difference. The rows are named on the left, the columns on top.

    A cell holds the estimate over its interval on two lines when the table fits
    9.3 inches that way (so its 8-pt text prints at 6 pt or more on an A4 page), and
    on three otherwise (estimate, lower limit, upper limit), which keeps cells narrower.

    Returns
    -------
    matplotlib.figure.Figure
        Each cell carries ``gid="cell-<i>-<j>"``.
    """
    res = _check(result, "league_heatmap")
    est = res.estimates(model)
    n = res.n
    size = th.SMALL_SIZE
    show = measure_scale(res.measure).show
    cells = {
        (i, j): (
            fmt_typeset(show(est.TE[i, j]), digits),
            fmt_typeset(show(est.lower[i, j]), digits),
            fmt_typeset(show(est.upper[i, j]), digits),
        )
        for i in range(n)
        for j in range(n)
        if i != j
    }
    names = [th.wrap_to_width(t, _LEAGUE_NAMES, size, weight="bold") for t in res.treatments]
    label_w = max(th.text_width(ln, size, weight="bold") for lines in names for ln in lines)
    layout = _two_lines
    cell_w = _widest(cells, layout) + 0.12
    if 0.4 + label_w + n * cell_w > _LEAGUE_WIDTH:
        layout = _three_lines
        cell_w = _widest(cells, layout) + 0.12
    leading = size * 1.2 / 72
    cell_h = 0.2 + len(layout(("", "", ""))) * leading
    left = 0.25 + label_w
    width = left + n * cell_w + 0.15
    what = {"OR": "odds ratios", "RR": "risk ratios"}.get(res.measure or "", "effects")
    note = (
        f"Row versus column, {_model_name(res, model)}; {what} with {res.level:g}% CIs. "
        "Blue: the row treatment is better; vermilion: worse; bold border: the CI excludes "
        "no difference."
    )
    lines = th.wrap_to_width(note, width - 0.3, size)
    foot = 0.15 + len(lines) * size * 1.3 / 72
    head = (0.5 if title else 0.15) + label_w + 0.1  # the column names stand upright
    height = head + n * cell_h + foot
    fig = th.new_figure(width, height)
    ax = fig.add_axes((left / width, foot / height, n * cell_w / width, n * cell_h / height))
    ax.set_xlim(0, n)
    ax.set_ylim(n, 0)
    ax.set_axis_off()
    better = -est.TE if res.small_values == "good" else est.TE
    for i in range(n):
        _league_names(ax, i, "\n".join(names[i]), (0.1 / cell_w, 0.08 / cell_h))
    _league_cells(ax, est, better, ["\n".join(layout(c)) for c in cells.values()])
    _footnotes(fig, lines, title)
    return fig


def _league_cells(ax: Axes, est: NetworkEstimates, better: FloatArray, texts: list[str]) -> None:
    """The cells of the league table, off the diagonal in row order with their
    ``texts``; the diagonal grey."""
    n = est.TE.shape[0]
    scale = float(np.nanmax(np.abs(better))) or 1.0
    cmap = LinearSegmentedColormap.from_list(
        "league", [to_rgb(th.VERMILLION), (1.0, 1.0, 1.0), to_rgb(th.BLUE)]
    )
    text = iter(texts)
    for i in range(n):
        for j in range(n):
            diagonal = i == j
            excludes = not diagonal and bool(est.lower[i, j] > 0 or est.upper[i, j] < 0)
            shade = cmap(0.5 + 0.5 * float(better[i, j]) / scale)
            ax.add_patch(
                Rectangle(
                    (j, i),
                    1,
                    1,
                    facecolor=th.LIGHT_GREY if diagonal else shade,
                    edgecolor=th.BLACK if excludes else "white",
                    linewidth=1.4 if excludes else 0.8,
                    gid=f"cell-{i}-{j}",
                )
            )
            if diagonal:
                continue
            ax.text(
                j + 0.5,
                i + 0.5,
                next(text),
                ha="center",
                va="center",
                linespacing=1.2,
                fontsize=th.SMALL_SIZE,
                fontweight="bold" if excludes else "normal",
                fontfamily=th.FONT_FAMILY,
                parse_math=False,
            )


def _two_lines(cell: tuple[str, str, str]) -> list[str]:
    return [cell[0], f"[{cell[1]}, {cell[2]}]"]


def _three_lines(cell: tuple[str, str, str]) -> list[str]:
    return [cell[0], f"[{cell[1]},", f"{cell[2]}]"]


def _widest(
    cells: dict[tuple[int, int], tuple[str, str, str]],
    layout: Callable[[tuple[str, str, str]], list[str]],
) -> float:
    """The widest line of any cell laid out so (in bold, as a cell may be), in inches."""
    lines = (ln for cell in cells.values() for ln in layout(cell))
    return max([0.45] + [th.text_width(ln, th.SMALL_SIZE, weight="bold") for ln in lines])


def _league_names(ax: Axes, i: int, name: str, gap: tuple[float, float]) -> None:
    """Treatment ``i``'s name left of its row and, standing upright, above its column;
    ``gap`` is the space between name and table in the axes' units (x, y)."""
    style: dict[str, Any] = {
        "fontsize": th.SMALL_SIZE,
        "fontweight": "bold",
        "fontfamily": th.FONT_FAMILY,
        "parse_math": False,
        "linespacing": 1.1,
    }
    ax.text(-gap[0], i + 0.5, name, ha="right", va="center", multialignment="right", **style)
    ax.text(
        i + 0.5,
        -gap[1],
        name,
        ha="center",
        va="bottom",
        rotation=90,
        multialignment="left",
        **style,
    )
