"""The analyses a report runs, from validated study records to result objects.

Everything here computes; nothing draws or writes. Each analysis keeps the
records it used (with their file and row, so every number can be traced back),
the records it left out, each with its reason, and every trial of its class that
does not enter it, each with its reason: nothing is missing silently.

The per-class analyses are the core every section reads; the sections
(:mod:`metaan.report.sections`) add what they compute on top.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from metaan._dist import norm_isf, norm_sf, t_isf, t_sf
from metaan.bias import SmallStudyEffects, small_study_effects
from metaan.effects import escalc
from metaan.errors import SpecError
from metaan.models import fit
from metaan.report.selections import psilocybin_main_analysis
from metaan.report.spec import ClassSpec, ModelSpec, ReportSpec, Selection
from metaan.results import MetaResult
from metaan.sensitivity import Influence, LeaveOneOut, influence, leave_one_out
from metaan.studies import StudyTable

__all__ = [
    "Analysis",
    "ClassResults",
    "Contrast",
    "Excluded",
    "ReportResults",
    "TrialOut",
    "effect_analysis",
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
#: The records' own (reported) estimate of each measure: estimate, SE, CI bounds.
_REPORTED: dict[str, tuple[str, str, str | None, str | None]] = {
    "SMD": ("smd", "smd_se", "smd_ci_lb", "smd_ci_ub"),
    "MD": ("md", "md_se", "md_ci_lb", "md_ci_ub"),
    "RR": ("log_rr", "log_rr_se", None, None),
}


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


@dataclass(frozen=True)
class TrialOut:
    """A trial of an analysis's class that does not enter it, and why."""

    analysis: str
    study: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"analysis": self.analysis, "study": self.study, "reason": self.reason}


@dataclass(frozen=True, eq=False)
class Analysis:
    """One pooled analysis: the records used, the fit (if any) and what was left out."""

    id: str
    label: str
    measure: str
    selection: str
    records: pd.DataFrame
    fit: MetaResult | None
    excluded: tuple[Excluded, ...]
    note: str
    #: The drug classes whose trials this analysis accounts for.
    classes: tuple[str, ...] = ()
    #: Every trial of those classes that does not enter the analysis, with its reason.
    trials_out: tuple[TrialOut, ...] = ()
    #: How the effects were obtained: ``reported`` and/or ``recomputed`` counts.
    effect_sources: dict[str, int] = field(default_factory=dict)

    @property
    def k(self) -> int:
        return len(self.records)

    @property
    def trials(self) -> int:
        return int(self.records["study_id"].nunique()) if len(self.records) else 0

    @property
    def class_trials(self) -> int:
        return self.trials + len(self.trials_out)

    @property
    def continuous(self) -> bool:
        return self.measure in ("SMD", "MD")

    @property
    def participants(self) -> float:
        if not len(self.records):
            return 0.0
        if self.continuous:
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
    spec: ClassSpec
    continuous: Analysis | None
    #: One analysis per response measure; the first is the primary one.
    response: tuple[Analysis, ...]
    leave1out: LeaveOneOut | None
    influence: Influence | None
    subsets: tuple[SubsetFit, ...]
    bias: SmallStudyEffects | None
    bias_note: str
    reported: pd.DataFrame
    note: str

    @property
    def primary(self) -> Analysis:
        """The analysis the class's figures and sensitivity analyses are about."""
        if self.continuous is not None:
            return self.continuous
        return self.response[0]

    @property
    def analyses(self) -> tuple[Analysis, ...]:
        return (*([self.continuous] if self.continuous is not None else []), *self.response)


