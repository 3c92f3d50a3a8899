"""The sections of a report, in order: each a module and a template part.

A section is a :class:`Section`: what it computes from the classes' analyses
(``run``; ``None`` leaves the section out), the figures, CSV tables and
``results.json`` entry it adds, the variables its template part needs, and the
part itself (``templates/sections/<id>.html.j2``). A new section (a network
meta-analysis, a multilevel model) is a new module here with its own template
part, added to :data:`SECTIONS`; no other section changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from metaan.report.analyses import ReportResults

__all__ = ["SECTIONS", "Section", "section_by_id"]

#: A figure is a matplotlib Figure, or a list of them for a figure printed on several pages.
Figures = dict[str, Any]


def _nothing(results: ReportResults, computed: Any) -> dict[str, Any]:
    return {}


def _no_data(results: ReportResults, computed: Any) -> Any:
    return None


@dataclass(frozen=True)
class Section:
    """One section of the report (see the module docstring)."""

    id: str
    #: The section's headings (anchor, title); more than one for per-class sections.
    headings: Callable[[ReportResults, Any], list[tuple[str, str]]]
    run: Callable[[ReportResults], Any | None]
    figures: Callable[[ReportResults, Any], Figures] = field(default=_nothing)
    tables: Callable[[ReportResults, Any], dict[str, pd.DataFrame]] = field(default=_nothing)
    data: Callable[[ReportResults, Any], Any] = field(default=_no_data)
    context: Callable[[ReportResults, Any], dict[str, Any]] = field(default=_nothing)

    @property
    def template(self) -> str:
        return f"sections/{self.id}.html.j2"


def _sections() -> tuple[Section, ...]:
    from metaan.report.sections import (
        bias,
        classes,
        comparison,
        dose,
        grade,
        methods,
        provenance,
        reproduction,
        summary,
    )

    return (
        summary.SECTION,
        grade.SECTION,
        classes.SECTION,
        comparison.SECTION,
        dose.SECTION,
        bias.SECTION,
        reproduction.SECTION,
        methods.SECTION,
        provenance.SECTION,
    )


def section_by_id(section_id: str) -> Section:
    for section in SECTIONS:
        if section.id == section_id:
            return section
    raise KeyError(section_id)


SECTIONS: tuple[Section, ...]


def __getattr__(name: str) -> Any:
    # The registry is built on first use, so that the section modules can import
    # this one for Section without a cycle.
    if name == "SECTIONS":
        value = _sections()
        globals()["SECTIONS"] = value
        return value
    raise AttributeError(name)
