"""Faceted figures of a simulation study's metrics: a measure against k, one panel
per heterogeneity level, one line per method."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from matplotlib.figure import Figure

from metaan._format import fmt_typeset
from metaan.errors import InputError
from metaan.plots._theme import GREY, theme

__all__ = ["SIMULATION_MEASURES", "simulation"]


@dataclass(frozen=True)
class _Measure:
    column: str
    label: str
    #: The columns that tell the lines apart (rows equal in the others are one line).
    lines: tuple[str, ...]
    reference: str | None  # "level", "zero" or None
    random_only: bool = False
    with_prediction: bool = False


_MEASURES = {
    "ci_coverage": _Measure("ci_coverage", "Coverage of the CI (%)", ("method", "test"), "level"),
    "pi_coverage": _Measure(
        "pi_coverage",
        "Coverage of a new study's effect by the PI (%)",
        ("method", "test", "prediction"),
        "level",
        with_prediction=True,
    ),
    "bias": _Measure("bias", "Bias of the estimate", ("method",), "zero"),
    "tau2_bias": _Measure("tau2_bias", "Bias of τ²", ("method",), "zero", random_only=True),
    "ci_width": _Measure("ci_width", "Mean width of the CI", ("method", "test"), None),
    "rejection": _Measure("rejection", "Rejection rate (%)", ("method", "test"), None),
}
#: What :func:`simulation` can draw.
SIMULATION_MEASURES: tuple[str, ...] = tuple(_MEASURES)
_PERCENT = {"ci_coverage", "pi_coverage", "rejection"}


def _panel_data(metrics: pd.DataFrame, measure: _Measure, heterogeneity: str) -> pd.DataFrame:
    """The rows to draw, with the labels of panel, row and line (no numbers computed
    beyond scaling rates to percent)."""
    data = metrics
    if measure.random_only:
        data = data[~data["method"].isin(["EE", "MH", "PETO"])]
    if measure.with_prediction:
        data = data[data["prediction"] != "none"]
    data = data.drop_duplicates(["scenario", *measure.lines]).copy()
    if measure.column == "rejection":
        data["rejection"] = data["type1_error"].fillna(data["power"])
    if measure.column in _PERCENT:
        data[measure.column] = 100.0 * data[measure.column]
    line = data["method"] if measure.lines == ("method",) else data["label"]
    if measure.with_prediction:
        line = line + ", " + data["prediction"] + " PI"
    data["line"] = line
    if heterogeneity == "i2":
        data["panel"] = data["i2"].map(lambda v: f"I² = {fmt_typeset(v, 0)}%")
    else:
        data["panel"] = data["tau2"].map(lambda v: f"τ² = {v:g}")
    row = data["measure"].astype(str)
    for name, text in (("effect", "effect"), ("control_risk", "control risk")):
        if data[name].nunique(dropna=True) > 1:
            row = row + f", {text} " + data[name].map(lambda v: f"{v:g}")
    data["row"] = row
    return data


def simulation(
    metrics: pd.DataFrame,
    what: str = "ci_coverage",
    *,
    heterogeneity: str = "i2",
    level: float = 95.0,
) -> Figure:
    """Draw one measure of a simulation study against the number of studies.

    Parameters
    ----------
    metrics
        The metrics table of :func:`metaan.simulate.run_simulation`.
    what
        One of :data:`SIMULATION_MEASURES`: ``ci_coverage``, ``pi_coverage``,
        ``bias``, ``tau2_bias``, ``ci_width`` or ``rejection`` (the type I error
        where the true effect is 0, the power elsewhere).
    heterogeneity
        Label the panels by ``"i2"`` (percent) or ``"tau2"``, as the grid declared it.
    level
        The nominal confidence level, drawn as a reference line for coverage.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per heterogeneity level (columns) and per measure, effect and
        control risk (rows), one line per method, distinguished by colour and marker.
    """
    import seaborn as sns
    from matplotlib import pyplot as plt

    if what not in _MEASURES:
        raise InputError(f"cannot draw {what!r}", fix=f"use one of {', '.join(_MEASURES)}")
    measure = _MEASURES[what]
    data = _panel_data(metrics, measure, heterogeneity)
    if data.empty:
        raise InputError(f"the metrics have no rows to draw for {what}")
    with theme():
        grid = sns.relplot(
            data=data,
            x="k",
            y=measure.column,
            hue="line",
            style="line",
            col="panel",
            row="row",
            kind="line",
            markers=True,
            dashes=False,
            errorbar=None,
            height=2.1,
            aspect=1.0,
            facet_kws={"margin_titles": True, "sharey": "row"},
        )
        grid.set_titles(col_template="{col_name}", row_template="{row_name}")
        grid.set_axis_labels("Number of studies k", measure.label)
        if grid.legend is not None:
            grid.legend.set_title("")
        for ax in grid.axes.flat:
            if measure.reference == "level":
                ax.axhline(level, color=GREY, linewidth=0.8, linestyle=":", zorder=0)
            elif measure.reference == "zero":
                ax.axhline(0.0, color=GREY, linewidth=0.8, linestyle=":", zorder=0)
            ax.set_xticks(sorted(data["k"].unique()))
        fig: Figure = grid.figure
    plt.close(fig)  # drawn through pyplot by seaborn; handed back unregistered
    return fig
