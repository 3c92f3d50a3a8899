"""Section: small-study effects (funnel plots, Egger, Begg, trim-and-fill) per class."""

from __future__ import annotations

from typing import Any

from metaan.report.analyses import ReportResults
from metaan.report.sections._base import Section
from metaan.report.text import axis_label


def _headings(results: ReportResults, computed: Any) -> list[tuple[str, str]]:
    return [("bias", "Small-study effects")]


def _run(results: ReportResults) -> dict[str, Any]:
    # The tests run with each class's analyses (they are part of its results); this
    # section presents them.
    return {c.id: c.bias for c in results.classes}


def _figures(results: ReportResults, computed: dict[str, Any]) -> dict[str, Any]:
    from metaan import plots

    figs = {}
    for c in results.classes:
        if c.bias is None:
            continue
        figs[f"funnel_{c.id}"] = plots.funnel(
            c.bias.trimfill,
            contours=results.spec.bias.contours,
            egger=c.bias.egger_lm,
            xlabel=axis_label(c.primary.measure, results.spec.outcome),
            title=f"{c.label}: contour-enhanced funnel plot with trim-and-fill",
        )
    return figs


SECTION = Section(id="bias", headings=_headings, run=_run, figures=_figures)
