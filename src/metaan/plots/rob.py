"""Risk-of-bias figures as robvis draws them: the summary bar chart and the traffic light.

Both draw what :mod:`metaan.rob` holds and compute nothing: the summary draws a
:class:`~metaan.rob.RobSummary` (one stacked bar per domain, the share of the
studies or of their weight at each level), the traffic-light plot a
:class:`~metaan.rob.RobTable` (one row per study, one circle per domain). Colour
and symbol both carry each judgement, as in the forest plot's RoB columns.

References
----------
McGuinness, L. A., & Higgins, J. P. T. (2021). Risk-of-bias VISualization
(robvis): an R package and Shiny web app for visualizing risk-of-bias
assessments. *Research Synthesis Methods*, 12, 55-61.
"""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from metaan.plots import _theme as th
from metaan.plots._table import LINE, MARGIN, ROB_LEVELS, _rob_marker_fig, rob_legend
from metaan.rob import DOMAIN_NAMES, LEVELS, RobSummary, RobTable

__all__ = ["rob_summary", "rob_traffic_light"]

_BAR = 0.26  # inches per domain bar
_BAR_WIDTH = 3.6  # inches of the 0-100 % scale


def rob_summary(summary: RobSummary, *, title: str | None = None) -> Figure:
    """robvis's summary plot: per domain, one bar split by the share at each level.

    Parameters
    ----------
    summary
        From :func:`metaan.rob.summarise_rob`; weighted shares are labelled as such.
    title
        Text above the plot.

    Returns
    -------
    matplotlib.figure.Figure
    """
    with th.theme():
        names = [DOMAIN_NAMES.get(d, d) for d in summary.domains]
        label_w = max(th.text_width(n, th.FONT_SIZE) for n in names) + 0.2
        n = len(names)
        title_h = 0.3 if title else 0.0
        axis_h, legend_h = 0.45, LINE + 0.15
        width = MARGIN * 2 + label_w + _BAR_WIDTH + 0.2
        height = MARGIN * 2 + title_h + n * _BAR + axis_h + legend_h
        fig = th.new_figure(width, height)
        ax = fig.add_axes(
            (
                (MARGIN + label_w) / width,
                (MARGIN + legend_h + axis_h) / height,
                _BAR_WIDTH / width,
                n * _BAR / height,
            )
        )
        for i, (name, shares) in enumerate(zip(names, summary.shares, strict=True)):
            left = 0.0
            for j, key in enumerate(LEVELS):
                share = float(shares[j])
                if share > 0:
                    ax.add_patch(
                        Rectangle(
                            (left, i - 0.35),
                            share,
                            0.7,
                            facecolor=ROB_LEVELS[key][0],
                            edgecolor=th.BLACK,
                            linewidth=0.5,
                            gid=f"bar-{summary.domains[i]}-{key}",
                        )
                    )
                left += share
            ax.text(-2.0, i, name, ha="right", va="center", fontsize=th.FONT_SIZE, parse_math=False)
        ax.set_xlim(0, 100)
        ax.set_ylim(n - 0.5, -0.5)
        ax.set_yticks([])
        ax.set_xticks([0, 25, 50, 75, 100])
        ax.set_xticklabels(["0%", "25%", "50%", "75%", "100%"])
        ax.spines["left"].set_visible(False)
        what = "weight in the analysis" if summary.weighted else "studies"
        ax.set_xlabel(f"Share of the {what} ({summary.k} studies)", fontsize=th.FONT_SIZE)
        used = [k for j, k in enumerate(LEVELS) if (summary.shares[:, j] > 0).any()]
        rob_legend(fig, MARGIN + legend_h / 2, used)
        if title:
            fig.text(
                MARGIN / width,
                1 - (MARGIN + title_h / 2) / height,
                title,
                ha="left",
                va="center",
                fontsize=th.FONT_SIZE + 1,
                fontweight="bold",
                parse_math=False,
            )
        return fig


def rob_traffic_light(table: RobTable, *, title: str | None = None) -> Figure:
    """robvis's traffic-light plot: one row per study, one judgement per domain.

    Blank judgements are left empty; the domains are named under the plot.
    """
    with th.theme():
        k, m = len(table.studies), len(table.domains)
        label_w = max(th.text_width(s, th.FONT_SIZE) for s in (*table.studies, "Study")) + 0.2
        col_w = max(
            0.42, *(th.text_width(d, th.FONT_SIZE, weight="bold") + 0.12 for d in table.domains)
        )
        notes = [f"{d}: {DOMAIN_NAMES.get(d, d)}" for d in table.domains if d != "Overall"]
        note_lines = [line for n in notes for line in th.wrap_to_width(n, 6.0, th.SMALL_SIZE)]
        title_h = 0.3 if title else 0.0
        head_h, legend_h = 0.3, LINE + 0.15
        notes_h = len(note_lines) * th.SMALL_SIZE * 1.3 / 72.0 + 0.05
        width = max(MARGIN * 2 + label_w + m * col_w, 6.2)
        height = MARGIN * 2 + title_h + head_h + k * LINE + legend_h + notes_h
        fig = th.new_figure(width, height)
        top = height - MARGIN - title_h

        def text(x: float, y: float, s: str, **kw: object) -> None:
            fig.text(x / width, y / height, s, fontfamily=th.FONT_FAMILY, parse_math=False, **kw)  # type: ignore[arg-type]

        text(MARGIN, top - head_h / 2, "Study", ha="left", va="center", fontweight="bold")
        for j, dom in enumerate(table.domains):
            x = MARGIN + label_w + (j + 0.5) * col_w
            text(x, top - head_h / 2, dom, ha="center", va="center", fontweight="bold")
        for i, (study, row) in enumerate(zip(table.studies, table.judgements, strict=True)):
            y = top - head_h - (i + 0.5) * LINE
            text(MARGIN, y, study, ha="left", va="center", fontsize=th.FONT_SIZE)
            for j, level in enumerate(row):
                if level is not None:
                    _rob_marker_fig(fig, MARGIN + label_w + (j + 0.5) * col_w, y, level)
        used = [key for key in LEVELS if any(key in row for row in table.judgements)]
        legend_y = top - head_h - k * LINE - legend_h / 2
        rob_legend(fig, legend_y, used)
        text(
            MARGIN,
            legend_y - legend_h / 2,
            "\n".join(note_lines),
            ha="left",
            va="top",
            fontsize=th.SMALL_SIZE,
            linespacing=1.3,
        )
        if title:
            text(
                MARGIN,
                height - MARGIN - title_h / 2,
                title,
                ha="left",
                va="center",
                fontsize=th.FONT_SIZE + 1,
                fontweight="bold",
            )
        return fig
