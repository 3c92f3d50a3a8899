"""The analyses a report runs, from validated study records to result objects.

Everything here computes; nothing draws or writes. Each analysis keeps the
records it used (with their file and row, so every number can be traced back)
and the records it left out, each with its reason.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from metaan._dist import norm_isf, norm_sf
from metaan.bias import SmallStudyEffects, small_study_effects
from metaan.effects import escalc
from metaan.errors import MetaanError, SpecError
from metaan.models import fit
from metaan.regression import MetaRegressionResult, fit_regression
from metaan.report.selections import psilocybin_main_analysis
from metaan.report.spec import ModelSpec, ReportSpec, Selection
from metaan.results import MetaResult
from metaan.sensitivity import Influence, LeaveOneOut, influence, leave_one_out
from metaan.studies import StudyTable
from metaan.subgroups import SubgroupResult, fit_subgroups

__all__ = [
    "Analysis",
    "ClassResults",
    "Excluded",
    "ReportResults",
    "is_blank",
    "run_report_analyses",
    "select",
]

#: Named selections a specification can refer to with ``select = "..."``.
NAMED_SELECTIONS: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "psilocybin_main_analysis": psilocybin_main_analysis,
}

_CONTINUOUS = ("n1", "mean1", "sd1", "n2", "mean2", "sd2")
_BINARY = ("events1", "total1", "events2", "total2")


@dataclass(frozen=True)
class Excluded:
    """A record left out of an analysis, with where it is and why."""

    analysis: str
    file: str
    row: int
    study: str
    record_id: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "analysis": self.analysis,
            "file": self.file,
            "row": self.row,
            "study": self.study,
            "record_id": self.record_id,
            "reason": self.reason,
        }


@dataclass(frozen=True, eq=False)
class Analysis:
    """One pooled analysis: the records used, the fit (if any) and the exclusions."""

    id: str
    label: str
    measure: str
    selection: str
    records: pd.DataFrame
    fit: MetaResult | None
    excluded: tuple[Excluded, ...]
    note: str

    @property
    def k(self) -> int:
        return len(self.records)

    @property
    def trials(self) -> int:
        return int(self.records["study_id"].nunique()) if len(self.records) else 0

    @property
    def participants(self) -> float:
        if not len(self.records):
            return 0.0
        if self.measure in ("SMD", "MD"):
            return float(self.records["n1"].sum() + self.records["n2_used"].sum())
        return float(self.records["total1"].sum() + self.records["total2_used"].sum())


@dataclass(frozen=True, eq=False)
class SubsetFit:
    """A sensitivity analysis on a subset of an analysis's records."""

    name: str
    description: str
    removed: tuple[str, ...]
    fit: MetaResult | None
    note: str


@dataclass(frozen=True, eq=False)
class ClassResults:
    """Everything the report shows for one drug class."""

    id: str
    label: str
    continuous: Analysis
    response: Analysis | None
    leave1out: LeaveOneOut | None
    influence: Influence | None
    subsets: tuple[SubsetFit, ...]
    bias: SmallStudyEffects | None
    bias_note: str
    reported: pd.DataFrame
    note: str


@dataclass(frozen=True)
class Contrast:
    """A single comparison with its estimate, SE and interval (normal)."""

    label: str
    estimate: float
    se: float
    ci_lb: float
    ci_ub: float
    pval: float
    detail: str

    @staticmethod
    def from_estimate(
        label: str, estimate: float, se: float, level: float, detail: str
    ) -> Contrast:
        crit = norm_isf((1.0 - level / 100.0) / 2.0)
        z = estimate / se
        return Contrast(
            label=label,
            estimate=estimate,
            se=se,
            ci_lb=estimate - crit * se,
            ci_ub=estimate + crit * se,
            pval=2.0 * norm_sf(abs(z)),
            detail=detail,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "estimate": self.estimate,
            "se": self.se,
            "ci_lb": self.ci_lb,
            "ci_ub": self.ci_ub,
            "pval": self.pval,
            "detail": self.detail,
        }


