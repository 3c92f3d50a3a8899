"""Section: the methods, written from the settings of the specification."""

from __future__ import annotations

from typing import Any

from metaan.report.analyses import ReportResults
from metaan.report.sections._base import Section


def _headings(results: ReportResults, computed: Any) -> list[tuple[str, str]]:
    return [("methods", "Methods")]


def _run(results: ReportResults) -> list[str]:
    from metaan.report.serialize import library_versions
    from metaan.report.text import methods_text

    return methods_text(results, library_versions())


SECTION = Section(
    id="methods",
    headings=_headings,
    run=_run,
    context=lambda results, computed: {"paragraphs": computed},
)