@dataclass(frozen=True)
class Contrast:
    """A single comparison with its estimate, SE and interval: normal, or Student's t
    with ``df`` degrees of freedom when it comes from a Hartung-Knapp fit (or is built
    from one), so that it carries the inference of the evidence behind it."""

    label: str
    estimate: float
    se: float
    ci_lb: float
    ci_ub: float
    pval: float
    detail: str
    df: int | None = None

    @staticmethod
    def from_estimate(
        label: str, estimate: float, se: float, level: float, detail: str, df: int | None = None
    ) -> Contrast:
        alpha = (1.0 - level / 100.0) / 2.0
        crit = norm_isf(alpha) if df is None else t_isf(alpha, df)
        z = abs(estimate / se)
        return Contrast(
            label=label,
            estimate=estimate,
            se=se,
            ci_lb=estimate - crit * se,
            ci_ub=estimate + crit * se,
            pval=2.0 * (norm_sf(z) if df is None else t_sf(z, df)),
            detail=detail,
            df=df,
        )

    @staticmethod
    def combined_df(*dfs: int | None) -> int | None:
        """The df of a difference of independent estimates: the smallest of theirs
        (None when every one is normal). Student's t with the smallest df keeps the
        difference's interval at least as wide as each part's own interval, since
        ``t(min df) * sqrt(se_a^2 + se_b^2) >= t(df_a) * se_a``; a Welch-Satterthwaite
        df can fall below that when one part has few df."""
        finite = [d for d in dfs if d is not None]
        return min(finite) if finite else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "estimate": self.estimate,
            "se": self.se,
            "ci_lb": self.ci_lb,
            "ci_ub": self.ci_ub,
            "pval": self.pval,
            "df": self.df,
            "detail": self.detail,
        }


@dataclass(frozen=True, eq=False)
class ReportResults:
    spec: ReportSpec
    studies: StudyTable
    classes: tuple[ClassResults, ...]
    #: What each section computed, by section id (absent: the section does not apply).
    sections: dict[str, Any] = field(default_factory=dict)

    def class_by_id(self, cid: str) -> ClassResults:
        for c in self.classes:
            if c.id == cid:
                return c
        raise KeyError(cid)

    def analyses(self) -> list[Analysis]:
        """Every analysis of the report: the classes', then the sections'."""
        out = [a for c in self.classes for a in c.analyses]
        for result in self.sections.values():
            out.extend(getattr(result, "analyses", ()))
        return out

    @property
    def excluded(self) -> list[Excluded]:
        return [e for a in self.analyses() for e in a.excluded]

    @property
    def trials_out(self) -> list[TrialOut]:
        return [t for a in self.analyses() for t in a.trials_out]


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
    numbers = [float(v) for v in values if isinstance(v, int | float)]
    hit = as_text.isin(text_values).fillna(False)
    if numbers:
        hit = hit | pd.to_numeric(col, errors="coerce").isin(numbers).fillna(False)
    return hit.astype(bool)


def _values_text(values: Sequence[Any]) -> str:
    shown = [str(int(v)) if isinstance(v, bool) else str(v) for v in values]
    return f"= {shown[0]}" if len(shown) == 1 else f"in {{{', '.join(shown)}}}"


Step = tuple[str, Callable[[pd.DataFrame], Any]]


def _steps(selection: Selection) -> list[Step]:
    """The steps of a selection as masks, each with the reason it gives a trial it removes."""
    steps: list[Step] = []
    if selection.named is not None:
        try:
            chooser = NAMED_SELECTIONS[selection.named]
        except KeyError:
            raise SpecError(
                f"select = {selection.named!r} is not a named selection; "
                f"use one of {', '.join(sorted(NAMED_SELECTIONS))}"
            ) from None
        steps.append(
            (
                f"not in the named selection {selection.named!r}",
                lambda f: f.index.isin(chooser(f).index),
            )
        )
    for column, values in selection.where.items():
        why = f"no record with {column} {_values_text(values)}"
        steps.append((selection.reasons.get(column, why), _mask(column, values, keep=True)))
    for column, values in selection.exclude.items():
        why = f"left out by the selection: {column} {_values_text(values)}"
        steps.append((selection.reasons.get(column, why), _mask(column, values, keep=False)))
    return steps


def _mask(column: str, values: Sequence[Any], *, keep: bool) -> Callable[[pd.DataFrame], Any]:
    def mask(frame: pd.DataFrame) -> Any:
        hit = _matches(frame, column, values)
        return hit if keep else ~hit

    return mask


