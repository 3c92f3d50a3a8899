"""Section: one part per drug class (forest plot, response, sensitivity, risk of bias,
trials not pooled, and for classes too thin to pool what exists and why)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from metaan.report.analyses import Analysis, ClassResults, ReportResults, is_blank
from metaan.report.sections._base import Section
from metaan.report.text import axis_label, fmt, fmt_ci
from metaan.rob import DOMAINS, RobTable, rob_table, summarise_rob

#: The printable area a figure must fit on an A4 page (inches): 180 mm wide, and
#: 235 mm high, leaving room for the heading and caption.
PRINT_PAGE = (180 / 25.4, 235 / 25.4)
#: The RoB 2 domains and their columns in the study records.
_ROB_COLUMNS = tuple(
    (domain, next(a for a in aliases if a.startswith("rob_"))) for domain, aliases in DOMAINS
)


@dataclass(frozen=True, eq=False)
class ClassPart:
    """What the class section adds to one class's analyses."""

    rob: RobTable | None
    awaiting: pd.DataFrame | None


def _headings(results: ReportResults, computed: Any) -> list[tuple[str, str]]:
    return [(f"class-{c.id}", c.label) for c in results.classes]


def has_rob(a: Analysis) -> bool:
    return bool(a.records["rob_overall"].astype("string").fillna("").ne("").any())


def _rob(a: Analysis) -> RobTable | None:
    if a.fit is None or not has_rob(a):
        return None
    frame = a.records.assign(weight=np.asarray(a.fit.weights, dtype=float))
    return rob_table(frame, study="study_id", weight="weight")


def _awaiting(c: ClassResults) -> pd.DataFrame | None:
    if c.spec.awaiting is None:
        return None
    from metaan.io import read_table

    return read_table(c.spec.awaiting).fillna("")


def _run(results: ReportResults) -> dict[str, ClassPart]:
    return {c.id: ClassPart(rob=_rob(c.primary), awaiting=_awaiting(c)) for c in results.classes}


def _int_text(value: Any) -> str:
    x = float(value)
    return f"{x:.0f}" if x == round(x) else f"{x:.1f}"


def _forest_columns(a: Analysis) -> dict[str, list[str]]:
    recs = a.records
    if a.continuous:
        columns = {
            "N drug": [_int_text(v) if not is_blank(v) else "" for v in recs["n1"]],
            "N control": [_int_text(v) if not is_blank(v) else "" for v in recs["n2_used"]],
        }
    else:
        columns = {
            "Events drug": [
                f"{_int_text(e)}/{_int_text(n)}"
                for e, n in zip(recs["events1"], recs["total1"], strict=True)
            ],
            "Events control": [
                f"{_int_text(e)}/{_int_text(n)}"
                for e, n in zip(recs["events2_used"], recs["total2_used"], strict=True)
            ],
        }
    # The kind of control, where there is room: not beside the RoB columns, which
    # would make the figure too wide to print at 6 pt or more.
    if a.k <= 40 and not has_rob(a):
        columns["Control"] = [str(v).replace("_", " ") for v in recs["comparator_kind"]]
    return columns


def rob_columns(recs: pd.DataFrame) -> pd.DataFrame:
    names = {"low": "Low", "some_concerns": "Some concerns", "high": "High"}
    return pd.DataFrame(
        {
            name: [
                names.get(str(v), "No information") if not is_blank(v) else "" for v in recs[col]
            ]
            for name, col in _ROB_COLUMNS
        }
    )


def forest_figures(c: ClassResults, a: Analysis, results: ReportResults) -> list[Any]:
    """The class's forest plot, as pages that fit the printed page."""
    from metaan import plots

    assert a.fit is not None  # only pooled analyses are drawn
    outcome = results.spec.outcome
    subject = outcome.continuous if a.continuous else outcome.response
    return plots.forest_pages(
        a.fit,
        page_size=PRINT_PAGE,
        columns=_forest_columns(a),
        rob=rob_columns(a.records) if has_rob(a) else None,
        groups=(c.label.lower(), "control"),
        lower_is_better=outcome.lower_is_better if a.continuous else False,
        xlabel=axis_label(a.measure, outcome),
        title=f"{c.label}: {subject}",
    )


def _figures(results: ReportResults, computed: dict[str, ClassPart]) -> dict[str, Any]:
    from metaan import plots

    figs: dict[str, Any] = {}
    outcome = results.spec.outcome
    for c in results.classes:
        a = c.primary
        if a.fit is None:
            continue
        figs[f"forest_{c.id}"] = forest_figures(c, a, results)
        if c.leave1out is not None and a.k <= 40:
            figs[f"leave1out_{c.id}"] = plots.leave1out(
                c.leave1out,
                full=a.fit,
                groups=(c.label.lower(), "control"),
                lower_is_better=outcome.lower_is_better if a.continuous else False,
                xlabel=axis_label(a.measure, outcome),
                title=f"{c.label}: leaving out one comparison at a time",
            )
        rob = computed[c.id].rob
        if rob is not None:
            figs[f"rob_summary_{c.id}"] = plots.rob_summary(
                summarise_rob(rob), title=f"{c.label}: risk of bias (RoB 2), weighted"
            )
            figs[f"rob_traffic_{c.id}"] = plots.rob_traffic_light(
                rob, title=f"{c.label}: risk of bias (RoB 2) by trial"
            )
    return figs


