"""The leave-one-out forest plot.

References
----------
Viechtbauer, W., & Cheung, M. W.-L. (2010). Outlier and influence diagnostics
for meta-analysis. *Research Synthesis Methods*, 1, 112-125.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure

from metaan.errors import InputError
from metaan.plots._inputs import StudyColumns
from metaan.plots._sequence import refit_forest
from metaan.results import MetaResult
from metaan.sensitivity import LeaveOneOut

__all__ = ["leave1out"]


def leave1out(
    result: LeaveOneOut,
    *,
    full: MetaResult | None = None,
    measure: str | None = None,
    columns: StudyColumns | None = None,
    groups: tuple[str, str] = ("treatment", "control"),
    lower_is_better: bool | None = True,
    favours: tuple[str, str] | None = None,
    xlim: tuple[float, float] | None = None,
    xlabel: str | None = None,
    label_width: int = 40,
    plot_width: float = 3.0,
    digits: int = 2,
    title: str | None = None,
) -> Figure:
    """Draw the leave-one-out forest plot: the pooled estimate without each study.

    Row i is the model refitted without study i (``result.labels[i]``): its
    estimate and confidence interval, τ² and I², as
    :func:`metaan.sensitivity.leave_one_out` computed them. With ``full``, the
    fit to all studies is drawn as a diamond underneath and as a dashed line
    through the rows, so a study whose omission moves the estimate stands out.

    Parameters
    ----------
    result
        A :class:`~metaan.sensitivity.LeaveOneOut`.
    full
        The fit to all studies (gives the measure, and the reference diamond).
    measure
        The effect measure when ``full`` is not given (``"OR"``, ``"SMD"``, ...);
        OR and RR are drawn on a log axis.
    columns, groups, lower_is_better, favours, xlim, xlabel, label_width,
    plot_width, digits, title
        As for :func:`metaan.plots.forest`; ``columns`` are aligned with
        ``result.labels``.

    Returns
    -------
    matplotlib.figure.Figure
        Rows carry ``gid="study-<i>"`` (point) and ``"ci-<i>"`` (interval).
    """
    if not isinstance(result, LeaveOneOut):
        raise InputError(f"leave1out draws a LeaveOneOut result, not a {type(result).__name__}")
    notes: Sequence[str] = (
        ["Each row is the model fitted without that study."]
        if full is None
        else [
            "Each row is the model fitted without that study; the dashed line is the "
            "estimate from all studies."
        ]
    )
    return refit_forest(
        result,
        labels=result.labels,
        label_header="Study left out",
        full=full,
        measure=measure,
        xlabel=xlabel,
        columns=columns,
        favours=favours,
        groups=groups,
        lower_is_better=lower_is_better,
        xlim=xlim,
        label_width=label_width,
        plot_width=plot_width,
        digits=digits,
        title=title,
        footnotes=notes,
    )
