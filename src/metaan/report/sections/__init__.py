"""The sections of a report, in order: each a module and a template part.

A section is a :class:`Section`: what it computes from the classes' analyses
(``run``; ``None`` leaves the section out), the figures, CSV tables and
``results.json`` entry it adds, the variables its template part needs, and the
part itself (``templates/sections/<id>.html.j2``). A new section (a network
meta-analysis, a multilevel model) is a new module here with its own template
part, added to :data:`SECTIONS`; no other section changes.
"""

from __future__ import annotations

from metaan.report.sections import (
    bias,
    classes,
    comparison,
    dependent,
    dose,
    grade,
    methods,
    network,
    provenance,
    reproduction,
    summary,
)
from metaan.report.sections._base import Section

__all__ = ["SECTIONS", "Section", "section_by_id"]

#: The sections in the order the report shows them.
SECTIONS: tuple[Section, ...] = (
    summary.SECTION,
    grade.SECTION,
    classes.SECTION,
    comparison.SECTION,
    network.SECTION,
    dose.SECTION,
    dependent.SECTION,
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
