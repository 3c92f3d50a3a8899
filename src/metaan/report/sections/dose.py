"""Section: dose and comparator (subgroups by kind of control, within-trial dose
contrasts, dose as a moderator, and what the doses say about very low doses)."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from metaan.errors import MetaanError
from metaan.regression import MetaRegressionResult, fit_regression
from metaan.report.analyses import (
    Analysis,
    Contrast,
    ReportResults,
    effect_analysis,
    is_blank,
    select,
)
from metaan.report.sections._base import Section
from metaan.report.text import axis_label, fmt, fmt_ci, p_text
from metaan.subgroups import SubgroupResult, fit_subgroups

_NUMBER = r"(\d+(?:\.\d+)?)"
_DOSE = re.compile(rf"^\s*{_NUMBER}\s*mg\s*$")
_PER_KG = re.compile(rf"^\s*{_NUMBER}\s*mg\s*/\s*kg\s*$")
_PER_70KG = re.compile(rf"^\s*{_NUMBER}\s*mg\s*/\s*70\s*kg\s*$")
_SESSION = re.compile(rf"{_NUMBER}\s*mg\s*/\s*70\s*kg")
#: Largest per-kilogram dose read as such (0.6 mg/kg = 42 mg at 70 kg).
_MAX_MG_PER_KG = 0.6


def dose_in_mg(text: Any) -> tuple[float | None, str]:
    """A dose per session as mg for a 70 kg adult, and how it was read.

    ``"25 mg"`` is 25; ``"0.3 mg/kg"`` is 0.3 x 70 = 21; ``"20 mg/70 kg"`` is 20;
    sessions of different doses (``"1st dose: 20 mg/70 kg; 2nd dose 30mg/70kg"``)
    are read as the mean dose per session, 25. Anything else (an implausible
    per-kg value, a range) is not read, and the reason is returned instead.
    """
    if is_blank(text):
        return None, "no dose recorded"
    s = str(text)
    for pattern, how in ((_DOSE, "as given"), (_PER_70KG, "per 70 kg")):
        m = pattern.match(s)
        if m:
            return float(m.group(1)), how
    m = _PER_KG.match(s)
    if m:
        per_kg = float(m.group(1))
        if per_kg <= _MAX_MG_PER_KG:
            return per_kg * 70.0, "per kg, at 70 kg"
        return None, f"{s!r} is not a plausible per-kilogram dose as written"
    sessions = [float(x) for x in _SESSION.findall(s)]
    if len(sessions) >= 2 and ";" in s:
        listed = " and ".join(f"{x:g}" for x in sessions)
        return float(np.mean(sessions)), f"{len(sessions)} sessions of {listed} mg/70 kg: the mean"
    return None, f"{s!r} is not a single dose in mg"


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
    very_low: str
    statement: str

    @property
    def analyses(self) -> tuple[Analysis, ...]:
        return (self.within_trial,) if self.within_trial is not None else ()


def _headings(results: ReportResults, computed: Any) -> list[tuple[str, str]]:
    return [("dose", "Dose and comparator")]


def _by_comparator(a: Analysis, results: ReportResults) -> tuple[SubgroupResult | None, str]:
    d, m = results.spec.dose, results.spec.model
    assert d is not None
    if a.fit is None:
        return None, ""
    recs = a.records
    table = pd.DataFrame(
        {
            "yi": recs["yi"].to_numpy(dtype=float),
            "vi": recs["vi"].to_numpy(dtype=float),
            "study": list(recs["label"]),
            d.subgroup: list(recs[d.subgroup].astype(str)),
        }
    )
    try:
        return fit_subgroups(
            table,
            by=d.subgroup,
            method=m.method,
            test=m.test,
            level=m.level,
            labels="study",
            measure=a.measure,
        ), ""
    except MetaanError as exc:
        return None, str(exc)


def _within(results: ReportResults) -> tuple[Analysis | None, list[Contrast]]:
    d, model = results.spec.dose, results.spec.model
    assert d is not None
    if d.within_trial is None:
        return None, []
    frame = results.studies.frame
    split = dataclasses.replace(model, shared_control="split")
    within = effect_analysis(
        frame,
        d.within_trial,
        analysis_id="within_trial",
        label=d.within_trial_label,
        kind="continuous",
        model=split,
    )
    # Each comparison on its own: the arms are shared, so they are shown, not pooled.
    contrasts = []
    for idx, r in select(frame, d.within_trial).iterrows():
        one = effect_analysis(
            frame.loc[[idx]],
            d.within_trial,
            analysis_id="within_trial_contrast",
            label="",
            kind="continuous",
            model=dataclasses.replace(split, shared_control="first"),
            account=False,
        )
        if one.k != 1:
            continue
        rec = one.records.iloc[0]
        detail = f"{r['scale']}, {r['time_label']}; n = {int(r['n1'])} vs {int(r['n2'])}"
        if r.get("imputed1") == 1:
            detail += "; imputed endpoint values"
        contrasts.append(
            Contrast.from_estimate(
                f"{r['arm1_id']} vs {r['arm2_id']}",
                float(rec["yi"]),
                math.sqrt(float(rec["vi"])),
                model.level,
                detail,
            )
        )
    return within, contrasts


def _doses(a: Analysis) -> pd.DataFrame:
    recs = a.records
    read = [dose_in_mg(v) for v in recs["intervention_dose"]]
    source = recs.get("intervention_dose_source", pd.Series([None] * len(recs), index=recs.index))
    return pd.DataFrame(
        {
            "study": list(recs["label"]),
            "dose_as_published": [
                s if not is_blank(s) else v
                for s, v in zip(source, recs["intervention_dose"], strict=True)
            ],
            "intervention_dose": list(recs["intervention_dose"]),
            "dose_mg": [v for v, _ in read],
            "how_read": [why for _, why in read],
            "correction": [
                "" if is_blank(c) else str(c) for c in recs.get("correction", [None] * len(recs))
            ],
        }
    )


def _regression(
    a: Analysis, doses: pd.DataFrame, results: ReportResults
) -> tuple[MetaRegressionResult | None, str]:
    m = results.spec.model
    table = pd.DataFrame(
        {
            "yi": a.records["yi"].to_numpy(dtype=float),
            "vi": a.records["vi"].to_numpy(dtype=float),
            "study": list(a.records["label"]),
            "dose_mg": [np.nan if v is None else v for v in doses["dose_mg"]],
        }
    )
    usable = table["dose_mg"].notna()
    distinct = table.loc[usable, "dose_mg"].nunique()
    if usable.sum() < 3 or distinct < 2:
        return None, (
            f"a dose moderator does not apply: {int(usable.sum())} comparisons with a "
            f"readable dose, {distinct} distinct dose(s)"
        )
    try:
        reg = fit_regression(
            table,
            mods=["dose_mg"],
            method=m.method,
            test=m.test,
            level=m.level,
            labels="study",
            measure=a.measure,
        )
    except MetaanError as exc:
        return None, str(exc)
    return reg, ""


def very_low_text(results: ReportResults) -> str:
    """What the records' doses say about very low doses, from the corrected readings."""
    d = results.spec.dose
    assert d is not None
    cls = next(c for c in results.spec.classes if c.id == d.class_id)
    frame = results.studies.frame
    recs = frame[frame["drug_class"] == cls.drug_class]
    given: list[tuple[float, str]] = []
    for v, s in zip(recs["intervention_dose"], recs["study_id"], strict=True):
        x = dose_in_mg(v)[0]
        if x is not None:
            given.append((x, str(s)))
    low = recs[recs["comparator_kind"] == "low_dose"]
    controls: dict[str, list[str]] = {}
    for v, s in zip(low["comparator_dose"], low["study_id"], strict=True):
        x, _ = dose_in_mg(v)
        if x is not None and x <= d.very_low:
            controls.setdefault(str(v), [])
            if str(s) not in controls[str(v)]:
                controls[str(v)].append(str(s))
    lowest = min(given) if given else None
    parts = []
    if lowest is not None:
        parts.append(
            f"The lowest dose of {d.drug} given as the treatment under test in these records is "
            f"{fmt(lowest[0], 1)} {d.unit} per session ({lowest[1]})"
        )
    if controls:
        listed = "; ".join(
            f"{dose} in {' and '.join(studies)}" for dose, studies in controls.items()
        )
        parts.append(
            f"doses of {d.very_low:g} {d.unit} or less appear only as the control arm ({listed}), "
            "where they serve as an active placebo"
        )
    if lowest is not None and lowest[0] > d.very_low:
        parts.append(
            "so the records can compare full doses with very low doses, but they say nothing "
            "about whether repeated very low doses (microdosing) work"
        )
    text = "; ".join(parts) + "." if parts else ""
    return (text + (" " + d.statement if d.statement else "")).strip()