def select(frame: pd.DataFrame, selection: Selection) -> pd.DataFrame:
    """The records a selection picks: the named selection, then ``where``, then ``exclude``."""
    keep = np.ones(len(frame), dtype=bool)
    for _, step in _steps(selection):
        keep &= np.asarray(step(frame), dtype=bool)
    return frame[keep]


def account_trials(
    frame: pd.DataFrame,
    selection: Selection,
    *,
    analysis_id: str,
    classes: Sequence[str],
    used: set[str],
    excluded: Sequence[Excluded],
) -> tuple[TrialOut, ...]:
    """Every trial of ``classes`` not in ``used``, with the step that removed it.

    A trial leaves an analysis at the selection step that removes its last
    record, or, when records were selected but none could be pooled, for the
    reasons its records were left out.
    """
    studies = frame["study_id"].astype(str).to_numpy()
    keep = frame["drug_class"].isin(list(classes)).to_numpy()
    universe = list(dict.fromkeys(studies[keep]))
    reason: dict[str, str] = {}
    for why, step in _steps(selection):
        before = set(studies[keep])
        keep = keep & np.asarray(step(frame), dtype=bool)
        for study in before - set(studies[keep]):
            reason.setdefault(study, why)
    by_study: dict[str, list[str]] = {}
    for e in excluded:
        by_study.setdefault(e.study, []).append(e.reason)
    out = []
    for study in universe:
        if study in used:
            continue
        why = reason.get(study) or "; ".join(dict.fromkeys(by_study.get(study, [])))
        out.append(TrialOut(analysis_id, study, why or "no record the measure can use"))
    return tuple(out)


# ----------------------------------------------------------------------------- effect sizes


def _record_label(rows: pd.DataFrame) -> list[str]:
    """Study labels; a trial with several records gets its arms added."""
    counts = rows["study_id"].value_counts()
    return [
        f"{sid} ({a1} vs {a2})" if counts[sid] > 1 else str(sid)
        for sid, a1, a2 in zip(rows["study_id"], rows["arm1_id"], rows["arm2_id"], strict=True)
    ]


def is_blank(value: Any) -> bool:
    """True for a missing cell: None, NaN, pandas NA or blank text."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return bool(value is pd.NA or (isinstance(value, str) and not value.strip()))


def _reported(r: pd.Series, measure: str) -> tuple[float, float] | None:
    """A record's own estimate and variance of ``measure``, if it reports them."""
    cols = _REPORTED.get(measure)
    if cols is None or is_blank(r.get(cols[0])):
        return None
    est, se_col, lb, ub = cols
    if not is_blank(r.get(se_col)):
        return float(r[est]), float(r[se_col]) ** 2
    if lb is not None and ub is not None and not is_blank(r.get(lb)) and not is_blank(r.get(ub)):
        # A 95% CI (the schema's convention) gives the SE as its half-width / z(0.975).
        return float(r[est]), ((float(r[ub]) - float(r[lb])) / (2 * norm_isf(0.025))) ** 2
    return None


def _screen(
    chosen: pd.DataFrame, kind: str, measure: str, model: ModelSpec
) -> tuple[dict[Any, str], set[Any]]:
    """Reasons to leave records out, and the records whose reported effect is used."""
    needed = _CONTINUOUS if kind == "continuous" else _BINARY
    reasons: dict[Any, str] = {}
    reported: set[Any] = set()
    for idx, r in chosen.iterrows():
        if not is_blank(r.get("not_poolable_reason")):
            reasons[idx] = f"not poolable: {r['not_poolable_reason']}"
            continue
        own = _reported(r, measure) if model.effect_sizes == "reported" else None
        missing = [c for c in needed if is_blank(r.get(c))]
        if own is None and missing:
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
            reasons[idx] = f"change score, left out of the {measure} (change_scores = exclude)"
            continue
        if model.imputed == "exclude" and (r.get("imputed1") == 1 or r.get("imputed2") == 1):
            reasons[idx] = "imputed values, left out (imputed = exclude)"
            continue
        if own is not None:
            reported.add(idx)
    return reasons, reported


