"""Section: the summary table by drug class, and a note on how strong each class's evidence is."""

from __future__ import annotations

from typing import Any

from metaan.report.analyses import ReportResults
from metaan.report.sections._base import Section
from metaan.report.text import evidence_note


def _headings(results: ReportResults, computed: Any) -> list[tuple[str, str]]:
    return [("summary", "Summary by drug class")]


def _run(results: ReportResults) -> dict[str, str]:
    return {c.id: evidence_note(c, results.spec) for c in results.classes}


def _context(results: ReportResults, computed: dict[str, str]) -> dict[str, Any]:
    return {
        "notes": computed,
        "any_continuous": any(c.continuous is not None for c in results.classes),
        "any_response": any(c.response for c in results.classes),
    }


SECTION = Section(id="summary", headings=_headings, run=_run, context=_context)
