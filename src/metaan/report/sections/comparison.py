"""Section: comparing the classes (test for subgroup differences, direct and indirect evidence)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from metaan.models import fit
from metaan.report.analyses import (
    Analysis,
    ClassResults,
    Contrast,
    ReportResults,
    effect_analysis,
)
from metaan.report.sections._base import Section
from metaan.report.text import axis_label, effect_symbol, fmt_effect
from metaan.results import MetaResult


@dataclass(frozen=True, eq=False)
class ComparisonResults:
    classes: tuple[str, ...]
    measure: str
    between: MetaResult | None
    between_note: str
    direct: Contrast | None
    direct_analysis: Analysis | None
    indirect: Contrast | None
    indirect_a: Analysis | None
    inconsistency: Contrast | None
    caveats: tuple[str, ...]
    findings: tuple[str, ...]

    @property
    def analyses(self) -> tuple[Analysis, ...]:
        return tuple(a for a in (self.direct_analysis, self.indirect_a) if a is not None)


def _headings(results: ReportResults, computed: Any) -> list[tuple[str, str]]:
    return [("comparison", "Comparing the classes")]


def _between(results: ReportResults, pooled: list[ClassResults]) -> MetaResult | None:
    if len(pooled) < 2:
        return None
    fits = [c.primary.fit for c in pooled if c.primary.fit is not None]
    return fit(
        yi=[f.estimate for f in fits],
        sei=[f.se for f in fits],
        method="EE",
        level=results.spec.model.level,
        labels=[c.label for c in pooled],
        measure=pooled[0].primary.measure,
    )


def _direct(results: ReportResults) -> tuple[Analysis | None, Contrast | None]:
    comp = results.spec.comparison
    assert comp is not None
    if comp.direct is None:
        return None, None
    level = results.spec.model.level
    analysis = effect_analysis(
        results.studies.frame,
        comp.direct,
        analysis_id="direct",
        label=comp.direct_label,
        kind="continuous",
        model=results.spec.model,
    )
    if analysis.k == 1:
        r = analysis.records.iloc[0]
        n = f"; n = {int(r['n1'])} + {int(r['n2'])}" if not pd.isna(r.get("n1")) else ""
        detail = (
            f"{r['study_id']}: {r['intervention']} vs {r['comparator']}, {r['scale']}, "
            f"{r['time_label']}{n}"
        )
        contrast = Contrast.from_estimate(
            comp.direct_label, float(r["yi"]), math.sqrt(float(r["vi"])), level, detail
        )
        return analysis, contrast
    if analysis.fit is not None:
        f = analysis.fit
        detail = f"pooled over {f.k} comparisons"
        contrast = Contrast.from_estimate(comp.direct_label, f.estimate, f.se, level, detail, f.df)
        return analysis, contrast
    return analysis, None


def _run(results: ReportResults) -> ComparisonResults | None:
    comp = results.spec.comparison
    if comp is None:
        return None
    by_id = {c.id: c for c in results.classes}
    measure = results.spec.model.measure
    pooled = [
        by_id[c]
        for c in comp.classes
        if by_id[c].primary.fit is not None and by_id[c].primary.measure == measure
    ]
    left = [by_id[c].label for c in comp.classes if by_id[c] not in pooled]
    between_note = f"{', '.join(left)}: no pooled estimate, not part of the test" if left else ""
    if len(pooled) < 2:
        between_note = "fewer than two classes have a pooled estimate"
    direct_analysis, direct = _direct(results)
    indirect = indirect_a = inconsistency = None
    level = results.spec.model.level
    if comp.indirect_a is not None and comp.indirect_b is not None:
        indirect_a = effect_analysis(
            results.studies.frame,
            comp.indirect_a,
            analysis_id="indirect_a",
            label=f"{comp.classes[0]} vs placebo-type controls",
            kind="continuous",
            model=results.spec.model,
        )
        a, b = indirect_a.fit, by_id[comp.indirect_b].primary.fit
        if a is not None and b is not None:
            # Bucher et al. (1997): the indirect estimate of A vs B through their
            # common comparator is d_AC - d_BC with variance var_AC + var_BC. Each leg
            # keeps its own inference: with a Hartung-Knapp leg (t with k - 1 df) the
            # difference is referred to t with the smaller df, never to the normal, so
            # it is never more precise than either leg.
            df = Contrast.combined_df(a.df, b.df)
            indirect = Contrast.from_estimate(
                comp.indirect_label,
                a.estimate - b.estimate,
                math.sqrt(a.se**2 + b.se**2),
                level,
                f"({a.estimate:.3f}) − ({b.estimate:.3f}); k = {a.k} and {b.k}"
                + ("" if df is None else f"; t with {df} df"),
                df,
            )
            if direct is not None:
                df = Contrast.combined_df(direct.df, indirect.df)
                test = "z-test" if df is None else f"t-test ({df} df)"
                inconsistency = Contrast.from_estimate(
                    "direct − indirect",
                    direct.estimate - indirect.estimate,
                    math.sqrt(direct.se**2 + indirect.se**2),
                    level,
                    f"{test} of the difference between direct and indirect evidence",
                    df,
                )
    symbol = effect_symbol(measure)
    findings = tuple(
        f"{x.label}: {symbol} = {fmt_effect(x.estimate, x.ci_lb, x.ci_ub, measure)}"
        + ("; an indirect comparison across different trials and populations." if x is indirect
           else " in one trial." if x is direct and direct_analysis is not None
           and direct_analysis.k == 1 else ".")
        for x in (direct, indirect)
        if x is not None
    )  # fmt: skip
    return ComparisonResults(
        classes=comp.classes,
        measure=measure,
        between=_between(results, pooled),
        between_note=between_note,
        direct=direct,
        direct_analysis=direct_analysis,
        indirect=indirect,
        indirect_a=indirect_a,
        inconsistency=inconsistency,
        caveats=comp.caveats,
        findings=findings,
    )


def _figures(results: ReportResults, computed: ComparisonResults) -> dict[str, Any]:
    from metaan import plots

    by_id = {c.id: c for c in results.classes}
    pooled: dict[str, MetaResult] = {}
    for c in computed.classes:
        f = by_id[c].primary.fit
        if f is not None and by_id[c].primary.measure == computed.measure:
            pooled[by_id[c].label] = f
    if not pooled:
        return {}
    outcome = results.spec.outcome
    return {
        "compare": plots.compare(
            pooled,
            groups=("drug", "control"),
            lower_is_better=outcome.lower_is_better,
            xlabel=axis_label(computed.measure, outcome),
            label_header="Drug class",
            title=f"Pooled effect on {outcome.continuous}, by drug class",
        )
    }


def _tables(results: ReportResults, computed: ComparisonResults) -> dict[str, pd.DataFrame]:
    rows = [
        c.to_dict()
        for c in (computed.direct, computed.indirect, computed.inconsistency)
        if c is not None
    ]
    return {"comparison": pd.DataFrame(rows)} if rows else {}


def _data(results: ReportResults, computed: ComparisonResults) -> dict[str, Any]:
    from metaan.report.serialize import analysis_data

    base = results.spec.path.parent
    return {
        "classes": list(computed.classes),
        "measure": computed.measure,
        "between": computed.between.to_dict() if computed.between is not None else None,
        "between_note": computed.between_note,
        "direct": computed.direct.to_dict() if computed.direct else None,
        "direct_analysis": analysis_data(computed.direct_analysis, base),
        "indirect": computed.indirect.to_dict() if computed.indirect else None,
        "indirect_a": analysis_data(computed.indirect_a, base),
        "inconsistency": computed.inconsistency.to_dict() if computed.inconsistency else None,
        "caveats": list(computed.caveats),
    }


SECTION = Section(
    id="comparison",
    headings=_headings,
    run=_run,
    figures=_figures,
    tables=_tables,
    data=_data,
)