def _run(results: ReportResults) -> DoseResults | None:
    d = results.spec.dose
    if d is None:
        return None
    a = results.class_by_id(d.class_id).primary
    by_comparator, note = _by_comparator(a, results)
    within, contrasts = _within(results)
    doses = _doses(a) if a.fit is not None else pd.DataFrame()
    reg, reg_note = _regression(a, doses, results) if a.fit is not None else (None, "")
    return DoseResults(
        class_id=d.class_id,
        by_comparator=by_comparator,
        by_comparator_note=note,
        within_trial=within,
        within_trial_label=d.within_trial_label,
        within_trial_contrasts=tuple(contrasts),
        regression=reg,
        regression_note=reg_note,
        doses=doses,
        very_low=very_low_text(results),
        statement=d.statement,
    )


def _subgroup_text(d: DoseResults) -> str:
    sg = d.by_comparator
    if sg is None:
        return ""
    parts = []
    if sg.common is not None:
        parts.append(
            f"Test for subgroup differences (fixed-effect Q between groups): "
            f"Q({len(sg.levels) - 1}) = {fmt(sg.common.QM)}, {p_text(sg.common.QMp)}"
        )
    mixed = sg.mixed
    if mixed is not None:
        stat = (
            f"F({mixed.QM_df}, {mixed.QM_df2})"
            if mixed.QM_df2 is not None
            else f"QM({mixed.QM_df})"
        )
        parts.append(f"mixed-effects moderator test: {stat} = {fmt(mixed.QM)}, {p_text(mixed.QMp)}")
    elif sg.mixed_note:
        parts.append(f"mixed-effects moderator test not estimable ({sg.mixed_note})")
    return "; ".join(parts) + "." if parts else ""