def _share_controls(
    usable: pd.DataFrame,
    kind: str,
    model: ModelSpec,
    reasons: dict[Any, str],
    split: bool = True,
) -> pd.DataFrame:
    """Split (or use once) a control arm shared by several records of one trial;
    with ``split=False`` every record keeps the whole arm (for a model of their
    covariance, :mod:`metaan.report.dependent`)."""
    size_col, event_col = ("n2", None) if kind == "continuous" else ("total2", "events2")
    group_keys = ["study_id", "arm2_id", "outcome_type", "time_weeks", "scale"]
    keys = usable[group_keys].astype("string").fillna("")
    sharing = keys.groupby(list(keys.columns), sort=False)[group_keys[0]].transform("size")
    usable = usable.assign(_sharing=sharing.astype(int) if split else 1)
    if split and model.shared_control == "first":
        first = ~keys.duplicated()
        for idx in usable.index[~first.to_numpy()]:
            reasons[idx] = (
                f"shares its control arm ({usable.loc[idx, 'arm2_id']}) with another comparison "
                "of the trial; one comparison per trial is used (shared_control = first)"
            )
        usable = usable[first.to_numpy()].assign(_sharing=1)
    size_used = pd.to_numeric(usable[size_col], errors="coerce") / usable["_sharing"]
    usable = usable.assign(**{f"{size_col}_used": size_used})
    if event_col is not None:
        usable = usable.assign(
            events2_used=pd.to_numeric(usable[event_col], errors="coerce") / usable["_sharing"]
        )
    if kind == "continuous" and "total2_used" not in usable:
        usable = usable.assign(total2_used=np.nan)
    if kind != "continuous":
        usable = usable.assign(n2_used=pd.to_numeric(usable["n2"], errors="coerce"))
    return usable


def _effects(
    usable: pd.DataFrame, kind: str, measure: str, reported: set[Any], reasons: dict[Any, str]
) -> pd.DataFrame:
    """yi and vi of the usable records: reported where used, else computed from arm data."""
    own = usable[usable.index.isin(list(reported))]
    calc = usable[~usable.index.isin(list(reported))]
    parts = []
    if len(own):
        values = [_reported(r, measure) for _, r in own.iterrows()]
        parts.append(
            own.assign(
                yi=[v[0] for v in values if v is not None],
                vi=[v[1] for v in values if v is not None],
                effect_source="reported",
            )
        )
    if len(calc):
        if kind == "continuous":
            cols = {"m1i": "mean1", "sd1i": "sd1", "n1i": "n1", "m2i": "mean2", "sd2i": "sd2",
                    "n2i": "n2_used"}  # fmt: skip
        else:
            cols = {"ai": "events1", "n1i": "total1", "ci": "events2_used", "n2i": "total2_used"}
        done = escalc(calc, measure, **cols, source="selected records")  # type: ignore[call-overload]
        for idx, why in done["exclusion_reason"].items():
            if isinstance(why, str) and why:
                reasons[idx] = why
        parts.append(done[done["exclusion_reason"].isna()].assign(effect_source="recomputed"))
    if not parts:
        return usable.assign(yi=pd.Series(dtype=float), vi=pd.Series(dtype=float), label=[])
    effects = pd.concat(parts).loc[lambda f: f.index.isin(usable.index)]
    effects = effects.loc[[i for i in usable.index if i in effects.index]]
    return effects.assign(label=_record_label(effects) if len(effects) else [])