@dataclass(frozen=True, eq=False)
class ComparisonResults:
    classes: tuple[str, ...]
    between: MetaResult | None
    between_note: str
    direct: Contrast | None
    direct_analysis: Analysis | None
    indirect: Contrast | None
    indirect_a: Analysis | None
    inconsistency: Contrast | None
    caveats: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class DoseResults:
    class_id: str
    by_comparator: SubgroupResult | None
    by_comparator_note: str
    within_trial: Analysis | None
    within_trial_label: str
    within_trial_contrasts: tuple[Contrast, ...]
    regression: MetaRegressionResult | None
    regression_note: str
    doses: pd.DataFrame
    statement: str


@dataclass(frozen=True, eq=False)
class ReportResults:
    spec: ReportSpec
    studies: StudyTable
    classes: tuple[ClassResults, ...]
    comparison: ComparisonResults | None
    dose: DoseResults | None

    def class_by_id(self, cid: str) -> ClassResults:
        for c in self.classes:
            if c.id == cid:
                return c
        raise KeyError(cid)

    @property
    def excluded(self) -> list[Excluded]:
        seen: list[Excluded] = []
        for c in self.classes:
            seen.extend(c.continuous.excluded)
            if c.response is not None:
                seen.extend(c.response.excluded)
        return seen


# ----------------------------------------------------------------------------- selection


def _matches(frame: pd.DataFrame, column: str, values: Sequence[Any]) -> pd.Series:
    if column not in frame.columns:
        raise SpecError(
            f"the filter names the column {column!r}, which the study records do not have; "
            "see studies/README.md for the columns"
        )
    col = frame[column]
    # A value matches as text (true = 1 for flags) or, for numbers, numerically.
    as_text = col.astype("string")
    text_values = [str(int(v)) if isinstance(v, bool) else str(v) for v in values]
    numeric = pd.to_numeric(col, errors="coerce")
    numbers = [float(v) for v in values if isinstance(v, int | float)]
    hit = as_text.isin(text_values).fillna(False)
    if numbers:
        hit = hit | numeric.isin(numbers).fillna(False)
    return hit.astype(bool)


def select(frame: pd.DataFrame, selection: Selection) -> pd.DataFrame:
    """The records a selection picks: the named selection, then ``where``, then ``exclude``."""
    out = frame
    if selection.named is not None:
        try:
            chooser = NAMED_SELECTIONS[selection.named]
        except KeyError:
            raise SpecError(
                f"select = {selection.named!r} is not a named selection; "
                f"use one of {', '.join(sorted(NAMED_SELECTIONS))}"
            ) from None
        out = chooser(out)
    for column, values in selection.where.items():
        out = out[_matches(out, column, values)]
    for column, values in selection.exclude.items():
        out = out[~_matches(out, column, values)]
    return out


# ----------------------------------------------------------------------------- effect sizes


def _record_label(rows: pd.DataFrame) -> list[str]:
    """Study labels; a trial with several records gets its arms added."""
    counts = rows["study_id"].value_counts()
    labels = []
    for _, r in rows.iterrows():
        sid = str(r["study_id"])
        if counts[sid] > 1:
            labels.append(f"{sid} ({r['arm1_id']} vs {r['arm2_id']})")
        else:
            labels.append(sid)
    return labels


