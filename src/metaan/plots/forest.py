"""The forest plot: one row per study, the pooled diamond, the prediction interval.

References
----------
Lewis, S., & Clarke, M. (2001). Forest plots: trying to see the wood and the
trees. *BMJ*, 322, 1479-1480.

Schriger, D. L., Altman, D. G., Vetter, J. A., Heafner, T., & Moher, D. (2010).
Forest plots in reports of systematic reviews: a cross-sectional study reviewing
current practice. *International Journal of Epidemiology*, 39, 421-429.

Sterne, J. A. C., et al. (2019). RoB 2: a revised tool for assessing risk of
bias in randomised trials. *BMJ*, 366, l4898.

IntHout, J., Ioannidis, J. P. A., Rovers, M. M., & Goeman, J. J. (2016). Plea
for routinely presenting prediction intervals in meta-analysis. *BMJ Open*, 6,
e010247.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure

from metaan._format import fmt_typeset
from metaan.errors import InputError
from metaan.plots._inputs import (
    StudyColumns,
    as_columns,
    cell_text,
    extra_columns,
    favours_text,
    rob_columns,
    study_numbers,
)
from metaan.plots._table import ROB_LEVELS, Column, Row, Scale, draw_table, draw_table_pages
from metaan.plots._text import (
    EQ,
    MEASURE_NAMES,
    effect_header,
    fmt_ci,
    fmt_interval,
    fmt_p,
    heterogeneity_text,
    model_label,
    overall_test_text,
    short_model_label,
)
from metaan.results import Exclusion, MetaResult
from metaan.subgroups import SubgroupResult

__all__ = [
    "RATIO_MEASURES",
    "ForestTable",
    "SortKey",
    "draw_forest_table",
    "draw_options",
    "forest",
    "forest_pages",
    "forest_table",
    "measure_scale",
    "scale_of",
]

#: Measures whose effects are log ratios.
RATIO_MEASURES = frozenset({"OR", "RR", "PETO"})

SortKey = Literal["effect", "weight", "year"]

_ROB_NAMES = (
    "D1 randomisation process; D2 deviations from the intended interventions; "
    "D3 missing outcome data; D4 measurement of the outcome; "
    "D5 selection of the reported result (RoB 2)."
)


def measure_scale(measure: str | None, xlabel: str | None = None) -> Scale:
    """The effect axis of a measure: a back-transformed log axis for OR and RR."""
    name = MEASURE_NAMES.get(measure or "GEN", (measure or "Effect", ""))[0]
    ratio = measure in RATIO_MEASURES
    if xlabel is None:
        xlabel = f"{name} (log scale)" if ratio else name
    return Scale(log=ratio, xlabel=xlabel, null=0.0)


def scale_of(result: MetaResult, xlabel: str | None = None) -> Scale:
    """The effect axis of a result: a back-transformed log axis for OR and RR."""
    measure = "PETO" if result.method == "PETO" else result.measure
    if result.is_ratio and measure not in RATIO_MEASURES:
        measure = "OR"
    return measure_scale(measure, xlabel)


def _order(
    result: MetaResult, sort: SortKey | None, years: npt.NDArray[np.float64] | None
) -> npt.NDArray[np.intp]:
    idx = np.arange(result.k)
    if sort is None:
        return idx
    if sort == "effect":
        return np.argsort(result.yi, kind="stable")
    if sort == "weight":
        return np.argsort(-result.weights, kind="stable")
    if sort == "year":
        if years is None:
            raise InputError(
                "sorting by year needs the studies' years",
                fix="pass year=[...] or a 'year' column in columns",
            )
        # Studies without a year go last, in their original order.
        key = np.where(np.isnan(years), np.inf, years)
        return np.argsort(key, kind="stable")
    raise InputError(f"sort is {sort!r}", fix="choose effect, weight or year")


def study_rows(
    result: MetaResult,
    *,
    columns: Mapping[str, Sequence[Any]] | None = None,
    rob: Sequence[Mapping[str, str | None]] | None = None,
    order: npt.NDArray[np.intp] | None = None,
    digits: int = 2,
    prefix: str = "",
    show_excluded: bool = True,
) -> list[Row]:
    """The study rows of a result, with excluded studies shown where they were."""
    frame = result.to_frame()
    lb = frame["ci_lb"].to_numpy()
    ub = frame["ci_ub"].to_numpy()
    scale = scale_of(result)
    show = scale.show
    rows: list[tuple[float, Row]] = []
    if order is None:
        order = np.arange(result.k)
    # Excluded studies go where they were in the data, unless the rows are re-sorted.
    interleave = np.array_equal(order, np.arange(result.k)) and all(
        r is not None for r in result.rows
    )
    for pos, i in enumerate(order.tolist()):
        cells = {f"x:{name}": cell_text(values[i]) for name, values in (columns or {}).items()}
        cells["est"] = fmt_ci(show(result.yi[i]), show(lb[i]), show(ub[i]), digits)
        cells["weight"] = f"{result.weights[i]:.1f}%"
        src_row = result.rows[i] if i < len(result.rows) else None
        rows.append(
            (
                float(src_row) if interleave and src_row is not None else float(pos),
                Row(
                    kind="study",
                    label=result.labels[i],
                    cells=cells,
                    est=float(result.yi[i]),
                    lb=float(lb[i]),
                    ub=float(ub[i]),
                    size=float(result.weights[i]),
                    rob=rob[i] if rob is not None else None,
                    gid=f"{prefix}{i}",
                ),
            )
        )
    if show_excluded:
        for j, exc in enumerate(result.excluded):
            where = float(exc.row) - 0.5 if interleave and exc.row is not None else float("inf")
            rows.append(
                (
                    where,
                    Row(
                        kind="excluded",
                        label=exc.study or (f"Row {exc.row}" if exc.row is not None else "Study"),
                        cells={"est": "not pooled\u2020"},
                        gid=f"{prefix}x{j}",
                    ),
                )
            )
    rows.sort(key=lambda pair: pair[0])
    return [row for _, row in rows]


def _excluded_footnote(excluded: Sequence[Exclusion]) -> list[str]:
    """The footnote that lists every study left out of pooling, with its reason."""
    parts = []
    for exc in excluded:
        name = exc.study or "a study"
        where = f" (row {exc.row})" if exc.row is not None else ""
        parts.append(f"{name}{where}: {exc.reason}")
    if not parts:
        return []
    return ["\u2020 Not pooled: " + "; ".join(parts) + "."]


def pooled_rows(
    result: MetaResult,
    *,
    label: str | None = None,
    prediction: bool = True,
    digits: int = 2,
    gid: str = "overall",
    bold: bool = True,
    weight: str | None = "100.0%",
    notes: bool = True,
) -> list[Row]:
    """The diamond row, the prediction-interval row and the heterogeneity notes."""
    show = scale_of(result).show
    cells = {"est": fmt_ci(show(result.estimate), show(result.ci_lb), show(result.ci_ub), digits)}
    if weight is not None:
        cells["weight"] = weight
    rows = [
        Row(
            kind="pooled",
            label=label if label is not None else model_label(result),
            cells=cells,
            est=result.estimate,
            lb=result.ci_lb,
            ub=result.ci_ub,
            gid=gid,
            bold=bold,
        )
    ]
    if prediction and result.model == "random" and result.k >= 2:
        rows.append(
            Row(
                kind="pi",
                label=f"Prediction interval ({result.level:g}%)",
                cells={"est": fmt_interval(show(result.pi_lb), show(result.pi_ub), digits)},
                est=result.estimate,
                lb=result.pi_lb,
                ub=result.pi_ub,
                gid=gid,
            )
        )
    if notes:
        rows.append(Row(kind="note", label=heterogeneity_text(result), gid=f"het-{gid}"))
        rows.append(Row(kind="note", label=overall_test_text(result), gid=f"test-{gid}"))
    return rows


def _subgroup_test_notes(result: SubgroupResult) -> list[str]:
    """The tests for subgroup differences, as the result holds them."""
    notes = []
    if result.Q_between is not None:
        notes.append(
            "Test for subgroup differences (common effect): "
            f"Q{EQ}{fmt_typeset(result.Q_between, 2)}, df{EQ}{result.Q_between_df}, "
            f"{fmt_p(result.Q_between_p)}"
        )
    if result.mixed is not None:
        mixed = result.mixed
        if mixed.QM_df2 is not None:
            stat = f"F({mixed.QM_df}, {mixed.QM_df2}){EQ}{fmt_typeset(mixed.QM, 2)}"
        else:
            stat = f"QM{EQ}{fmt_typeset(mixed.QM, 2)}, df{EQ}{mixed.QM_df}"
        notes.append(f"Test for subgroup differences (mixed effects): {stat}, {fmt_p(mixed.QMp)}")
    elif result.mixed_note:
        notes.append(f"Test for subgroup differences (mixed effects): {result.mixed_note}")
    return notes


def _split(values: Mapping[str, Sequence[Any]], sizes: Sequence[int]) -> list[dict[str, list[Any]]]:
    out: list[dict[str, list[Any]]] = []
    start = 0
    for size in sizes:
        out.append({name: list(col[start : start + size]) for name, col in values.items()})
        start += size
    return out


@dataclass(frozen=True)
class ForestTable:
    """A forest plot before it is drawn: its rows, columns, axis and notes (the layout step).

    Each study is a row: its label (wrapped, never cut), any extra columns, its
    effect and confidence interval (a square whose area is proportional to the
    study's weight in the model), the effect and CI as text and the weight in
    percent. The pooled estimate is a diamond spanning its CI; a random-effects
    model adds its prediction interval as a hatched bar (IntHout et al. 2016),
    and the heterogeneity statistics and the test of the overall effect are
    printed under it. Studies left out of pooling (``excluded``) are shown,
    marked with a dagger, with the reason in a footnote. Every number is the
    result's (the study CIs are those of ``result.to_frame()``).

    A :class:`~metaan.subgroups.SubgroupResult` is laid out as one block per
    level (its studies, its own diamond, prediction interval and heterogeneity;
    a level with a single study is shown, not pooled), then the tests for
    subgroup differences under the blocks.
    """

    rows: tuple[Row, ...]
    columns: tuple[Column, ...]
    scale: Scale
    rob_domains: tuple[str, ...]
    rob_legend: tuple[str, ...]
    favours: tuple[str, str] | None
    footnotes: tuple[str, ...]
    reference: float | None


def forest(
    result: MetaResult | SubgroupResult,
    *,
    columns: StudyColumns | None = None,
    rob: StudyColumns | None = None,
    sort: SortKey | None = None,
    year: Sequence[Any] | None = None,
    overall: MetaResult | None = None,
    groups: tuple[str, str] = ("treatment", "control"),
    lower_is_better: bool | None = True,
    favours: tuple[str, str] | None = None,
    prediction: bool = True,
    show_weights: bool = True,
    xlim: tuple[float, float] | None = None,
    xlabel: str | None = None,
    label_header: str = "Study",
    label_width: int = 40,
    plot_width: float = 3.0,
    digits: int = 2,
    title: str | None = None,
) -> Figure:
    """Draw a forest plot of a meta-analysis or of a subgroup analysis.

    The rows are those of :func:`forest_table` (see :class:`ForestTable` for what
    each shows); OR and RR are drawn on a log axis labelled in ratios.

    Parameters
    ----------
    result
        A fitted :class:`~metaan.results.MetaResult`, or a
        :class:`~metaan.subgroups.SubgroupResult`.
    columns
        Extra columns drawn between the label and the plot (e.g. n per arm, events, dose,
        year): a DataFrame or a mapping of header to values, one value per study in the order
        of ``result.labels`` (for subgroups: level by level, in the order of ``result.levels``
        and of each level's labels).
    rob
        Risk-of-bias judgements, aligned as ``columns``, in columns ``D1`` ... ``D5`` and
        ``Overall`` (or ``rob_d1`` ... ``rob_overall``); values ``Low``, ``Some concerns``,
        ``High`` or ``No information`` (blank cells are left empty). Drawn as a traffic
        light in which colour and symbol both carry the judgement (Sterne et al. 2019).
    sort
        Order the study rows (within each subgroup) by ``"effect"``
        (ascending), ``"weight"`` (descending) or ``"year"`` (ascending; from
        ``year`` or a ``year`` column). ``None`` keeps the order of the data.
    year
        One year per study (aligned as ``columns``), for ``sort="year"``.
    overall
        For subgroups: the fit to all studies, drawn as the overall diamond.
    groups
        Names of group 1 and group 2 of the effect (1 minus 2, or 1 over 2), for "favours".
    lower_is_better
        Whether less of the outcome is better (symptom scores, deaths, dropouts):
        then effects left of the null favour group 1. ``False`` for outcomes
        where more is better (response, remission). ``None`` draws no labels.
    favours
        The left and right "favours" texts, overriding ``groups`` and ``lower_is_better``.
    prediction
        Draw the prediction interval of random-effects models.
    show_weights
        Print the weight column (within each subgroup for subgroups).
    xlim
        Axis limits in the units shown (ratios for OR and RR); intervals beyond
        them end in an arrow. By default every interval fits.
    xlabel, label_header, title
        Texts of the axis, of the label column header and above the plot.
    label_width
        Labels longer than about this many characters are wrapped onto more lines.
    plot_width
        Width of the axis in inches.
    digits
        Decimals of the printed effects.

    Returns
    -------
    matplotlib.figure.Figure
        Sized to its content: it grows with the number of rows and the widths
        of the columns. Save it with :func:`metaan.plots.save`.

    Raises
    ------
    InputError
        Bad extra columns, RoB judgements or years: see :func:`forest_table`.
    """
    table = forest_table(
        result,
        columns=columns,
        rob=rob,
        sort=sort,
        year=year,
        overall=overall,
        groups=groups,
        lower_is_better=lower_is_better,
        favours=favours,
        prediction=prediction,
        show_weights=show_weights,
        xlabel=xlabel,
        digits=digits,
    )
    return draw_forest_table(table, xlim, label_header, label_width, plot_width, title)


def forest_pages(
    result: MetaResult | SubgroupResult,
    *,
    page_size: tuple[float, float],
    xlim: tuple[float, float] | None = None,
    label_header: str = "Study",
    label_width: int = 40,
    plot_width: float = 3.0,
    title: str | None = None,
    **options: Any,
) -> list[Figure]:
    """A forest plot as pages that each fit ``page_size`` (width, height in inches).

    The same plot as :func:`forest` (``options`` are its other parameters), cut
    between rows into figures that each fit the page once shrunk to its width:
    every page repeats the title (marked as continued), the column headers and
    the axis, with the same axis limits and column widths; the last page holds
    the pooled rows' notes and the footnotes. A plot that fits is one page.
    """
    table = forest_table(result, **options)
    return draw_table_pages(
        table.rows,
        page_size=page_size,
        **draw_options(table, xlim, label_header, label_width, plot_width, title),
    )


def draw_forest_table(
    table: ForestTable,
    xlim: tuple[float, float] | None,
    label_header: str,
    label_width: int,
    plot_width: float,
    title: str | None,
) -> Figure:
    """Draw ``table`` as a forest-style figure (the drawing step of every forest-style plot)."""
    return draw_table(
        table.rows, **draw_options(table, xlim, label_header, label_width, plot_width, title)
    )


def draw_options(
    table: ForestTable,
    xlim: tuple[float, float] | None,
    label_header: str,
    label_width: int,
    plot_width: float,
    title: str | None,
) -> dict[str, Any]:
    """The options of :func:`~metaan.plots._table.layout_table` that draw ``table``."""
    return {
        "label_header": label_header,
        "columns": table.columns,
        "scale": table.scale,
        "rob_domains": table.rob_domains,
        "rob_legend": table.rob_legend,
        "favours": table.favours,
        "xlim": xlim,
        "label_width": label_width,
        "plot_width": plot_width,
        "title": title,
        "footnotes": table.footnotes,
        "reference": table.reference,
    }


def forest_table(
    result: MetaResult | SubgroupResult,
    *,
    columns: StudyColumns | None = None,
    rob: StudyColumns | None = None,
    sort: SortKey | None = None,
    year: Sequence[Any] | None = None,
    overall: MetaResult | None = None,
    groups: tuple[str, str] = ("treatment", "control"),
    lower_is_better: bool | None = True,
    favours: tuple[str, str] | None = None,
    prediction: bool = True,
    show_weights: bool = True,
    xlabel: str | None = None,
    digits: int = 2,
) -> ForestTable:
    """The rows, columns, axis and notes of a forest plot (its layout step); draws nothing.

    The parameters are those of :func:`forest` that choose what the rows show.

    Raises
    ------
    InputError
        Extra columns or RoB judgements that do not have one value per study, a
        RoB judgement that is not one of the RoB 2 levels, or ``sort="year"``
        without years.
    """
    if isinstance(result, SubgroupResult):
        fits = [lev.fit for lev in result.levels]
    elif isinstance(result, MetaResult):
        fits = [result]
    else:
        raise InputError(
            f"forest draws a MetaResult or a SubgroupResult, not a {type(result).__name__}"
        )
    sizes = [f.k for f in fits]
    k = sum(sizes)
    extra = as_columns(columns, k, "columns") if columns is not None else {}
    rob_domains: list[str] = []
    rob_all: list[dict[str, str | None]] | None = None
    if rob is not None:
        labels = tuple(label for f in fits for label in f.labels)
        rob_domains, rob_all = rob_columns(rob, k, labels)
    years = _years(year, sort, extra, k)
    if isinstance(result, SubgroupResult):
        rows, footnotes = _subgroup_rows(
            result, overall, extra, sizes, rob_all, sort, years, prediction, digits, show_weights
        )
        measure_fit = fits[0]
        reference = overall.estimate if overall is not None else None
    else:
        rows = study_rows(
            result, columns=extra, rob=rob_all, order=_order(result, sort, years), digits=digits
        )
        rows.append(Row(kind="space"))
        rows.extend(pooled_rows(result, prediction=prediction, digits=digits))
        footnotes = _excluded_footnote(list(result.excluded))
        measure_fit = result
        reference = result.estimate
    cols = extra_columns(extra)
    cols.append(
        Column("est", effect_header(measure_fit.measure, measure_fit.level), "right", "right")
    )
    if show_weights:
        cols.append(Column("weight", "Weight", "right", "right"))
    legend: list[str] = []
    if rob_domains:
        footnotes.append("Risk of bias (RoB 2): " + _ROB_NAMES)
        used = {lvl for r in rob_all or [] for lvl in r.values() if lvl is not None}
        legend = [lvl for lvl in ROB_LEVELS if lvl in used or lvl != "none"]
    return ForestTable(
        rows=tuple(rows),
        columns=tuple(cols),
        scale=scale_of(measure_fit, xlabel),
        rob_domains=tuple(rob_domains),
        rob_legend=tuple(legend),
        favours=favours_text(favours, groups, lower_is_better),
        footnotes=tuple(footnotes),
        reference=reference,
    )


def _years(
    year: Sequence[Any] | None, sort: SortKey | None, extra: dict[str, list[Any]], k: int
) -> npt.NDArray[np.float64] | None:
    if year is not None:
        return study_numbers(year, k, "year")
    if sort == "year":
        key = next((name for name in extra if name.strip().lower() == "year"), None)
        if key is not None:
            return study_numbers(extra[key], k, "year")
    return None


def _subgroup_rows(
    result: SubgroupResult,
    overall: MetaResult | None,
    extra: dict[str, list[Any]],
    sizes: list[int],
    rob_all: list[dict[str, str | None]] | None,
    sort: SortKey | None,
    years: npt.NDArray[np.float64] | None,
    prediction: bool,
    digits: int,
    show_weights: bool,
) -> tuple[list[Row], list[str]]:
    """One block per level, the levels without studies, the excluded, overall and tests."""
    extra_parts = _split(extra, sizes)
    bounds = np.cumsum([0, *sizes])
    rows: list[Row] = []
    for j, lev in enumerate(result.levels):
        fit = lev.fit
        a, b = int(bounds[j]), int(bounds[j + 1])
        rows.append(Row(kind="heading", label=f"{result.by}: {lev.name}", gid=f"g{j}"))
        rows.extend(
            study_rows(
                fit,
                columns=extra_parts[j],
                rob=rob_all[a:b] if rob_all is not None else None,
                order=_order(fit, sort, years[a:b] if years is not None else None),
                digits=digits,
                prefix=f"g{j}-",
            )
        )
        if lev.pooled:
            rows.extend(
                pooled_rows(
                    fit,
                    label=f"Subtotal ({short_model_label(fit)})",
                    prediction=prediction,
                    digits=digits,
                    gid=f"g{j}",
                    bold=False,
                )
            )
        else:
            rows.append(
                Row(kind="note", label=lev.note or "A single study: not pooled.", gid=f"g{j}")
            )
        rows.append(Row(kind="space"))
    for j, name in enumerate(result.empty_levels):
        label = f"{result.by}: {name}: no study with an effect size."
        rows.append(Row(kind="note", label=label, gid=f"empty{j}"))
    if result.excluded:
        rows.append(Row(kind="heading", label="Not pooled", gid="excluded"))
        rows.extend(
            Row(
                kind="excluded",
                label=exc.study or (f"Row {exc.row}" if exc.row is not None else "Study"),
                cells={"est": "not pooled\u2020"},
                gid=f"x{j}",
            )
            for j, exc in enumerate(result.excluded)
        )
        rows.append(Row(kind="space"))
    if overall is not None:
        rows.extend(pooled_rows(overall, prediction=prediction, digits=digits))
    for note in _subgroup_test_notes(result):
        rows.append(Row(kind="note", label=note, gid="subgroup-test"))
    fits = [lev.fit for lev in result.levels]
    excluded_from = [*fits, *([overall] if overall is not None else [])]
    footnotes = _excluded_footnote(
        [e for f in excluded_from for e in f.excluded] + list(result.excluded)
    )
    if show_weights:
        footnotes.append("Weights are those within each subgroup.")
    return rows, footnotes