def _loo_summary(c: ClassResults) -> dict[str, Any] | None:
    loo, full = c.leave1out, c.primary.fit
    if loo is None or full is None:
        return None
    est = np.asarray(loo.estimate, dtype=float)
    i2 = np.asarray(loo.I2, dtype=float)
    return {
        "min": float(est.min()),
        "max": float(est.max()),
        "i2_min": float(i2.min()),
        "i2_max": float(i2.max()),
        "most": loo.labels[int(np.abs(est - full.estimate).argmax())],
    }


def _reported(c: ClassResults) -> list[dict[str, str]]:
    out = []
    for r in c.reported.to_dict(orient="records"):
        effect = "–"
        for est, lb, ub, name in (
            ("md", "md_ci_lb", "md_ci_ub", "MD"),
            ("smd", "smd_ci_lb", "smd_ci_ub", "SMD"),
        ):
            if not is_blank(r.get(est)):
                effect = f"{name} {fmt(float(r[est]))} {fmt_ci(_num(r.get(lb)), _num(r.get(ub)))}"
                break
        why = r.get("not_poolable_reason")
        if is_blank(why):
            why = "no per-arm n and SD, so no pooled effect"
        out.append(
            {
                "study_id": str(r["study_id"]),
                "intervention": str(r.get("intervention", "")),
                "comparator": str(r.get("comparator", "")),
                "outcome": ", ".join(
                    str(r.get(col))
                    for col in ("scale", "outcome_type", "time_label")
                    if not is_blank(r.get(col))
                ),
                "effect": effect,
                "why": str(why),
            }
        )
    return out


def _num(value: Any) -> float | None:
    return None if is_blank(value) else float(value)


def grouped_out(a: Analysis) -> list[tuple[str, list[str]]]:
    """The trials left out of an analysis, grouped by reason."""
    groups: dict[str, list[str]] = {}
    for t in a.trials_out:
        groups.setdefault(t.reason, []).append(t.study)
    return sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))


def _next_step(row: pd.Series) -> str:
    """What a reviewer would do next for a trial awaiting data, from why it cannot be pooled."""
    why = str(row.get("why_not_pooled", "")).lower()
    steps = ["ask the authors for the per-arm mean, SD and n"]
    if "figure" in why or "supplement" in why:
        steps.insert(0, "read the supplement")
    if "registry" in why or "full text" in why or "abstract" in why:
        steps.insert(0, "read the full text and any registry results")
    if "active comparator" in why or "waitlist" in why or "open-label" in why:
        steps.append("judge whether its control belongs in a placebo comparison")
    return "; ".join(steps)


def _awaiting_rows(frame: pd.DataFrame | None) -> list[dict[str, str]]:
    if frame is None:
        return []
    rows = []
    for _, r in frame.sort_values(["population", "study"], kind="stable").iterrows():
        rows.append({**{str(k): str(v) for k, v in r.items()}, "next": _next_step(r)})
    return rows


def _context(results: ReportResults, computed: dict[str, ClassPart]) -> dict[str, Any]:
    return {
        "loo": {c.id: _loo_summary(c) for c in results.classes},
        "influential": {
            c.id: [
                lab
                for lab, flag in zip(c.influence.labels, c.influence.influential, strict=True)
                if flag
            ]
            for c in results.classes
            if c.influence is not None
        },
        "reported": {c.id: _reported(c) for c in results.classes},
        "rob_classes": {c.id for c in results.classes if computed[c.id].rob is not None},
        "out": {a.id: grouped_out(a) for c in results.classes for a in c.analyses},
        "awaiting": {c.id: _awaiting_rows(computed[c.id].awaiting) for c in results.classes},
        "axis": {
            c.id: axis_label(c.primary.measure, results.spec.outcome) for c in results.classes
        },
    }


def _data(results: ReportResults, computed: dict[str, ClassPart]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c in results.classes:
        part = computed[c.id]
        out[c.id] = {
            "risk_of_bias": None
            if part.rob is None
            else {
                "trials": part.rob.to_frame().to_dict(orient="records"),
                "summary": summarise_rob(part.rob).to_frame().to_dict(orient="records"),
            },
            "awaiting_data": None
            if part.awaiting is None
            else part.awaiting.to_dict(orient="records"),
        }
    return out


def _tables(results: ReportResults, computed: dict[str, ClassPart]) -> dict[str, pd.DataFrame]:
    out = {}
    for c in results.classes:
        part = computed[c.id]
        if part.rob is not None:
            out[f"rob_{c.id}"] = part.rob.to_frame()
        if part.awaiting is not None:
            rows = _awaiting_rows(part.awaiting)
            out[f"awaiting_{c.id}"] = pd.DataFrame(rows)
    return out


SECTION = Section(
    id="classes",
    headings=_headings,
    run=_run,
    figures=_figures,
    tables=_tables,
    data=_data,
    context=_context,
)

__all__ = ["PRINT_PAGE", "SECTION", "forest_figures", "grouped_out", "has_rob", "rob_columns"]