def effect_analysis(
    frame: pd.DataFrame,
    selection: Selection,
    *,
    analysis_id: str,
    label: str,
    kind: str,
    model: ModelSpec,
    measure: str | None = None,
    classes: Sequence[str] | None = None,
    account: bool = True,
    split_controls: bool = True,
) -> Analysis:
    """Compute the effect sizes of the selected records and fit the model.

    ``kind`` is ``continuous`` (the model's SMD or MD) or ``response`` (``measure``,
    by default the first response measure, from events and totals). With
    ``model.effect_sizes = "reported"`` a record's own estimate and SE are used
    where it reports them for the measure (the source review's numbers, as
    published); otherwise, and for records without them, the effect is computed
    from the arm data. Records without the data, flagged not poolable, or ruled
    out by the model settings (change scores, imputed values) are excluded with
    their reason. A control arm shared by several records of one trial is split
    between them (its n, and its events for binary data, divided by the number of
    records) or used once, as ``model.shared_control`` says; reported effects are
    used as published. Every trial of ``classes`` (by default the drug classes of
    the selected records) that does not enter the analysis is listed with its reason
    (``account=False`` skips that, for a single comparison shown on its own).
    ``split_controls=False`` keeps every shared control arm whole (see
    :func:`_share_controls`).
    """
    chosen = select(frame, selection).copy()
    if measure is None:
        measure = model.measure if kind == "continuous" else model.response_measures[0]
    reasons, reported = _screen(chosen, kind, measure, model)
    usable = _share_controls(chosen.drop(index=list(reasons)), kind, model, reasons, split_controls)
    effects = _effects(usable, kind, measure, reported, reasons)
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
    if classes is None:
        classes = tuple(dict.fromkeys(str(c) for c in chosen["drug_class"]))
    k = len(effects)
    res = _fit(effects, model, measure) if k >= 2 else None
    note = (
        ""
        if k >= 2
        else "insufficient evidence to pool: one comparison"
        if k == 1
        else "insufficient evidence to pool: no comparison with the data this measure needs"
    )
    return Analysis(
        id=analysis_id,
        label=label,
        measure=measure,
        selection=selection.describe(),
        records=effects,
        fit=res,
        excluded=excluded,
        note=note,
        classes=tuple(classes),
        trials_out=account_trials(
            frame,
            selection,
            analysis_id=analysis_id,
            classes=classes,
            used={str(s) for s in effects["study_id"]},
            excluded=excluded,
        )
        if account
        else (),
        effect_sources={
            str(k): int(v)
            for k, v in effects.get("effect_source", pd.Series()).value_counts().items()
        },
    )


