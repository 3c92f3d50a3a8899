"""Section: the GRADE summary of findings, one row per class and outcome.

The ratings come from :func:`metaan.grade.grade` by the rules declared in the
spec's ``[grade]`` table; the judgements the numbers cannot make (indirectness,
and risk of bias where the records carry no RoB 2 judgement) come from each
class's ``[class.grade]`` table. The table says which is which.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from metaan.grade import GradeRating, Judgement, grade
from metaan.report.analyses import Analysis, ClassResults, ReportResults
from metaan.report.sections._base import Section
from metaan.report.text import effect_symbol, fmt, fmt_effect, measure_name


@dataclass(frozen=True)
class GradeRow:
    class_id: str
    class_label: str
    outcome: str
    analysis: Analysis
    rating: GradeRating | None
    note: str


def _headings(results: ReportResults, computed: Any) -> list[tuple[str, str]]:
    return [("grade", "Summary of findings and certainty of evidence (GRADE)")]


def _judgement(rating: str, reason: str) -> Judgement | None:
    return Judgement(rating, reason or "declared in the specification") if rating else None


def _control_risk(a: Analysis, declared: float | None) -> tuple[float | None, str]:
    if declared is not None:
        return declared, "declared in the specification"
    recs = a.records
    risks = pd.to_numeric(recs["events2"], errors="coerce") / pd.to_numeric(
        recs["total2"], errors="coerce"
    )
    risks = risks.dropna()
    if not len(risks):
        return None, ""
    return float(np.median(risks)), f"the median control-arm risk of the {a.k} comparisons"


def _rate(c: ClassResults, a: Analysis, results: ReportResults) -> GradeRating | None:
    if a.fit is None:
        return None
    spec = results.spec
    g = spec.grade
    rob = a.records["rob_overall"].astype("string").fillna("")
    high = None if (rob == "").all() else [None if v == "" else v == "high" for v in rob]
    control, basis = (None, "") if a.continuous else _control_risk(a, g.control_risk)
    return grade(
        a.fit,
        participants=a.participants,
        high_risk=high,
        risk_of_bias=_judgement(c.spec.grade.risk_of_bias, c.spec.grade.risk_of_bias_reason),
        indirectness=_judgement(c.spec.grade.indirectness, c.spec.grade.indirectness_reason),
        control_risk=control,
        control_risk_basis=basis,
        rules=g,
    )


def _run(results: ReportResults) -> list[GradeRow] | None:
    if not results.spec.grade.enabled:
        return None
    outcome = results.spec.outcome
    rows = []
    for c in results.classes:
        analyses = [*([c.continuous] if c.continuous else []), *c.response[:1]]
        for a in analyses:
            name = outcome.continuous if a.continuous else outcome.response
            rows.append(
                GradeRow(
                    class_id=c.id,
                    class_label=c.label,
                    outcome=f"{name} ({measure_name(a.measure, outcome)})",
                    analysis=a,
                    rating=_rate(c, a, results),
                    note="" if a.fit is not None else f"{a.note}: not rated",
                )
            )
    return rows


def _effect_text(row: GradeRow) -> str:
    f = row.analysis.fit
    if f is None:
        return "–"
    m = row.analysis.measure
    return f"{effect_symbol(m)} {fmt_effect(f.estimate, f.ci_lb, f.ci_ub, m)}"


def _absolute_text(row: GradeRow) -> str:
    r = row.rating
    if r is None or r.absolute is None:
        return "–" if row.analysis.continuous else "no control risk"
    a = r.absolute
    return (
        f"{fmt(a.control_per_1000, 0)} per 1,000 with control, "
        f"{fmt(a.intervention_per_1000, 0)} with the drug: {_more_fewer(a.difference_per_1000)} "
        f"per 1,000 [{fmt(a.difference_lb, 0)} to {fmt(a.difference_ub, 0)}] "
        f"(control risk: {a.basis})"
    )


def _more_fewer(x: float) -> str:
    return f"{fmt(abs(x), 0)} {'more' if x >= 0 else 'fewer'}"


def _rows(results: ReportResults, computed: list[GradeRow]) -> list[dict[str, Any]]:
    out = []
    for row in computed:
        a, r = row.analysis, row.rating
        out.append(
            {
                "class": row.class_label,
                "outcome": row.outcome,
                "trials": a.trials,
                "participants": round(a.participants),
                "effect": _effect_text(row),
                "absolute": _absolute_text(row),
                "certainty": r.certainty if r is not None else "not rated",
                "domains": [d.to_dict() for d in r.domains] if r is not None else [],
                "note": row.note,
                "ois": r.ois if r is not None else None,
            }
        )
    return out


def _context(results: ReportResults, computed: list[GradeRow]) -> dict[str, Any]:
    return {"grade_rows": _rows(results, computed), "rules": results.spec.grade}


def _table(results: ReportResults, computed: list[GradeRow]) -> dict[str, pd.DataFrame]:
    flat = []
    for row in _rows(results, computed):
        base = {k: v for k, v in row.items() if k != "domains"}
        for d in row["domains"]:
            base[f"{d['name']}"] = d["rating"]
            base[f"{d['name']} (basis)"] = d["basis"]
            base[f"{d['name']} (reason)"] = d["reason"]
        flat.append(base)
    return {"grade": pd.DataFrame(flat)}


def _data(results: ReportResults, computed: list[GradeRow]) -> list[dict[str, Any]]:
    return [
        {
            "class": row.class_id,
            "outcome": row.outcome,
            "analysis": row.analysis.id,
            "rating": row.rating.to_dict() if row.rating is not None else None,
            "note": row.note,
        }
        for row in computed
    ]


SECTION = Section(
    id="grade",
    headings=_headings,
    run=_run,
    tables=_table,
    data=_data,
    context=_context,
)
