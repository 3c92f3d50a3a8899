"""The :class:`Section` a report section module declares (see :mod:`metaan.report.sections`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from metaan.report.analyses import ReportResults

__all__ = ["Figures", "Section"]

#: A figure is a matplotlib Figure, or a list of them for a figure printed on several pages.
Figures = dict[str, Any]


def _nothing(results: ReportResults, computed: Any) -> dict[str, Any]:
    return {}


def _no_data(results: ReportResults, computed: Any) -> Any:
    return None


@dataclass(frozen=True)
class Section:
    """One section of the report: what it computes, adds and shows."""

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