def _fit(records: pd.DataFrame, model: ModelSpec, measure: str) -> MetaResult:
    return fit(
        yi=records["yi"].to_numpy(dtype=float),
        vi=records["vi"].to_numpy(dtype=float),
        method=model.method,
        test=model.test,
        level=model.level,
        measure=measure,
        labels=list(records["label"]),
        prediction=model.prediction,
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
    return SubsetFit(name, description, removed, _fit(kept, model, analysis.measure), "")


def _flag(recs: pd.DataFrame, column: str) -> pd.Series:
    return pd.to_numeric(recs[column], errors="coerce") == 1


def _subsets(analysis: Analysis, spec: ReportSpec) -> tuple[SubsetFit, ...]:
    recs = analysis.records
    if analysis.fit is None:
        return ()
    sens = spec.sensitivity
    out: list[SubsetFit] = []
    checks = [
        (
            sens.without_high_rob,
            "without_high_rob",
            "rob_overall",
            "high",
            "without trials at high overall risk of bias (RoB 2)",
            "not available: the source gives no risk-of-bias assessment",
        ),
        (
            sens.without_open_label,
            "without_open_label",
            "blinding",
            "open-label",
            "without open-label trials",
            "not available: the records give no blinding per trial",
        ),
    ]
    for wanted, name, column, value, description, missing in checks:
        if not wanted:
            continue
        text = recs[column].astype("string").fillna("")
        if (text == "").all():
            out.append(SubsetFit(name, description, (), None, missing))
        else:
            out.append(_subset_fit(analysis, spec.model, name, description, text == value))
    if sens.depression_diagnoses:
        allowed = set(sens.depression_diagnoses)
        diagnosis = recs["diagnosis"].astype("string").fillna("")
        description = (
            "without non-depression populations (diagnosis not in "
            + ", ".join(sorted(allowed))
            + ")"
        )
        out.append(
            _subset_fit(
                analysis,
                spec.model,
                "depression_populations_only",
                description,
                ~diagnosis.isin(allowed),
            )
        )
    # The choices about the data themselves, where the records make them.
    change = (recs["outcome_type"].astype("string") == "change").fillna(False) | _flag(
        recs, "change_certain"
    )
    if analysis.continuous and change.any():
        description = "without records that are certainly change-from-baseline scores"
        out.append(_subset_fit(analysis, spec.model, "without_change_scores", description, change))
    imputed = _flag(recs, "imputed1") | _flag(recs, "imputed2")
    if imputed.any():
        description = "without records with values imputed by the source review"
        out.append(_subset_fit(analysis, spec.model, "without_imputed", description, imputed))
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


def _class_analyses(
    frame: pd.DataFrame, spec: ReportSpec, cls: ClassSpec
) -> tuple[Analysis | None, tuple[Analysis, ...]]:
    universe = (cls.drug_class,)
    cont = None
    if cls.continuous is not None:
        cont = effect_analysis(
            frame,
            cls.continuous,
            analysis_id=f"{cls.id}_{spec.model.measure.lower()}",
            label=cls.label,
            kind="continuous",
            model=spec.model,
            classes=universe,
        )
    resp = tuple(
        effect_analysis(
            frame,
            cls.response,
            analysis_id=f"{cls.id}_response_{measure.lower()}",
            label=cls.label,
            kind="response",
            model=spec.model,
            measure=measure,
            classes=universe,
        )
        for measure in (spec.model.response_measures if cls.response is not None else ())
        if cls.response is not None
    )
    if cont is None and not resp:
        raise SpecError(
            f"{spec.path}: [[class]] {cls.id!r} declares no analysis; "
            "add a [class.continuous] or [class.response] selection"
        )
    return cont, resp


def class_results(frame: pd.DataFrame, spec: ReportSpec, index: int) -> ClassResults:
    cls = spec.classes[index]
    cont, resp = _class_analyses(frame, spec, cls)
    main = cont if cont is not None else resp[0]
    loo = infl = None
    if main.fit is not None and main.k >= 3:
        if spec.sensitivity.leave_one_out:
            loo = leave_one_out(main.fit)
        if spec.sensitivity.influence:
            infl = influence(main.fit)
    bias: SmallStudyEffects | None = None
    bias_note = ""
    if main.fit is not None and main.k >= spec.bias.min_k:
        bias = small_study_effects(main.fit)
    else:
        bias_note = (
            f"not run: {main.k} comparison{'s' if main.k != 1 else ''}, fewer than "
            f"{spec.bias.min_k}; tests of funnel-plot asymmetry have too little power to "
            "tell small-study effects from chance with so few studies (Cochrane Handbook 13.3.5.4)"
        )
    selection = cls.continuous if cls.continuous is not None else cls.response
    return ClassResults(
        id=cls.id,
        label=cls.label,
        spec=cls,
        continuous=cont,
        response=resp,
        leave1out=loo,
        influence=infl,
        subsets=_subsets(main, spec),
        bias=bias,
        bias_note=bias_note,
        reported=(
            _reported_effects(frame, selection)
            if main.fit is None and selection is not None
            else pd.DataFrame()
        ),
        note=cls.note,
    )


def run_report_analyses(spec: ReportSpec, studies: StudyTable) -> ReportResults:
    """Run every analysis the specification declares: the classes', then each section's."""
    from metaan.report.sections import SECTIONS

    frame = studies.frame
    classes = tuple(class_results(frame, spec, i) for i in range(len(spec.classes)))
    results = ReportResults(spec=spec, studies=studies, classes=classes)
    for section in SECTIONS:
        computed = section.run(results)
        if computed is not None:
            results.sections[section.id] = computed
    return results