def _dose_text(results: ReportResults, d: DoseResults) -> str:
    reg, spec = d.regression, results.spec.dose
    if reg is None or spec is None:
        return ""
    measure = results.class_by_id(d.class_id).primary.measure
    name = axis_label(measure, results.spec.outcome).lower()
    return (
        f"Across {reg.k} trials with a readable dose, the {name} changes by "
        f"{fmt(float(reg.coef[1]), 3)} {fmt_ci(float(reg.ci_lb[1]), float(reg.ci_ub[1]), 3)} "
        f"per {spec.unit} of {spec.drug} ({p_text(float(reg.pval[1]))}). The doses span a narrow "
        "range, nearly all trials gave a full dose, and dose is confounded with trial, population "
        "and control; this is not evidence for or against a dose-response relation."
    )


def _context(results: ReportResults, computed: DoseResults) -> dict[str, Any]:
    return {
        "subgroup_test": _subgroup_text(computed),
        "dose_text": _dose_text(results, computed),
        "symbol_measure": results.class_by_id(computed.class_id).primary.measure,
        "controls_note": results.spec.dose.controls_note if results.spec.dose else "",
    }


def _figures(results: ReportResults, computed: DoseResults) -> dict[str, Any]:
    from metaan import plots

    measure = results.class_by_id(computed.class_id).primary.measure
    label = axis_label(measure, results.spec.outcome)
    cls = results.class_by_id(computed.class_id)
    figs: dict[str, Any] = {}
    if computed.by_comparator is not None:
        from metaan.report.sections.classes import PRINT_PAGE

        figs["subgroups"] = plots.forest_pages(
            computed.by_comparator,
            page_size=PRINT_PAGE,
            groups=(cls.label.lower(), "control"),
            lower_is_better=results.spec.outcome.lower_is_better,
            xlabel=label,
            # A group of two trials has a t(1) interval tens of units wide; it ends
            # in an arrow rather than squeezing every other interval.
            xlim=(-4.0, 2.0) if measure == "SMD" else None,
            title=f"{cls.label} by kind of control",
        )
    if computed.regression is not None and results.spec.dose is not None:
        figs["bubble"] = plots.bubble(
            computed.regression,
            "dose_mg",
            xlabel=results.spec.dose.moderator_label,
            ylabel=label,
            title=f"{cls.label}: effect by dose",
        )
    return figs


def _tables(results: ReportResults, computed: DoseResults) -> dict[str, pd.DataFrame]:
    out = {}
    if computed.within_trial_contrasts:
        out["dose_within_trial"] = pd.DataFrame(
            [c.to_dict() for c in computed.within_trial_contrasts]
        )
    if len(computed.doses):
        out["dose_read"] = computed.doses
    return out


def _data(results: ReportResults, computed: DoseResults) -> dict[str, Any]:
    from metaan._json import jsonable

    return {
        "class": computed.class_id,
        "by_comparator": jsonable(computed.by_comparator),
        "by_comparator_note": computed.by_comparator_note,
        "within_trial_label": computed.within_trial_label,
        "within_trial": [c.to_dict() for c in computed.within_trial_contrasts],
        "regression": jsonable(computed.regression),
        "regression_note": computed.regression_note,
        "doses": jsonable(computed.doses),
        "very_low_doses": computed.very_low,
    }


SECTION = Section(
    id="dose",
    headings=_headings,
    run=_run,
    figures=_figures,
    tables=_tables,
    data=_data,
    context=_context,
)
