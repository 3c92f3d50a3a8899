"""Section: the published figures the report recomputes, side by side with metaan's.

Each ``[[reproduction]]`` of the spec names an analysis of the report, the
published numbers and where they were published. The table puts the published
figure, metaan's figure (rounded to the published digits) and the difference
side by side, so a reader sees at once which figures are reproduced.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pandas as pd

from metaan.models import fit
from metaan.report.analyses import Analysis, ReportResults
from metaan.report.sections._base import Section
from metaan.report.spec import ReproductionSpec
from metaan.results import MetaResult

#: What each published name means, and how metaan's number is read from a fit.
_QUANTITIES = {
    "estimate": "pooled estimate",
    "se": "standard error",
    "ci_lb": "CI, lower bound",
    "ci_ub": "CI, upper bound",
    "pi_lb": "prediction interval, lower bound",
    "pi_ub": "prediction interval, upper bound",
    "tau2": "τ²",
    "QE": "Q",
    "I2": "I² (%)",
    "k": "studies",
}


@dataclass(frozen=True)
class Check:
    reproduction: ReproductionSpec
    analysis: Analysis | None
    quantity: str
    #: The published number as printed, and its number of decimals.
    printed: str
    computed: float | None

    @property
    def published(self) -> float:
        return float(self.printed)

    @property
    def digits(self) -> int:
        text = self.printed.strip()
        return len(text.split(".")[1]) if "." in text else 0

    @property
    def difference(self) -> float | None:
        return None if self.computed is None else self.computed - self.published

    @property
    def reproduced(self) -> bool:
        """Equal at the published number of decimals."""
        if self.computed is None:
            return False
        return f"{self.computed:.{self.digits}f}" == f"{self.published:.{self.digits}f}"


def _headings(results: ReportResults, computed: Any) -> list[tuple[str, str]]:
    return [("reproduction", "Published results reproduced")]


def find_analysis(results: ReportResults, path: str) -> Analysis | None:
    """``<class>/continuous`` or ``<class>/response/<measure>`` to the analysis, if run."""
    parts = path.split("/")
    c = results.class_by_id(parts[0])
    if parts[1:] == ["continuous"]:
        return c.continuous
    if len(parts) == 3 and parts[1] == "response":
        return next((a for a in c.response if a.measure == parts[2]), None)
    return None


def _fit_for(a: Analysis, r: ReproductionSpec, results: ReportResults) -> MetaResult | None:
    """The analysis's fit, refitted with the published test and prediction interval if needed."""
    model = results.spec.model
    test = r.test or model.test
    if a.fit is None or (r.prediction == model.prediction and test == model.test):
        return a.fit
    m = dataclasses.replace(model, prediction=r.prediction, test=test)
    return fit(
        yi=a.records["yi"].to_numpy(dtype=float),
        vi=a.records["vi"].to_numpy(dtype=float),
        method=m.method,
        test=m.test,
        level=m.level,
        measure=a.measure,
        labels=list(a.records["label"]),
        prediction=m.prediction,
    )


def _run(results: ReportResults) -> list[Check] | None:
    if not results.spec.reproductions:
        return None
    checks = []
    for r in results.spec.reproductions:
        a = find_analysis(results, r.analysis)
        f = _fit_for(a, r, results) if a is not None else None
        for name, value in r.published.items():
            got = None
            if f is not None:
                got = float(f.k) if name == "k" else float(getattr(f, name))
            checks.append(Check(r, a, name, value, got))
    return checks


def _rows(computed: list[Check]) -> list[dict[str, Any]]:
    rows = []
    for c in computed:
        d = c.digits
        rows.append(
            {
                "label": c.reproduction.label,
                "source": c.reproduction.source,
                "analysis": c.analysis.id if c.analysis is not None else c.reproduction.analysis,
                "quantity": _QUANTITIES.get(c.quantity, c.quantity),
                "published": c.printed,
                "metaan": "not computed" if c.computed is None else f"{c.computed:.{d}f}",
                "difference": "–" if c.difference is None else f"{c.difference:+.{d + 2}f}",
                "reproduced": "yes" if c.reproduced else "no",
            }
        )
    return rows


def _context(results: ReportResults, computed: list[Check]) -> dict[str, Any]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in _rows(computed):
        groups.setdefault(row["label"], []).append(row)
    return {"groups": groups, "all_reproduced": all(c.reproduced for c in computed)}


def _tables(results: ReportResults, computed: list[Check]) -> dict[str, pd.DataFrame]:
    return {"reproduction": pd.DataFrame(_data(results, computed))}


def _data(results: ReportResults, computed: list[Check]) -> list[dict[str, Any]]:
    return [
        {
            "label": c.reproduction.label,
            "source": c.reproduction.source,
            "analysis": c.reproduction.analysis,
            "quantity": c.quantity,
            "published": c.published,
            "metaan": c.computed,
            "difference": c.difference,
            "digits": c.digits,
            "reproduced": c.reproduced,
        }
        for c in computed
    ]


SECTION = Section(
    id="reproduction",
    headings=_headings,
    run=_run,
    tables=_tables,
    data=_data,
    context=_context,
)
