"""The cumulative forest plot.

References
----------
Lau, J., Antman, E. M., Jimenez-Silva, J., Kupelnick, B., Mosteller, F., &
Chalmers, T. C. (1992). Cumulative meta-analysis of therapeutic trials for
myocardial infarction. *New England Journal of Medicine*, 327, 248-254.
"""

from __future__ import annotations

from matplotlib.figure import Figure

from metaan.errors import InputError
from metaan.plots._inputs import StudyColumns
from metaan.plots._sequence import refit_forest
from metaan.results import MetaResult
from metaan.sensitivity import Cumulative

__all__ = ["cumulative"]


def cumulative(
    result: Cumulative,
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
    """Draw the cumulative forest plot: the pooled estimate as studies are added.

    Row i is the model fitted to the first i + 1 studies of ``result.order``,
    labelled with the study added; its estimate and confidence interval, τ² and
    I² are those :func:`metaan.sensitivity.cumulative` computed (Lau et al. 1992).

    Parameters
    ----------
    result
        A :class:`~metaan.sensitivity.Cumulative`.
    full
        The fit to all studies (gives the measure, and the reference diamond).
    measure
        The effect measure when ``full`` is not given; OR and RR are drawn on a
        log axis.
    columns, groups, lower_is_better, favours, xlim, xlabel, label_width,
    plot_width, digits, title
        As for :func:`metaan.plots.forest`; ``columns`` are aligned with the
        rows (``result.labels``, in the cumulative order), e.g. the year.

    Returns
    -------
    matplotlib.figure.Figure
        Rows carry ``gid="study-<i>"`` (point) and ``"ci-<i>"`` (interval).
    """
    if not isinstance(result, Cumulative):
        raise InputError(f"cumulative draws a Cumulative result, not a {type(result).__name__}")
    return refit_forest(
        result,
        labels=[f"+ {label}" for label in result.labels],
        label_header="Study added",
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
        footnotes=["Each row is the model fitted to the studies up to and including that one."],
    )