def is_blank(value: Any) -> bool:
    """True for a missing cell: None, NaN, pandas NA or blank text."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return bool(value is pd.NA or (isinstance(value, str) and not value.strip()))


def effect_analysis(
    frame: pd.DataFrame,
    selection: Selection,
    *,
    analysis_id: str,
    label: str,
    kind: str,
    model: ModelSpec,
) -> Analysis:
    """Compute the effect sizes of the selected records and fit the model.

    ``kind`` is ``continuous`` (the model's SMD or MD from n, mean and SD per
    arm) or ``response`` (the model's response measure from events and totals).
    Records without the data, flagged not poolable, or ruled out by the model
    settings (change scores, imputed values) are excluded with their reason.
    A control arm shared by several records of one trial is split between them
    (its n, and its events for binary data, divided by the number of records) or
    used once, as ``model.shared_control`` says.
    """
    chosen = select(frame, selection).copy()
    measure = model.measure if kind == "continuous" else model.response_measure
    needed = _CONTINUOUS if kind == "continuous" else _BINARY
    reasons: dict[Any, str] = {}
    for idx, r in chosen.iterrows():
        if not is_blank(r.get("not_poolable_reason")):
            reasons[idx] = f"not poolable: {r['not_poolable_reason']}"
            continue
        missing = [c for c in needed if is_blank(r.get(c))]
        if missing:
            if kind == "continuous" and not is_blank(r.get("md")):
                reasons[idx] = (
                    f"no {measure}: the record gives a mean difference with its CI but not "
                    f"{', '.join(missing)}"
                )
            else:
                reasons[idx] = f"no {measure}: {', '.join(missing)} not reported"
            continue
        is_change = str(r.get("outcome_type")) == "change" or r.get("change_certain") == 1
        if kind == "continuous" and model.change_scores == "exclude" and is_change:
            reasons[idx] = "change score, left out of the SMD (change_scores = exclude)"
            continue
        if model.imputed == "exclude" and (r.get("imputed1") == 1 or r.get("imputed2") == 1):
            reasons[idx] = "imputed values, left out (imputed = exclude)"
            continue
    usable = chosen.drop(index=list(reasons))

    # Shared control arms among the usable records of a trial.
    size_col, event_col = ("n2", None) if kind == "continuous" else ("total2", "events2")
    group_keys = ["study_id", "arm2_id", "outcome_type", "time_weeks", "scale"]
    keys = usable[group_keys].astype("string").fillna("")
    sharing = keys.groupby(list(keys.columns), sort=False)[group_keys[0]].transform("size")
    usable = usable.assign(_sharing=sharing.astype(int))
    if model.shared_control == "first":
        first = ~keys.duplicated()
        for idx in usable.index[~first.to_numpy()]:
            r = usable.loc[idx]
            reasons[idx] = (
                f"shares its control arm ({r['arm2_id']}) with another comparison of the trial; "
                "one comparison per trial is used (shared_control = first)"
            )
        usable = usable[first.to_numpy()].assign(_sharing=1)
    size_used = pd.to_numeric(usable[size_col], errors="coerce") / usable["_sharing"]
    usable = usable.assign(**{f"{size_col}_used": size_used})
    if event_col is not None:
        usable = usable.assign(
            events2_used=pd.to_numeric(usable[event_col], errors="coerce") / usable["_sharing"]
        )

    if kind == "continuous":
        cols = {"m1i": "mean1", "sd1i": "sd1", "n1i": "n1", "m2i": "mean2", "sd2i": "sd2",
                "n2i": "n2_used"}  # fmt: skip
    else:
        cols = {"ai": "events1", "n1i": "total1", "ci": "events2_used", "n2i": "total2_used"}
    effects = usable.copy()
    if len(effects):
        effects = escalc(effects, measure, **cols, source="selected records")  # type: ignore[arg-type]
        for idx, why in effects["exclusion_reason"].items():
            if isinstance(why, str) and why:
                reasons[idx] = why
        effects = effects[effects["exclusion_reason"].isna()]
    else:
        effects = effects.assign(yi=pd.Series(dtype=float), vi=pd.Series(dtype=float))
    effects = effects.assign(label=_record_label(effects) if len(effects) else [])

    excluded = tuple(
        Excluded(
            analysis=analysis_id,
            file=str(chosen.loc[idx, "file"]),
            row=int(chosen.loc[idx, "row"]),
            study=str(chosen.loc[idx, "study_id"]),
            record_id=str(chosen.loc[idx, "record_id"]),
            reason=reasons[idx],
        )
        for idx in chosen.index
        if idx in reasons
    )
    k = len(effects)
    res: MetaResult | None = None
    if k >= 2:
        res = fit(
            effects["yi"].to_numpy(dtype=float),
            effects["vi"].to_numpy(dtype=float),
            method=model.method,
            test=model.test,
            level=model.level,
            measure=measure,
            labels=list(effects["label"]),
        )
        note = ""
    elif k == 1:
        note = "insufficient evidence to pool: one comparison"
    else:
        note = "insufficient evidence to pool: no comparison with the data this measure needs"
    return Analysis(
        id=analysis_id,
        label=label,
        measure=measure,
        selection=selection.describe(),
        records=effects,
        fit=res,
        excluded=excluded,
        note=note,
    )


# ----------------------------------------------------------------------------- per class


def _subset_fit(
    analysis: Analysis, model: ModelSpec, name: str, description: str, drop: pd.Series
) -> SubsetFit:
    removed = tuple(str(s) for s in analysis.records.loc[drop, "label"])
    kept = analysis.records[~drop]
    if not removed:
        return SubsetFit(name, description, (), analysis.fit, "no record removed")
    if len(kept) < 2:
        return SubsetFit(name, description, removed, None, "fewer than 2 comparisons remain")
    res = fit(
        kept["yi"].to_numpy(dtype=float),
        kept["vi"].to_numpy(dtype=float),
        method=model.method,
        test=model.test,
        level=model.level,
        measure=analysis.measure,
        labels=list(kept["label"]),
    )
    return SubsetFit(name, description, removed, res, "")


def _subsets(analysis: Analysis, spec: ReportSpec) -> tuple[SubsetFit, ...]:
    recs = analysis.records
    out: list[SubsetFit] = []
    sens = spec.sensitivity
    if analysis.fit is None:
        return ()
    if sens.without_high_rob:
        rob = recs["rob_overall"].astype("string").fillna("")
        if (rob == "").all():
            out.append(
                SubsetFit(
                    "without_high_rob",
                    "without trials at high overall risk of bias",
                    (),
                    None,
                    "not available: the source gives no risk-of-bias assessment",
                )
            )
        else:
            out.append(
                _subset_fit(
                    analysis,
                    spec.model,
                    "without_high_rob",
                    "without trials at high overall risk of bias (RoB 2)",
                    rob == "high",
                )
            )
    if sens.without_open_label:
        blinding = recs["blinding"].astype("string").fillna("")
        if (blinding == "").all():
            out.append(
                SubsetFit(
                    "without_open_label",
                    "without open-label trials",
                    (),
                    None,
                    "not available: the records give no blinding per trial",
                )
            )
        else:
            out.append(
                _subset_fit(
                    analysis,
                    spec.model,
                    "without_open_label",
                    "without open-label trials",
                    blinding == "open-label",
                )
            )
    if sens.depression_diagnoses:
        diagnosis = recs["diagnosis"].astype("string").fillna("")
        allowed = set(sens.depression_diagnoses)
        out.append(
            _subset_fit(
                analysis,
                spec.model,
                "depression_populations_only",
                "without non-depression populations (diagnosis not in "
                + ", ".join(sorted(allowed))
                + ")",
                ~diagnosis.isin(allowed),
            )
        )
    # The choices about the data themselves, where the records make them.
    change = (recs["outcome_type"].astype("string") == "change").fillna(False) | (
        pd.to_numeric(recs["change_certain"], errors="coerce") == 1
    )
    if change.any():
        out.append(
            _subset_fit(
                analysis,
                spec.model,
                "without_change_scores",
                "without records that are certainly change-from-baseline scores",
                change,
            )
        )
    imputed = (pd.to_numeric(recs["imputed1"], errors="coerce") == 1) | (
        pd.to_numeric(recs["imputed2"], errors="coerce") == 1
    )
    if imputed.any():
        out.append(
            _subset_fit(
                analysis,
                spec.model,
                "without_imputed",
                "without records with values imputed by the source review",
                imputed,
            )
        )
    return tuple(out)


def _reported_effects(frame: pd.DataFrame, selection: Selection) -> pd.DataFrame:
    """What the selected records report, for classes too thin to pool: one row per record."""
    chosen = select(frame, selection)
    cols = [
        "study_id",
        "file",
        "row",
        "intervention",
        "comparator",
        "scale",
        "outcome_type",
        "time_label",
        "primary_outcome",
        "md",
        "md_ci_lb",
        "md_ci_ub",
        "smd",
        "smd_ci_lb",
        "smd_ci_ub",
        "not_poolable_reason",
    ]
    return chosen[[c for c in cols if c in chosen.columns]].reset_index(drop=True)


def class_results(frame: pd.DataFrame, spec: ReportSpec, index: int) -> ClassResults:
    cls = spec.classes[index]
    cont = effect_analysis(
        frame,
        cls.continuous,
        analysis_id=f"{cls.id}_{spec.model.measure.lower()}",
        label=cls.label,
        kind="continuous",
        model=spec.model,
    )
    resp = None
    if cls.response is not None:
        resp = effect_analysis(
            frame,
            cls.response,
            analysis_id=f"{cls.id}_response_{spec.model.response_measure.lower()}",
            label=cls.label,
            kind="response",
            model=spec.model,
        )
    loo = infl = None
    if cont.fit is not None and cont.k >= 3:
        if spec.sensitivity.leave_one_out:
            loo = leave_one_out(cont.fit)
        if spec.sensitivity.influence:
            infl = influence(cont.fit)
    bias: SmallStudyEffects | None = None
    if cont.fit is not None and cont.k >= spec.bias.min_k:
        bias = small_study_effects(cont.fit)
        bias_note = ""
    else:
        bias_note = (
            f"not run: {cont.k} comparison{'s' if cont.k != 1 else ''}, fewer than "
            f"{spec.bias.min_k}; tests of funnel-plot asymmetry have too little power to "
            "tell small-study effects from chance with so few studies (Cochrane Handbook 13.3.5.4)"
        )
    return ClassResults(
        id=cls.id,
        label=cls.label,
        continuous=cont,
        response=resp,
        leave1out=loo,
        influence=infl,
        subsets=_subsets(cont, spec),
        bias=bias,
        bias_note=bias_note,
        reported=_reported_effects(frame, cls.continuous) if cont.fit is None else pd.DataFrame(),
        note=cls.note,
    )


# ----------------------------------------------------------------------------- comparison


def comparison_results(
    frame: pd.DataFrame, spec: ReportSpec, classes: Sequence[ClassResults]
) -> ComparisonResults | None:
    comp = spec.comparison
    if comp is None:
        return None
    by_id = {c.id: c for c in classes}
    pooled = [by_id[c] for c in comp.classes if by_id[c].continuous.fit is not None]
    between = None
    between_note = ""
    if len(pooled) >= 2:
        fits = [c.continuous.fit for c in pooled]
        between = fit(
            [f.estimate for f in fits if f is not None],
            sei=[f.se for f in fits if f is not None],
            method="EE",
            level=spec.model.level,
            labels=[c.label for c in pooled],
            measure=spec.model.measure,
        )
        left = [by_id[c].label for c in comp.classes if by_id[c].continuous.fit is None]
        if left:
            between_note = f"{', '.join(left)}: no pooled estimate, not part of the test"
    else:
        between_note = "fewer than two classes have a pooled estimate"

    direct = None
    direct_analysis = None
    level = spec.model.level
    if comp.direct is not None:
        direct_analysis = effect_analysis(
            frame,
            comp.direct,
            analysis_id="direct",
            label=comp.direct_label,
            kind="continuous",
            model=spec.model,
        )
        if direct_analysis.k == 1:
            r = direct_analysis.records.iloc[0]
            direct = Contrast.from_estimate(
                comp.direct_label,
                float(r["yi"]),
                math.sqrt(float(r["vi"])),
                level,
                f"{r['study_id']}: {r['intervention']} vs {r['comparator']}, {r['scale']}, "
                f"{r['time_label']}; n = {int(r['n1'])} + {int(r['n2'])}",
            )
        elif direct_analysis.fit is not None:
            f = direct_analysis.fit
            direct = Contrast.from_estimate(
                comp.direct_label, f.estimate, f.se, level, f"pooled over {f.k} comparisons"
            )

    indirect = indirect_a = inconsistency = None
    if comp.indirect_a is not None and comp.indirect_b is not None:
        indirect_a = effect_analysis(
            frame,
            comp.indirect_a,
            analysis_id="indirect_a",
            label="psilocybin vs placebo-type controls",
            kind="continuous",
            model=spec.model,
        )
        b = by_id[comp.indirect_b].continuous.fit
        a = indirect_a.fit
        if a is not None and b is not None:
            # Bucher et al. (1997): the indirect estimate of A vs B through their
            # common comparator is d_AC - d_BC with variance var_AC + var_BC.
            indirect = Contrast.from_estimate(
                comp.indirect_label,
                a.estimate - b.estimate,
                math.sqrt(a.se**2 + b.se**2),
                level,
                f"({a.estimate:.3f}) − ({b.estimate:.3f}); k = {a.k} and {b.k}",
            )
            if direct is not None:
                inconsistency = Contrast.from_estimate(
                    "direct − indirect",
                    direct.estimate - indirect.estimate,
                    math.sqrt(direct.se**2 + indirect.se**2),
                    level,
                    "z-test of the difference between direct and indirect evidence",
                )
    return ComparisonResults(
        classes=comp.classes,
        between=between,
        between_note=between_note,
        direct=direct,
        direct_analysis=direct_analysis,
        indirect=indirect,
        indirect_a=indirect_a,
        inconsistency=inconsistency,
        caveats=comp.caveats,
    )


# ----------------------------------------------------------------------------- dose

_DOSE_MG = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*mg\s*$")
_DOSE_PER_KG = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*mg\s*/\s*kg\s*$")
_DOSE_PER_70KG = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*mg\s*/\s*70\s*kg\s*$")
#: Largest per-kilogram psilocybin dose read as such (0.6 mg/kg = 42 mg at 70 kg).
_MAX_MG_PER_KG = 0.6


def dose_in_mg(text: Any) -> tuple[float | None, str]:
    """A psilocybin dose as mg for a 70 kg adult, and how it was read.

    ``"25 mg"`` is 25; ``"0.3 mg/kg"`` is 0.3 x 70 = 21; ``"20 mg/70 kg"`` is 20.
    Anything else (two doses, an implausible per-kg value) is not read, and the
    reason is returned instead.
    """
    if is_blank(text):
        return None, "no dose recorded"
    s = str(text)
    m = _DOSE_MG.match(s)
    if m:
        return float(m.group(1)), "as given"
    m = _DOSE_PER_70KG.match(s)
    if m:
        return float(m.group(1)), "per 70 kg"
    m = _DOSE_PER_KG.match(s)
    if m:
        per_kg = float(m.group(1))
        if per_kg <= _MAX_MG_PER_KG:
            return per_kg * 70.0, "per kg, at 70 kg"
        return None, f"{s!r} is not a plausible per-kilogram psilocybin dose as written"
    return None, f"{s!r} is not a single dose in mg"


def dose_results(
    frame: pd.DataFrame, spec: ReportSpec, classes: Sequence[ClassResults]
) -> DoseResults | None:
    d = spec.dose
    if d is None:
        return None
    cls = next(c for c in classes if c.id == d.class_id)
    analysis = cls.continuous
    level = spec.model.level
    by_comparator = None
    note = ""
    if analysis.fit is not None:
        recs = analysis.records
        try:
            by_comparator = fit_subgroups(
                pd.DataFrame(
                    {
                        "yi": recs["yi"].to_numpy(dtype=float),
                        "vi": recs["vi"].to_numpy(dtype=float),
                        "study": list(recs["label"]),
                        d.subgroup: list(recs[d.subgroup].astype(str)),
                    }
                ),
                d.subgroup,
                method=spec.model.method,
                test=spec.model.test,
                level=level,
                label="study",
                measure=analysis.measure,
            )
        except MetaanError as exc:
            note = str(exc)

    within = None
    contrasts: list[Contrast] = []
    if d.within_trial is not None:
        within = effect_analysis(
            frame,
            d.within_trial,
            analysis_id="within_trial",
            label=d.within_trial_label,
            kind="continuous",
            model=ModelSpec(**{**spec.model.__dict__, "shared_control": "split"}),
        )
        # Each comparison on its own: the arms are shared, so they are shown, not pooled.
        chosen = select(frame, d.within_trial)
        for _, r in chosen.iterrows():
            if any(is_blank(r.get(c)) for c in _CONTINUOUS):
                continue
            one = escalc(
                pd.DataFrame([r]),
                spec.model.measure,
                m1i="mean1",
                sd1i="sd1",
                n1i="n1",
                m2i="mean2",
                sd2i="sd2",
                n2i="n2",
            )
            yi, vi = float(one["yi"].iloc[0]), float(one["vi"].iloc[0])
            contrasts.append(
                Contrast.from_estimate(
                    f"{r['arm1_id']} vs {r['arm2_id']}",
                    yi,
                    math.sqrt(vi),
                    level,
                    f"{r['scale']}, {r['time_label']}; n = {int(r['n1'])} vs {int(r['n2'])}"
                    + ("; imputed endpoint values" if r.get("imputed1") == 1 else ""),
                )
            )

    regression = None
    reg_note = ""
    doses = pd.DataFrame()
    if analysis.fit is not None:
        recs = analysis.records
        read = [dose_in_mg(v) for v in recs["intervention_dose"]]
        doses = pd.DataFrame(
            {
                "study": list(recs["label"]),
                "intervention_dose": list(recs["intervention_dose"]),
                "dose_mg": [v for v, _ in read],
                "how_read": [why for _, why in read],
            }
        )
        table = pd.DataFrame(
            {
                "yi": recs["yi"].to_numpy(dtype=float),
                "vi": recs["vi"].to_numpy(dtype=float),
                "study": list(recs["label"]),
                "dose_mg": [np.nan if v is None else v for v, _ in read],
            }
        )
        usable = table["dose_mg"].notna()
        distinct = table.loc[usable, "dose_mg"].nunique()
        if usable.sum() >= 3 and distinct >= 2:
            try:
                regression = fit_regression(
                    table,
                    mods=["dose_mg"],
                    method=spec.model.method,
                    test=spec.model.test,
                    level=level,
                    label="study",
                    measure=analysis.measure,
                )
            except MetaanError as exc:
                reg_note = str(exc)
        else:
            reg_note = (
                f"a dose moderator does not apply: {int(usable.sum())} comparisons with a "
                f"readable dose, {distinct} distinct dose(s)"
            )
    return DoseResults(
        class_id=d.class_id,
        by_comparator=by_comparator,
        by_comparator_note=note,
        within_trial=within,
        within_trial_label=d.within_trial_label,
        within_trial_contrasts=tuple(contrasts),
        regression=regression,
        regression_note=reg_note,
        doses=doses,
        statement=d.statement,
    )


def run_report_analyses(spec: ReportSpec, studies: StudyTable) -> ReportResults:
    """Run every analysis the specification declares."""
    frame = studies.frame
    classes = tuple(class_results(frame, spec, i) for i in range(len(spec.classes)))
    return ReportResults(
        spec=spec,
        studies=studies,
        classes=classes,
        comparison=comparison_results(frame, spec, classes),
        dose=dose_results(frame, spec, classes),
    )
